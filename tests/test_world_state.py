"""The world's state: positions, walking, perception, objects, choices, export, save/restore."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from societas.scenarios.scenario import Scenario, load_scenario
from societas.world.errors import UnknownAgentError, UnknownPlaceError, WorldError
from societas.world.state import World

IRIS, NOAH = "Iris Vance", "Noah Bell"
MACHINE = "Corner Cafe:counter:coffee machine"
BOARD = "Corner Cafe:counter:chalkboard"


@pytest.fixture(scope="module")
def duo() -> Scenario:
    return load_scenario("duo")


@pytest.fixture
def world(duo: Scenario) -> World:
    return World.from_scenario(duo)


def test_agents_start_at_home(world: World) -> None:
    assert world.agents == [IRIS, NOAH]
    assert world.place_of(IRIS) == "Vance Flat:main room"
    assert world.place_of(NOAH) == "Bell House:main room"
    assert world.home_of(NOAH) == "Bell House:main room"
    assert world.area_of(IRIS) == "Vance Flat"
    assert world.clock.now == datetime(2026, 3, 2, 8, 0)


def test_set_position_accepts_only_walkable_tiles(world: World) -> None:
    world.set_position(IRIS, (7, 5))
    assert world.position(IRIS) == (7, 5)
    assert world.place_of(IRIS) == "Elm Lane:street"
    with pytest.raises(WorldError, match="not walkable"):
        world.set_position(IRIS, (0, 0))
    with pytest.raises(WorldError, match="off the map"):
        world.set_position(IRIS, (99, 0))
    with pytest.raises(UnknownAgentError, match="did you mean 'Noah Bell'"):
        world.position("Noah Bel")


def test_path_and_walk_to_a_place(world: World) -> None:
    path = world.path(IRIS, "Corner Cafe:counter")
    assert path is not None and world.places.address_at(path[-1]) == "Corner Cafe:counter"
    assert world.walk(IRIS, "Corner Cafe:counter", max_tiles=2)
    assert world.position(IRIS) == path[1]
    assert world.walk(IRIS, "Corner Cafe:counter")
    assert world.place_of(IRIS) == "Corner Cafe:counter"
    assert not world.walk(IRIS, "Corner Cafe:counter")  # already there
    assert world.walk(IRIS, MACHINE)
    assert world.position(IRIS) == world.places.object_tile(MACHINE)
    with pytest.raises(UnknownPlaceError, match="did you mean 'Corner Cafe:counter'"):
        world.path(IRIS, "Corner Cafe:countr")


def test_perception_sees_agents_within_radius_in_the_same_area(world: World) -> None:
    world.set_position(IRIS, (5, 2))  # the flat's doorway
    world.set_position(NOAH, (6, 2))  # one tile away, but on the street
    assert world.perceive(IRIS).agents == ()
    world.set_position(IRIS, (7, 5))
    world.set_position(NOAH, (11, 5))
    world.set_activity(NOAH, "walking to the cafe", "🚶")
    seen = world.perceive(IRIS, radius=4).agents
    assert [(s.name, s.distance, s.activity, s.emoji) for s in seen] == [
        (NOAH, 4, "walking to the cafe", "🚶")
    ]
    assert world.perceive(IRIS, radius=3).agents == ()
    assert world.agents_near(IRIS, radius=4) == [NOAH]
    assert world.agents_near(NOAH, radius=4) == [IRIS]


def test_perception_lists_changed_objects_of_the_area_nearest_first(world: World) -> None:
    world.set_position(IRIS, (2, 7))
    assert world.perceive(IRIS).objects == ()  # every object in its usual state
    world.set_object_state(MACHINE, "brewing")
    world.set_object_state(BOARD, "closed today")
    seen = world.perceive(IRIS)
    assert [(o.address, o.state) for o in seen.objects] == [
        (MACHINE, "brewing"),
        (BOARD, "closed today"),
    ]
    assert [o.address for o in world.perceive(IRIS, limit=1).objects] == [MACHINE]
    world.set_position(IRIS, (7, 5))  # out on the street: the cafe's objects are out of sight
    assert world.perceive(IRIS).objects == ()


def test_perception_items_have_stable_keys_and_distance_free_text(world: World) -> None:
    world.set_position(IRIS, (2, 7))
    world.set_position(NOAH, (4, 7))
    world.set_activity(NOAH, "ordering a coffee")
    world.set_object_state(MACHINE, "brewing")
    items = world.perceive(IRIS).items()
    assert items == [
        (f"object:{MACHINE}", "the coffee machine in the counter is brewing"),
        (f"agent:{NOAH}", "Noah Bell: ordering a coffee"),
    ]
    world.set_position(NOAH, (5, 7))
    assert world.perceive(IRIS).items(limit=1) == items[:1]
    assert world.perceive(IRIS).lines()[1] == "Noah Bell: ordering a coffee"


def test_object_states(world: World) -> None:
    assert world.object_state(MACHINE) == "idle"
    world.set_object_state(MACHINE, "brewing")
    assert world.object_state(MACHINE) == "brewing"
    assert world.default_object_state(MACHINE) == "idle"
    with pytest.raises(WorldError, match="is a room, not an object"):
        world.set_object_state("Corner Cafe:counter", "busy")
    with pytest.raises(UnknownPlaceError):
        world.object_state("Corner Cafe:counter:toaster")
    with pytest.raises(WorldError, match="must not be empty"):
        world.set_object_state(MACHINE, " ")


def test_place_choices_and_descriptions(world: World) -> None:
    assert world.place_choices() == [
        "Bell House:main room",
        "Corner Cafe:counter",
        "Elm Lane:street",
        "Vance Flat:main room",
    ]
    assert world.place_choices("area") == ["Bell House", "Corner Cafe", "Elm Lane", "Vance Flat"]
    assert world.place_choices("object", within="Corner Cafe:counter") == [BOARD, MACHINE]
    assert world.place_choices("room", within="Corner Cafe") == ["Corner Cafe:counter"]
    assert world.describe_place("Corner Cafe:counter") == "the counter of Corner Cafe"


def test_map_export_is_json_and_consistent(world: World) -> None:
    exported = json.loads(json.dumps(world.map_export()))
    assert (exported["width"], exported["height"]) == (16, 10)
    places = exported["places"]
    for y, row in enumerate(exported["rows"]):
        for x, index in enumerate(row):
            room = world.places.address_at((x, y))
            assert (index == -1) == (room is None)
            if room is not None:
                assert places[index]["address"] == room and places[index]["kind"] == "room"
    cafe = next(p for p in places if p["address"] == "Corner Cafe")
    assert cafe == {
        "address": "Corner Cafe",
        "label": "Corner Cafe",
        "kind": "area",
        "bbox": [1, 6, 14, 8],
    }
    assert {"address": MACHINE, "tile": [1, 7], "state": "idle"} in exported["objects"]
    assert exported["agents"][IRIS] == list(world.position(IRIS))


def test_scheduled_events_come_due_in_order(world: World) -> None:
    now = world.clock.now
    later = world.schedule(now + timedelta(minutes=20), "intervention", {"text": "rain"})
    first = world.schedule(now + timedelta(minutes=10), "intervention", {"text": "sun"})
    also_first = world.schedule(now + timedelta(minutes=10), "announcement")
    assert world.pop_due() == []
    world.clock.advance()
    assert world.pop_due() == [first, also_first]
    world.clock.advance(5)
    assert world.pop_due() == [later]
    assert world.pending_events() == []
    with pytest.raises(WorldError, match="JSON"):
        world.schedule(now, "bad", {"when": now})


def busy(world: World) -> World:
    world.set_position(IRIS, (3, 7))
    world.set_activity(IRIS, "wiping the counter", "🧽")
    world.set_object_state(MACHINE, "brewing")
    world.schedule(world.clock.now + timedelta(hours=1), "intervention", {"tags": ["a", "b"]})
    world.clock.advance(2)
    return world


def test_state_round_trip_restores_an_equal_world(world: World, duo: Scenario) -> None:
    busy(world)
    state = world.get_state()
    restored = World.from_state(duo, json.loads(json.dumps(state)))
    assert restored == world
    assert restored.position(IRIS) == (3, 7)
    assert restored.activity(IRIS) == "wiping the counter"
    assert restored.activity_emoji(IRIS) == "🧽"
    assert restored.object_state(MACHINE) == "brewing"
    assert restored.clock.now == world.clock.now
    assert restored.pending_events() == world.pending_events()


def test_a_restored_copy_shares_nothing_mutable(world: World, duo: Scenario) -> None:
    busy(world)
    state = world.get_state()
    copy = World.from_state(duo, state)
    copy.set_position(IRIS, (7, 5))
    copy.set_activity(NOAH, "reading")
    copy.set_object_state(MACHINE, "broken")
    copy.clock.advance(3)
    copy.pending_events()[0].data["tags"].append("c")
    copy.pop_due()
    state["agents"][IRIS]["tile"][0] = 1  # the saved state is not the world's own data either
    state["events"][0]["data"]["tags"].clear()
    assert world.position(IRIS) == (3, 7)
    assert world.activity(NOAH) == ""
    assert world.object_state(MACHINE) == "brewing"
    assert world.clock.step == 2
    assert world.pending_events()[0].data == {"tags": ["a", "b"]}
    assert copy != world


def test_copy_and_set_state(world: World, duo: Scenario) -> None:
    busy(world)
    twin = world.copy()
    assert twin == world
    fresh = World.from_scenario(duo)
    fresh.set_state(world.get_state())
    assert fresh == world


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(scenario="Other"), "of scenario 'Other'"),
        (lambda s: s["agents"].pop(NOAH), "world state has agents"),
        (lambda s: s["agents"][IRIS].update(tile=[0, 0]), "not walkable"),
        (lambda s: s["objects"].update({"Corner Cafe:counter:toaster": "on"}), "unknown object"),
        (lambda s: s.pop("clock"), "invalid world state"),
    ],
)
def test_bad_state_is_a_clear_error(
    world: World, duo: Scenario, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    state = world.get_state()
    change(state)
    with pytest.raises(WorldError, match=message):
        World.from_state(duo, state)
