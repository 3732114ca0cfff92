"""Reacting to what an agent perceives: continue, talk to someone visible, or replan; ONE call.

The engine decides when something is new enough to ask (gating); this module makes the one call
count: the prompt carries what the agent remembers about everyone it sees, and the answer's
target can only name one of them.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: {"why": "I want to invite her", "do": "talk", "who": "Bo Lin",
...                                 "act": "none", "at": "none", "mins": 15})
>>> reaction = asyncio.run(decide_reaction(
...     llm, Persona(name="Ada Quist", age=30), now=datetime(2023, 2, 13, 9, 0),
...     activity="opening the shop", observation="Bo Lin is walking by",
...     visible=[SeenAgent(name="Bo Lin", activity="walking")]))
>>> reaction.choice, reaction.target
('talk', 'Bo Lin')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from societas.agents.cognition.schemas import (
    NONE,
    ask,
    bullet_list,
    choice_or_none,
    model_text,
    moment_text,
    one_line,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.narrowing import Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import capped_words

Choice = Literal["continue", "talk", "replan"]
CHOICES: tuple[Choice, ...] = ("continue", "talk", "replan")
REACT_MAX_TOKENS = 110
WHY_CHARS = 80
ACT_CHARS = 50
MEMORIES_PER_AGENT = 4
DETOUR_MINUTES = (15, 120)


class SeenAgent(BaseModel):
    """Someone the agent perceives, with what it remembers about them (most relevant first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    activity: str = ""
    memories: tuple[str, ...] = ()

    def line(self) -> str:
        doing = f", {self.activity}" if self.activity else ""
        known = "; ".join(one_line(m) for m in self.memories[:MEMORIES_PER_AGENT])
        return f"- {self.name}{doing}. You remember: {known or 'nothing'}"


class Reaction(BaseModel):
    """The decision, as the run store's ``reaction`` event records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    choice: Choice
    target: str | None = None
    reason: str = ""
    # A "replan" may name what to do now, where and for how long: the engine then lays this
    # detour over the plan without a second model call.
    detour: str = ""
    place: str | None = None
    minutes: int = Field(default=30, ge=DETOUR_MINUTES[0], le=DETOUR_MINUTES[1])

    def to_record(self) -> dict[str, str | int | None]:
        record: dict[str, str | int | None] = {
            "choice": self.choice,
            "target": self.target,
            "reason": self.reason,
        }
        if self.choice == "replan" and self.detour:
            record.update(detour=self.detour, place=self.place, minutes=self.minutes)
        return record


class ReactionAnswer(BaseModel):
    """The answer of ``react.yaml`` (``do`` and ``who`` are narrowed at call time)."""

    why: str = Field(max_length=WHY_CHARS)
    do: str
    who: str
    act: str = Field(max_length=ACT_CHARS)
    at: str
    mins: int = Field(ge=DETOUR_MINUTES[0], le=DETOUR_MINUTES[1])


def reaction_answer(
    choices: tuple[str, ...], names: tuple[str, ...], places: tuple[str, ...] = ()
) -> Narrowed[ReactionAnswer]:
    """``ReactionAnswer`` allowing ``choices``, a target among ``names`` or ``"none"`` and a
    detour place among ``places`` or ``"none"``."""
    return narrow(ReactionAnswer, {"do": choices, "who": (*names, NONE), "at": (*places, NONE)})


async def decide_reaction(
    llm: LanguageModel,
    persona: Persona,
    *,
    now: datetime,
    activity: str,
    observation: str,
    visible: Sequence[SeenAgent] = (),
    place: str = "",
    places: Sequence[str] = (),
    allow_talk: bool = True,
    params: SamplingParams | None = None,
) -> Reaction:
    """Decide in ONE call how ``persona`` reacts to ``observation``.

    ``visible`` are the agents in view (the only possible targets); ``allow_talk=False`` (e.g.
    during a talk cooldown) removes "talk" from the choices. A "talk" without a target goes to
    the only visible agent, or becomes "continue" when there is no single one to pick.
    ``places`` are where a "replan" may send the agent at once (its detour: what, where, how
    long); a replan without a usable detour leaves the rewriting to a full replan.
    """
    names = tuple(dict.fromkeys(agent.name for agent in visible))
    allowed_places = tuple(dict.fromkeys(p for p in places if p and p != NONE))
    can_talk = allow_talk and bool(names)
    choices = CHOICES if can_talk else tuple(c for c in CHOICES if c != "talk")
    answer = await ask(
        llm,
        reaction_answer(choices, names, allowed_places),
        "react",
        dict(
            **persona_variables(persona),
            now=moment_text(now),
            activity=one_line(activity) or "nothing in particular",
            place=place or "where you are",
            observation=one_line(observation),
            people="\n".join(agent.line() for agent in visible) or "(nobody)",
            choices=", ".join(f'"{c}"' for c in choices),
            places=bullet_list(allowed_places) if allowed_places else "(none)",
        ),
        purpose="react",
        max_tokens=REACT_MAX_TOKENS,
        params=params,
    )
    return _settle(answer, names)


def _settle(answer: ReactionAnswer, names: tuple[str, ...]) -> Reaction:
    choice = _as_choice(answer.do)
    target = choice_or_none(answer.who)
    if choice == "talk" and target is None:
        if len(names) == 1:
            target = names[0]
        else:
            choice = "continue"
    act = model_text(capped_words(answer.act, ACT_CHARS))
    # "none" is the prompt's word for no detour, not an activity to put in the plan.
    detour = act if choice == "replan" and act.lower().strip(".") != NONE else ""
    place = choice_or_none(answer.at) if detour else None
    return Reaction(
        choice=choice,
        target=target,
        reason=model_text(capped_words(answer.why, WHY_CHARS)),
        detour=detour if place else "",
        place=place,
        **({"minutes": answer.mins} if place else {}),
    )


def _as_choice(value: str) -> Choice:
    for choice in CHOICES:
        if value == choice:
            return choice
    raise ValueError(f"unknown reaction choice {value!r}")
