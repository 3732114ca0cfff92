"""The place tree: addresses, lookup, children, tiles and nearest tiles."""

from __future__ import annotations

import pytest

from societas.world.errors import UnknownPlaceError, WorldError
from societas.world.places import PlaceTree, split_address

LEGEND = {"k": "Cafe:kitchen", "d": "Cafe:dining", "s": "Town:street", "#": None}
ROWS = [
    "#######",
    "#kk#dd#",
    "#kkkdd#",
    "###s###",
    "sssssss",
]


def tree(objects: dict[str, tuple[int, int]] | None = None) -> PlaceTree:
    grid = [[LEGEND[char] for char in row] for row in ROWS]
    default = {"Cafe:kitchen:oven": (1, 1), "Cafe:dining:table": (5, 2)}
    return PlaceTree(grid, default if objects is None else objects)


def test_hierarchy_and_sorted_listings() -> None:
    places = tree()
    assert places.areas() == ["Cafe", "Town"]
    assert places.rooms() == ["Cafe:dining", "Cafe:kitchen", "Town:street"]
    assert places.rooms("Cafe") == ["Cafe:dining", "Cafe:kitchen"]
    assert places.objects("Cafe:kitchen") == ["Cafe:kitchen:oven"]
    assert places.objects("Cafe") == ["Cafe:dining:table", "Cafe:kitchen:oven"]
    assert places.objects() == ["Cafe:dining:table", "Cafe:kitchen:oven"]
    assert places.children("Cafe:kitchen") == ["Cafe:kitchen:oven"]
    oven = places.get("Cafe:kitchen:oven")
    assert (oven.kind, oven.name, oven.parent) == ("object", "oven", "Cafe:kitchen")
    assert places.get("Cafe").kind == "area"
    assert "Cafe:dining" in places and "Cafe:hall" not in places


def test_tiles_of_rooms_areas_and_objects() -> None:
    places = tree()
    assert places.tiles("Cafe:kitchen") == [(1, 1), (2, 1), (1, 2), (2, 2), (3, 2)]
    assert places.tiles("Town:street") == [(3, 3), *[(x, 4) for x in range(7)]]
    assert sorted(places.tiles("Cafe")) == sorted(
        places.tiles("Cafe:kitchen") + places.tiles("Cafe:dining")
    )
    assert places.tiles("Cafe:kitchen:oven") == [(1, 1)]
    assert places.bbox("Cafe:kitchen") == (1, 1, 3, 2)


def test_address_at_tile() -> None:
    places = tree()
    assert places.address_at((3, 2)) == "Cafe:kitchen"
    assert places.address_at((4, 1)) == "Cafe:dining"
    assert places.address_at((0, 0)) is None  # wall
    assert places.address_at((9, 9)) is None  # off the map
    assert places.objects_at((1, 1)) == ["Cafe:kitchen:oven"]
    assert places.area_of("Cafe:kitchen:oven") == "Cafe"
    assert places.room_of("Cafe:kitchen:oven") == "Cafe:kitchen"
    assert places.room_of("Town") is None


def test_nearest_tile_of_a_place_to_a_point() -> None:
    places = tree()
    assert places.nearest_tile("Cafe:kitchen", (6, 2)) == (3, 2)
    assert places.nearest_tile("Town:street", (6, 0)) == (6, 4)
    # Ties go to the top row, then the left: (1, 1) and (2, 2)... from (0, 3) (1,2) is nearest.
    assert places.nearest_tile("Cafe:kitchen", (0, 3)) == (1, 2)
    assert places.nearest_tile("Cafe:kitchen", (2, 0)) == (2, 1)
    assert places.nearest_tile("Cafe:dining:table", (0, 0)) == (5, 2)


def test_describe_places() -> None:
    places = tree()
    assert places.describe("Cafe") == "Cafe"
    assert places.describe("Cafe:kitchen") == "the kitchen of Cafe"
    assert places.describe("Cafe:kitchen:oven") == "the oven in the kitchen of Cafe"


def test_unknown_address_suggests_the_closest() -> None:
    places = tree()
    with pytest.raises(UnknownPlaceError, match=r"'Cafe:kitchn' \(did you mean 'Cafe:kitchen'\?\)"):
        places.get("Cafe:kitchn")
    with pytest.raises(WorldError, match="is a room, not an area"):
        places.rooms("Cafe:kitchen")
    with pytest.raises(WorldError, match="is an object"):
        places.objects("Cafe:kitchen:oven")


def test_objects_must_sit_in_their_room() -> None:
    with pytest.raises(WorldError, match="not on a tile of 'Cafe:kitchen'"):
        tree({"Cafe:kitchen:oven": (5, 1)})
    with pytest.raises(WorldError, match="not inside a room"):
        tree({"Cafe:attic:box": (1, 1)})


@pytest.mark.parametrize("bad", ["", "A:", ":b", "A: b", "a:b:c:d"])
def test_malformed_addresses_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="address"):
        split_address(bad)


def test_room_ids_are_read_only() -> None:
    places = tree()
    with pytest.raises(ValueError):
        places.room_ids[1, 1] = 5
    assert places.room_list[int(places.room_ids[1, 1])] == "Cafe:kitchen"
