"""Day plans from the routine: code lays the usual day, the model writes only what changes.

One call a day (:func:`plan_from_routine`) shows the agent its usual day (from its routine, with
its appointments laid over it) and asks what it does differently today and how it fills its free
time; one call when something changes the day (:func:`replan_from_routine`). Every result is
checked by :mod:`~societas.agents.cognition.plan_rules`: a plan that breaks a rule gets ONE repair
request naming the violations, and what still breaks one gets the routine's day back in those
slots. An agreement laid over a plan without a call is checked the same way
(:func:`check_agreement`), with no repair call.

Each function returns the plan and a :class:`PlanCheck`, which the agent records as a
``plan_check`` event so that repairs and fallbacks can be counted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, Field

from societas.agents.cognition.plan_rules import (
    FREE_PERIODS,
    Violation,
    check_plan,
    fall_back,
    routine_day,
)
from societas.agents.cognition.planning import (
    Commitment,
    DayPlan,
    Draft,
    PlanBlock,
    keep_commitments,
    normalise_schedule,
    overlay,
)
from societas.agents.cognition.schemas import (
    ask,
    bullet_list,
    day_text,
    format_clock,
    minute_of_day,
    moment_text,
    one_line,
    parse_clock,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.narrowing import Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import one_script, whole_words
from societas.world.routine import Routine

MAX_CHANGES = 4
FREE_LABELS = tuple(label for _, label in FREE_PERIODS)
ACT_CHARS = 60  # asked for 2 to 6 words; the schema leaves room so no answer is cut short
CHANGES_MAX_TOKENS = 320


class ChangeAnswer(BaseModel):
    """One change to the usual day, as the model writes it."""

    start: str = Field(max_length=5, description="HH:MM")
    end: str = Field(max_length=5, description="HH:MM")
    act: str = Field(max_length=100)
    place: str


class ChangesAnswer(BaseModel):
    """The answer of ``plan_changes.yaml``: what is different from the plan shown."""

    changes: list[ChangeAnswer] = Field(default_factory=list, max_length=MAX_CHANGES)


def changes_answer(places: tuple[str, ...]) -> Narrowed[ChangesAnswer]:
    """``ChangesAnswer`` with ``place`` restricted to ``places``."""
    return narrow(ChangesAnswer, {"changes.place": places})


@dataclass
class PlanCheck:
    """What checking one plan found: the ``plan_check`` event's data."""

    stage: str
    violations: list[str] = field(default_factory=list)
    repaired: bool = False
    remaining: list[str] = field(default_factory=list)
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    text_fixes: int = 0

    def to_record(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "violations": list(self.violations),
            "repaired": self.repaired,
            "remaining": list(self.remaining),
            "fallbacks": list(self.fallbacks),
            "text_fixes": self.text_fixes,
        }


@dataclass(frozen=True)
class _Scene:
    """What every call about one plan shares (its prompt prefix) and how answers are applied."""

    persona: Persona | None  # None: no call is made (an agreement laid over a plan)
    routine: Routine
    home: str
    places: tuple[str, ...]
    memories: Sequence[str]
    commitments: Sequence[Commitment]
    habits: Sequence[str] = ()  # the persona's lifestyle and situation: reasons to be elsewhere


def _habits(persona: Persona) -> tuple[str, ...]:
    return tuple(text for text in (persona.lifestyle, persona.situation) if text)


def clean_activity(text: str) -> str:
    """A model's activity text in one script, whole words, no dangling last word; empty when it
    only copies the plan shown (a place "@ ...", or a free-time label such as "night at home").
    """
    cleaned = whole_words(one_script(one_line(text)), ACT_CHARS)
    if "@" in cleaned or any(label in cleaned.lower() for label in FREE_LABELS):
        return ""
    return cleaned


def _apply(
    blocks: Sequence[PlanBlock],
    answer: ChangesAnswer,
    scene: _Scene,
    window: tuple[int, int],
    check: PlanCheck,
) -> tuple[PlanBlock, ...]:
    """``blocks`` with each readable change laid over them inside ``[start, end)``, then the
    appointments laid over again (they win over a change that overlaps them)."""
    start, end = window
    home, commitments = scene.home, scene.commitments
    result = list(blocks)
    for change in answer.changes:
        first, last = parse_clock(change.start), parse_clock(change.end)
        if first is None or last is None:
            continue
        first, last = max(first, start), min(last, end)
        activity = clean_activity(change.act)
        if activity != one_line(change.act):
            check.text_fixes += 1
        if last <= first or not activity:
            continue
        slot = PlanBlock(start=first, end=last, activity=activity, place=change.place)
        result = overlay(result, slot)
    drafts = [Draft(b.start, b.end, b.activity, b.place) for b in result]
    laid = normalise_schedule(drafts, start=start, end=end, home=home)
    return keep_commitments(laid, commitments, start=start, home=home)


async def _changed_plan(
    llm: LanguageModel,
    scene: _Scene,
    shown: tuple[PlanBlock, ...],
    *,
    title: str,
    moment: str,
    start: int,
    end: int,
    purpose: str,
    check: PlanCheck,
    params: SamplingParams | None,
) -> tuple[PlanBlock, ...]:
    """Ask for changes to ``shown`` (the plan from ``start`` to ``end``), check them, repair once,
    fall back to the routine where rules are still broken."""
    assert scene.persona is not None
    variables = dict(
        places=bullet_list(scene.places),
        **persona_variables(scene.persona),
        title=title,
        plan=bullet_list([b.line() for b in shown]),
        memories=bullet_list(scene.memories),
        commitments=bullet_list([c.line() for c in scene.commitments]),
        moment=moment,
        problems="",
    )
    schema = changes_answer(scene.places)
    answer = await ask(
        llm,
        schema,
        "plan_changes",
        variables,
        purpose=purpose,
        max_tokens=CHANGES_MAX_TOKENS,
        params=params,
    )
    blocks = _apply(shown, answer, scene, (start, end), check)
    violations = _violations(blocks, scene, start)
    check.violations = [v.text for v in violations]
    if violations:
        check.repaired = True
        variables["problems"] = (
            "\nYour last answer broke these rules:\n"
            + bullet_list([v.text for v in violations])
            + "\nAnswer again without breaking them."
        )
        answer = await ask(
            llm,
            schema,
            "plan_changes",
            variables,
            purpose=f"{purpose}_repair",
            max_tokens=CHANGES_MAX_TOKENS,
            params=params,
        )
        blocks = _apply(shown, answer, scene, (start, end), check)
        violations = _violations(blocks, scene, start)
    return _fall_back(blocks, scene, violations, start, check)


def _violations(blocks: Sequence[PlanBlock], scene: _Scene, since: int) -> list[Violation]:
    return check_plan(
        blocks,
        scene.routine,
        allowed=scene.places,
        reasons=[*scene.habits, *scene.memories, *(c.line() for c in scene.commitments)],
        commitments=scene.commitments,
        since=since,
    )


def _fall_back(
    blocks: tuple[PlanBlock, ...],
    scene: _Scene,
    violations: Sequence[Violation],
    since: int,
    check: PlanCheck,
) -> tuple[PlanBlock, ...]:
    """The routine's day in every violating slot; the whole routine day if that still fails."""
    check.remaining = [v.text for v in violations]
    if not violations:
        return blocks
    check.fallbacks = [v.to_record() for v in violations]
    usual = _usual(scene, since)
    restored = fall_back(blocks, usual, violations, home=scene.home)
    if _violations(restored, scene, since):
        check.fallbacks.append({"start": format_clock(since), "end": "", "rule": "whole_day"})
        return usual
    return restored


def _usual(scene: _Scene, since: int) -> tuple[PlanBlock, ...]:
    """The routine's day with the appointments laid over it, from ``since`` on."""
    day = routine_day(scene.routine, scene.home)
    start = max(since, day[0].start)
    ahead = [b.model_copy(update={"start": max(b.start, start)}) for b in day if b.end > start]
    if not ahead:
        return day
    return keep_commitments(ahead, scene.commitments, start=start, home=scene.home)


async def plan_from_routine(
    llm: LanguageModel,
    persona: Persona,
    routine: Routine,
    *,
    day: date,
    home: str,
    places: Sequence[str],
    memories: Sequence[str] = (),
    commitments: Sequence[Commitment] = (),
    params: SamplingParams | None = None,
) -> tuple[DayPlan, PlanCheck]:
    """Plan one day: the routine's day, the appointments, and the model's changes (one call, and
    one repair call when the changes break a rule).

    >>> import asyncio
    >>> from societas.llm.fake import ScriptedLLM
    >>> routine = Routine.model_validate({"wake": "07:00", "sleep": "22:00",
    ...     "work": {"place": "shop:counter", "start": "09:00", "end": "17:00"},
    ...     "meals": [{"meal": "dinner", "time": "19:00", "place": "home:room"}]})
    >>> llm = ScriptedLLM(lambda call: {"changes": [
    ...     {"start": "17:30", "end": "18:30", "act": "walk in the park", "place": "park:lawn"}]})
    >>> plan, check = asyncio.run(plan_from_routine(llm, Persona(name="Ada", age=30), routine,
    ...     day=date(2023, 2, 13), home="home:room", places=["park:lawn", "shop:counter"]))
    >>> [b.line() for b in plan.blocks][1:5]  # doctest: +NORMALIZE_WHITESPACE
    ['09:00-17:00 work @ shop:counter', '17:00-17:30 evening at home @ home:room',
     '17:30-18:30 walk in the park @ park:lawn', '18:30-19:00 evening at home @ home:room']
    >>> check.violations
    []
    """
    allowed = tuple(dict.fromkeys([*places, home, *routine.places()]))
    today = [c for c in commitments if c.fixed]
    scene = _Scene(persona, routine, home, allowed, memories, today, _habits(persona))
    usual = _usual(scene, 0)
    start, end = usual[0].start, usual[-1].end
    check = PlanCheck(stage="day")
    blocks = await _changed_plan(
        llm,
        scene,
        usual,
        title="Your usual day, with your appointments",
        moment=f"Today is {day_text(day)}. What do you do differently today?",
        start=start,
        end=end,
        purpose="plan",
        check=check,
        params=params,
    )
    plan = DayPlan(day=day, wake=blocks[0].start, sleep=blocks[-1].end, home=home, blocks=blocks)
    return plan, check


async def replan_from_routine(
    llm: LanguageModel,
    persona: Persona,
    routine: Routine,
    plan: DayPlan,
    *,
    now: datetime,
    reason: str,
    places: Sequence[str],
    memories: Sequence[str] = (),
    commitments: Sequence[Commitment] = (),
    params: SamplingParams | None = None,
) -> tuple[DayPlan, PlanCheck]:
    """Change the rest of today's plan after something happened (one call, one repair call at
    most); the past stays as it was."""
    now_minute = minute_of_day(now)
    ahead = plan.remaining(now_minute)
    check = PlanCheck(stage="replan")
    if not ahead:
        return plan, check
    first = ahead[0].model_copy(update={"start": max(ahead[0].start, now_minute)})
    shown = (first, *ahead[1:])
    allowed = tuple(dict.fromkeys([*places, plan.home, *routine.places()]))
    later = [c for c in commitments if c.fixed and (c.start or 0) >= now_minute]
    scene = _Scene(persona, routine, plan.home, allowed, memories, later, _habits(persona))
    blocks = await _changed_plan(
        llm,
        scene,
        shown,
        title="Your plan for the rest of today",
        moment=(
            f"It is {moment_text(now)}. What changed: {one_line(reason) or 'something came up'}. "
            f"What do you change from {format_clock(first.start)} on?"
        ),
        start=first.start,
        end=shown[-1].end,
        purpose="replan",
        check=check,
        params=params,
    )
    return _joined(plan, blocks), check


def check_agreement(
    plan: DayPlan,
    routine: Routine,
    commitments: Sequence[Commitment],
    *,
    now: datetime,
    memories: Sequence[str] = (),
    allowed: Collection[str] = (),
) -> tuple[DayPlan, PlanCheck]:
    """Lay agreed appointments over the rest of ``plan`` (no model call) and check the result;
    slots that break a rule get the routine's day back."""
    now_minute = minute_of_day(now)
    check = PlanCheck(stage="agreement")
    ahead = plan.remaining(now_minute)
    if not ahead:
        return plan, check
    first = ahead[0].model_copy(update={"start": max(ahead[0].start, now_minute)})
    later = [c for c in commitments if c.fixed and (c.start or 0) >= now_minute]
    blocks = keep_commitments((first, *ahead[1:]), later, start=first.start, home=plan.home)
    places = tuple(dict.fromkeys([*allowed, *(b.place for b in plan.blocks), plan.home]))
    places = tuple(
        dict.fromkeys([*places, *routine.places(), *(c.place for c in later if c.place)])
    )
    scene = _Scene(None, routine, plan.home, places, memories, later)
    violations = _violations(blocks, scene, first.start)
    check.violations = [v.text for v in violations]
    blocks = _fall_back(blocks, scene, violations, first.start, check)
    return _joined(plan, blocks), check


def _joined(plan: DayPlan, ahead: Sequence[PlanBlock]) -> DayPlan:
    """``plan`` up to where ``ahead`` starts, then ``ahead``."""
    start = ahead[0].start
    past = [b.model_copy(update={"end": min(b.end, start)}) for b in plan.blocks if b.start < start]
    if past and past[-1].end < start:
        past[-1] = past[-1].model_copy(update={"end": start})
    drafts = [Draft(b.start, b.end, b.activity, b.place) for b in [*past, *ahead]]
    wake = min(plan.wake, start)
    blocks = normalise_schedule(drafts, start=wake, end=ahead[-1].end, home=plan.home)
    return DayPlan(day=plan.day, wake=wake, sleep=blocks[-1].end, home=plan.home, blocks=blocks)
