"""Scenario files: the map, places, objects, agents, news and gatherings of a simulated world.

A scenario is a YAML file (the format is documented in ``docs/scenarios.md``). Loading one checks
its structure and every cross-reference (:mod:`societas.scenarios.checks`); each problem is reported
with the file, the field path and the line::

    town.yaml:57: agents[2].home: unknown place 'Cafe:kichen' (did you mean 'Cafe:kitchen'?)

Its residents are personas, so scenarios sit above the agents layer; the world layer reads a
scenario only through the protocol :class:`societas.world.layout.WorldLayout`.

Examples
--------
>>> scenario = load_scenario("duo")
>>> scenario.agent_names()
['Iris Vance', 'Noah Bell']
>>> scenario.places.describe(scenario.agent("Iris Vance").home)
'the main room of Vance Flat'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from societas.agents.persona import Persona
from societas.scenarios.checks import MAX_MAP_SIDE, ScenarioChecker, issues_from_validation
from societas.world.errors import (
    Issue,
    ScenarioError,
    UnknownAgentError,
    WorldError,
    did_you_mean,
)
from societas.world.news_facts import NewsFact
from societas.world.places import PlaceTree, Tile
from societas.world.routine import Routine, routine_from_lifestyle
from societas.world.storylines import ScenarioInfo, TrackedGathering, TrackedNews
from societas.world.tilemap import TileMap
from societas.world.yaml_reader import read_yaml

BUILTIN_PACKAGE = "societas.scenarios"


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError("use local game time without a timezone, e.g. 2026-02-13T07:00")
    return value


GameTime = Annotated[datetime, AfterValidator(_naive)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


# -- the file's structure ---------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectSpec(_Spec):
    """An object in a room: where it stands, its usual state, what it is."""

    tile: Tile
    state: str = Field(default="idle", min_length=1, max_length=60)
    description: str = Field(default="", max_length=200)


class MapSpec(_Spec):
    """The tile grid: one character per tile, the legend says what each character is."""

    rows: list[str] = Field(min_length=1, max_length=MAX_MAP_SIDE)
    legend: dict[str, str] = Field(min_length=1)


class AgentSpec(Persona):
    """A persona plus where the agent lives, starts, whom it knows and what it remembers."""

    home: str = Field(min_length=1, description="Room address of the agent's home.")
    spawn: str | None = Field(
        default=None, description="Room address or spawn-point name; the home when absent."
    )
    relationships: dict[str, str] = Field(default_factory=dict, max_length=50)
    memories: list[Annotated[str, Field(min_length=1, max_length=400)]] = Field(
        default_factory=list, max_length=100
    )
    routine: Routine | None = Field(
        default=None,
        description="Usual wake, sleep, work and meals; read from the lifestyle when absent.",
    )

    @property
    def persona(self) -> Persona:
        """The agent's :class:`Persona` (without the placement and memory fields)."""
        return Persona.model_validate(self.model_dump(include=set(Persona.model_fields)))


class NewsSpec(_Spec):
    """A piece of information whose spread through the population is measured.

    A text passes it on when it holds a word or phrase of every ``keywords`` group.
    """

    id: ShortText
    description: str = Field(min_length=1, max_length=400)
    keywords: list[Annotated[list[ShortText], Field(min_length=1, max_length=20)]] = Field(
        min_length=1, max_length=8
    )
    initial_knowers: list[str] = Field(default_factory=list)
    question: str | None = Field(
        default=None,
        max_length=300,
        description="The open question asked of each agent at the end of a run to learn who "
        "knows, phrased without giving the news away, e.g. 'What have you heard about the town "
        "council election?'.",
    )
    facts: list[NewsFact] = Field(
        default_factory=list,
        max_length=8,
        description="What an answer to ``question`` must state to count as knowing the news.",
    )


class GatheringSpec(_Spec):
    """A planned event whose attendance is measured."""

    id: ShortText
    description: str = Field(min_length=1, max_length=400)
    host: str
    place: str = Field(description="Room or area address.")
    start: GameTime
    end: GameTime
    min_minutes: float = Field(
        default=15.0, ge=0, description="Minutes at the place that count as attending."
    )
    news_id: str | None = Field(
        default=None, description="The news item announcing it; its knowers are the invited."
    )


class Scenario(_Spec):
    """A validated scenario. Build one with :func:`load_scenario` or :func:`scenario_from_text`.

    Constructing it directly (``Scenario.model_validate(data)``) checks the same rules, raising
    ``ValidationError`` for structure and :class:`ScenarioError` for cross-references.
    Treat it as immutable: worlds and their forks share it.
    """

    name: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=2000)
    start_time: GameTime
    minutes_per_step: int = Field(default=10, ge=1, le=1440)
    map: MapSpec
    objects: dict[str, dict[str, ObjectSpec]] = Field(
        default_factory=dict, description="Room address -> object name -> object."
    )
    spawns: dict[str, Tile] = Field(default_factory=dict, description="Named spawn tiles.")
    agents: list[AgentSpec] = Field(min_length=1)
    news: list[NewsSpec] = Field(default_factory=list)
    gatherings: list[GatheringSpec] = Field(default_factory=list)

    _places: PlaceTree | None = PrivateAttr(default=None)
    _tilemap: TileMap | None = PrivateAttr(default=None)
    _source_text: str | None = PrivateAttr(default=None)
    _agents_by_name: dict[str, AgentSpec] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        self._places, self._tilemap = ScenarioChecker(self).run()
        return self

    def __eq__(self, other: object) -> bool:
        # Fields only: the derived place tree and tile map follow from them.
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # holds lists and dicts

    @property
    def places(self) -> PlaceTree:
        """The static place tree (areas, rooms, objects and their tiles)."""
        assert self._places is not None  # set by validation
        return self._places

    @property
    def tilemap(self) -> TileMap:
        """The walkability grid with path finding to places."""
        assert self._tilemap is not None
        return self._tilemap

    @property
    def source_text(self) -> str:
        """The YAML this scenario was read from (or an equivalent dump when built from data)."""
        if self._source_text is None:
            return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, width=100)
        return self._source_text

    def agent_names(self) -> list[str]:
        return [agent.name for agent in self.agents]

    def agent_specs(self) -> list[AgentSpec]:
        """The agents in file order (each with ``persona``, ``home``, ``relationships``...)."""
        return list(self.agents)

    def routine_of(self, name: str) -> Routine:
        """The agent's routine: the file's, else one read from its lifestyle and occupation;
        an area it names stands for the area's first room."""
        spec = self.agent(name)
        routine = spec.routine
        if routine is None:
            routine, _ = routine_from_lifestyle(
                spec.lifestyle, spec.occupation, home=spec.home, rooms=self.places.rooms()
            )
        return routine.in_rooms(lambda area: self.places.rooms(area)[0])

    def initial_memories(self, name: str) -> list[str]:
        return list(self.agent(name).memories)

    def spawn_tiles(self) -> dict[str, Tile]:
        """Start tile of each agent: its named spawn point, else a tile of its spawn room (the
        home by default). Agents starting in one room get distinct tiles, middle first."""
        placed: Counter[str] = Counter()
        tiles: dict[str, Tile] = {}
        for agent in self.agents:
            spawn = agent.spawn or agent.home
            if spawn in self.spawns:
                tiles[agent.name] = self.spawns[spawn]
                continue
            room_tiles = self.places.tile_array(spawn)
            spread = np.abs(room_tiles - room_tiles.mean(axis=0)).sum(axis=1)
            order = np.lexsort((room_tiles[:, 0], room_tiles[:, 1], spread))
            x, y = room_tiles[order[placed[spawn] % len(order)]]
            placed[spawn] += 1
            tiles[agent.name] = (int(x), int(y))
        return tiles

    def initial_places(self) -> dict[str, str]:
        """The room each agent starts in."""
        places = {}
        for name, tile in self.spawn_tiles().items():
            room = self.places.address_at(tile)
            assert room is not None  # spawn tiles are walkable, so inside a room
            places[name] = room
        return places

    def measurement_info(self) -> ScenarioInfo:
        """What the run measurements need: agents, start, news, gatherings, acquaintances."""
        return ScenarioInfo(
            agents=self.agent_names(),
            start=self.start_time,
            news=[
                TrackedNews(
                    id=news.id, keywords=news.keywords, initial_knowers=news.initial_knowers
                )
                for news in self.news
            ],
            gatherings=[
                TrackedGathering(
                    id=gathering.id,
                    place=gathering.place,
                    start=gathering.start,
                    end=gathering.end,
                    min_minutes=gathering.min_minutes,
                    news_id=gathering.news_id,
                    host=gathering.host,
                )
                for gathering in self.gatherings
            ],
            relationships={agent.name: list(agent.relationships) for agent in self.agents},
            initial_places=self.initial_places(),
        )

    def agent(self, name: str) -> AgentSpec:
        if self._agents_by_name is None or len(self._agents_by_name) != len(self.agents):
            self._agents_by_name = {agent.name: agent for agent in self.agents}
        found = self._agents_by_name.get(name)
        if found is not None:
            return found
        raise UnknownAgentError(f"unknown agent {name!r}{did_you_mean(name, self.agent_names())}")

    def object_spec(self, address: str) -> ObjectSpec:
        """The specification of an object, by address ``Area:room:object``."""
        room, _, name = address.rpartition(":")
        self.places.object_tile(address)  # raises a clear error for unknown objects
        return self.objects[room][name]

    def news_item(self, news_id: str) -> NewsSpec:
        for news in self.news:
            if news.id == news_id:
                return news
        ids = [news.id for news in self.news]
        raise WorldError(f"unknown news {news_id!r}{did_you_mean(news_id, ids)}")

    def with_agents(self, names: Sequence[str]) -> Scenario:
        """The same world with only ``names`` living in it (in that order).

        Relationships, news knowers and gatherings that mention someone left out are trimmed, so
        a benchmark or an experiment can run a smaller town from the same file.
        """
        unknown = [name for name in names if name not in self.agent_names()]
        if unknown:
            raise WorldError(f"unknown agents {unknown}; agents: {self.agent_names()}")
        keep = set(names)
        data = self.model_dump(mode="json")
        by_name = {agent["name"]: agent for agent in data["agents"]}
        data["agents"] = [by_name[name] for name in names]
        for agent in data["agents"]:
            agent["relationships"] = {
                other: note for other, note in agent["relationships"].items() if other in keep
            }
        for news in data["news"]:
            news["initial_knowers"] = [n for n in news["initial_knowers"] if n in keep]
        data["gatherings"] = [g for g in data["gatherings"] if g["host"] in keep]
        return Scenario.from_dict(data, source=f"{self.name} ({len(names)} agents)")

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> Scenario:
        """Validate plain data; every problem becomes a :class:`ScenarioError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ScenarioError(issues_from_validation(error, cls), source) from None


# -- loading ----------------------------------------------------------------------------------


def scenario_from_text(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario YAML text; ``source`` names it in error messages."""
    data, reader = read_yaml(text, source)
    if not isinstance(data, dict):
        message = "a scenario is a mapping of fields (name, start_time, map, agents, ...)"
        raise ScenarioError([Issue((), message, reader.line_of(()))], source)
    try:
        scenario = Scenario.from_dict(data)
    except ScenarioError as error:
        raise error.located(source, reader.line_of) from None
    scenario._source_text = text
    return scenario


def load_scenario(source: str | Path) -> Scenario:
    """Load a scenario from a YAML file path or a built-in name (:func:`list_builtin_scenarios`).

    >>> load_scenario("town").name
    'Alder Creek'
    """
    path = Path(source)
    looks_like_file = (
        isinstance(source, Path) or path.suffix in (".yaml", ".yml") or (len(path.parts) > 1)
    )
    if looks_like_file or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            issue = Issue((), f"cannot read scenario file: {error}")
            raise ScenarioError([issue], str(source)) from error
        return scenario_from_text(text, str(source))
    name = str(source)
    if name not in list_builtin_scenarios():
        known = ", ".join(list_builtin_scenarios())
        message = f"no scenario file or built-in scenario named {name!r} (built-ins: {known})"
        raise ScenarioError([Issue((), message + did_you_mean(name, list_builtin_scenarios()))])
    text = resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_text("utf-8")
    return scenario_from_text(text, f"{name}.yaml")


def list_builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with societas, e.g. ``['duo', 'town']``."""
    folder = resources.files(BUILTIN_PACKAGE)
    return sorted(
        item.name[: -len(".yaml")] for item in folder.iterdir() if item.name.endswith(".yaml")
    )
