"""Synthetic towns of any size: districts of homes and public places on a street grid.

For scale benchmarks and engine tests that need thousands of agents. A town is a grid of
districts; each district is two rows of buildings on either side of a street, with a street
column on its left, so every building opens onto one connected street network
(``Grid Town:streets``). A district has ``homes`` homes (``District 2-3 Home 4:home``, a handful of
residents each) and four public places: a cafe, a shop, an office and a park.

Everything (names, ages, traits, housemates) comes from the ``rng``, so the same seed builds the
same scenario.

Examples
--------
>>> import random
>>> town = grid_town(40, random.Random(0))
>>> len(town.agents), town.places.area_of(town.agents[0].home).startswith("District 0-0")
(40, True)
>>> district_places(town.agents[0].home)
['District 0-0 Cafe:dining room', 'District 0-0 Office:desk room', 'District 0-0 Park:lawn', \
'District 0-0 Shop:shop floor']
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from societas.scenarios.scenario import Scenario

STREET = "Grid Town:streets"
DISTRICT_PREFIX = "District"
PUBLIC_PLACES = (
    ("Cafe", "dining room", "coffee machine", "idle"),
    ("Office", "desk room", "printer", "idle"),
    ("Park", "lawn", "bench", "empty"),
    ("Shop", "shop floor", "till", "closed"),
)
BUILDING_WIDTH = 6  # 4 interior columns between two walls
BUILDING_HEIGHT = 5  # 3 interior rows between two walls
ROW_OF_BUILDINGS = 8  # buildings on each side of a district's street
DISTRICT_HEIGHT = 1 + BUILDING_HEIGHT + 1 + BUILDING_HEIGHT
DISTRICT_WIDTH = 1 + ROW_OF_BUILDINGS * BUILDING_WIDTH
MAX_HOMES = 2 * ROW_OF_BUILDINGS - len(PUBLIC_PLACES)

_FIRST: tuple[str, ...] = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")
_FIRST += ("Ivo", "Jun", "Kai", "Lia", "Max", "Nia", "Oto", "Pia", "Quin", "Rui", "Sol")
_FIRST += ("Tia", "Uma", "Vic", "Wren", "Zoe")
_LAST: tuple[str, ...] = ("Abbot", "Brook", "Crane", "Dale", "Ember", "Frost", "Grove")
_LAST += ("Hale", "Irons", "Jett", "Kemp", "Lowe", "Marsh", "Noble", "Oakes", "Pike")
_LAST += ("Quill", "Reed", "Stone", "Thorn")
_TRAITS = ("kind", "curious", "shy", "talkative", "patient", "busy", "cheerful", "careful")
_JOBS = ("cafe worker", "shopkeeper", "office clerk", "gardener", "teacher", "retiree")


def grid_town(
    agents: int,
    rng: random.Random,
    *,
    residents_per_home: int = 6,
    homes: int = MAX_HOMES,
    start_time: datetime = datetime(2026, 3, 2, 6, 0),
    name: str = "Grid Town",
) -> Scenario:
    """A town for ``agents`` agents, ``residents_per_home`` to a home, ``homes`` per district.

    Districts fill a near-square grid; the map stays within the scenario's 1,000-tile limit up to
    about 40,000 agents at the defaults.
    """
    if agents < 1:
        raise ValueError(f"a town needs at least one agent, got {agents}")
    if residents_per_home < 1:
        raise ValueError(f"residents_per_home must be at least 1, got {residents_per_home}")
    if not 1 <= homes <= MAX_HOMES:
        raise ValueError(f"homes per district must be 1 to {MAX_HOMES}, got {homes}")
    home_count = math.ceil(agents / residents_per_home)
    district_count = math.ceil(home_count / homes)
    columns = max(1, round(math.sqrt(district_count * DISTRICT_HEIGHT / DISTRICT_WIDTH)))
    rows = math.ceil(district_count / columns)
    layout = _Layout(columns, rows)
    home_rooms: list[str] = []
    for index in range(district_count):
        district = f"{DISTRICT_PREFIX} {index % columns}-{index // columns}"
        buildings = [f"{district} Home {n + 1}:home" for n in range(homes)]
        buildings += [f"{district} {area}:{room}" for area, room, _, _ in PUBLIC_PLACES]
        for slot, room in enumerate(buildings):
            layout.building(index % columns, index // columns, slot, room)
        home_rooms += buildings[: min(homes, home_count - len(home_rooms))]
    data: dict[str, Any] = {
        "name": name,
        "description": f"A synthetic town of {agents} agents in {district_count} districts.",
        "start_time": start_time.isoformat(timespec="minutes"),
        "minutes_per_step": 10,
        "map": {"legend": layout.legend, "rows": layout.rows()},
        "objects": layout.objects,
        "agents": _residents(agents, home_rooms, residents_per_home, rng),
        "news": [
            {
                "id": "festival",
                "description": "A street festival is held in every district park on Saturday.",
                "keywords": [["festival"], ["Saturday", "park"]],
                "initial_knowers": [],
            }
        ],
    }
    knowers = rng.sample(range(agents), k=max(1, agents // 50))
    data["news"][0]["initial_knowers"] = [data["agents"][i]["name"] for i in sorted(knowers)]
    return Scenario.from_dict(data, source=f"{name} ({agents} agents)")


def district_places(address: str) -> list[str]:
    """The public rooms of the district an address lies in (sorted), e.g. for plan hints."""
    area = address.split(":", 1)[0]
    if not area.startswith(DISTRICT_PREFIX + " "):
        raise ValueError(f"{address!r} is not in a district of a grid town")
    district = " ".join(area.split(" ")[:2])
    return sorted(f"{district} {area}:{room}" for area, room, _, _ in PUBLIC_PLACES)


class _Layout:
    """The tile map being drawn: one legend character per room, walls and streets."""

    def __init__(self, columns: int, rows: int) -> None:
        self.width = columns * DISTRICT_WIDTH + 1  # a closing street column on the right
        self.height = rows * DISTRICT_HEIGHT + 1  # and a closing street row at the bottom
        self.grid = [["#"] * self.width for _ in range(self.height)]
        self.legend: dict[str, str] = {"#": "wall", ".": STREET}
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._chars = (chr(code) for code in range(0x100, 0x10FFFF) if chr(code).isprintable())
        for y in range(self.height):
            for x in range(self.width):
                if y % DISTRICT_HEIGHT == 0 or x % DISTRICT_WIDTH == 0:
                    self.grid[y][x] = "."
                elif y % DISTRICT_HEIGHT == 1 + BUILDING_HEIGHT:
                    self.grid[y][x] = "."  # the street between the two rows of buildings

    def building(self, column: int, row: int, slot: int, room: str) -> None:
        char = next(self._chars)
        self.legend[char] = room
        left = column * DISTRICT_WIDTH + 1 + (slot % ROW_OF_BUILDINGS) * BUILDING_WIDTH
        upper = slot < ROW_OF_BUILDINGS
        top = row * DISTRICT_HEIGHT + (1 if upper else 2 + BUILDING_HEIGHT)
        for y in range(top + 1, top + BUILDING_HEIGHT - 1):
            for x in range(left + 1, left + BUILDING_WIDTH - 1):
                self.grid[y][x] = char
        door_y = top + BUILDING_HEIGHT - 1 if upper else top
        self.grid[door_y][left + 2] = char
        thing, state = _furniture(room)
        self.objects[room] = {thing: {"tile": [left + 1, top + 2], "state": state}}

    def rows(self) -> list[str]:
        return ["".join(row) for row in self.grid]


def _furniture(room: str) -> tuple[str, str]:
    for area, name, thing, state in PUBLIC_PLACES:
        if room.endswith(f" {area}:{name}"):
            return thing, state
    return "bed", "made"


def _residents(
    agents: int, homes: list[str], per_home: int, rng: random.Random
) -> list[dict[str, Any]]:
    names: list[str] = []
    taken: set[str] = set()
    for index in range(agents):
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        if name in taken:
            name = f"{name} {index + 1}"  # base names have no digits, so this is unique
        taken.add(name)
        names.append(name)
    residents = []
    for index, name in enumerate(names):
        home = homes[index // per_home]
        first = (index // per_home) * per_home
        housemates = [n for n in names[first : first + per_home] if n != name][:3]
        job = rng.choice(_JOBS)
        residents.append(
            {
                "name": name,
                "age": rng.randint(18, 85),
                "traits": rng.sample(_TRAITS, k=2),
                "occupation": job,
                "lifestyle": f"Wakes at {rng.randint(6, 8)}; works in the district ({job}).",
                "home": home,
                "relationships": {other: "my housemate" for other in housemates},
                "memories": [f"I live with {len(housemates)} housemates and work as a {job}."],
            }
        )
    return residents
