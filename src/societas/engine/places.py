"""Where an agent may plan to be: its legitimate places.

An agent plans only for its own home's rooms, its workplace and usual meal places (from its
routine), the town's public places (areas where nobody lives), places named in its appointments,
and another household's shared rooms (never a bedroom) only when a memory brings them up: the
household's name ("dinner at Finch Cottage"), or one of its people together with a visit or an
invitation ("Harold invited me over"). A planning call's place enum is this set, so a small model
cannot send a shopkeeper to work in a neighbour's bedroom.

A world of more than ``cap`` rooms offers the public rooms of the areas nearest the agent's home
(a prompt listing every room of a city would grow with the city).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from societas.agents.agent import Agent
from societas.engine.place_mentions import HouseholdMentions
from societas.world.state import World

_PRIVATE_ROOM = re.compile(r"bedroom|'s room|bathroom", re.IGNORECASE)


class PlaceChoices:
    """The rooms of a world, in the order prompts list them, and who lives where."""

    def __init__(self, world: World, town: str, homes: dict[str, str], cap: int) -> None:
        """``town`` is the scenario's name (its own open ground, the streets, is listed last:
        small models favour the first place listed, and a street is a way, not a destination);
        ``homes`` maps each agent to its home room."""
        self.world = world
        self.cap = cap
        self.rooms = sorted(
            world.place_choices("room"), key=lambda place: place.split(":", 1)[0] == town
        )
        self.order = {place: index for index, place in enumerate(self.rooms)}
        self.rooms_of_area: dict[str, list[str]] = {}
        for place in self.rooms:
            self.rooms_of_area.setdefault(world.places.area_of(place), []).append(place)
        self.residents: dict[str, list[str]] = {}
        for name, home in sorted(homes.items()):
            self.residents.setdefault(world.places.area_of(home), []).append(name)
        self.public = [p for p in self.rooms if world.places.area_of(p) not in self.residents]
        self._mentions = HouseholdMentions(self.residents)
        self._shared_rooms = {  # what a visitor may plan for: never a bedroom
            area: [r for r in self.rooms_of_area.get(area, []) if not _PRIVATE_ROOM.search(r)]
            for area in self.residents
        }
        self._nearby: dict[str, list[str]] = {}  # public rooms near each home
        self._area_boxes: npt.NDArray[np.float64] | None = None

    def in_order(self, places: Iterable[str]) -> list[str]:
        """The known rooms among ``places``, in the order prompts list rooms."""
        order = self.order
        return sorted({p for p in places if p in order}, key=order.__getitem__)

    def legitimate(self, agent: Agent, memories: Sequence[str] = ()) -> list[str]:
        """The rooms ``agent`` may plan for, given the ``memories`` its planning call sees."""
        home_area = self.world.places.area_of(agent.home)
        wanted = {agent.home, *self.rooms_of_area.get(home_area, [])}
        if agent.routine is not None:
            wanted.update(self._room_of(place) for place in agent.routine.places())
        wanted.update(c.place for c in agent.commitments if c.place)
        wanted.update(self._public_near(agent.home))
        wanted.update(self._households_brought_up(home_area, memories))
        return self.in_order(wanted)

    def planner(self, agent: Agent) -> Callable[[Sequence[str]], list[str]]:
        """The rooms ``agent`` may plan for, given the memories its planning call sees."""
        return lambda memories: self.legitimate(agent, memories)

    def for_talk(self, agents: Sequence[Agent]) -> list[str]:
        """Where a conversation may set a meeting: the places its participants may plan for."""
        return self.in_order(p for a in agents for p in self.legitimate(a))

    def objects_by_room(self) -> dict[str, list[str]]:
        """The (sorted) objects of each room, from one pass over all objects, not one per room."""
        objects_of: dict[str, list[str]] = {room: [] for room in self.rooms}
        for address in self.world.places.objects():
            room = address.rsplit(":", 1)[0]
            if room in objects_of:
                objects_of[room].append(address)
        return objects_of

    def _room_of(self, address: str) -> str:
        """A room for an address: itself, or an area's first room."""
        rooms = self.rooms_of_area.get(address)
        return rooms[0] if rooms else address

    def _households_brought_up(self, own_area: str, memories: Sequence[str]) -> set[str]:
        """Shared rooms of homes a memory names, or whose people invited the agent over or
        whom it means to visit ("Harold invited me over", "visit Mei"); inviting someone
        elsewhere is no reason to go to their home."""
        found: set[str] = set()
        for area in self._mentions.brought_up(memories):
            if area != own_area:
                found.update(self._shared_rooms[area])
        return found

    def _public_near(self, home: str) -> list[str]:
        if len(self.rooms) <= self.cap:
            return self.public
        public = self._nearby.get(home)
        if public is None:
            nearby = self.rooms_near(home, self.cap)
            public = self._nearby[home] = [p for p in self.public if p in nearby]
        return public

    def rooms_near(self, home: str, cap: int) -> set[str]:
        """Up to ``cap`` rooms: the home's area first, then whole areas by distance from home."""
        places = self.world.places
        if self._area_boxes is None:
            self._area_boxes = np.array(
                [places.bbox(area) for area in self.rooms_of_area], dtype=np.float64
            )
        boxes = self._area_boxes
        x0, y0, x1, y1 = places.bbox(home)
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        # Chebyshev distance from the home's centre to each area's bounding box.
        dx = np.maximum.reduce([boxes[:, 0] - x, np.zeros(len(boxes)), x - boxes[:, 2]])
        dy = np.maximum.reduce([boxes[:, 1] - y, np.zeros(len(boxes)), y - boxes[:, 3]])
        distance = np.maximum(dx, dy)
        areas = list(self.rooms_of_area)
        if (home_area := places.area_of(home)) in self.rooms_of_area:
            distance[areas.index(home_area)] = -1.0
        chosen: set[str] = set()
        for index in np.argsort(distance, kind="stable"):  # ties: in the order of the rooms
            rooms = self.rooms_of_area[areas[index]]
            if chosen and len(chosen) + len(rooms) > cap:
                break
            chosen.update(rooms)
        return chosen

    def detour(self, agent: Agent) -> list[str]:
        """Where a reaction may send ``agent`` at once: its places today, home, where it is."""
        mine = [block.place for block in agent.plan.blocks] if agent.plan else []
        known = self.order
        return [p for p in dict.fromkeys([agent.current_place, *mine, agent.home]) if p in known]
