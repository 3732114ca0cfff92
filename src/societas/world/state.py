"""The world's changing state: time, where each agent stands and what it is doing, object states,
and a queue of scheduled world events.

The static parts (places, tile map) come from the scenario, read through
:class:`~societas.world.layout.WorldLayout`, and are shared by every copy of a world; everything
that changes is saved by :meth:`World.get_state` and restored, independent of the original, by
:meth:`World.from_state`.

Examples
--------
>>> from societas.scenarios.scenario import load_scenario
>>> world = World.from_scenario(load_scenario("duo"))
>>> world.place_of("Iris Vance")
'Vance Flat:main room'
>>> world.path("Iris Vance", "Corner Cafe:counter")[-1] in world.places.tiles("Corner Cafe:counter")
True
"""

from __future__ import annotations

import bisect
import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from societas.world.clock import GameClock
from societas.world.errors import UnknownAgentError, WorldError, did_you_mean
from societas.world.layout import WorldLayout
from societas.world.phrasing import doing, object_state_phrase
from societas.world.places import PlaceTree, Tile
from societas.world.spatial import SpatialIndex
from societas.world.tilemap import TileMap

PlaceLevel = Literal["area", "room", "object"]


@dataclass(frozen=True)
class SeenAgent:
    """Another agent in view: who, where, how far (tiles, Chebyshev) and what it is doing."""

    name: str
    tile: Tile
    place: str
    distance: int
    activity: str
    emoji: str


@dataclass(frozen=True)
class SeenObject:
    """An object in the same area whose state differs from its usual one."""

    address: str
    tile: Tile
    state: str
    distance: int


@dataclass(frozen=True)
class Perception:
    """What an agent notices at one moment, nearest things first."""

    agent: str
    time: datetime
    tile: Tile
    place: str
    agents: tuple[SeenAgent, ...]
    objects: tuple[SeenObject, ...]

    def items(self, limit: int | None = None) -> list[tuple[str, str]]:
        """``(key, sentence)`` per thing noticed, nearest first, at most ``limit``.

        The key names the thing (``"agent:Noah Bell"``, ``"object:Cafe:kitchen:oven"``) and stays
        the same while the sentence changes only when what is seen changes (no distances), so a
        caller can tell new observations from repeated ones.
        """
        ranked: list[tuple[int, int, str, str]] = []
        for seen in self.agents:
            text = doing(seen.name, seen.activity) if seen.activity else f"{seen.name} is nearby"
            ranked.append((seen.distance, 0, f"agent:{seen.name}", text))
        for thing in self.objects:
            _, room, name = thing.address.split(":")
            text = f"the {name} in the {room} is {object_state_phrase(thing.state)}"
            ranked.append((thing.distance, 1, f"object:{thing.address}", text))
        ranked.sort()
        return [(key, text) for _, _, key, text in ranked[:limit]]

    def lines(self, limit: int | None = None) -> list[str]:
        """The sentences of :meth:`items`, e.g. ``"Noah Bell: reading a book"``."""
        return [text for _, text in self.items(limit)]


@dataclass(frozen=True)
class WorldEvent:
    """Something scheduled to happen in the world at ``time`` (e.g. an intervention)."""

    time: datetime
    kind: str
    data: dict[str, Any] = field(compare=True)
    seq: int = 0


class _AgentState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tile: tuple[int, int]
    activity: str = ""
    emoji: str = ""


class _EventState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: datetime
    kind: str
    data: dict[str, Any]
    seq: int = Field(ge=0)


class _WorldState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    clock: dict[str, Any]
    agents: dict[str, _AgentState]
    objects: dict[str, str]
    events: list[_EventState]
    next_seq: int = Field(ge=0)


class World:
    """A running world. Create with :meth:`from_scenario`; copy with :meth:`copy`."""

    def __init__(self, scenario: WorldLayout, clock: GameClock, positions: dict[str, Tile]) -> None:
        self.scenario = scenario
        self.places: PlaceTree = scenario.places
        self.tilemap: TileMap = scenario.tilemap
        self.clock = clock
        self._agents = scenario.agent_names()
        self._positions = dict(positions)
        # Who stands near whom: perception asks it for every agent every step.
        self._nearby = SpatialIndex()
        for name, tile in self._positions.items():
            self._nearby.place(name, tile)
        # Room and area of every tile as plain lists, for the many lookups of perception.
        self._room_names = self.places.room_list
        self._room_rows: list[list[int]] = self.places.room_ids.tolist()
        self._area_of_room = [room.split(":", 1)[0] for room in self._room_names]
        self._activities: dict[str, tuple[str, str]] = {name: ("", "") for name in self._agents}
        self._defaults = {
            f"{room}:{name}": spec.state
            for room, objects in scenario.objects.items()
            for name, spec in objects.items()
        }
        self._object_states = dict(self._defaults)
        # Objects not in their usual state, by area: the only ones perception reports.
        self._unusual: dict[str, set[str]] = {}
        self._events: list[WorldEvent] = []
        self._next_seq = 0

    @classmethod
    def from_scenario(cls, scenario: WorldLayout) -> World:
        """A world at the scenario's start: agents at their spawn tiles, objects in their usual
        state, the clock at ``start_time``."""
        clock = GameClock(scenario.start_time, scenario.minutes_per_step)
        return cls(scenario, clock, scenario.spawn_tiles())

    # -- agents -------------------------------------------------------------------------------

    @property
    def agents(self) -> list[str]:
        """Agent names in scenario order."""
        return list(self._agents)

    def _known(self, agent: str) -> str:
        if agent not in self._positions:
            raise UnknownAgentError(f"unknown agent {agent!r}{did_you_mean(agent, self._agents)}")
        return agent

    def position(self, agent: str) -> Tile:
        return self._positions[self._known(agent)]

    def place_of(self, agent: str) -> str:
        """The room the agent stands in, e.g. ``"Corner Cafe:counter"``."""
        room = self.places.address_at(self.position(agent))
        assert room is not None  # positions are always walkable tiles of a room
        return room

    def area_of(self, agent: str) -> str:
        return self.place_of(agent).split(":", 1)[0]

    def home_of(self, agent: str) -> str:
        return self.scenario.agent(self._known(agent)).home

    def set_position(self, agent: str, tile: Tile) -> None:
        """Put the agent on ``tile``: any open tile (walking step by step is the caller's job)."""
        self._known(agent)
        tile = (int(tile[0]), int(tile[1]))
        if not self.tilemap.is_walkable(tile):
            where = "off the map" if not self.tilemap.in_bounds(tile) else "not walkable"
            raise WorldError(f"cannot put {agent!r} on tile {list(tile)}: it is {where}")
        self._positions[agent] = tile
        self._nearby.place(agent, tile)

    def walk(self, agent: str, address: str, max_tiles: int | None = None) -> bool:
        """Move the agent along its shortest path to a place, at most ``max_tiles`` tiles (all the
        way when None); True when it moved."""
        if max_tiles is not None and max_tiles < 0:
            raise WorldError(f"max_tiles must not be negative, got {max_tiles}")
        if max_tiles == 0:
            return False
        route = self.path(agent, address, max_steps=max_tiles)
        if not route:
            return False
        tile = route[-1]
        self._positions[agent] = tile
        self._nearby.place(agent, tile)
        return True

    def path(self, agent: str, address: str, max_steps: int | None = None) -> list[Tile] | None:
        """Shortest path from the agent to the nearest tile of a place (start excluded, end
        included; ``[]`` when already there, ``None`` when unreachable), only its first
        ``max_steps`` tiles when given."""
        return self.tilemap.path_to_place(self.position(agent), address, max_steps)

    def set_activity(self, agent: str, text: str, emoji: str = "") -> None:
        """Record what the agent is doing, as others will perceive it ("making coffee")."""
        self._activities[self._known(agent)] = (text, emoji)

    def activity(self, agent: str) -> str:
        """What the agent is doing, as set by :meth:`set_activity` ("" before anything is set)."""
        return self._activities[self._known(agent)][0]

    def activity_emoji(self, agent: str) -> str:
        return self._activities[self._known(agent)][1]

    def agents_at(self, address: str) -> list[str]:
        """Agents standing in an area or room, or on an object's tile, in scenario order."""
        place = self.places.get(address)
        if place.kind == "object":
            tile = self.places.object_tile(address)
            return [name for name in self._agents if self._positions[name] == tile]
        prefix = address + ":"
        return [
            name
            for name in self._agents
            if (room := self.place_of(name)) == address or room.startswith(prefix)
        ]

    def agents_near(self, agent: str, radius: int = 4) -> list[str]:
        """Other agents within ``radius`` tiles (Chebyshev) in the same area, nearest first."""
        return [name for _, name, _, _, _ in sorted(self._in_view(agent, radius))]

    def _agents_in_view(self, agent: str, radius: int, limit: int | None = None) -> list[SeenAgent]:
        """Others in view, nearest first (ties by name); only the ``limit`` nearest when given."""
        in_view = self._in_view(agent, radius)
        if limit is not None and limit < len(in_view):
            in_view = heapq.nsmallest(limit, in_view)
        else:
            in_view.sort()
        rooms, activities = self._room_names, self._activities
        return [
            SeenAgent(name, (x, y), rooms[room], distance, *activities[name])
            for distance, name, x, y, room in in_view
        ]

    def _in_view(self, agent: str, radius: int) -> list[tuple[int, str, int, int, int]]:
        """``(distance, name, x, y, room index)`` of the others within ``radius`` in its area."""
        x, y = self.position(agent)
        area = self.area_of(agent)
        room_rows, area_of_room = self._room_rows, self._area_of_room
        in_view = []
        for other, (other_x, other_y) in self._nearby.within_tiles((x, y), radius):
            room = room_rows[other_y][other_x]
            if other != agent and area_of_room[room] == area:
                distance = max(abs(other_x - x), abs(other_y - y))
                in_view.append((distance, other, other_x, other_y, room))
        return in_view

    def perceive(self, agent: str, radius: int = 4, limit: int = 8) -> Perception:
        """What ``agent`` notices: other agents within ``radius`` tiles (Chebyshev distance) in the
        same area, and objects in that area whose state is not their usual one (at any
        distance); nearest first, at most ``limit`` of each."""
        x, y = self.position(agent)
        place = self.place_of(agent)
        area = place.split(":", 1)[0]
        seen_agents = self._agents_in_view(agent, radius, limit)
        seen_objects = []
        for address in self._unusual.get(area, ()):
            state = self._object_states[address]
            if state == self._defaults[address]:
                continue
            object_x, object_y = self.places.object_tile(address)
            distance = max(abs(object_x - x), abs(object_y - y))
            seen_objects.append(SeenObject(address, (object_x, object_y), state, distance))
        seen_objects.sort(key=lambda seen: (seen.distance, seen.address))
        return Perception(
            agent,
            self.clock.now,
            (x, y),
            place,
            tuple(seen_agents[:limit]),
            tuple(seen_objects[:limit]),
        )

    # -- objects and places -------------------------------------------------------------------

    def object_state(self, address: str) -> str:
        self.places.object_tile(address)  # clear error for anything but a known object
        return self._object_states[address]

    def set_object_state(self, address: str, state: str) -> None:
        self.places.object_tile(address)
        if not state.strip():
            raise WorldError(f"object state of {address!r} must not be empty")
        self._object_states[address] = state
        unusual = self._unusual.setdefault(address.split(":", 1)[0], set())
        if state == self._defaults[address]:
            unusual.discard(address)
        else:
            unusual.add(address)

    def default_object_state(self, address: str) -> str:
        self.places.object_tile(address)
        return self._defaults[address]

    def place_choices(self, level: PlaceLevel = "room", within: str | None = None) -> list[str]:
        """Sorted addresses of one level, e.g. for an enum in an answer schema.

        ``within`` narrows them to one area (or, for objects, one room).
        """
        if level == "area":
            return self.places.areas()
        if level == "room":
            if within is not None:
                return self.places.rooms(self.places.area_of(within))
            return self.places.rooms()
        if level == "object":
            return self.places.objects(within)
        raise WorldError(f"unknown place level {level!r}; use 'area', 'room' or 'object'")

    def describe_place(self, address: str) -> str:
        """A short phrase for prompts: ``"the kitchen of Hobbs Cafe"``."""
        return self.places.describe(address)

    def map_export(self) -> dict[str, Any]:
        """JSON-ready map for a browser viewer.

        ``rows[y][x]`` is the index in ``places`` of the tile's room, -1 for walls and void;
        ``places`` lists each area followed by its rooms, with an inclusive ``bbox``
        ``[x_min, y_min, x_max, y_max]``; ``objects`` and ``agents`` give current states and tiles.
        """
        entries: list[dict[str, Any]] = []
        index_of: dict[str, int] = {}
        for area in self.places.areas():
            for address in (area, *self.places.rooms(area)):
                place = self.places.get(address)
                index_of[address] = len(entries)
                entries.append(
                    {
                        "address": address,
                        "label": place.name,
                        "kind": place.kind,
                        "bbox": list(self.places.bbox(address)),
                    }
                )
        lookup = np.array([index_of[room] for room in self.places.room_list] + [-1], np.int32)
        rows = lookup[self.places.room_ids]  # room id -1 picks the trailing -1
        return {
            "width": self.places.width,
            "height": self.places.height,
            "rows": rows.tolist(),
            "places": entries,
            "objects": [
                {
                    "address": address,
                    "tile": list(self.places.object_tile(address)),
                    "state": self._object_states[address],
                }
                for address in self.places.objects()
            ],
            "agents": {name: list(self._positions[name]) for name in self._agents},
        }

    # -- scheduled world events ---------------------------------------------------------------

    def schedule(self, time: datetime, kind: str, data: dict[str, Any] | None = None) -> WorldEvent:
        """Queue a world event for ``time``; ``data`` must be JSON-serialisable (it is copied)."""
        try:
            copied: dict[str, Any] = json.loads(json.dumps(data or {}))
        except (TypeError, ValueError) as error:
            raise WorldError(
                f"data of world event {kind!r} is not JSON-serialisable: {error}"
            ) from None
        event = WorldEvent(time, kind, copied, self._next_seq)
        self._next_seq += 1
        bisect.insort(self._events, event, key=lambda queued: (queued.time, queued.seq))
        return event

    def pop_due(self) -> list[WorldEvent]:
        """Remove and return the events due by now, in time order (then scheduling order)."""
        now = self.clock.now
        due = 0
        while due < len(self._events) and self._events[due].time <= now:
            due += 1
        popped, self._events = self._events[:due], self._events[due:]
        return popped

    def pending_events(self) -> list[WorldEvent]:
        return list(self._events)

    # -- state --------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """Everything that changes, as JSON-ready data."""
        return {
            "scenario": self.scenario.name,
            "clock": self.clock.get_state(),
            "agents": {
                name: {
                    "tile": list(self._positions[name]),
                    "activity": self._activities[name][0],
                    "emoji": self._activities[name][1],
                }
                for name in self._agents
            },
            "objects": dict(self._object_states),
            "events": [
                {
                    "time": event.time.isoformat(),
                    "kind": event.kind,
                    "data": json.loads(json.dumps(event.data)),
                    "seq": event.seq,
                }
                for event in self._events
            ],
            "next_seq": self._next_seq,
        }

    @classmethod
    def from_state(cls, scenario: WorldLayout, state: dict[str, Any]) -> World:
        """A world of ``scenario`` in the saved ``state``; shares nothing mutable with ``state``."""
        try:
            saved = _WorldState.model_validate(state)
        except ValidationError as error:
            raise WorldError(f"invalid world state: {error}") from None
        if saved.scenario != scenario.name:
            raise WorldError(
                f"world state is of scenario {saved.scenario!r}, not {scenario.name!r}"
            )
        world = cls(scenario, GameClock.from_state(saved.clock), scenario.spawn_tiles())
        world._restore_agents(saved.agents)
        world._restore_objects(saved.objects)
        world._events = sorted(
            (
                WorldEvent(e.time, e.kind, json.loads(json.dumps(e.data)), e.seq)
                for e in saved.events
            ),
            key=lambda event: (event.time, event.seq),
        )
        world._next_seq = saved.next_seq
        return world

    def set_state(self, state: dict[str, Any]) -> None:
        """Replace this world's changing state with ``state`` (same scenario)."""
        restored = World.from_state(self.scenario, state)
        self.__dict__.update(restored.__dict__)

    def _restore_agents(self, agents: dict[str, _AgentState]) -> None:
        if set(agents) != set(self._agents):
            raise WorldError(
                f"world state has agents {sorted(agents)}, the scenario {sorted(self._agents)}"
            )
        for name, saved in agents.items():
            self.set_position(name, saved.tile)
            self._activities[name] = (saved.activity, saved.emoji)

    def _restore_objects(self, objects: dict[str, str]) -> None:
        for address, state in objects.items():
            if address not in self._defaults:
                raise WorldError(f"world state names unknown object {address!r}")
            self.set_object_state(address, state)

    def copy(self) -> World:
        """An independent copy (a fork): changing one never changes the other."""
        return World.from_state(self.scenario, self.get_state())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, World):
            return NotImplemented
        return self.scenario == other.scenario and self.get_state() == other.get_state()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        now = self.clock.now.isoformat()
        return f"World({self.scenario.name!r}, {now}, {len(self._agents)} agents)"
