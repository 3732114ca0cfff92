"""Ground truth for believability interviews, read from a finished run's store.

Everything an interview question can be checked against comes from the event log and the last
checkpoint, never from a model: whom each agent talked with or saw, what was said, which seeded
news reached it, its plan for the day, its reflections, and the persona it was given.

Examples
--------
>>> ada = Persona(name="Ada Lee", age=30)
>>> facts = AgentFacts(name="Ada Lee", persona=ada, home="Lee Flat:room", seen={"Bo Chan"})
>>> facts.acquaintances
['Bo Chan']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from societas.agents.agent import Agent
from societas.agents.cognition.planning import PlanBlock
from societas.agents.persona import Persona
from societas.engine.config import SimulationConfig
from societas.engine.run_schema import RunStoreError
from societas.engine.runstore import RunStore
from societas.scenarios.scenario import Scenario, scenario_from_text
from societas.world.errors import ScenarioError, WorldError

SCENARIO_COPY = "scenario.yaml"


class EvaluationError(Exception):
    """A run directory cannot be evaluated (missing files, no checkpoint, bad input)."""


@dataclass(frozen=True)
class Talk:
    """One conversation an agent took part in."""

    partners: tuple[str, ...]
    summary: str
    time: datetime
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewsFact:
    """A seeded news item and whether it reached the agent by the end of the run."""

    id: str
    description: str
    question: str
    keywords: tuple[tuple[str, ...], ...]
    knows: bool


@dataclass
class AgentFacts:
    """What really happened to one agent (the answers' ground truth)."""

    name: str
    persona: Persona
    home: str
    relationships: dict[str, str] = field(default_factory=dict)
    talks: list[Talk] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    places: list[str] = field(default_factory=list)
    plan: tuple[PlanBlock, ...] = ()
    news: list[NewsFact] = field(default_factory=list)
    reflections: list[str] = field(default_factory=list)
    important_memories: list[str] = field(default_factory=list)
    memory_text: str = ""
    activity: str = ""

    @property
    def talked_with(self) -> list[str]:
        """People the agent had a conversation with, in the order first talked to."""
        return list(dict.fromkeys(p for talk in self.talks for p in talk.partners))

    @property
    def met(self) -> list[str]:
        """People the agent talked with or saw during the run."""
        return list(dict.fromkeys([*self.talked_with, *sorted(self.seen)]))

    @property
    def acquaintances(self) -> list[str]:
        """Everyone the agent knows: met during the run or known from the start."""
        return list(dict.fromkeys([*self.met, *self.relationships]))


@dataclass
class RunFacts:
    """Ground truth for every agent of a run, plus what the interviews need to know."""

    run_dir: Path
    scenario: Scenario
    config: SimulationConfig
    now: datetime
    agents: dict[str, AgentFacts]
    people: dict[str, Persona]
    model: str | None = None

    def occupation_of(self, name: str) -> str:
        persona = self.people.get(name)
        return persona.occupation if persona else ""


def load_scenario_copy(run_dir: Path) -> Scenario:
    """The scenario a run was started from (its ``scenario.yaml`` copy)."""
    path = run_dir / SCENARIO_COPY
    if not path.is_file():
        raise EvaluationError(f"{run_dir} is not a run directory: it has no {SCENARIO_COPY}")
    try:
        return scenario_from_text(path.read_text(encoding="utf-8"), source=str(path))
    except (ScenarioError, WorldError) as error:
        raise EvaluationError(str(error)) from error


def read_run(run_dir: str | Path) -> tuple[RunFacts, dict[str, Agent]]:
    """The ground truth of the run in ``run_dir`` and its agents as of the last checkpoint."""
    directory = Path(run_dir)
    scenario = load_scenario_copy(directory)
    try:
        with RunStore.open(directory, readonly=True) as store:
            checkpoint = store.latest_checkpoint()
            if checkpoint is None:
                raise EvaluationError(f"{directory} has no checkpoint yet")
            events = [stored.event for stored in store.iter_events()]
            model = store.get_meta("model")
    except RunStoreError as error:
        raise EvaluationError(str(error)) from error
    state: dict[str, Any] = checkpoint.state
    try:
        agents = {name: Agent.from_state(data) for name, data in state["agents"].items()}
        config = SimulationConfig.model_validate(state["config"])
        knowers = {news: set(names) for news, names in state["knowers"].items()}
    except (KeyError, TypeError, ValueError) as error:
        raise EvaluationError(f"{directory}: the last checkpoint is malformed: {error}") from error
    people = {spec.persona.name: spec.persona for spec in scenario.agent_specs()}
    people.update({name: agent.persona for name, agent in agents.items()})
    facts = {name: _agent_facts(agent, scenario, knowers, people) for name, agent in agents.items()}
    _add_events(facts, events, set(agents))
    return (
        RunFacts(
            run_dir=directory,
            scenario=scenario,
            config=config,
            now=checkpoint.time,
            agents=facts,
            people=people,
            model=None if model is None else str(model),
        ),
        agents,
    )


def _agent_facts(
    agent: Agent, scenario: Scenario, knowers: dict[str, set[str]], people: dict[str, Persona]
) -> AgentFacts:
    records = [agent.memory.by_id(i) for i in range(len(agent.memory))]
    news = [
        NewsFact(
            id=item.id,
            description=item.description,
            question=item.question or "",
            keywords=tuple(tuple(group) for group in item.keywords),
            knows=agent.name in knowers.get(item.id, set(item.initial_knowers)),
        )
        for item in scenario.news
    ]
    ranked = sorted(records, key=lambda r: (-r.importance, r.created))
    return AgentFacts(
        name=agent.name,
        persona=agent.persona,
        home=agent.home,
        relationships={k: v for k, v in agent.relationships.items() if k in people},
        plan=agent.plan.blocks if agent.plan is not None else (),
        news=news,
        reflections=[r.text for r in records if r.kind.label == "reflection"],
        important_memories=[r.text for r in ranked[:5]],
        memory_text=" ".join(r.text for r in records),
        activity=agent.current.description if agent.current else "",
    )


def _add_events(facts: dict[str, AgentFacts], events: Iterable[Any], names: set[str]) -> None:
    """Fill conversations, sightings and places from the event log."""
    lines: dict[str, list[str]] = {}
    for event in events:
        data = event.data
        if event.kind == "utterance":
            lines.setdefault(str(data.get("conversation_id")), []).append(
                f"{data.get('speaker')}: {data.get('text')}"
            )
    for event in events:
        subject = facts.get(event.agent or "")
        data = event.data
        if event.kind == "conversation":
            participants = [str(p) for p in data.get("participants", [])]
            for name in participants:
                if name in facts:
                    facts[name].talks.append(
                        Talk(
                            partners=tuple(p for p in participants if p != name),
                            summary=str(data.get("summary", "")),
                            time=event.time,
                            lines=tuple(lines.get(str(data.get("id")), [])),
                        )
                    )
        elif subject is None:
            continue
        elif event.kind == "observation":
            text = str(data.get("text", ""))
            subject.seen.update(n for n in names if n != subject.name and text.startswith(n))
        elif event.kind == "move" and data.get("place"):
            subject.places.append(str(data["place"]))
