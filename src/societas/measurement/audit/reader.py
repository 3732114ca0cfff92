"""What the audit reads from a run: its events, turned into plain records, and its scenario.

Event shapes are read here and nowhere else in the audit, so a change in what the engine
records (a new conversation writer, routines) is adjusted in this one module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.scenarios.scenario import Scenario
from societas.world.routine import clock_text as clock
from societas.world.storylines import TrackedNews

MINUTES_PER_DAY = 24 * 60
ROUTINE_KIND = "routine"  # recorded per agent once its routine is known (scenario or derived)
_SKIPPED_KINDS = frozenset({"llm_call"})


class AuditInputError(ValueError):
    """A run the audit cannot read: no scenario copy, or an event of an unexpected shape."""


@dataclass(frozen=True)
class Block:
    """One block of a day plan, in minutes after midnight."""

    start: int
    end: int
    activity: str
    place: str

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def span(self) -> str:
        return f"{clock(self.start)}-{clock(self.end)}"


@dataclass(frozen=True)
class DayPlan:
    """A plan as an agent recorded it; ``reason`` says why ("new day", an agreement...)."""

    agent: str
    day: date
    time: datetime
    reason: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Meal:
    meal: str
    time: int
    place: str


@dataclass(frozen=True)
class Work:
    place: str
    start: int
    end: int


@dataclass(frozen=True)
class Routine:
    """An agent's usual day, as the run recorded it."""

    wake: int
    sleep: int
    work: Work | None
    meals: tuple[Meal, ...]
    source: str


@dataclass(frozen=True)
class Action:
    agent: str
    time: datetime
    description: str
    place: str


@dataclass(frozen=True)
class Memory:
    agent: str
    time: datetime
    kind: str
    text: str


@dataclass(frozen=True)
class Line:
    """One spoken line; ``position`` is its index in :attr:`RunRecord.events`."""

    conversation_id: str
    speaker: str
    listeners: tuple[str, ...]
    text: str
    time: datetime
    position: int


@dataclass(frozen=True)
class Talk:
    """A conversation: who took part and how it was summed up."""

    id: str
    participants: tuple[str, ...]
    place: str
    summary: str
    time: datetime


@dataclass(frozen=True)
class Note:
    """A relationship note an agent wrote about another."""

    agent: str
    other: str
    time: datetime
    text: str


@dataclass
class RunRecord:
    """A run's events as records, with the scenario facts the checks compare them against."""

    name: str
    scenario: Scenario
    start: datetime
    events: list[Event]
    plans: list[DayPlan] = field(default_factory=list)
    routines: dict[str, Routine] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    memories: list[Memory] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    talks: list[Talk] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def agents(self) -> list[str]:
        return self.scenario.agent_names()

    @property
    def news(self) -> list[TrackedNews]:
        return self.scenario.measurement_info().news

    def final_plans(self) -> list[DayPlan]:
        """The last plan of each agent and day: replans keep the hours already past, so this is
        the day as it stood when the run moved on."""
        last: dict[tuple[str, date], DayPlan] = {}
        for plan in self.plans:
            last[(plan.agent, plan.day)] = plan
        return [last[key] for key in sorted(last)]


def read_run(store: RunStore, scenario: Scenario, *, name: str = "run") -> RunRecord:
    """The run in ``store`` (every event but model calls) as a :class:`RunRecord`."""
    events = [s.event for s in store.iter_events() if s.event.kind not in _SKIPPED_KINDS]
    return record_of(events, scenario, name=name)


def record_of(events: Sequence[Event], scenario: Scenario, *, name: str = "run") -> RunRecord:
    """Records from events in the order they were recorded (model calls are ignored)."""
    kept = [event for event in events if event.kind not in _SKIPPED_KINDS]
    record = RunRecord(name=name, scenario=scenario, start=scenario.start_time, events=kept)
    for position, event in enumerate(kept):
        reader = _READERS.get(event.kind)
        if reader is None or event.agent is None:
            continue
        try:
            reader(record, event, position)
        except (KeyError, ValueError, TypeError) as error:
            raise AuditInputError(
                f"{name}: {event.kind} event of {event.agent} at step {event.step} "
                f"({event.time:%Y-%m-%d %H:%M}) cannot be read: {error}"
            ) from error
    return record


# --------------------------------------------------------------------------- one per kind


def _read_plan(record: RunRecord, event: Event, position: int) -> None:
    data = event.data
    blocks = tuple(
        Block(
            start=minutes(str(block["start"])),
            end=minutes(str(block["end"])),
            activity=str(block.get("activity", "")),
            place=str(block.get("place", "")),
        )
        for block in _dicts(data.get("blocks"))
    )
    day = date.fromisoformat(str(data["date"])) if data.get("date") else event.time.date()
    assert event.agent is not None
    record.plans.append(DayPlan(event.agent, day, event.time, str(data.get("reason", "")), blocks))


def _read_routine(record: RunRecord, event: Event, position: int) -> None:
    data = event.data
    work = data.get("work")
    assert event.agent is not None
    record.routines[event.agent] = Routine(
        wake=minutes(str(data["wake"])),
        sleep=minutes(str(data["sleep"])),
        work=None
        if not isinstance(work, dict)
        else Work(str(work["place"]), minutes(str(work["start"])), minutes(str(work["end"]))),
        meals=tuple(
            Meal(str(meal["meal"]), minutes(str(meal["time"])), str(meal.get("place", "")))
            for meal in _dicts(data.get("meals"))
        ),
        source=str(data.get("source", "")),
    )


def _read_action(record: RunRecord, event: Event, position: int) -> None:
    assert event.agent is not None
    record.actions.append(
        Action(
            event.agent,
            event.time,
            str(event.data.get("description", "")),
            str(event.data.get("place", "")),
        )
    )


def _read_memory(record: RunRecord, event: Event, position: int) -> None:
    assert event.agent is not None
    record.memories.append(
        Memory(
            event.agent,
            event.time,
            str(event.data.get("memory_kind", "")),
            str(event.data.get("text", "")),
        )
    )


def _read_conversation(record: RunRecord, event: Event, position: int) -> None:
    data = event.data
    record.talks.append(
        Talk(
            id=str(data.get("id", "")),
            participants=tuple(_strings(data.get("participants"))),
            place=str(data.get("place", "")),
            summary=str(data.get("summary") or ""),
            time=event.time,
        )
    )


def _read_utterance(record: RunRecord, event: Event, position: int) -> None:
    data = event.data
    record.lines.append(
        Line(
            conversation_id=str(data.get("conversation_id", "")),
            speaker=str(data.get("speaker") or event.agent),
            listeners=tuple(_strings(data.get("listeners"))),
            text=str(data.get("text", "")),
            time=event.time,
            position=position,
        )
    )


def _read_relationship(record: RunRecord, event: Event, position: int) -> None:
    assert event.agent is not None
    record.notes.append(
        Note(
            event.agent,
            str(event.data.get("other", "")),
            event.time,
            str(event.data.get("summary", "")),
        )
    )


_READERS = {
    "plan": _read_plan,
    ROUTINE_KIND: _read_routine,
    "action": _read_action,
    "memory": _read_memory,
    "conversation": _read_conversation,
    "utterance": _read_utterance,
    "relationship": _read_relationship,
}


# --------------------------------------------------------------------------- helpers


def minutes(text: str) -> int:
    """Minutes after midnight of ``"HH:MM"`` (``"24:00"`` is the end of the day).

    >>> minutes("07:30"), minutes("24:00")
    (450, 1440)
    """
    hours, sep, mins = text.strip().partition(":")
    if not sep or not hours.isdigit() or not mins.isdigit():
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    value = int(hours) * 60 + int(mins)
    if value > MINUTES_PER_DAY or int(mins) >= 60:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return value


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> Iterable[str]:
    return [str(item) for item in value if item] if isinstance(value, list | tuple) else []
