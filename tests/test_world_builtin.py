"""The shipped scenarios: they load, every room is reachable, the storylines are in place."""

from __future__ import annotations

from collections import Counter

import pytest

from societas.scenarios.scenario import Scenario, load_scenario
from societas.world.state import World


@pytest.fixture(scope="module")
def town() -> Scenario:
    return load_scenario("town")


@pytest.mark.parametrize("name", ["town", "duo"])
def test_every_room_and_object_is_reachable_from_the_street(name: str) -> None:
    scenario = load_scenario(name)
    street = next(room for room in scenario.places.rooms() if room.endswith("street"))
    start = scenario.places.tiles(street)[0]
    for address in scenario.places.rooms() + scenario.places.objects():
        path = scenario.tilemap.path_to_place(start, address)
        assert path is not None, address
        end = path[-1] if path else start
        assert end in scenario.places.tiles(address)


def test_town_size_and_places(town: Scenario) -> None:
    assert town.places.width <= 40 and town.places.height <= 30
    areas = town.places.areas()
    for needed in ("Bluebird Cafe", "Alvarez Market", "Willow Park", "Town Hall"):
        assert needed in areas
        assert 1 <= len(town.places.rooms(needed)) <= 3
        assert town.places.objects(needed)
    homes = Counter(agent.home.split(":")[0] for agent in town.agents)
    assert len(town.agents) == 8
    assert max(homes.values()) >= 2  # some agents share a home


def test_town_personas_are_compact(town: Scenario) -> None:
    for agent in town.agents:
        words = len(agent.persona.summary().split())
        assert 50 <= words <= 90, (agent.name, words)
        assert agent.memories and agent.relationships


def test_town_storylines(town: Scenario) -> None:
    start = town.start_time
    assert start.weekday() < 5 and (start.hour, start.minute) == (7, 0)
    council = town.news_item("rosa_council")
    assert "Rosa Alvarez" in council.initial_knowers and len(council.initial_knowers) <= 2
    party = town.news_item("lena_party")
    gathering = town.gatherings[0]
    assert gathering.news_id == party.id and gathering.host in party.initial_knowers
    assert gathering.start.date() == start.date()
    assert (gathering.start.hour, gathering.end.hour) == (17, 19)
    host_memories = " ".join(town.initial_memories(gathering.host))
    assert "invite" in host_memories and "5pm" in host_memories


def test_town_world_starts_everyone_at_home(town: Scenario) -> None:
    world = World.from_scenario(town)
    for name in world.agents:
        assert world.place_of(name) == town.agent(name).home
    tiles = [world.position(name) for name in world.agents]
    assert len(set(tiles)) == len(tiles)  # housemates start on distinct tiles


def test_paths_for_many_agents_are_fast(town: Scenario) -> None:
    """Hundreds of path queries (the engine walks every agent every step) take milliseconds."""
    import time

    world = World.from_scenario(town)
    rooms = town.places.rooms()
    starts = [tile for room in rooms for tile in town.places.tiles(room)][::3]
    began = time.perf_counter()
    for index, start in enumerate(starts):
        assert town.tilemap.path_to_place(start, rooms[index % len(rooms)]) is not None
    elapsed = time.perf_counter() - began
    assert len(starts) > 200
    assert elapsed < 2.0
    assert world.path(town.agent_names()[0], "Willow Park:garden")
