"""Town measurements computed from a run's event log.

Each measurement is a pure function of the events (in the order they were recorded) and of what the
scenario declares (:class:`ScenarioInfo`): how far each seeded news item travelled, whether agents'
own answers about it match what they actually heard, how dense the social network became, who came
to each gathering, and what the language model cost. :func:`summarise_run` bundles them for a run
store into a JSON-serialisable :class:`RunSummary`.

Examples
--------
>>> detect_news("Isabella's Valentine party is at Hobbs Cafe", [["party"], ["hobbs", "cafe"]])
True
>>> detect_news("The partygoers left", [["party"]])
False
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from societas.engine.events import Event
from societas.engine.plan_checks import PLAN_CHECK_KINDS, PlanChecks, plan_checks
from societas.llm.meter import reuse_share

if TYPE_CHECKING:
    from societas.engine.runstore import RunStore

DiffusionMethod = Literal["auto", "news_heard", "keywords"]
_MEASURED_KINDS = ("move", "conversation", "utterance", "news_heard", "llm_call")


# --------------------------------------------------------------------------- scenario inputs


class NewsSpec(BaseModel):
    """A seeded news item: who knows it at the start and the words that mention it.

    ``keywords`` is a list of groups; a text mentions the item when it contains at least one word
    (or phrase) of every group.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    keywords: list[list[str]] = Field(min_length=1)
    initial_knowers: list[str] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _groups_not_blank(cls, groups: list[list[str]]) -> list[list[str]]:
        for index, group in enumerate(groups):
            if not group or any(not word.strip() for word in group):
                raise ValueError(f"keyword group {index} is empty or has a blank word")
        return groups


class GatheringSpec(BaseModel):
    """A planned gathering: a place (address prefix such as ``"cafe"`` or ``"cafe:hall"``) and a
    time window; ``news_id`` names the news item that announces it (its knowers are the invited).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    place: str = Field(min_length=1)
    start: datetime
    end: datetime
    min_minutes: float = Field(default=15.0, ge=0)
    news_id: str | None = None

    @model_validator(mode="after")
    def _window_forward(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"gathering {self.id!r} ends ({self.end}) before it starts")
        return self


class ScenarioInfo(BaseModel):
    """What the measurements need to know about the scenario and the run.

    ``relationships`` maps an agent to the agents it knows at the start (directed; names that
    are not agents are ignored).
    ``initial_places`` gives where agents are before their first ``move`` event. ``end`` is the
    simulated time the run reached; when None, the time of the last event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: list[str] = Field(min_length=1)
    start: datetime
    end: datetime | None = None
    news: list[NewsSpec] = Field(default_factory=list)
    gatherings: list[GatheringSpec] = Field(default_factory=list)
    relationships: dict[str, list[str]] = Field(default_factory=dict)
    initial_places: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        known = set(self.agents)
        if len(known) != len(self.agents):
            raise ValueError("agents: names must be unique")
        news_ids = [item.id for item in self.news]
        if len(set(news_ids)) != len(news_ids):
            raise ValueError("news: ids must be unique")
        for item in self.news:
            _require_agents(known, item.initial_knowers, f"news {item.id!r} initial_knowers")
        for gathering in self.gatherings:
            if gathering.news_id is not None and gathering.news_id not in news_ids:
                raise ValueError(
                    f"gathering {gathering.id!r}: news_id {gathering.news_id!r} is not a news item"
                )
        _require_agents(known, list(self.initial_places), "initial_places")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def news_item(self, news_id: str) -> NewsSpec:
        for item in self.news:
            if item.id == news_id:
                return item
        raise KeyError(f"no news item {news_id!r}; known: {[i.id for i in self.news]}")


def _require_agents(known: set[str], names: Iterable[str], where: str) -> None:
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"{where}: unknown agent(s) {unknown}")


# --------------------------------------------------------------------------- news detection


def detect_news(text: str, keyword_groups: Sequence[Sequence[str]]) -> bool:
    """True when ``text`` holds a word or phrase of every keyword group.

    Matching ignores case, respects word boundaries ("party" does not match "partygoers") and lets
    any run of whitespace stand between the words of a phrase.

    >>> detect_news("Town  HALL vote on Friday", [["town hall"], ["vote", "election"]])
    True
    >>> detect_news("a vote", [["town hall"], ["vote"]])
    False
    """
    patterns = _group_patterns(tuple(tuple(group) for group in keyword_groups))
    return all(pattern.search(text) for pattern in patterns)


@lru_cache(maxsize=256)
def _group_patterns(groups: tuple[tuple[str, ...], ...]) -> tuple[re.Pattern[str], ...]:
    if not groups:
        raise ValueError("keyword_groups is empty: a news item needs at least one keyword group")
    patterns = []
    for index, group in enumerate(groups):
        words = [word.split() for word in group]
        if not words or any(not parts for parts in words):
            raise ValueError(f"keyword group {index} is empty or has a blank word: {list(group)}")
        alternatives = "|".join(r"\s+".join(map(re.escape, parts)) for parts in words)
        # Lookarounds instead of \b so keywords ending in punctuation still match whole words.
        patterns.append(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))
    return tuple(patterns)


# --------------------------------------------------------------------------- news diffusion


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
    item: NewsSpec,
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
                source = _optional_str(event.data.get("source"))
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
            speaker = _optional_str(event.data.get("speaker")) or event.agent
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
            participants[str(event.data["id"])].update(_names(event.data.get("participants")))
    return participants


def _listeners(utterance: Event, participants: Mapping[str, set[str]]) -> set[str]:
    """The utterance's listeners plus everyone else in its conversation."""
    listeners = set(_names(utterance.data.get("listeners")))
    conversation_id = utterance.data.get("conversation_id")
    if conversation_id is not None:
        listeners |= participants.get(str(conversation_id), set())
    return listeners


def _names(value: Any) -> list[str]:
    if isinstance(value, list | tuple | set | frozenset):
        return [str(name) for name in value if name]
    return []


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- awareness

_FILLER = re.compile(r"^(?:\W|oh|well|hmm+|ah|um+|uh+|so)+\b", re.IGNORECASE)
_LEADING_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|of course|indeed|definitely|absolutely|certainly)\b", re.IGNORECASE
)
_LEADING_NO = re.compile(
    r"^(?:no|nope|nah|not|nobody|never|nothing|unfortunately not|i'm not|i am not)\b"
    r"|^i (?:do not|don't|did not|didn't|have not|haven't|had not|hadn't|never)\b",
    re.IGNORECASE,
)
_DENIAL = re.compile(
    r"\b(?:never heard|not heard|haven't heard|have not heard|hadn't heard|didn't hear"
    r"|did not hear|don't know|do not know|not aware|unaware|no idea|not sure|no one told"
    r"|nobody told|know nothing|heard nothing|knew nothing)\b",
    re.IGNORECASE,
)
_ACKNOWLEDGE = re.compile(
    r"^i (?:do|did|have|know|knew|heard|'ve heard)\b|\b(?:heard|know about|knew about|told me"
    r"|aware of|mentioned)\b",
    re.IGNORECASE,
)


def claims_awareness(answer: str, keyword_groups: Sequence[Sequence[str]] | None = None) -> bool:
    """Whether an interview answer to "Do you know about X?" says yes.

    A leading yes or no decides; otherwise a denial anywhere ("I haven't heard", "no idea") means
    no, and having heard of it or mentioning the item (its keywords) means yes.

    >>> claims_awareness("Oh yes, Isabella told me about the party.")
    True
    >>> claims_awareness("Hmm, I haven't heard anything about that.")
    False
    >>> claims_awareness("The party at the cafe on Friday!", [["party"]])
    True
    """
    text = _FILLER.sub("", answer.strip()).strip()
    if _LEADING_YES.match(text):
        return True
    if _LEADING_NO.match(text) or _DENIAL.search(text):
        return False
    if _ACKNOWLEDGE.search(text):
        return True
    return keyword_groups is not None and detect_news(text, keyword_groups)


class AwarenessCheck(BaseModel):
    """Agents' stated awareness of a news item against the dialogue's ground truth."""

    news_id: str
    interviewed: int
    claimed: list[str] = Field(description="say they know it")
    actual: list[str] = Field(description="interviewed agents who did receive it")
    agreement: float = Field(description="share of interviewed whose claim matches the truth")
    hallucinated: list[str] = Field(description="claim it but never received it")
    missed: list[str] = Field(description="received it but deny it")


def compare_awareness(
    answers: Mapping[str, str], item: NewsSpec, knowers: Collection[str]
) -> AwarenessCheck:
    """Score interview ``answers`` (agent -> answer) against ``knowers`` (ground truth)."""
    if not answers:
        raise ValueError(f"no interview answers to score for news {item.id!r}")
    claimed = {name for name, text in answers.items() if claims_awareness(text, item.keywords)}
    actual = {name for name in answers if name in knowers}
    agreeing = sum((name in claimed) == (name in actual) for name in answers)
    return AwarenessCheck(
        news_id=item.id,
        interviewed=len(answers),
        claimed=sorted(claimed),
        actual=sorted(actual),
        agreement=agreeing / len(answers),
        hallucinated=sorted(claimed - actual),
        missed=sorted(actual - claimed),
    )


# --------------------------------------------------------------------------- network density


class DensityPoint(BaseModel):
    """Network densities from ``time`` on.

    ``conversation``: undirected, an edge when two agents have talked, 2|E|/(n(n-1)).
    ``knows``: directed, initial relationships plus both directions of every conversation,
    |E|/(n(n-1)).
    """

    time: datetime
    conversation: float
    knows: float


class NetworkDensity(BaseModel):
    """How connected the agents became."""

    agents: int
    start: DensityPoint
    end: DensityPoint
    series: list[DensityPoint]
    conversation_pairs: list[tuple[str, str]]
    knows_edges: int


def network_density(
    events: Sequence[Event],
    *,
    agents: Sequence[str],
    start: datetime,
    end: datetime | None = None,
    relationships: Mapping[str, Sequence[str]] | None = None,
) -> NetworkDensity:
    """Densities of the conversation and "knows" networks at ``start``, over time and at ``end``.

    Two agents are linked once a ``conversation`` event lists both, or one speaks to the other
    in an ``utterance``. Fewer than two agents give density 0.
    """
    members = set(agents)
    possible = len(members) * (len(members) - 1)
    pairs: set[tuple[str, str]] = set()
    knows = {
        (name, other)
        for name, others in (relationships or {}).items()
        for other in others
        if name in members and other in members and name != other
    }

    def point(time: datetime) -> DensityPoint:
        if possible == 0:
            return DensityPoint(time=time, conversation=0.0, knows=0.0)
        return DensityPoint(
            time=time, conversation=2 * len(pairs) / possible, knows=len(knows) / possible
        )

    series = [point(start)]
    for event in events:
        talkers = _talkers(event) & members
        new_pairs = {(a, b) for a in talkers for b in talkers if a < b} - pairs
        if not new_pairs:
            continue
        pairs |= new_pairs
        knows |= {edge for a, b in new_pairs for edge in ((a, b), (b, a))}
        if series[-1].time == event.time:
            series[-1] = point(event.time)
        else:
            series.append(point(event.time))
    final_time = end or (events[-1].time if events else start)
    return NetworkDensity(
        agents=len(members),
        start=series[0],
        end=point(max(final_time, series[-1].time)),
        series=series,
        conversation_pairs=sorted(pairs),
        knows_edges=len(knows),
    )


def _talkers(event: Event) -> set[str]:
    if event.kind == "conversation":
        return set(_names(event.data.get("participants")))
    if event.kind == "utterance":
        speaker = _optional_str(event.data.get("speaker")) or event.agent
        return set(_names(event.data.get("listeners"))) | ({speaker} if speaker else set())
    return set()


# --------------------------------------------------------------------------- attendance


class Attendance(BaseModel):
    """Who came to a gathering: present at its place for at least ``min_minutes`` of its window."""

    gathering_id: str
    place: str
    start: datetime
    end: datetime
    min_minutes: float
    minutes: dict[str, float] = Field(description="minutes at the place in the window, if any")
    attendees: list[str]
    invited: list[str] | None = Field(description="heard of it before it ended; None: unknown")
    invited_attendees: list[str] | None
    uninvited_attendees: list[str] | None
    share_of_invited: float | None


def in_place(address: str, prefix: str) -> bool:
    """Whether ``address`` lies within ``prefix`` (whole address parts: "cafe" holds "cafe:bar").

    >>> in_place("cafe:counter", "cafe"), in_place("cafeteria:hall", "cafe")
    (True, False)
    """
    prefix = prefix.rstrip(":")
    return address == prefix or address.startswith(prefix + ":")


def presence_minutes(
    events: Sequence[Event],
    *,
    place: str,
    window_start: datetime,
    window_end: datetime,
    run_end: datetime,
    initial_places: Mapping[str, str] | None = None,
    run_start: datetime | None = None,
) -> dict[str, float]:
    """Minutes each agent spent within ``place`` during the window, from ``move`` events.

    An agent stays where its last ``move`` put it (or its initial place, from ``run_start``) until
    its next move or ``run_end``. Agents never there are left out.
    """
    tracks: dict[str, list[tuple[datetime, str | None]]] = defaultdict(list)
    origin = run_start or window_start
    for name, initial_place in (initial_places or {}).items():
        tracks[name].append((origin, initial_place))
    for event in events:
        if event.kind == "move" and event.agent:
            tracks[event.agent].append((event.time, _optional_str(event.data.get("place"))))
    minutes: dict[str, float] = {}
    for name, track in tracks.items():
        track.sort(key=lambda entry: entry[0])
        total = 0.0
        for (since, address), until in zip(
            track, [t for t, _ in track[1:]] + [run_end], strict=True
        ):
            if address is None or not in_place(address, place):
                continue
            overlap = (min(until, window_end) - max(since, window_start)).total_seconds()
            total += max(overlap, 0.0) / 60
        if total > 0:
            minutes[name] = round(total, 3)
    return minutes


def gathering_attendance(
    events: Sequence[Event],
    gathering: GatheringSpec,
    *,
    run_end: datetime,
    initial_places: Mapping[str, str] | None = None,
    run_start: datetime | None = None,
    invited: Collection[str] | None = None,
    agents: Collection[str] | None = None,
) -> Attendance:
    """Attendance of ``gathering``; ``invited`` (e.g. knowers of its news item) adds the split."""
    minutes = presence_minutes(
        events,
        place=gathering.place,
        window_start=gathering.start,
        window_end=gathering.end,
        run_end=run_end,
        initial_places=initial_places,
        run_start=run_start,
    )
    if agents is not None:
        minutes = {name: spent for name, spent in minutes.items() if name in agents}
    attendees = sorted(name for name, spent in minutes.items() if spent >= gathering.min_minutes)
    invited_list = None if invited is None else sorted(invited)
    came = None if invited is None else sorted(set(attendees) & set(invited))
    return Attendance(
        gathering_id=gathering.id,
        place=gathering.place,
        start=gathering.start,
        end=gathering.end,
        min_minutes=gathering.min_minutes,
        minutes=minutes,
        attendees=attendees,
        invited=invited_list,
        invited_attendees=came,
        uninvited_attendees=None if invited is None else sorted(set(attendees) - set(invited)),
        share_of_invited=(len(came) / len(invited_list))
        if came is not None and invited_list
        else None,
    )


# --------------------------------------------------------------------------- model usage


class CallEventTotals(BaseModel):
    """Model calls and tokens of a set of ``llm_call`` events (one event per request).

    ``reused_prompt_tokens`` are the prompt tokens the server did not read again (a warm slot or
    prompt cache); ``reuse_share`` is their share of ``prompt_tokens``, None when no prompt was
    sent. ``cache_hits`` are requests answered from the response cache, which send no prompt.
    """

    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    retries: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    reuse_share: float | None = None
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_s: float = 0.0


class ModelUsage(BaseModel):
    """The run's model cost, overall, per purpose and per agent per simulated hour.

    ``total`` and the per-agent-hour rates count language-model calls (text generation); the
    embedding requests, which cost no generated tokens, are counted apart in ``embeddings``.
    """

    total: CallEventTotals
    embeddings: CallEventTotals
    by_purpose: dict[str, CallEventTotals]
    agents: int
    hours: float
    calls_per_agent_hour: float | None
    tokens_per_agent_hour: float | None
    prompt_tokens_per_agent_hour: float | None
    completion_tokens_per_agent_hour: float | None


@dataclass
class _Tally:
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    retries: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, data: Mapping[str, Any]) -> None:
        self.calls += 1
        self.cache_hits += bool(data.get("cached"))
        self.errors += data.get("error") is not None
        self.retries += int(data.get("retries") or 0)
        self.repaired += bool(data.get("repaired"))
        self.prompt_tokens += int(data.get("prompt_tokens") or 0)
        self.reused_prompt_tokens += int(data.get("reused_prompt_tokens") or 0)
        self.completion_tokens += int(data.get("completion_tokens") or 0)
        self.latency_s += float(data.get("latency_s") or 0.0)

    def totals(self) -> CallEventTotals:
        return CallEventTotals(
            calls=self.calls,
            cache_hits=self.cache_hits,
            errors=self.errors,
            retries=self.retries,
            repaired=self.repaired,
            prompt_tokens=self.prompt_tokens,
            reused_prompt_tokens=self.reused_prompt_tokens,
            reuse_share=_rounded(reuse_share(self.reused_prompt_tokens, self.prompt_tokens)),
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            latency_s=round(self.latency_s, 3),
        )


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _reuse_text(totals: CallEventTotals, *, short: bool = False) -> str:
    """How much of the prompts the server reused, e.g. "4,210 of 9,800 ... (43%)"."""
    share = "n/a" if totals.reuse_share is None else f"{totals.reuse_share:.0%}"
    if short:
        return f"prompt reused: {share}"
    return (
        f"{totals.reused_prompt_tokens:,} of {totals.prompt_tokens:,} prompt tokens reused by the "
        f"server ({share})"
    )


EMBED_PURPOSE = "embed"


def model_usage(events: Iterable[Event], *, agents: int, hours: float) -> ModelUsage:
    """Sum the ``llm_call`` events; rates per agent-hour need ``agents`` and ``hours`` > 0.

    Every recorded call counts, cached ones included (``cache_hits`` says how many were free).
    """
    total = _Tally()
    embeddings = _Tally()
    by_purpose: dict[str, _Tally] = defaultdict(_Tally)
    for event in events:
        if event.kind == "llm_call":
            purpose = str(event.data.get("purpose") or "unknown")
            (embeddings if purpose == EMBED_PURPOSE else total).add(event.data)
            by_purpose[purpose].add(event.data)
    agent_hours = agents * hours if agents > 0 and hours > 0 else None

    def rate(value: int) -> float | None:
        return None if agent_hours is None else round(value / agent_hours, 3)

    return ModelUsage(
        total=total.totals(),
        embeddings=embeddings.totals(),
        by_purpose={purpose: tally.totals() for purpose, tally in sorted(by_purpose.items())},
        agents=agents,
        hours=hours,
        calls_per_agent_hour=rate(total.calls),
        tokens_per_agent_hour=rate(total.prompt_tokens + total.completion_tokens),
        prompt_tokens_per_agent_hour=rate(total.prompt_tokens),
        completion_tokens_per_agent_hour=rate(total.completion_tokens),
    )


# --------------------------------------------------------------------------- the run summary


class RunSummary(BaseModel):
    """Every town measurement of a run; ``model_dump_json()`` gives summary.json."""

    last_step: int | None
    start: datetime
    end: datetime
    simulated_hours: float
    agents: int
    events: int
    event_counts: dict[str, int]
    usage: ModelUsage
    news: list[NewsDiffusion]
    awareness: list[AwarenessCheck]
    network: NetworkDensity
    gatherings: list[Attendance]
    plans: PlanChecks = PlanChecks()

    def describe(self) -> str:
        """A short human-readable report."""
        usage = self.usage.total
        lines = [
            f"Run: steps 0-{self.last_step if self.last_step is not None else '?'}, "
            f"{self.start:%Y-%m-%d %H:%M} -> {self.end:%Y-%m-%d %H:%M} "
            f"({self.simulated_hours:.2f} h), {self.agents} agents, {self.events} events",
            f"Model: {usage.calls} calls ({usage.cache_hits} cached, {usage.errors} failed), "
            f"{usage.total_tokens} tokens ({usage.prompt_tokens} prompt + "
            f"{usage.completion_tokens} completion); {self.usage.embeddings.calls} embedding "
            "requests",
            f"  {_reuse_text(usage)}",
        ]
        if self.usage.calls_per_agent_hour is not None:
            lines.append(
                f"  per agent-hour: {self.usage.calls_per_agent_hour:.2f} calls, "
                f"{self.usage.tokens_per_agent_hour:.0f} tokens"
            )
        for purpose, totals in self.usage.by_purpose.items():
            if purpose != EMBED_PURPOSE:
                lines.append(
                    f"  {purpose}: {totals.calls} calls, {totals.total_tokens} tokens, "
                    f"{_reuse_text(totals, short=True)}"
                )
        if self.plans.checked or self.plans.decided:
            lines.append(self.plans.describe())
        lines += self.news_lines()
        lines += self.network_lines()
        for gathering in self.gatherings:
            invited = (
                ""
                if gathering.invited is None
                else f" ({len(gathering.invited_attendees or [])} of "
                f"{len(gathering.invited)} invited)"
            )
            lines.append(
                f"Gathering {gathering.gathering_id!r} at {gathering.place}: "
                f"{len(gathering.attendees)} attended{invited}"
            )
        return "\n".join(lines)

    def news_lines(self) -> list[str]:
        """The news diffusion and interview lines of :meth:`describe`."""
        lines = [
            f"News {news.news_id!r}: {news.initial_count} -> {news.final_count} of "
            f"{self.agents} agents ({news.final_share:.0%}, from {news.method})"
            for news in self.news
        ]
        lines += [
            f"Interviews on {check.news_id!r}: agreement {check.agreement:.0%}, "
            f"{len(check.hallucinated)} hallucinated, {len(check.missed)} missed"
            for check in self.awareness
        ]
        return lines

    def network_lines(self) -> list[str]:
        """The network density lines of :meth:`describe`."""
        return [
            "Network density (scenario relationships + conversations): conversations "
            f"{self.network.start.conversation:.2f} -> {self.network.end.conversation:.2f}; "
            f"knows {self.network.start.knows:.2f} -> {self.network.end.knows:.2f}"
        ]


def summarise_run(
    store: RunStore,
    info: ScenarioInfo,
    *,
    interviews: Mapping[str, Mapping[str, str]] | None = None,
) -> RunSummary:
    """Compute every measurement of the run in ``store``.

    ``interviews`` maps a news id to interview answers (agent -> answer) to score against the
    dialogue's ground truth at the end of the run.
    """
    events = [stored.event for stored in store.iter_events(kinds=_MEASURED_KINDS)]
    checks = plan_checks(e.event for e in store.iter_events(kinds=PLAN_CHECK_KINDS))
    counts = store.event_counts()
    end = info.end or _last_time(store) or info.start
    hours = max((end - info.start).total_seconds() / 3600, 0.0)
    news = [
        news_diffusion(events, item, agents=info.agents, start=info.start) for item in info.news
    ]
    diffusion_by_id = {d.news_id: d for d in news}
    awareness = [
        compare_awareness(
            answers, _news_or_error(info, news_id), diffusion_by_id[news_id].first_heard
        )
        for news_id, answers in sorted((interviews or {}).items())
    ]
    gatherings = [
        gathering_attendance(
            events,
            gathering,
            run_end=end,
            run_start=info.start,
            initial_places=info.initial_places,
            agents=set(info.agents),
            invited=None
            if gathering.news_id is None
            else diffusion_by_id[gathering.news_id].knowers_at(gathering.end),
        )
        for gathering in info.gatherings
    ]
    return RunSummary(
        last_step=store.last_step(),
        start=info.start,
        end=end,
        simulated_hours=hours,
        agents=len(info.agents),
        events=sum(counts.values()),
        event_counts=counts,
        usage=model_usage(events, agents=len(info.agents), hours=hours),
        news=news,
        awareness=awareness,
        network=network_density(
            events,
            agents=info.agents,
            start=info.start,
            end=end,
            relationships=info.relationships,
        ),
        gatherings=gatherings,
        plans=checks,
    )


def _news_or_error(info: ScenarioInfo, news_id: str) -> NewsSpec:
    try:
        return info.news_item(news_id)
    except KeyError as exc:
        raise ValueError(f"interviews: {exc.args[0]}") from exc


def _last_time(store: RunStore) -> datetime | None:
    """The simulated time of the last committed step."""
    value = store.get_meta("last_time")
    return None if value is None else datetime.fromisoformat(str(value))
