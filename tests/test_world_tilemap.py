"""Path finding: A* is optimal, deterministic, and says None when there is no way."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import societas.world.tilemap as tilemap_module
from societas.world.errors import WorldError
from societas.world.places import PlaceTree, Tile
from societas.world.tilemap import TileMap


def reference_distance(walkable: np.ndarray, start: Tile, goal: Tile) -> int | None:
    """Plain breadth-first search, written independently of the code under test."""
    height, width = walkable.shape
    seen = {start: 0}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == goal:
            return seen[(x, y)]
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < width and 0 <= ny < height and walkable[ny, nx] and (nx, ny) not in seen:
                seen[(nx, ny)] = seen[(x, y)] + 1
                queue.append((nx, ny))
    return None


def assert_valid_path(grid: TileMap, start: Tile, path: list[Tile], goal: Tile) -> None:
    previous = start
    for tile in path:
        assert grid.is_walkable(tile)
        assert abs(tile[0] - previous[0]) + abs(tile[1] - previous[1]) == 1
        previous = tile
    assert previous == goal


def test_path_excludes_start_and_includes_goal() -> None:
    grid = TileMap.from_rows(["....", ".##.", "...."])
    path = grid.path((0, 1), (3, 1))
    assert path is not None
    assert len(path) == 5
    assert_valid_path(grid, (0, 1), path, (3, 1))
    assert grid.path((2, 2), (2, 2)) == []


def test_detour_around_a_wall_is_shortest() -> None:
    rows = [
        ".......",
        ".#####.",
        ".#...#.",
        ".#.#.#.",
        "...#...",
    ]
    grid = TileMap.from_rows(rows)
    path = grid.path((2, 4), (4, 4))
    assert path is not None
    assert len(path) == reference_distance(grid.walkable, (2, 4), (4, 4)) == 6


def test_unreachable_and_blocked_ends_give_none() -> None:
    grid = TileMap.from_rows(["..#..", "..#..", "..#.."])
    assert grid.path((0, 0), (4, 0)) is None
    assert grid.path((0, 0), (2, 0)) is None  # goal is a wall
    assert grid.path((2, 1), (0, 0)) is None  # start is a wall
    assert grid.path_to_tiles((0, 0), [(3, 0), (4, 2)]) is None


def test_tiles_off_the_map_are_errors() -> None:
    grid = TileMap.from_rows(["..."])
    with pytest.raises(WorldError, match=r"tile \[5, 0\] is off the 3x1 map"):
        grid.path((0, 0), (5, 0))


def test_ties_are_broken_the_same_way_every_time() -> None:
    rows = ["....", "....", "...."]
    first = TileMap.from_rows(rows).path((0, 0), (3, 2))
    assert all(TileMap.from_rows(rows).path((0, 0), (3, 2)) == first for _ in range(3))


def test_path_to_tiles_reaches_the_nearest_goal() -> None:
    grid = TileMap.from_rows([".....", ".###.", "....."])
    path = grid.path_to_tiles((0, 0), [(4, 2), (2, 0)])
    assert path == [(1, 0), (2, 0)]
    assert grid.path_to_tiles((2, 0), [(2, 0)]) == []


def place_map() -> TileMap:
    legend = {"r": "Home:room", "h": "Home:hall", ".": "Town:street", "#": None}
    rows = [
        "#######",
        "#rr#hh#",
        "#rrrhh#",
        "###.###",
        ".......",
    ]
    grid = [[legend[char] for char in row] for row in rows]
    places = PlaceTree(grid, {"Home:room:bed": (1, 1)})
    return TileMap([[cell is not None for cell in row] for row in grid], places)


def test_path_to_place_goes_to_its_nearest_tile() -> None:
    grid = place_map()
    path = grid.path_to_place((6, 4), "Home:room")
    assert path == [(5, 4), (4, 4), (3, 4), (3, 3), (3, 2)]
    bed = grid.path_to_place((6, 4), "Home:room:bed")
    assert bed is not None and bed[-1] == (1, 1)
    assert len(bed) == reference_distance(grid.walkable, (6, 4), (1, 1))
    assert grid.path_to_place((1, 2), "Home:room") == []
    assert grid.path_to_place((1, 2), "Home") == []  # an area includes its rooms
    assert grid.path_to_place((0, 4), "Home") == [(1, 4), (2, 4), (3, 4), (3, 3), (3, 2)]


def test_a_path_cut_to_max_steps_is_the_start_of_the_whole_path() -> None:
    grid = place_map()
    whole = grid.path_to_place((6, 4), "Home:room:bed")
    assert whole is not None and len(whole) > 3
    for steps in range(len(whole) + 2):
        assert grid.path_to_place((6, 4), "Home:room:bed", max_steps=steps) == whole[:steps]
    with pytest.raises(ValueError, match="max_steps must not be negative"):
        grid.path_to_place((6, 4), "Home:room:bed", max_steps=-1)


def test_distance_field_is_cached_and_read_only() -> None:
    grid = place_map()
    field = grid.distance_field("Home:hall")
    assert field[4, 0] == reference_distance(grid.walkable, (0, 4), (4, 2))
    assert field[0, 0] == -1
    assert grid.distance_field("Home:hall") is not field  # a fresh read-only view each time
    with pytest.raises(ValueError):
        field[4, 0] = 0


def test_component_labels_separate_walled_off_regions() -> None:
    labels = TileMap.from_rows(["..#..", "###..", "..#.."]).component_labels()
    assert labels[0, 0] == labels[0, 1] == 0
    assert labels[0, 3] == labels[2, 4] == 1
    assert labels[2, 0] == 2
    assert labels[1, 0] == -1


@st.composite
def grids_with_ends(draw: st.DrawFn) -> tuple[np.ndarray, Tile, Tile]:
    width = draw(st.integers(min_value=1, max_value=9))
    height = draw(st.integers(min_value=1, max_value=9))
    cells = draw(st.lists(st.booleans(), min_size=width * height, max_size=width * height))
    walkable = np.array(cells, dtype=bool).reshape(height, width)
    start = (draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1)))
    goal = (draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1)))
    walkable[start[1], start[0]] = walkable[goal[1], goal[0]] = True
    return walkable, start, goal


@settings(max_examples=300, deadline=None, database=None)
@given(grids_with_ends())
def test_a_star_is_optimal_on_random_maps(case: tuple[np.ndarray, Tile, Tile]) -> None:
    walkable, start, goal = case
    grid = TileMap(walkable)
    path = grid.path(start, goal)
    expected = reference_distance(walkable, start, goal)
    if expected is None:
        assert path is None
        assert grid.path_to_tiles(start, [goal]) is None
        return
    assert path is not None and len(path) == expected
    assert_valid_path(grid, start, path, goal)
    by_search = grid.path_to_tiles(start, [goal])
    assert by_search is not None and len(by_search) == expected
    assert grid.distances_from(start)[goal[1], goal[0]] == expected


def serpentine_map(width: int = 150, height: int = 150) -> TileMap:
    """A large map whose walls make long detours: a place's field first covers only nearby
    tiles, and far tiles are many steps away."""
    grid: list[list[str | None]] = [["Town:street"] * width for _ in range(height)]
    for y in range(2, height - 2, 4):  # walls with a gap at alternating ends
        gap = width - 1 if (y // 4) % 2 == 0 else 0
        for x in range(width):
            if x != gap:
                grid[y][x] = None
    for y in range(0, 2):
        for x in range(0, 3):
            grid[y][x] = "Home:room"
    places = PlaceTree(grid, {"Home:room:bed": (0, 0)})
    return TileMap([[cell is not None for cell in row] for row in grid], places)


def test_large_maps_start_fields_near_the_place_and_complete_them_on_demand() -> None:
    grid = serpentine_map()
    assert grid.width * grid.height > tilemap_module.FIELD_REACH**2
    near, far = (10, 1), (grid.width - 1, grid.height - 1)
    path = grid.path_to_place(near, "Home:room:bed")
    assert path is not None and len(path) == reference_distance(grid.walkable, near, (0, 0))
    assert "Home:room:bed" in grid._partial  # only the neighbourhood was searched
    far_path = grid.path_to_place(far, "Home:room:bed")
    expected = reference_distance(grid.walkable, far, (0, 0))
    assert expected is not None and expected > tilemap_module.FIELD_REACH
    assert far_path is not None and len(far_path) == expected and far_path[-1] == (0, 0)
    assert "Home:room:bed" not in grid._partial
    # The public field is always complete.
    room = grid.distance_field("Home:room")
    assert room[far[1], far[0]] == reference_distance(grid.walkable, far, (2, 1))
