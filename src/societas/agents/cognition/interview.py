"""In-character answers: free-text interviews and survey questions with constrained answers.

``societas interview DIR AGENT "question"`` uses :func:`answer_in_character`; surveys use
:func:`answer_choice` (one of the given options, as a schema enum) and :func:`answer_scale` (an
integer in a range, as a schema minimum/maximum). All ground the answer in the persona and the
retrieved memories given as strings; ``sample_index`` draws deliberate repeated samples.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: {"answer": "Yes", "why": "I love parties"})
>>> asyncio.run(answer_choice(llm, Persona(name="Ada", age=30), "Will you go?", ["Yes", "No"]))
SurveyChoice(option='Yes', reason='I love parties')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from societas.agents.cognition.schemas import (
    ask,
    bullet_list,
    model_text,
    moment_text,
    one_line,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.narrowing import Between, Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams

INTERVIEW_MAX_TOKENS = 160
SURVEY_MAX_TOKENS = 50


class InterviewAnswer(BaseModel):
    """The answer of ``answer.yaml``."""

    answer: str = Field(max_length=400)


class ChoiceAnswer(BaseModel):
    """The answer of ``answer_choice.yaml`` (``answer`` is narrowed to the options)."""

    answer: str
    why: str = Field(max_length=100)


class ScaleAnswer(BaseModel):
    """The answer of ``answer_scale.yaml`` (``answer`` is bounded to the scale)."""

    answer: int
    why: str = Field(max_length=100)


class SurveyChoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    option: str
    reason: str


class SurveyScale(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: int
    reason: str


def choice_answer(options: tuple[str, ...]) -> Narrowed[ChoiceAnswer]:
    return narrow(ChoiceAnswer, {"answer": options})


def scale_answer(low: int, high: int) -> Narrowed[ScaleAnswer]:
    return narrow(ScaleAnswer, {"answer": Between(ge=low, le=high)})


def _context(persona: Persona, memories: Sequence[str], now: datetime | None) -> dict[str, str]:
    return {
        **persona_variables(persona),
        "memories": bullet_list(memories),
        "now": moment_text(now) if now else "now",
    }


def stimulus_text(stimulus: str) -> str:
    """What the respondent just saw, placed first in a survey prompt (empty when nothing)."""
    return f"Just before this question: {one_line(stimulus)}\n\n" if stimulus.strip() else ""


def survey_context(
    persona: Persona, memories: Sequence[str], now: datetime | None, stimulus: str
) -> dict[str, str]:
    """The variables of a survey template: the stimulus, the persona and the memories (the
    stimulus is left out of the memories, so it is not shown twice)."""
    told = one_line(stimulus)
    kept = [m for m in memories if one_line(m) != told] if told else list(memories)
    return {**_context(persona, kept, now), "stimulus": stimulus_text(stimulus)}


def scale_text(low: int, high: int, ends: str, show_range: bool) -> str:
    """The scale line of a numeric question: printed only when the instrument has one."""
    if show_range:
        return f"Scale: {low} to {high} ({ends})."
    return "Answer with a whole number."


async def answer_in_character(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    *,
    memories: Sequence[str] = (),
    now: datetime | None = None,
    activity: str = "",
    purpose: str = "interview",
    params: SamplingParams | None = None,
    sample_index: int = 0,
) -> str:
    """The agent's first-person answer (at most 400 characters) to a free-text question."""
    if not question.strip():
        raise ValueError("the interview question is empty")
    answer = await ask(
        llm,
        InterviewAnswer,
        "answer",
        dict(
            **_context(persona, memories, now),
            activity=one_line(activity) or "going about your day",
            question=one_line(question),
        ),
        purpose=purpose,
        max_tokens=INTERVIEW_MAX_TOKENS,
        params=params,
        sample_index=sample_index,
    )
    return model_text(answer.answer)


async def answer_choice(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    options: Sequence[str],
    *,
    memories: Sequence[str] = (),
    now: datetime | None = None,
    purpose: str = "survey",
    params: SamplingParams | None = None,
    sample_index: int = 0,
    stimulus: str = "",
) -> SurveyChoice:
    """The agent picks exactly one of ``options`` (enforced by the schema, shown in the order
    given) and says why; ``stimulus`` is what the respondent just saw, shown first."""
    allowed = tuple(dict.fromkeys(o for o in options if o.strip()))
    if len(allowed) < 2:
        raise ValueError(f"a choice question needs at least two distinct options, got {options!r}")
    answer = await ask(
        llm,
        choice_answer(allowed),
        "answer_choice",
        dict(
            **survey_context(persona, memories, now, stimulus),
            question=one_line(question),
            options=bullet_list(allowed),
        ),
        purpose=purpose,
        max_tokens=SURVEY_MAX_TOKENS + max(len(o) for o in allowed) // 2,
        params=params,
        sample_index=sample_index,
    )
    return SurveyChoice(option=answer.answer, reason=model_text(answer.why))


async def answer_scale(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    low: int,
    high: int,
    *,
    low_label: str = "",
    high_label: str = "",
    memories: Sequence[str] = (),
    now: datetime | None = None,
    purpose: str = "survey",
    params: SamplingParams | None = None,
    sample_index: int = 0,
    stimulus: str = "",
    show_range: bool = True,
) -> SurveyScale:
    """The agent answers with an integer in ``[low, high]`` (enforced by the schema) and says why.

    ``low_label``/``high_label`` say what the ends mean ("strongly disagree", ...);
    ``show_range=False`` keeps the range out of the prompt (an open estimate: a printed range
    would be an anchor), the schema still bounds the answer. ``stimulus`` is shown first.
    """
    if low >= high:
        raise ValueError(f"a scale needs low < high, got {low}..{high}")
    ends = f"{low} = {low_label or 'lowest'}, {high} = {high_label or 'highest'}"
    answer = await ask(
        llm,
        scale_answer(low, high),
        "answer_scale",
        dict(
            **survey_context(persona, memories, now, stimulus),
            question=one_line(question),
            scale=scale_text(low, high, ends, show_range),
        ),
        purpose=purpose,
        max_tokens=SURVEY_MAX_TOKENS,
        params=params,
        sample_index=sample_index,
    )
    return SurveyScale(value=answer.answer, reason=model_text(answer.why))
