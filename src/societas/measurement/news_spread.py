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

    ``"news_heard"`` reads the engine's ``news_heard`` events (skipping those whose source did
    not know the item by this measure); ``"keywords"`` lets every listener of an utterance that
    mentions the item (see :func:`detect_news`) learn it when the speaker knew it by then;
    ``"auto"`` uses
    ``news_heard`` events when the log has any, else keywords. Only the given agents count; only
    utterances carry news (an agent's own notes and memories never do).
    """
    members = set(agents)
    chosen = _choose_method(events, method)
    first_heard: dict[str, datetime] = {}
    sources: dict[str, str | None] = {}
    series = [DiffusionPoint(time=start, count=0, names=[])]

    def learn(name: str, time: datetime, source: str | None) -> None:
        if name in members and name not in first_heard:
            first_heard[name] = time
            sources[name] = source
            names = sorted(first_heard)
            point = DiffusionPoint(time=time, count=len(names), names=names)
            if series[-1].time == time:
                series[-1] = point
            else:
                series.append(point)

    for name in item.initial_knowers:
        learn(name, start, None)
    initial_count = len(first_heard)
    if chosen == "news_heard":
        for event in events:
            if (
                event.kind == "news_heard"
                and event.data.get("news_id") == item.id
                and event.agent
                and (not from_knowers_only or event.data.get("source_knew", True) is not False)
            ):
                source = optional_str(event.data.get("source"))
                # The engine's own flag trusts whoever it let learn before; here the source
                # must have learned from someone who knew (or known from the start).
                if not from_knowers_only or source is None or source in first_heard:
                    learn(event.agent, event.time, source)
    else:
        participants = _conversation_participants(events)
        for event in events:
            if event.kind != "utterance" or not detect_news(
                str(event.data.get("text", "")), item.keywords
            ):
                continue
            speaker = optional_str(event.data.get("speaker")) or event.agent
            if from_knowers_only and speaker not in first_heard:
                continue  # a mention by someone who did not know the item passes nothing on
            for listener in sorted(_listeners(event, participants) - {speaker}):
                learn(listener, event.time, speaker)
    return NewsDiffusion(
        news_id=item.id,
        method=chosen,
        series=series,
        first_heard=first_heard,
        sources=sources,
        initial_count=initial_count,
        final_count=len(first_heard),
        final_share=len(first_heard) / len(members) if members else 0.0,
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
