"""The checks of a scenario file that its field types cannot express, and pydantic's errors as
issues: every problem is collected with its field path, then all are raised at once as a
:class:`~societas.world.errors.ScenarioError`.

:class:`ScenarioChecker` runs when a :class:`~societas.scenarios.scenario.Scenario` is validated:
the map's legend and rows, rooms cut off from the rest, objects and spawn points, then the
residents, news and gatherings and every place or person they name.
"""

from __future__ import annotations

import types
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ValidationError

from societas.world.errors import FieldPath, Issue, ScenarioError, did_you_mean
from societas.world.news_facts import ambiguous_name, fact_problems
from societas.world.places import PlaceTree, Tile, split_address
from societas.world.routine import Routine
from societas.world.tilemap import TileMap

if TYPE_CHECKING:
    from societas.scenarios.scenario import NewsSpec, Scenario

WALL = "wall"
VOID = "void"
MAX_MAP_SIDE = 1000


# -- cross-reference checks --------------------------------------------------------------------


class ScenarioChecker:
    """Collects every problem the field types cannot express; raises them all at once."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.issues: list[Issue] = []

    def add(self, path: FieldPath, message: str) -> None:
        self.issues.append(Issue(path, message))

    def fail_if_any(self) -> None:
        if self.issues:
            raise ScenarioError(self.issues)

    def run(self) -> tuple[PlaceTree, TileMap]:
        room_of_char = self.check_legend()
        self.check_rows(room_of_char)
        self.fail_if_any()  # the grid must be sound before anything refers to it
        rows = self.scenario.map.rows
        room_grid = [[room_of_char[char] for char in row] for row in rows]
        bare_tree = PlaceTree(room_grid, {})
        tilemap = TileMap([[room is not None for room in row] for row in room_grid])
        self.check_rooms(room_of_char, bare_tree, tilemap)
        objects = self.check_objects(bare_tree)
        places = PlaceTree(room_grid, objects)
        self.check_spawns(tilemap)
        self.check_agents(places)
        self.check_news(places)
        self.check_gatherings(places)
        self.fail_if_any()
        return places, TileMap(tilemap.walkable, places)

    # map ------------------------------------------------------------------------------------

    def check_legend(self) -> dict[str, str | None]:
        room_of_char: dict[str, str | None] = {}
        for char, meaning in self.scenario.map.legend.items():
            path = ("map", "legend", char)
            if len(char) != 1:
                self.add(path, f"legend keys are single characters, got {char!r}")
            elif meaning in (WALL, VOID):
                room_of_char[char] = None
            elif _room_address_problem(meaning):
                self.add(
                    path,
                    f"{meaning!r} is not 'wall', 'void' or a room address "
                    f"'Area:room' ({_room_address_problem(meaning)})",
                )
            else:
                room_of_char[char] = meaning
        return room_of_char

    def check_rows(self, room_of_char: dict[str, str | None]) -> None:
        rows = self.scenario.map.rows
        width = len(rows[0])
        if not 0 < width <= MAX_MAP_SIDE:
            self.add(("map", "rows", 0), f"rows must have 1 to {MAX_MAP_SIDE} characters")
        legend = self.scenario.map.legend
        for y, row in enumerate(rows):
            if len(row) != width:
                self.add(
                    ("map", "rows", y),
                    f"row {y} has {len(row)} characters; expected {width} like row 0",
                )
            unknown = sorted(set(row) - set(legend))
            if unknown:
                column = min(row.index(char) for char in unknown)
                shown = ", ".join(repr(char) for char in unknown)
                self.add(
                    ("map", "rows", y),
                    f"character {shown} (first at column {column}) is not in map.legend",
                )
        if not self.issues and not any(room_of_char.get(c) for row in rows for c in row):
            self.add(("map", "rows"), "the map has no walkable tile")

    def check_rooms(
        self, room_of_char: dict[str, str | None], tree: PlaceTree, tilemap: TileMap
    ) -> None:
        for char, room in room_of_char.items():
            if room is not None and room not in tree:
                self.add(("map", "legend", char), f"room {room!r} has no tiles on the map")
        labels = tilemap.component_labels()
        sizes = np.bincount(labels[labels >= 0])
        main = int(np.argmax(sizes))
        reference = _largest_room_in(tree, labels, main)
        cut_off = (labels >= 0) & (labels != main)
        reported: set[str] = set()
        for y, x in zip(*np.nonzero(cut_off), strict=True):
            room = tree.address_at((int(x), int(y)))
            if room is not None and room not in reported:
                reported.add(room)
                self.add(
                    ("map", "rows", int(y)),
                    f"tile [{x}, {y}] of {room!r} cannot be reached from {reference!r}",
                )

    # objects and spawns ---------------------------------------------------------------------

    def check_objects(self, tree: PlaceTree) -> dict[str, Tile]:
        valid: dict[str, Tile] = {}
        for room, objects in self.scenario.objects.items():
            if room not in tree or tree.get(room).kind != "room":
                self.add(("objects", room), f"unknown room {room!r}{tree.suggest(room, 'room')}")
                continue
            for name, spec in objects.items():
                path: FieldPath = ("objects", room, name)
                if not name or name != name.strip() or ":" in name:
                    self.add(
                        path,
                        f"object name {name!r} must be non-empty, without ':' "
                        "or surrounding spaces",
                    )
                elif self.check_tile((*path, "tile"), spec.tile, tree.width, tree.height):
                    found = tree.address_at(spec.tile)
                    if found != room:
                        where = f"on {found!r}" if found else "on a wall"
                        self.add(
                            (*path, "tile"),
                            f"tile {list(spec.tile)} is {where}, not in room {room!r}",
                        )
                    else:
                        valid[f"{room}:{name}"] = spec.tile
        return valid

    def check_tile(self, path: FieldPath, tile: Tile, width: int, height: int) -> bool:
        x, y = tile
        if 0 <= x < width and 0 <= y < height:
            return True
        self.add(path, f"tile {list(tile)} is off the {width}x{height} map")
        return False

    def check_spawns(self, tilemap: TileMap) -> None:
        for name, tile in self.scenario.spawns.items():
            path: FieldPath = ("spawns", name)
            if not name or ":" in name:
                self.add(path, f"spawn name {name!r} must be non-empty and without ':'")
            elif self.check_tile(path, tile, tilemap.width, tilemap.height) and (
                not tilemap.is_walkable(tile)
            ):
                self.add(path, f"tile {list(tile)} is not walkable")

    # agents, news, gatherings ---------------------------------------------------------------

    def check_agents(self, places: PlaceTree) -> None:
        names = self.scenario.agent_names()
        counts = Counter(names)
        spawn_names = list(self.scenario.spawns)
        for index, agent in enumerate(self.scenario.agents):
            path: FieldPath = ("agents", index)
            if counts[agent.name] > 1:
                self.add((*path, "name"), f"duplicate agent name {agent.name!r}")
            self.check_room((*path, "home"), agent.home, places)
            if agent.spawn is not None and agent.spawn not in spawn_names:
                self.check_room((*path, "spawn"), agent.spawn, places, spawn_names)
            if agent.routine is not None:
                self.check_routine((*path, "routine"), agent.routine, places)
            for other in agent.relationships:
                if other == agent.name:
                    self.add((*path, "relationships", other), "an agent cannot relate to itself")
                elif other not in counts:
                    self.add(
                        (*path, "relationships", other),
                        f"unknown agent {other!r}{did_you_mean(other, names)}",
                    )

    def check_routine(self, path: FieldPath, routine: Routine, places: PlaceTree) -> None:
        """Every place a routine names must be a known area or room."""
        named: list[tuple[FieldPath, str]] = []
        if routine.work is not None:
            named.append(((*path, "work", "place"), routine.work.place))
        named += [
            ((*path, "meals", i, "place"), meal.place) for i, meal in enumerate(routine.meals)
        ]
        for field_path, address in named:
            if address in places and places.get(address).kind in ("area", "room"):
                continue
            choices = [*places.rooms(), *places.areas()]
            self.add(
                field_path,
                f"unknown place {address!r}{did_you_mean(address, choices)} "
                "(an area 'Area' or a room 'Area:room')",
            )

    def check_room(
        self, path: FieldPath, address: str, places: PlaceTree, extra: Iterable[str] = ()
    ) -> None:
        if address in places and places.get(address).kind == "room":
            return
        if address in places:
            kind = places.get(address).kind
            self.add(path, f"{address!r} is an {kind}; a room address 'Area:room' is needed")
            return
        choices = [*places.rooms(), *extra]
        self.add(path, f"unknown place {address!r}{did_you_mean(address, choices)}")

    def check_news(self, places: PlaceTree) -> None:
        names = self.scenario.agent_names()
        ids = Counter(news.id for news in self.scenario.news)
        for index, news in enumerate(self.scenario.news):
            if ids[news.id] > 1:
                self.add(("news", index, "id"), f"duplicate news id {news.id!r}")
            for position, knower in enumerate(news.initial_knowers):
                if knower not in names:
                    self.add(
                        ("news", index, "initial_knowers", position),
                        f"unknown agent {knower!r}{did_you_mean(knower, names)}",
                    )
            self.check_news_words(index, news, names, places.areas())

    def check_news_words(
        self, index: int, news: NewsSpec, names: list[str], places: list[str]
    ) -> None:
        """Keywords and facts must not credit a mention of someone else (a shared surname), and
        facts need a question whose own words cannot count as stating them."""
        for group_index, group in enumerate(news.keywords):
            for word_index, word in enumerate(group):
                holders = ambiguous_name(word, names, [])
                if holders:
                    self.add(
                        ("news", index, "keywords", group_index, word_index),
                        f"keyword {word!r} names several agents ({', '.join(holders)}); "
                        "use a name that names one agent (a full name)",
                    )
        if news.facts and not news.question:
            self.add(("news", index, "facts"), "facts need a question to be asked about them")
        for fact_index, message in fact_problems(news.facts, news.question, names, places):
            self.add(("news", index, "facts", fact_index, "match"), message)

    def check_gatherings(self, places: PlaceTree) -> None:
        names = self.scenario.agent_names()
        ids = Counter(gathering.id for gathering in self.scenario.gatherings)
        news_ids = [news.id for news in self.scenario.news]
        for index, gathering in enumerate(self.scenario.gatherings):
            path: FieldPath = ("gatherings", index)
            if ids[gathering.id] > 1:
                self.add((*path, "id"), f"duplicate gathering id {gathering.id!r}")
            if gathering.host not in names:
                self.add(
                    (*path, "host"),
                    f"unknown agent {gathering.host!r}{did_you_mean(gathering.host, names)}",
                )
            if gathering.place not in places or places.get(gathering.place).kind == "object":
                choices = [*places.areas(), *places.rooms()]
                self.add(
                    (*path, "place"),
                    f"unknown room or area {gathering.place!r}"
                    f"{did_you_mean(gathering.place, choices)}",
                )
            if gathering.end <= gathering.start:
                self.add((*path, "end"), "a gathering must end after it starts")
            if gathering.news_id is not None and gathering.news_id not in news_ids:
                self.add(
                    (*path, "news_id"),
                    f"unknown news {gathering.news_id!r}"
                    f"{did_you_mean(gathering.news_id, news_ids)}",
                )


def _room_address_problem(address: str) -> str | None:
    try:
        parts = split_address(address)
    except ValueError as error:
        return str(error)
    return None if len(parts) == 2 else f"{len(parts)} part(s) instead of 2"


def _largest_room_in(tree: PlaceTree, labels: np.ndarray[Any, Any], component: int) -> str:
    """The room with most tiles in a connected component (names it in messages)."""
    room_ids = tree.room_ids[labels == component]
    return tree.room_list[int(np.argmax(np.bincount(room_ids)))]


# -- pydantic errors as issues ----------------------------------------------------------------


def issues_from_validation(error: ValidationError, root: type[BaseModel]) -> list[Issue]:
    """Pydantic's errors as issues with field paths; unknown fields get a suggestion from the
    fields of the model at that path inside ``root``."""
    issues = []
    for detail in error.errors(include_url=False):
        path = tuple(part for part in detail["loc"] if part != "[key]")
        kind = detail["type"]
        if kind == "extra_forbidden":
            hint = did_you_mean(str(path[-1]), field_names_at(root, path[:-1]))
            message = f"unknown field {path[-1]!r}{hint}"
        elif kind == "missing":
            message = f"missing required field {path[-1]!r}"
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
        issues.append(Issue(path, message))
    return issues


def field_names_at(root: type[BaseModel], path: FieldPath) -> list[str]:
    """Field names of the model found at ``path`` inside ``root`` (for suggestions)."""
    annotation: Any = root
    for part in path:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            annotation = field.annotation
            continue
        origin, args = get_origin(annotation), get_args(annotation)
        if origin in (Union, types.UnionType):
            annotation = next(arg for arg in args if arg is not type(None))
            origin, args = get_origin(annotation), get_args(annotation)
        if origin is list and isinstance(part, int):
            annotation = args[0]
        elif origin is dict and isinstance(part, str):
            annotation = args[1]
        else:
            return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []
