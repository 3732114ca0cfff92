"""Appointments are the agent's own decisions: remembered as plans, weighed again before.

An agreement from a conversation becomes a dated :class:`~societas.agents.cognition.planning.
Commitment` and a plan memory ("I plan to go to the party at Bluebird Cafe at 17:00 today");
shortly before it starts the agent decides, from its own memories, whether it still goes (ONE
short call). Declining gives the slot back to the routine. Nothing here schedules anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from societas.agents.cognition.plan_rules import Violation, fall_back, routine_day
from societas.agents.cognition.planning import (
    FREE_TIME,
    Commitment,
    DayPlan,
    PlanBlock,
    overlay,
)
from societas.agents.cognition.schemas import (
    ask,
    bullet_list,
    format_clock,
    minute_of_day,
    moment_text,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import capped_words
from societas.world.routine import Routine

DECIDE_MAX_TOKENS = 60
WHY_CHARS = 100


class KeepAnswer(BaseModel):
    """The answer of ``keep_appointment.yaml``."""

    go: Literal["yes", "no"]
    why: str = Field(max_length=160, description="one short sentence")


@dataclass(frozen=True)
class Decision:
    """Whether the agent still goes, and why (its own words, cleaned)."""

    go: bool
    why: str

    def to_record(self, commitment: Commitment) -> dict[str, object]:
        """The ``commitment_decision`` event's data."""
        return {
            "description": commitment.description,
            "start": format_clock(commitment.start) if commitment.start is not None else None,
            "place": commitment.place,
            "go": self.go,
            "reason": self.why,
        }

    def memory(self, commitment: Commitment) -> str:
        """What the agent remembers of declining."""
        because = f": {self.why}" if self.why else ""
        return f"I decided not to go to {commitment.description}{because}"


def same_appointment(a: Commitment, b: Commitment) -> bool:
    """The same agreement (whether or not decided on yet)."""
    return (a.description, a.place, a.start, a.day) == (b.description, b.place, b.start, b.day)


def appointment_memory(commitment: Commitment) -> str:
    """The plan memory of an agreement, e.g. "I plan to: party at the cafe, at 17:00 today
    at Bluebird Cafe:dining room"."""
    when = f", at {format_clock(commitment.start)}" if commitment.start is not None else ""
    day = f" on {commitment.day:%A}" if commitment.day is not None else ""
    where = f" at {commitment.place}" if commitment.place else ""
    return f"I agreed to: {commitment.description}{when}{day}{where}"


async def decide_commitment(
    llm: LanguageModel,
    persona: Persona,
    commitment: Commitment,
    *,
    now: datetime,
    memories: Sequence[str],
    routine: Routine | None,
    home: str,
    params: SamplingParams | None = None,
) -> Decision:
    """Does the agent still go? ONE short call from its own point of view; it may decline."""
    instead = _instead(commitment, routine, home)
    answer = await ask(
        llm,
        KeepAnswer,
        "keep_appointment",
        dict(
            **persona_variables(persona),
            memories=bullet_list(memories),
            now=moment_text(now),
            appointment=commitment.line(),
            instead=instead,
        ),
        purpose="commitment_decision",
        max_tokens=DECIDE_MAX_TOKENS,
        params=params,
    )
    return Decision(go=answer.go == "yes", why=capped_words(answer.why, WHY_CHARS))


def _instead(commitment: Commitment, routine: Routine | None, home: str) -> str:
    """What the routine has at the appointment's time (what the agent would do otherwise)."""
    if routine is None or commitment.start is None:
        return FREE_TIME
    for block in routine_day(routine, home):
        if block.start <= commitment.start < block.end:
            return f"{block.activity} @ {block.place}"
    return "sleeping"


def without_appointment(
    plan: DayPlan, commitment: Commitment, routine: Routine | None, now: datetime
) -> DayPlan:
    """``plan`` with the appointment's slot (from now on) given back to the routine's day, or to
    free time at home for an agent without a routine."""
    if commitment.start is None:
        return plan
    start = max(commitment.start, minute_of_day(now))
    end = min(commitment.start + commitment.minutes, plan.sleep)
    if end <= start:
        return plan
    if routine is not None:
        usual = routine_day(routine, plan.home)
        blocks = fall_back(
            plan.blocks, usual, [Violation(start, end, "declined", "")], home=plan.home
        )
    else:
        slot = PlanBlock(start=start, end=end, activity=FREE_TIME, place=plan.home)
        blocks = tuple(overlay(plan.blocks, slot))
    return DayPlan(
        day=plan.day, wake=blocks[0].start, sleep=blocks[-1].end, home=plan.home, blocks=blocks
    )
