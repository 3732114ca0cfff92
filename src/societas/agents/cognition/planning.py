"""Day plans: one call plans the day, one call revises it; the answer models of the plan calls.

(The call that refines a block into actions is :mod:`societas.agents.cognition.decomposition`.)

The model writes drafts (``"HH:MM"`` strings, places from an enum); this module turns them into a
:class:`DayPlan` whose blocks are ordered, non-overlapping and cover wake-up to bedtime exactly,
and makes sure fixed commitments (a time and a place) are in the plan whatever the model wrote.

Repair rules, applied in this order:

1. times are parsed leniently, rounded to 5 minutes and clamped to the day; a block whose start
   is unreadable is dropped, one whose end is unreadable or not after its start runs until the
   next block starts;
2. blocks are clipped to the window and sorted by start; a block is cut where the next one
   starts (so of two with the same start the later one written wins);
3. gaps under 15 minutes extend the block before them; longer gaps become "free time at home";
4. neighbours with the same activity and place merge;
5. a fixed commitment missing from the plan is laid over it (60 minutes by default), cutting what
   it overlaps and moving bedtime later if needed.

Examples
--------
>>> blocks = normalise_schedule(
...     [Draft(480, 600, "work", "shop:counter"), Draft(540, 660, "lunch", "cafe:hall")],
...     start=420, end=720, home="home:room",
... )
>>> [b.line() for b in blocks]  # doctest: +NORMALIZE_WHITESPACE
['07:00-08:00 free time at home @ home:room', '08:00-09:00 work @ shop:counter',
 '09:00-11:00 lunch @ cafe:hall', '11:00-12:00 free time at home @ home:room']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from societas.agents.cognition.schemas import (
    MINUTES_PER_DAY,
    ask,
    bullet_list,
    day_text,
    format_clock,
    minute_of_day,
    model_text,
    moment_text,
    one_line,
    parse_clock,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.narrowing import Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import whole_words

FREE_TIME = "free time at home"
SLEEPING = "sleeping"
SMALL_GAP = 15
DEFAULT_WAKE = 7 * 60
DEFAULT_SLEEP = 22 * 60
MAX_DAY_BLOCKS = 10
MIN_WAKING_MINUTES = 10 * 60
MAX_REVISED_BLOCKS = 10
PLAN_MAX_TOKENS = 900
REVISE_MAX_TOKENS = 760
MAX_STEPS = 6


# --- what the engine uses ---------------------------------------------------------------


class PlanBlock(BaseModel):
    """One block of a day plan, in minutes since midnight (``end`` exclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0, le=MINUTES_PER_DAY)
    end: int = Field(ge=0, le=MINUTES_PER_DAY)
    activity: str = Field(min_length=1)
    place: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"block {self.activity!r} ends ({self.end}) before it starts")
        return self

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def to_record(self) -> dict[str, str]:
        """The block as the run store's ``plan`` event records it."""
        return {
            "start": format_clock(self.start),
            "end": format_clock(self.end),
            "activity": self.activity,
            "place": self.place,
        }

    def line(self) -> str:
        """Compact prompt text: ``09:00-10:30 baking bread @ bakery:kitchen``."""
        return f"{format_clock(self.start)}-{format_clock(self.end)} {self.activity} @ {self.place}"


class Commitment(BaseModel):
    """Something an agent agreed to do; ``fixed`` when it has both a start time and a place.

    ``day`` is the date it is for (set when the agent adopts it; it expires after that day and
    is never carried into a later one); ``decided`` once the agent, shortly before, has decided
    that it still goes.

    >>> Commitment(description="party at the cafe", place="cafe:hall", start=17 * 60).fixed
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = Field(min_length=1, max_length=80)
    place: str | None = None
    start: int | None = Field(default=None, ge=0, le=MINUTES_PER_DAY)
    minutes: int = Field(default=60, ge=5, le=8 * 60)
    day: date | None = None
    decided: bool = False

    @property
    def fixed(self) -> bool:
        return self.place is not None and self.start is not None

    def line(self) -> str:
        when = format_clock(self.start) if self.start is not None else "some time"
        return f"{when} {self.description}" + (f" @ {self.place}" if self.place else "")


class DayPlan(BaseModel):
    """An agent's plan for one day: blocks covering ``wake`` to ``sleep`` without gaps.

    Immutable: its state is ``model_dump(mode="json")`` and ``DayPlan.model_validate(state)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    wake: int = Field(ge=0, le=MINUTES_PER_DAY)
    sleep: int = Field(ge=0, le=MINUTES_PER_DAY)
    home: str = Field(min_length=1)
    blocks: tuple[PlanBlock, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _covers_the_day(self) -> Self:
        cursor = self.wake
        for block in self.blocks:
            if block.start != cursor:
                raise ValueError(f"plan has a gap or overlap at {format_clock(block.start)}")
            cursor = block.end
        if cursor != self.sleep:
            raise ValueError(f"plan ends at {format_clock(cursor)}, not at bedtime")
        return self

    def block_at(self, minute: int) -> PlanBlock:
        """The block under way at ``minute``; before waking and after bedtime, sleeping at home."""
        if minute < self.wake:
            return PlanBlock(start=0, end=self.wake, activity=SLEEPING, place=self.home)
        for block in self.blocks:
            if minute < block.end:
                return block
        if self.sleep >= MINUTES_PER_DAY:
            return self.blocks[-1]
        return PlanBlock(start=self.sleep, end=MINUTES_PER_DAY, activity=SLEEPING, place=self.home)

    def remaining(self, minute: int) -> tuple[PlanBlock, ...]:
        """Blocks not yet over at ``minute``."""
        return tuple(b for b in self.blocks if b.end > minute)

    def to_records(self) -> list[dict[str, str]]:
        return [b.to_record() for b in self.blocks]


class Action(BaseModel):
    """One step of a block (10-20 minutes as asked; rescaled to fill the block), as the engine
    executes and remembers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0, le=MINUTES_PER_DAY)
    minutes: int = Field(ge=1)
    description: str
    object: str | None = None
    emoji: str = ""
    object_state: str = ""
    importance: int = Field(ge=1, le=10)

    @property
    def end(self) -> int:
        return self.start + self.minutes


# --- answer schemas (static shapes; places and objects become enums at call time) ------------


class BlockAnswer(BaseModel):
    """One block as the model writes it; it lasts until the next block starts (no "end": the
    model would only repeat the next start, at ~8 tokens a block)."""

    start: str = Field(max_length=5, description="HH:MM")
    act: str = Field(max_length=60)
    place: str


class DayPlanAnswer(BaseModel):
    """The answer of ``plan_day.yaml``."""

    wake: str = Field(max_length=5, description="HH:MM")
    sleep: str = Field(max_length=5, description="HH:MM")
    blocks: list[BlockAnswer] = Field(min_length=1, max_length=MAX_DAY_BLOCKS)


class RevisionAnswer(BaseModel):
    """The answer of ``revise_plan.yaml``: the blocks from now to bedtime."""

    blocks: list[BlockAnswer] = Field(min_length=1, max_length=MAX_REVISED_BLOCKS)


class StepAnswer(BaseModel):
    """One step as the model writes it. Generated tokens are the slowest part of a call on a
    CPU, so a step carries only what the model alone can say: the emoji is chosen by embedding
    (:mod:`~societas.agents.cognition.emoji`) and an object used shows the step as its state."""

    mins: int = Field(ge=1, le=60)
    do: str = Field(max_length=80)  # asked for 2 to 6 words: room to finish, never cut short
    obj: str


class DecompositionAnswer(BaseModel):
    """The answer of ``decompose.yaml``: the steps, and how memorable the block is (one score
    for all its steps, which are parts of one activity)."""

    steps: list[StepAnswer] = Field(min_length=2, max_length=MAX_STEPS)
    imp: int = Field(ge=1, le=10)


def day_plan_answer(places: tuple[str, ...]) -> Narrowed[DayPlanAnswer]:
    """``DayPlanAnswer`` with ``place`` restricted to ``places``."""
    return narrow(DayPlanAnswer, {"blocks.place": places})


def revision_answer(places: tuple[str, ...]) -> Narrowed[RevisionAnswer]:
    """``RevisionAnswer`` with ``place`` restricted to ``places``."""
    return narrow(RevisionAnswer, {"blocks.place": places})


# --- schedule repair -------------------------------------------------------------------------


class Draft(NamedTuple):
    """A block as the model wrote it, times already parsed (None: unreadable)."""

    start: int | None
    end: int | None
    activity: str
    place: str


def drafts_from(blocks: Sequence[BlockAnswer]) -> list[Draft]:
    return [Draft(parse_clock(b.start), None, model_text(b.act), b.place) for b in blocks]


def normalise_schedule(
    drafts: Sequence[Draft], *, start: int, end: int, home: str
) -> tuple[PlanBlock, ...]:
    """Ordered, non-overlapping blocks covering ``[start, end)`` exactly (rules 1-4 above)."""
    if end <= start:
        raise ValueError(f"empty schedule window {format_clock(start)}-{format_clock(end)}")
    blocks: list[PlanBlock] = []
    cursor = start
    for block_start, block_end, activity, place in _anchor(drafts, start, end):
        if not blocks and block_start - cursor < SMALL_GAP:
            block_start = cursor
        _fill(blocks, cursor, block_start, home)
        blocks.append(PlanBlock(start=block_start, end=block_end, activity=activity, place=place))
        cursor = block_end
    _fill(blocks, cursor, end, home)
    return _merge_neighbours(blocks)


def _anchor(drafts: Sequence[Draft], start: int, end: int) -> list[tuple[int, int, str, str]]:
    """Rules 1-2: readable drafts sorted, clipped to the window, each cut at the next start."""
    readable = sorted(
        ((max(start, d.start), d) for d in drafts if d.start is not None and d.activity),
        key=lambda pair: pair[0],
    )
    anchored: list[tuple[int, int, str, str]] = []
    for index, (block_start, draft) in enumerate(readable):
        next_start = readable[index + 1][0] if index + 1 < len(readable) else end
        own_end = next_start
        if draft.end is not None and draft.start is not None and draft.end > draft.start:
            own_end = draft.end
        block_end = min(own_end, next_start, end)
        if block_end > block_start:
            anchored.append((block_start, block_end, whole_words(draft.activity, 60), draft.place))
    return anchored


def _fill(blocks: list[PlanBlock], cursor: int, until: int, home: str) -> None:
    """Rule 3: close the gap ``[cursor, until)`` by stretching the last block or free time."""
    if until <= cursor:
        return
    if blocks and until - cursor < SMALL_GAP:
        blocks[-1] = blocks[-1].model_copy(update={"end": until})
    else:
        blocks.append(PlanBlock(start=cursor, end=until, activity=FREE_TIME, place=home))


def _merge_neighbours(blocks: list[PlanBlock]) -> tuple[PlanBlock, ...]:
    merged: list[PlanBlock] = []
    for block in blocks:
        previous = merged[-1] if merged else None
        if previous and (previous.activity, previous.place) == (block.activity, block.place):
            merged[-1] = previous.model_copy(update={"end": block.end})
        else:
            merged.append(block)
    return tuple(merged)


def keep_commitments(
    blocks: Sequence[PlanBlock],
    commitments: Sequence[Commitment],
    *,
    start: int,
    home: str,
) -> tuple[PlanBlock, ...]:
    """Rule 5: lay every fixed commitment starting at or after ``start`` over ``blocks``.

    A commitment counts as planned when a block at its place is under way at its start time or
    begins within 15 minutes of it. The result may end later than ``blocks`` did.
    """
    result = list(blocks)
    for commitment in commitments:
        if not commitment.fixed or commitment.start is None or commitment.start < start:
            continue
        if _is_planned(result, commitment):
            continue
        end = min(MINUTES_PER_DAY, commitment.start + commitment.minutes)
        if end <= commitment.start:
            continue
        slot = PlanBlock(
            start=commitment.start,
            end=end,
            activity=whole_words(commitment.description, 60),
            place=commitment.place or home,
        )
        result = overlay(result, slot)
    window_end = max(b.end for b in result)
    drafts = [Draft(b.start, b.end, b.activity, b.place) for b in result]
    return normalise_schedule(drafts, start=start, end=window_end, home=home)


def _is_planned(blocks: Sequence[PlanBlock], commitment: Commitment) -> bool:
    at = commitment.start or 0
    return any(
        b.place == commitment.place and (b.start <= at < b.end or abs(b.start - at) <= SMALL_GAP)
        for b in blocks
    )


def overlay(blocks: Sequence[PlanBlock], slot: PlanBlock) -> list[PlanBlock]:
    """``blocks`` with ``slot`` inserted, cutting what it overlaps (pieces under 15 min go)."""
    result: list[PlanBlock] = []
    for block in blocks:
        if block.end <= slot.start or block.start >= slot.end:
            result.append(block)
            continue
        if slot.start - block.start >= SMALL_GAP:
            result.append(block.model_copy(update={"end": slot.start}))
        if block.end - slot.end >= SMALL_GAP:
            result.append(block.model_copy(update={"start": slot.end}))
    result.append(slot)
    return sorted(result, key=lambda b: b.start)


# --- the model calls -------------------------------------------------------------------------


def _place_enum(places: Sequence[str], home: str) -> tuple[str, ...]:
    if not places:
        raise ValueError("planning needs at least one allowed place")
    return tuple(dict.fromkeys((*places, home)))


def _commitment_lines(commitments: Sequence[Commitment]) -> str:
    return bullet_list([c.line() for c in commitments])


async def plan_day(
    llm: LanguageModel,
    persona: Persona,
    *,
    day: date,
    places: Sequence[str],
    home: str,
    memories: Sequence[str] = (),
    commitments: Sequence[Commitment] = (),
    params: SamplingParams | None = None,
) -> DayPlan:
    """Plan one day in ONE call: wake-up time, bedtime and 1-2-hour blocks between them.

    ``places`` are room addresses ("area:room"); ``home`` is where free time and sleep happen.
    Fixed ``commitments`` are kept in the plan even when the model leaves them out.

    >>> import asyncio
    >>> from societas.llm.fake import ScriptedLLM
    >>> llm = ScriptedLLM(lambda call: {"wake": "7:00", "sleep": "22:00", "blocks": [
    ...     {"start": "08:00", "act": "work", "place": "shop:counter"},
    ...     {"start": "17:00", "act": "free time at home", "place": "home:room"}]})
    >>> plan = asyncio.run(plan_day(llm, Persona(name="Ada", age=30), day=date(2023, 2, 13),
    ...     places=["shop:counter"], home="home:room"))
    >>> [b.line() for b in plan.blocks]
    ['07:00-08:00 free time at home @ home:room', '08:00-17:00 work @ shop:counter', \
'17:00-22:00 free time at home @ home:room']
    """
    allowed = _place_enum(places, home)
    answer = await ask(
        llm,
        day_plan_answer(allowed),
        "plan_day",
        dict(
            **persona_variables(persona),
            places=bullet_list(allowed),
            home=home,
            memories=bullet_list(memories),
            commitments=_commitment_lines(commitments),
            day=day_text(day),
        ),
        purpose="plan",
        max_tokens=PLAN_MAX_TOKENS,
        params=params,
    )
    drafts = drafts_from(answer.blocks)
    wake, sleep = _day_window(answer, drafts, commitments)
    blocks = normalise_schedule(drafts, start=wake, end=sleep, home=home)
    blocks = keep_commitments(blocks, commitments, start=wake, home=home)
    return DayPlan(day=day, wake=wake, sleep=blocks[-1].end, home=home, blocks=blocks)


def _day_window(
    answer: DayPlanAnswer, drafts: Sequence[Draft], commitments: Sequence[Commitment]
) -> tuple[int, int]:
    """Wake-up and bedtime: the answer's, else the drafts' extent, else 07:00-22:00.

    A bedtime not after wake-up (e.g. "00:30") means midnight; a "day" shorter than
    ``MIN_WAKING_MINUTES`` is a slip (small models copy an example's times), so bedtime falls back
    to the default; wake-up moves earlier for a commitment that starts before it.
    """
    starts = [d.start for d in drafts if d.start is not None]
    ends = [d.end for d in drafts if d.end is not None]
    wake = parse_clock(answer.wake)
    if wake is None:
        wake = min(starts, default=DEFAULT_WAKE)
    sleep = parse_clock(answer.sleep)
    if sleep is None:
        sleep = max(ends, default=DEFAULT_SLEEP)
    if wake < sleep < wake + MIN_WAKING_MINUTES:
        sleep = max(DEFAULT_SLEEP, wake + MIN_WAKING_MINUTES)
    fixed_starts = [c.start for c in commitments if c.fixed and c.start is not None]
    wake = min([wake, *fixed_starts])
    if sleep <= wake:
        sleep = MINUTES_PER_DAY
    if wake >= MINUTES_PER_DAY:
        wake, sleep = DEFAULT_WAKE, DEFAULT_SLEEP
    return wake, sleep


async def revise_plan(
    llm: LanguageModel,
    persona: Persona,
    plan: DayPlan,
    *,
    now: datetime,
    reason: str,
    places: Sequence[str],
    commitments: Sequence[Commitment] = (),
    memories: Sequence[str] = (),
    params: SamplingParams | None = None,
) -> DayPlan:
    """Replace the rest of today's plan in ONE call, after a reaction or a new commitment.

    Blocks already over are kept, the current one is cut at ``now``; the model writes the blocks
    from now to bedtime, and every fixed commitment still ahead is enforced in code (bedtime moves
    later when a commitment runs past it).
    """
    allowed = _place_enum(places, plan.home)
    now_minute = minute_of_day(now)
    if now_minute >= MINUTES_PER_DAY - SMALL_GAP:
        raise ValueError("no time left in the day to revise the plan")
    window_end = min(MINUTES_PER_DAY, max(plan.sleep, now_minute + 2 * SMALL_GAP))
    answer = await ask(
        llm,
        revision_answer(allowed),
        "revise_plan",
        dict(
            **persona_variables(persona),
            places=bullet_list(allowed),
            home=plan.home,
            plan=bullet_list([b.line() for b in plan.remaining(now_minute)]),
            reason=one_line(reason) or "(no reason given)",
            commitments=_commitment_lines(commitments),
            memories=bullet_list(memories),
            now=moment_text(now),
            start=format_clock(now_minute),
            sleep=format_clock(window_end),
        ),
        purpose="replan",
        max_tokens=REVISE_MAX_TOKENS,
        params=params,
    )
    ahead = normalise_schedule(
        drafts_from(answer.blocks), start=now_minute, end=window_end, home=plan.home
    )
    ahead = keep_commitments(ahead, commitments, start=now_minute, home=plan.home)
    return _join(plan, now_minute, ahead)


def with_commitments(plan: DayPlan, commitments: Sequence[Commitment], now: datetime) -> DayPlan:
    """Lay fixed ``commitments`` still ahead over the rest of ``plan``, with no model call.

    An agreement with a time and a place ("the party at the cafe at 17:00") needs no rethinking of
    the whole day: the blocks it overlaps give way to it. Unchanged when nothing new is ahead.
    """
    now_minute = minute_of_day(now)
    ahead = plan.remaining(now_minute)
    if not ahead:
        return plan
    first = ahead[0].model_copy(update={"start": max(ahead[0].start, now_minute)})
    kept = keep_commitments((first, *ahead[1:]), commitments, start=first.start, home=plan.home)
    if kept == (first, *ahead[1:]):
        return plan
    return _join(plan, first.start, kept)


def with_detour(plan: DayPlan, activity: str, place: str, minutes: int, now: datetime) -> DayPlan:
    """``plan`` with ``activity`` at ``place`` from now for ``minutes``, then the plan resumes.

    A reaction's change of course ("go and check the boiler for half an hour") needs no model
    call: the detour cuts into the blocks it overlaps, even one at the same place. Unchanged when
    the day is over.
    """
    now_minute = minute_of_day(now)
    ahead = plan.remaining(now_minute)
    if not ahead or not activity.strip():
        return plan
    first = ahead[0].model_copy(update={"start": max(ahead[0].start, now_minute)})
    end = min(MINUTES_PER_DAY, first.start + minutes)
    if end <= first.start:
        return plan
    slot = PlanBlock(start=first.start, end=end, activity=whole_words(activity, 60), place=place)
    blocks = overlay((first, *ahead[1:]), slot)
    drafts = [Draft(b.start, b.end, b.activity, b.place) for b in blocks]
    kept = normalise_schedule(
        drafts, start=first.start, end=max(b.end for b in blocks), home=plan.home
    )
    return _join(plan, first.start, kept)


def _join(plan: DayPlan, now_minute: int, ahead: Sequence[PlanBlock]) -> DayPlan:
    """The plan's past (up to ``now_minute``) followed by ``ahead``."""
    past: list[PlanBlock] = []
    for block in plan.blocks:
        if block.start >= now_minute:
            break
        past.append(block.model_copy(update={"end": min(block.end, now_minute)}))
    if past and past[-1].end < ahead[0].start:  # revised after bedtime: still up until now
        past[-1] = past[-1].model_copy(update={"end": ahead[0].start})
    wake = min(plan.wake, ahead[0].start)
    blocks = _merge_neighbours([*past, *ahead])
    return DayPlan(day=plan.day, wake=wake, sleep=blocks[-1].end, home=plan.home, blocks=blocks)
