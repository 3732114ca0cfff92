"""The place tree: world > area > room > object, addressed "Area", "Area:room", "Area:room:object".

Every walkable tile belongs to exactly one room; an area is the union of its rooms; an object sits
on one tile of its room. The tree is static: object *states* live in the world state.

Examples
--------
>>> grid = [["Cafe:kitchen", "Cafe:kitchen", None, "Town:street"]]
>>> tree = PlaceTree(grid, {"Cafe:kitchen:oven": (1, 0)})
>>> tree.areas(), tree.rooms("Cafe"), tree.objects("Cafe:kitchen")
(['Cafe', 'Town'], ['Cafe:kitchen'], ['Cafe:kitchen:oven'])
>>> tree.address_at((3, 0)), tree.describe("Cafe:kitchen:oven")
('Town:street', 'the oven in the kitchen of Cafe')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from societas.world.errors import UnknownPlaceError, WorldError, did_you_mean

Tile = tuple[int, int]
"""A tile position ``(x, y)``: column, then row, both from 0 at the top left."""

PlaceKind = Literal["area", "room", "object"]
_KIND_BY_DEPTH: dict[int, PlaceKind] = {1: "area", 2: "room", 3: "object"}
NO_ROOM = -1


def _with_article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def split_address(address: str) -> list[str]:
    """The parts of an address; raises ``ValueError`` naming the problem when malformed.

    >>> split_address("Cafe:kitchen:oven")
    ['Cafe', 'kitchen', 'oven']
    """
    parts = address.split(":")
    if len(parts) > 3:
        raise ValueError(f"address {address!r} has more than three parts (area:room:object)")
    for part in parts:
        if not part or part != part.strip():
            raise ValueError(
                f"address {address!r} has an empty part or a part with surrounding spaces"
            )
    return parts


@dataclass(frozen=True)
class Place:
    """One node of the tree."""

    address: str
    kind: PlaceKind
    name: str
    parent: str | None


class PlaceTree:
    """Areas, rooms and objects of a world, and which tiles each one covers.

    ``room_grid[y][x]`` is the room address of a walkable tile, ``None`` for walls and void;
    ``object_tiles`` maps object addresses to their tile, which must lie in the object's room.
    """

    def __init__(
        self, room_grid: Sequence[Sequence[str | None]], object_tiles: Mapping[str, Tile]
    ) -> None:
        self.height = len(room_grid)
        self.width = len(room_grid[0]) if self.height else 0
        if self.width == 0 or any(len(row) != self.width for row in room_grid):
            raise WorldError("room grid must be a non-empty rectangle")
        self._places: dict[str, Place] = {}
        self._children: dict[str | None, list[str]] = {None: []}
        self._room_ids = np.full((self.height, self.width), NO_ROOM, dtype=np.int32)
        self._room_list: list[str] = []
        self._build_rooms(room_grid)
        self._room_tiles = self._collect_room_tiles()
        self._object_tiles: dict[str, Tile] = {}
        for address, tile in sorted(object_tiles.items()):
            self._add_object(address, (int(tile[0]), int(tile[1])))
        for children in self._children.values():
            children.sort()
        self._room_ids.setflags(write=False)

    # -- construction -------------------------------------------------------------------------

    def _add(self, address: str) -> None:
        parts = split_address(address)
        parent = ":".join(parts[:-1]) or None
        if parent is not None and parent not in self._places:
            self._add(parent)
        self._places[address] = Place(address, _KIND_BY_DEPTH[len(parts)], parts[-1], parent)
        self._children.setdefault(parent, []).append(address)
        self._children[address] = []

    def _build_rooms(self, room_grid: Sequence[Sequence[str | None]]) -> None:
        index: dict[str, int] = {}
        for y, row in enumerate(room_grid):
            for x, address in enumerate(row):
                if address is None:
                    continue
                if address not in index:
                    if len(split_address(address)) != 2:
                        raise WorldError(f"tile {[x, y]}: {address!r} is not a room address")
                    index[address] = len(self._room_list)
                    self._room_list.append(address)
                    self._add(address)
                self._room_ids[y, x] = index[address]

    def _collect_room_tiles(self) -> dict[str, npt.NDArray[np.int32]]:
        tiles: dict[str, npt.NDArray[np.int32]] = {}
        for room_id, room in enumerate(self._room_list):
            ys, xs = np.nonzero(self._room_ids == room_id)  # row-major order
            coords = np.stack([xs, ys], axis=1).astype(np.int32)
            coords.setflags(write=False)
            tiles[room] = coords
        return tiles

    def _add_object(self, address: str, tile: Tile) -> None:
        parts = split_address(address)
        room = ":".join(parts[:2])
        if len(parts) != 3 or room not in self._room_tiles:
            raise WorldError(f"object {address!r} is not inside a room of the map")
        if self.address_at(tile) != room:
            raise WorldError(f"object {address!r} at {list(tile)} is not on a tile of {room!r}")
        self._add(address)
        self._object_tiles[address] = tile

    # -- lookup -------------------------------------------------------------------------------

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and address in self._places

    def get(self, address: str) -> Place:
        """The place at ``address``; :class:`UnknownPlaceError` (with a suggestion) if none."""
        place = self._places.get(address)
        if place is None:
            hint = did_you_mean(address, self._places)
            raise UnknownPlaceError(f"unknown place {address!r}{hint}")
        return place

    def suggest(self, address: str, kind: PlaceKind | None = None) -> str:
        """A did-you-mean suffix for a wrong address, among places of ``kind`` if given."""
        choices = [p.address for p in self._places.values() if kind is None or p.kind == kind]
        return did_you_mean(address, choices)

    def children(self, address: str | None = None) -> list[str]:
        """Addresses directly below ``address`` (the areas when ``None``), sorted."""
        if address is not None:
            self.get(address)
        return list(self._children[address])

    def areas(self) -> list[str]:
        return self.children(None)

    def rooms(self, area: str | None = None) -> list[str]:
        """Room addresses, sorted; only those of ``area`` when given."""
        if area is not None:
            self._expect(area, "area")
            return self.children(area)
        return sorted(self._room_list)

    def objects(self, room: str | None = None) -> list[str]:
        """Object addresses, sorted; only those in ``room`` (or in all rooms of an area)."""
        if room is None:
            return sorted(self._object_tiles)
        place = self.get(room)
        if place.kind == "object":
            raise WorldError(f"{room!r} is an object; objects lie in rooms and areas")
        prefix = room + ":"
        return [address for address in sorted(self._object_tiles) if address.startswith(prefix)]

    def area_of(self, address: str) -> str:
        """The area an address lies in (itself for an area)."""
        self.get(address)
        return address.split(":", 1)[0]

    def room_of(self, address: str) -> str | None:
        """The room an address lies in (itself for a room, None for an area)."""
        place = self.get(address)
        if place.kind == "area":
            return None
        return ":".join(address.split(":")[:2])

    def _expect(self, address: str, kind: PlaceKind) -> Place:
        place = self.get(address)
        if place.kind != kind:
            raise WorldError(
                f"{address!r} is {_with_article(place.kind)}, not {_with_article(kind)}"
            )
        return place

    # -- tiles --------------------------------------------------------------------------------

    @property
    def room_ids(self) -> npt.NDArray[np.int32]:
        """Read-only ``(height, width)`` grid of indices into :attr:`room_list` (-1: no room)."""
        return self._room_ids

    @property
    def room_list(self) -> list[str]:
        """Rooms in order of first appearance on the map (the indices of :attr:`room_ids`)."""
        return list(self._room_list)

    def tile_array(self, address: str) -> npt.NDArray[np.int32]:
        """Read-only ``(n, 2)`` array of the ``(x, y)`` tiles a place covers, row-major order."""
        place = self.get(address)
        if place.kind == "room":
            return self._room_tiles[address]
        if place.kind == "object":
            tile = np.array([self._object_tiles[address]], dtype=np.int32)
            tile.setflags(write=False)
            return tile
        rooms = [self._room_tiles[room] for room in self._children[address]]
        return np.concatenate(rooms) if rooms else np.empty((0, 2), dtype=np.int32)

    def tiles(self, address: str) -> list[Tile]:
        """The ``(x, y)`` tiles of an area, room or object (one tile)."""
        return [(int(x), int(y)) for x, y in self.tile_array(address)]

    def object_tile(self, address: str) -> Tile:
        self._expect(address, "object")
        return self._object_tiles[address]

    def address_at(self, tile: Tile) -> str | None:
        """The room address of a tile; None for walls, void and tiles off the map."""
        x, y = tile
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        room_id = int(self._room_ids[y, x])
        return None if room_id == NO_ROOM else self._room_list[room_id]

    def objects_at(self, tile: Tile) -> list[str]:
        """Objects standing on ``tile`` (usually none or one)."""
        return [address for address, at in sorted(self._object_tiles.items()) if at == tile]

    def nearest_tile(self, address: str, point: Tile) -> Tile:
        """The tile of ``address`` nearest to ``point`` (Manhattan; ties: top row, then left)."""
        tiles = self.tile_array(address)
        distance = np.abs(tiles[:, 0] - point[0]) + np.abs(tiles[:, 1] - point[1])
        best = int(np.argmin(distance))  # first minimum = row-major tie-breaking
        return int(tiles[best, 0]), int(tiles[best, 1])

    def bbox(self, address: str) -> tuple[int, int, int, int]:
        """Inclusive bounding box ``(x_min, y_min, x_max, y_max)`` of a place's tiles."""
        tiles = self.tile_array(address)
        x_min, y_min = tiles.min(axis=0)
        x_max, y_max = tiles.max(axis=0)
        return int(x_min), int(y_min), int(x_max), int(y_max)

    # -- words --------------------------------------------------------------------------------

    def describe(self, address: str) -> str:
        """A short phrase: "Hobbs Cafe", "the kitchen of Hobbs Cafe", "the oven in the..."."""
        place = self.get(address)
        parts = address.split(":")
        if place.kind == "area":
            return parts[0]
        room_phrase = f"the {parts[1]} of {parts[0]}"
        if place.kind == "room":
            return room_phrase
        return f"the {parts[2]} in {room_phrase}"
