"""Stated answer distributions: the respondent says how likely each answer is.

Instead of one answer, :func:`state_distribution` asks for a percent chance per lettered option
(schema-constrained: one integer key per letter) and :func:`state_quantiles` for a low, typical
and high number. The caller draws the answer from what was stated with its own seeded rng, so
a population gets the spread its members state (Meister, Guestrin & Hashimoto, NAACL 2025 found
stated distributions closer to real groups' answers than sampled or next-token answers).

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: {"A": 70, "B": 30, "why": "usually"})
>>> stated = asyncio.run(state_distribution(llm, Persona(name="Ada", age=30), "Go?", ["Yes", "No"]))
>>> stated.probabilities
{'Yes': 0.7, 'No': 0.3}
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from societas.agents.cognition.interview import SURVEY_MAX_TOKENS, scale_text, survey_context
from societas.agents.cognition.schemas import ask, model_text, one_line, render_prompt
from societas.agents.persona import Persona
from societas.llm.narrowing import Between, Narrowed, narrow
from societas.llm.types import (
    LanguageModel,
    LLMConfigError,
    LLMOutputError,
    SamplingParams,
    TokenProbabilityModel,
)

LETTERS = string.ascii_uppercase
PER_OPTION_TOKENS = 8


class StatedDistribution(BaseModel):
    """The answer of ``answer_distribution.yaml`` for two options (wider ones add letters)."""

    A: int = Field(ge=0, le=100)
    B: int = Field(ge=0, le=100)
    why: str = Field(max_length=100)


class LetterAnswer(BaseModel):
    """The answer of ``answer_letter.yaml``: one option letter (only its first-token
    probabilities are read)."""

    letter: str = Field(max_length=1)


class StatedQuantiles(BaseModel):
    """The answer of ``answer_quantiles.yaml``."""

    low: int
    typical: int
    high: int
    why: str = Field(max_length=100)


class StatedChoice(BaseModel):
    """Probabilities per option (summing to 1, in the order shown) and the reason given."""

    model_config = ConfigDict(frozen=True)

    probabilities: dict[str, float]
    reason: str


class StatedRange(BaseModel):
    """A stated low (10th percentile), typical (median) and high (90th percentile) number."""

    model_config = ConfigDict(frozen=True)

    low: int
    typical: int
    high: int
    reason: str


@cache
def distribution_model(count: int) -> type[BaseModel]:
    """A model with one 0-100 integer per option letter, then ``why``."""
    if count == 2:
        return StatedDistribution
    fields: dict[str, Any] = {letter: (int, Field(ge=0, le=100)) for letter in LETTERS[:count]}
    fields["why"] = (str, Field(max_length=100))
    model: type[BaseModel] = create_model(f"StatedDistribution{count}", **fields)
    return model


def lettered(options: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}) {one_line(o)}" for i, o in enumerate(options))


async def state_distribution(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    options: Sequence[str],
    *,
    memories: Sequence[str] = (),
    now: datetime | None = None,
    stimulus: str = "",
    purpose: str = "survey",
    params: SamplingParams | None = None,
    sample_index: int = 0,
) -> StatedChoice:
    """The respondent's percent chance of each option (shown lettered, in the order given),
    normalised to probabilities; all zeros is no answer (:class:`LLMOutputError`)."""
    allowed = tuple(dict.fromkeys(o for o in options if o.strip()))
    if not 2 <= len(allowed) <= len(LETTERS):
        raise ValueError(f"a stated distribution needs 2 to 26 distinct options, got {options!r}")
    answer = await ask(
        llm,
        distribution_model(len(allowed)),
        "answer_distribution",
        dict(
            **survey_context(persona, memories, now, stimulus),
            question=one_line(question),
            options=lettered(allowed),
        ),
        purpose=purpose,
        max_tokens=SURVEY_MAX_TOKENS + PER_OPTION_TOKENS * len(allowed),
        params=params,
        sample_index=sample_index,
    )
    chances = [float(getattr(answer, LETTERS[i])) for i in range(len(allowed))]
    total = sum(chances)
    if total <= 0:
        raise LLMOutputError("every stated chance is 0", raw=answer.model_dump_json())
    return StatedChoice(
        probabilities={o: c / total for o, c in zip(allowed, chances, strict=True)},
        reason=model_text(str(getattr(answer, "why", ""))),
    )


async def token_distribution(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    options: Sequence[str],
    *,
    memories: Sequence[str] = (),
    now: datetime | None = None,
    stimulus: str = "",
    purpose: str = "survey",
    params: SamplingParams | None = None,
    sample_index: int = 0,
) -> dict[str, float]:
    """The model's own probability of each option (shown lettered, in the order given): its
    first-token probabilities over the option letters, renormalised. Needs a model that reports
    token probabilities (:class:`LLMConfigError` otherwise)."""
    allowed = tuple(dict.fromkeys(o for o in options if o.strip()))
    if not 2 <= len(allowed) <= len(LETTERS):
        raise ValueError(f"a token distribution needs 2 to 26 distinct options, got {options!r}")
    if not isinstance(llm, TokenProbabilityModel):
        raise LLMConfigError("answer mode 'token' needs a model that reports token probabilities")
    messages = render_prompt(
        "answer_letter",
        **survey_context(persona, memories, now, stimulus),
        question=one_line(question),
        options=lettered(allowed),
    )
    letters = [LETTERS[i] for i in range(len(allowed))]
    shares = await llm.choice_probabilities(
        messages, letters, purpose=purpose, params=params, sample_index=sample_index
    )
    return {option: shares[letter] for option, letter in zip(allowed, letters, strict=True)}


def quantiles_answer(low: int, high: int) -> Narrowed[StatedQuantiles]:
    bound = Between(ge=low, le=high)
    return narrow(StatedQuantiles, {"low": bound, "typical": bound, "high": bound})


async def state_quantiles(
    llm: LanguageModel,
    persona: Persona,
    question: str,
    low: int,
    high: int,
    *,
    show_range: bool = False,
    memories: Sequence[str] = (),
    now: datetime | None = None,
    stimulus: str = "",
    purpose: str = "survey",
    params: SamplingParams | None = None,
    sample_index: int = 0,
) -> StatedRange:
    """A low, typical and high answer in ``[low, high]`` (sorted, so low <= typical <= high)."""
    answer = await ask(
        llm,
        quantiles_answer(low, high),
        "answer_quantiles",
        dict(
            **survey_context(persona, memories, now, stimulus),
            question=one_line(question),
            scale=scale_text(low, high, f"{low} = lowest, {high} = highest", show_range),
        ),
        purpose=purpose,
        max_tokens=SURVEY_MAX_TOKENS + 3 * PER_OPTION_TOKENS,
        params=params,
        sample_index=sample_index,
    )
    points = sorted([answer.low, answer.typical, answer.high])
    return StatedRange(
        low=points[0], typical=points[1], high=points[2], reason=model_text(answer.why)
    )
