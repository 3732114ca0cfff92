"""How far each seeded news item travelled through the dialogue, and when.

Initial knowers know an item from the start; then either the engine's ``news_heard`` events or
(for runs without them) every listener of an utterance that mentions the item (by its keywords)
adds a knower, as long as the speaker knew it by then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from societas.engine.events import Event
from societas.measurement.event_fields import listed_names, optional_str
from societas.world.news_keywords import detect_news
from societas.world.storylines import TrackedNews

DiffusionMethod = Literal["auto", "news_heard", "keywords"]


class DiffusionPoint(BaseModel):
    """Who knew a news item from ``time`` on."""

    time: datetime
    count: int
    names: list[str]


class NewsDiffusion(BaseModel):
    """How one news item spread: a series that grows whenever someone learns it."""

    news_id: str
    method: Literal["news_heard", "keywords"]
    series: list[DiffusionPoint]
    first_heard: dict[str, datetime]
    sources: dict[str, str | None] = Field(description="who told each knower; None: knew at start")
    initial_count: int
    final_count: int
    final_share: float

    def knowers_at(self, time: datetime) -> list[str]:
        """The agents who knew the item at ``time``."""
        return sorted(name for name, heard in self.first_heard.items() if heard <= time)


def news_diffusion(
    events: Sequence[Event],
    item: TrackedNews,
    *,
    agents: Sequence[str],
    start: datetime,
    method: DiffusionMethod = "auto",
    from_knowers_only: bool = True,
) -> NewsDiffusion:
    """Trace ``item`` through the dialogue: initial knowers at ``start``, then listeners.

    With ``from_knowers_only`` off, hearing the item from anyone counts, including a speaker who
    made it up (the coherence audit asks whether a speaker ever *heard* what they state).

    ``"news_heard"`` reads the engine's ``news_heard`` events (see :func:`heard_news_diffusion`);
    ``"keywords"`` lets every listener of an utterance that mentions the item (see
    :func:`~societas.world.news_keywords.detect_news`) learn it when the speaker knew it by then;
    ``"auto"`` uses ``news_heard`` events when the log has any, else keywords. Only the given
    agents count; only utterances carry news (an agent's own notes and memories never do).
    """
    if _choose_method(events, method) == "news_heard":
        return heard_news_diffusion(
            events,
            item.id,
            agents=agents,
            start=start,
            initial_knowers=item.initial_knowers,
            from_knowers_only=from_knowers_only,
        )
    spread = _Spread(agents, start, item.initial_knowers)
    participants = _conversation_participants(events)
    for event in events:
        if event.kind != "utterance" or not detect_news(
            str(event.data.get("text", "")), item.keywords
        ):
            continue
        speaker = optional_str(event.data.get("speaker")) or event.agent
        if from_knowers_only and speaker not in spread.first_heard:
            continue  # a mention by someone who did not know the item passes nothing on
        for listener in sorted(_listeners(event, participants) - {speaker}):
            spread.learn(listener, event.time, speaker)
    return spread.result(item.id, "keywords")


def heard_news_diffusion(
    events: Iterable[Event],
    news_id: str,
    *,
    agents: Sequence[str],
    start: datetime,
    initial_knowers: Sequence[str] = (),
    from_knowers_only: bool = True,
) -> NewsDiffusion:
    """Trace ``news_id`` by the engine's ``news_heard`` events: initial knowers at ``start``, then
    each agent at its first event.

    With ``from_knowers_only`` (the run summary), an event whose source did not know the item by
    this measure passes nothing on; without it (what the coherence audit asks), every event
    counts.
    """
    spread = _Spread(agents, start, initial_knowers)
    for event in events:
        if (
            event.kind == "news_heard"
            and event.data.get("news_id") == news_id
            and event.agent
            and (not from_knowers_only or event.data.get("source_knew", True) is not False)
        ):
            source = optional_str(event.data.get("source"))
            # The engine's own flag trusts whoever it let learn before; here the source
            # must have learned from someone who knew (or known from the start).
            if not from_knowers_only or source is None or source in spread.first_heard:
                spread.learn(event.agent, event.time, source)
    return spread.result(news_id, "news_heard")


def heard_news_ids(events: Iterable[Event]) -> list[str]:
    """The news items that ``news_heard`` events trace, in the order each was first heard."""
    first: dict[str, tuple[datetime, int]] = {}
    for order, event in enumerate(events):
        news_id = event.data.get("news_id") if event.kind == "news_heard" else None
        if news_id is not None and event.agent:
            key = str(news_id)
            first[key] = min(first.get(key, (event.time, order)), (event.time, order))
    return sorted(first, key=first.__getitem__)


class _Spread:
    """The knowers of one item as they learn it, and the series of their count."""

    def __init__(self, agents: Sequence[str], start: datetime, initial: Sequence[str]) -> None:
        self.members = set(agents)
        self.first_heard: dict[str, datetime] = {}
        self.sources: dict[str, str | None] = {}
        self.series = [DiffusionPoint(time=start, count=0, names=[])]
        for name in initial:
            self.learn(name, start, None)
        self.initial_count = len(self.first_heard)

    def learn(self, name: str, time: datetime, source: str | None) -> None:
        if name in self.members and name not in self.first_heard:
            self.first_heard[name] = time
            self.sources[name] = source
            names = sorted(self.first_heard)
            point = DiffusionPoint(time=time, count=len(names), names=names)
            if self.series[-1].time == time:
                self.series[-1] = point
            else:
                self.series.append(point)

    def result(self, news_id: str, method: Literal["news_heard", "keywords"]) -> NewsDiffusion:
        members = self.members
        return NewsDiffusion(
            news_id=news_id,
            method=method,
            series=self.series,
            first_heard=self.first_heard,
            sources=self.sources,
            initial_count=self.initial_count,
            final_count=len(self.first_heard),
            final_share=len(self.first_heard) / len(members) if members else 0.0,
        )


def _choose_method(
    events: Sequence[Event], method: DiffusionMethod
) -> Literal["news_heard", "keywords"]:
    if method != "auto":
        return method
    return "news_heard" if any(e.kind == "news_heard" for e in events) else "keywords"


def _conversation_participants(events: Iterable[Event]) -> dict[str, set[str]]:
    participants: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.kind == "conversation" and event.data.get("id") is not None:
            participants[str(event.data["id"])].update(listed_names(event.data.get("participants")))
    return participants


def _listeners(utterance: Event, participants: Mapping[str, set[str]]) -> set[str]:
    """The utterance's listeners plus everyone else in its conversation."""
    listeners = set(listed_names(utterance.data.get("listeners")))
    conversation_id = utterance.data.get("conversation_id")
    if conversation_id is not None:
        listeners |= participants.get(str(conversation_id), set())
    return listeners
