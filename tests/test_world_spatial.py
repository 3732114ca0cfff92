"""The spatial index finds exactly the neighbours a scan of every agent finds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from societas.scenarios.gridtown import grid_town
from societas.world.places import Tile
from societas.world.spatial import SpatialIndex
from societas.world.state import World


def brute_force(tiles: dict[str, Tile], centre: Tile, radius: int) -> set[str]:
    x, y = centre
    return {
        name
        for name, (other_x, other_y) in tiles.items()
        if max(abs(other_x - x), abs(other_y - y)) <= radius
    }


@pytest.mark.parametrize("cell", [1, 3, 8, 50])
def test_within_matches_brute_force_through_moves_and_removals(cell: int) -> None:
    rng = random.Random(cell)
    index = SpatialIndex(cell=cell)
    tiles: dict[str, Tile] = {}
    for step in range(600):
        name = f"agent {rng.randrange(120)}"
        if name in tiles and rng.random() < 0.1:
            index.remove(name)
            del tiles[name]
        else:
            tile = (rng.randrange(-5, 60), rng.randrange(-5, 40))
            index.place(name, tile)
            tiles[name] = tile
        if step % 10 == 0:
            centre = (rng.randrange(-10, 70), rng.randrange(-10, 50))
            for radius in (0, 1, 4, 9, 30):
                found = list(index.within(centre, radius))
                assert len(found) == len(set(found))
                assert set(found) == brute_force(tiles, centre, radius)
                with_tiles = index.within_tiles(centre, radius)
                assert sorted(with_tiles) == sorted((name, tiles[name]) for name in found)
    assert len(index) == len(tiles)
    assert all(index.tile_of(name) == tile for name, tile in tiles.items())


def test_negative_radius_finds_nobody_and_bad_cell_is_refused() -> None:
    index = SpatialIndex()
    index.place("Ada", (0, 0))
    assert list(index.within((0, 0), -1)) == []
    assert index.within_tiles((0, 0), -1) == []
    with pytest.raises(ValueError, match="cell size"):
        SpatialIndex(cell=0)


def test_world_neighbours_match_a_scan_of_every_agent() -> None:
    rng = random.Random(7)
    scenario = grid_town(150, rng, residents_per_home=5)
    world = World.from_scenario(scenario)
    open_tiles = [
        (x, y)
        for y in range(world.tilemap.height)
        for x in range(world.tilemap.width)
        if world.tilemap.is_walkable((x, y))
    ]
    for name in world.agents:  # crowd a few tiles so many agents see each other
        world.set_position(name, rng.choice(open_tiles[: len(open_tiles) // 6]))
    for round_ in range(3):
        for name in rng.sample(world.agents, 40):
            world.set_position(name, rng.choice(open_tiles))
        copy = world.copy() if round_ == 2 else world  # a restored world rebuilds its index
        for name in world.agents:
            for radius in (2, 8):
                assert copy.agents_near(name, radius) == scan(world, name, radius)


def scan(world: World, agent: str, radius: int) -> list[str]:
    """Neighbours the way the world found them before it had an index."""
    x, y = world.position(agent)
    found = []
    for other in world.agents:
        other_x, other_y = world.position(other)
        distance = max(abs(other_x - x), abs(other_y - y))
        if other != agent and distance <= radius and world.area_of(other) == world.area_of(agent):
            found.append((distance, other))
    return [name for _, name in sorted(found)]


def test_distance_fields_match_breadth_first_search_from_each_goal_tile() -> None:
    scenario = grid_town(60, random.Random(3), residents_per_home=5, homes=6)
    tilemap = scenario.tilemap
    for address in scenario.places.rooms()[::3]:
        field = tilemap.distance_field(address)
        nearest = None
        for x, y in scenario.places.tiles(address):
            steps = tilemap.distances_from((x, y))
            nearest = steps if nearest is None else np.minimum(nearest, steps)
        assert nearest is not None
        assert (field == nearest).all()
        assert tilemap.path_to_place((0, 0), address) is not None
