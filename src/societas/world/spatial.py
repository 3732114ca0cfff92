"""A spatial index of agents on the tile grid: who stands within ``r`` tiles of a tile.

Agents are kept in square buckets of ``cell`` x ``cell`` tiles, so a query looks at the few
buckets its square overlaps instead of every agent: the cost follows the crowd around the tile,
not the population of the world.

Examples
--------
>>> index = SpatialIndex(cell=4)
>>> index.place("Ada", (1, 1)); index.place("Bo", (3, 2)); index.place("Cy", (12, 1))
>>> sorted(index.within((2, 2), radius=2))
['Ada', 'Bo']
>>> index.place("Cy", (4, 3)); sorted(index.within((2, 2), radius=2))
['Ada', 'Bo', 'Cy']
"""

from __future__ import annotations

from collections.abc import Iterator

from societas.world.places import Tile

DEFAULT_CELL = 8


class SpatialIndex:
    """Agent names bucketed by cell; :meth:`place` adds or moves one, :meth:`within` queries."""

    def __init__(self, cell: int = DEFAULT_CELL) -> None:
        if cell < 1:
            raise ValueError(f"cell size must be at least 1 tile, got {cell}")
        self.cell = cell
        self._tiles: dict[str, Tile] = {}
        self._buckets: dict[tuple[int, int], set[str]] = {}

    def __len__(self) -> int:
        return len(self._tiles)

    def __contains__(self, name: object) -> bool:
        return name in self._tiles

    def _key(self, tile: Tile) -> tuple[int, int]:
        return tile[0] // self.cell, tile[1] // self.cell

    def place(self, name: str, tile: Tile) -> None:
        """Put ``name`` on ``tile`` (moving it when already indexed)."""
        old = self._tiles.get(name)
        self._tiles[name] = tile
        key = self._key(tile)
        if old is not None:
            old_key = self._key(old)
            if old_key == key:
                return
            bucket = self._buckets[old_key]
            bucket.discard(name)
            if not bucket:
                del self._buckets[old_key]
        self._buckets.setdefault(key, set()).add(name)

    def remove(self, name: str) -> None:
        """Take ``name`` out of the index (a KeyError when it is not in it)."""
        key = self._key(self._tiles.pop(name))
        bucket = self._buckets[key]
        bucket.discard(name)
        if not bucket:
            del self._buckets[key]

    def tile_of(self, name: str) -> Tile:
        return self._tiles[name]

    def within(self, tile: Tile, radius: int) -> Iterator[str]:
        """Names within ``radius`` tiles of ``tile`` (Chebyshev distance), in no fixed order.

        Callers that need an order sort what they get (by distance, then name).
        """
        if radius < 0:
            return
        x, y = tile
        cell, tiles, buckets = self.cell, self._tiles, self._buckets
        for cx in range((x - radius) // cell, (x + radius) // cell + 1):
            for cy in range((y - radius) // cell, (y + radius) // cell + 1):
                for name in buckets.get((cx, cy), ()):
                    other_x, other_y = tiles[name]
                    if abs(other_x - x) <= radius and abs(other_y - y) <= radius:
                        yield name

    def within_tiles(self, tile: Tile, radius: int) -> list[tuple[str, Tile]]:
        """``(name, tile)`` of everyone within ``radius`` tiles of ``tile``, in no fixed order.

        The same people as :meth:`within`, with their tiles, gathered a bucket at a time (the
        perception of a crowded place asks this for every agent in it, every step).
        """
        if radius < 0:
            return []
        x, y = tile
        low_x, high_x, low_y, high_y = x - radius, x + radius, y - radius, y + radius
        cell, tiles, buckets = self.cell, self._tiles, self._buckets
        found: list[tuple[str, Tile]] = []
        for cx in range(low_x // cell, high_x // cell + 1):
            inside_x = low_x <= cx * cell and (cx + 1) * cell - 1 <= high_x
            for cy in range(low_y // cell, high_y // cell + 1):
                bucket = buckets.get((cx, cy))
                if not bucket:
                    continue
                if inside_x and low_y <= cy * cell and (cy + 1) * cell - 1 <= high_y:
                    found.extend((name, tiles[name]) for name in bucket)
                    continue
                for name in bucket:
                    other = tiles[name]
                    if low_x <= other[0] <= high_x and low_y <= other[1] <= high_y:
                        found.append((name, other))
        return found
