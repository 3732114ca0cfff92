"""Survey instruments: each outcome asked in character, grounded in the agent's own memories.

For every question the agent recalls the memories that best match it (without refreshing them, so
asking does not change the agent), then answers with one schema-constrained call:
``likert`` and ``numeric`` through :func:`answer_scale`, ``choice`` through :func:`answer_choice`,
``open`` through :func:`answer_in_character` plus one judge call (purpose ``grade``) that scores
the answer 1-5 against the rubric. :func:`survey` asks many agents at once.

Instrument rules: choice options are shown in a random order per respondent (recorded in
``Measurement.shown``); a numeric question prints its range only when the file says
``show_range: true`` (the original printed one); the arm's stimulus is placed first in the prompt
(recorded in ``stimulus_shown``), not left to memory retrieval. The answer mode
(:mod:`.answer_modes`) decides whether an answer is the model's most likely one, a draw from its
token probabilities or a draw from a distribution the respondent states (recorded in ``stated``).

Examples
--------
>>> import asyncio
>>> from datetime import datetime
>>> from societas.agents.persona import Persona
>>> from societas.llm.fake import ScriptedLLM
>>> from societas.experiments.spec import NumericOutcome
>>> llm = ScriptedLLM(lambda call: {"answer": 7, "why": "busy week"})
>>> agent = Agent(persona=Persona(name="Ada Quist", age=30), home="")
>>> outcome = NumericOutcome(id="hours", type="numeric", question="Hours of sleep?", min=0, max=12)
>>> asyncio.run(measure(llm, agent, outcome, datetime(2026, 1, 1))).value
7.0
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from societas.agents.agent import Agent
from societas.agents.cognition.interview import answer_choice, answer_in_character, answer_scale
from societas.agents.cognition.schemas import bounded_params, model_text, one_line
from societas.agents.cognition.stated import (
    state_distribution,
    state_quantiles,
    token_distribution,
)
from societas.experiments.answer_modes import (
    AnswerMode,
    draw_from_quantiles,
    draw_option,
    respondent_rng,
    sampling_for,
    shuffled,
)
from societas.experiments.spec import (
    ChoiceOutcome,
    LikertOutcome,
    NumericOutcome,
    OpenOutcome,
)
from societas.llm.types import LanguageModel, LLMOutputError
from societas.memory.retrieval import RetrievalWeights
from societas.prompts import load_prompt

GRADE_MAX_TOKENS = 40
AnyOutcome = LikertOutcome | ChoiceOutcome | NumericOutcome | OpenOutcome


class GradeAnswer(BaseModel):
    """The answer of ``grade_answer.yaml``."""

    score: int = Field(ge=1, le=5)
    why: str = Field(max_length=100)


@dataclass(frozen=True)
class Measurement:
    """One answer: ``value`` is the number analysed (scale point, 1/0 for the success option,
    the judge's score); ``answer`` what the agent said; ``reason`` why.

    ``error`` says why there is no answer (the model gave no valid one even after its repair and
    fresh asks); ``value`` is then NaN, and the analysis leaves the measurement out (the validity
    scorecard counts it as attrition). ``shown`` is the option order the respondent saw;
    ``stated`` the probabilities behind a drawn answer: stated by the respondent (or its
    low/typical/high numbers) in mode ``stated``, the model's token probabilities in ``token``;
    ``stimulus_shown`` whether the arm's stimulus was in the prompt; ``mode`` the answer mode.
    """

    value: float
    answer: str
    reason: str
    error: str | None = None
    shown: tuple[str, ...] = ()
    stated: dict[str, float] | None = None
    stimulus_shown: bool = False
    mode: str = "mode"

    @classmethod
    def failed(
        cls, error: LLMOutputError, mode: str = "mode", stimulus_shown: bool = False
    ) -> Measurement:
        return cls(math.nan, "", "", error=str(error), stimulus_shown=stimulus_shown, mode=mode)


@dataclass(frozen=True)
class Asking:
    """How one question is put: the answer mode, the stimulus shown first, the seeded rng."""

    mode: AnswerMode = "mode"
    stimulus: str = ""
    rng: np.random.Generator | None = None

    def generator(self) -> np.random.Generator:
        return self.rng if self.rng is not None else np.random.default_rng(0)


async def measure(
    llm: LanguageModel,
    agent: Agent,
    outcome: AnyOutcome,
    now: datetime,
    *,
    memories: int = 4,
    sample_index: int = 0,
    asking: Asking | None = None,
) -> Measurement:
    """Ask ``agent`` one outcome question in character (see :class:`Asking`)."""
    how = asking or Asking()
    rng = how.generator()
    recalled = await agent.recall(
        llm, outcome.question, now, k=memories, weights=RetrievalWeights(), touch=False
    )
    common: dict[str, Any] = dict(
        memories=recalled, now=now, sample_index=sample_index, stimulus=how.stimulus
    )
    shown = bool(how.stimulus.strip())
    persona = agent.persona
    if isinstance(outcome, LikertOutcome):
        labels = outcome.scale_labels
        if how.mode in ("stated", "token"):
            points = [f"{i + 1} ({label})" for i, label in enumerate(labels)]
            if how.mode == "stated":
                said = await state_distribution(llm, persona, outcome.question, points, **common)
                chances, reason = said.probabilities, said.reason
            else:
                chances = await token_distribution(llm, persona, outcome.question, points, **common)
                reason = ""
            value = points.index(draw_option(rng, chances)) + 1
            return Measurement(
                float(value),
                labels[value - 1],
                reason,
                stated=dict(chances),
                stimulus_shown=shown,
                mode=how.mode,
            )
        scale = await answer_scale(
            llm,
            persona,
            outcome.question,
            1,
            outcome.points,
            low_label=labels[0],
            high_label=labels[-1],
            params=sampling_for(how.mode, rng),
            **common,
        )
        return Measurement(
            float(scale.value),
            labels[scale.value - 1],
            scale.reason,
            stimulus_shown=shown,
            mode=how.mode,
        )
    if isinstance(outcome, NumericOutcome):
        if how.mode == "stated":
            told = await state_quantiles(
                llm,
                persona,
                outcome.question,
                outcome.min,
                outcome.max,
                show_range=outcome.show_range,
                **common,
            )
            drawn = draw_from_quantiles(float(rng.uniform()), told.low, told.typical, told.high)
            number = min(outcome.max, max(outcome.min, round(drawn)))
            numbers = {"low": told.low, "typical": told.typical, "high": told.high}
            return Measurement(
                float(number),
                str(number),
                told.reason,
                stated={k: float(v) for k, v in numbers.items()},
                stimulus_shown=shown,
                mode=how.mode,
            )
        scale = await answer_scale(
            llm,
            persona,
            outcome.question,
            outcome.min,
            outcome.max,
            show_range=outcome.show_range,
            params=sampling_for(how.mode, rng),
            **common,
        )
        return Measurement(
            float(scale.value),
            str(scale.value),
            scale.reason,
            stimulus_shown=shown,
            mode=how.mode,
        )
    if isinstance(outcome, ChoiceOutcome):
        order = shuffled(outcome.options, rng)
        probabilities: dict[str, float] | None
        if how.mode == "stated":
            stated = await state_distribution(llm, persona, outcome.question, order, **common)
            option = draw_option(rng, stated.probabilities)
            reason, probabilities = stated.reason, dict(stated.probabilities)
        elif how.mode == "token":
            probabilities = await token_distribution(
                llm, persona, outcome.question, order, **common
            )
            option, reason = draw_option(rng, probabilities), ""
        else:
            choice = await answer_choice(
                llm,
                persona,
                outcome.question,
                order,
                params=sampling_for(how.mode, rng),
                **common,
            )
            option, reason, probabilities = choice.option, choice.reason, None
        success = 1.0 if option in outcome.success_options else 0.0
        return Measurement(
            success,
            option,
            reason,
            shown=order,
            stated=probabilities,
            stimulus_shown=shown,
            mode=how.mode,
        )
    text = await answer_in_character(
        llm,
        persona,
        outcome.question,
        memories=recalled,
        now=now,
        purpose="survey",
        sample_index=sample_index,
    )
    grade = await grade_answer(llm, outcome, text, sample_index=sample_index)
    return Measurement(float(grade.score), text, model_text(grade.why))


async def grade_answer(
    llm: LanguageModel, outcome: OpenOutcome, answer: str, *, sample_index: int = 0
) -> GradeAnswer:
    """Score a free answer 1-5 against the outcome's rubric (one call, purpose ``grade``).

    The judge samples at temperature 0: a grade should depend on the answer, not on chance.
    """
    messages = load_prompt("societas.experiments", "grade_answer").render(
        rubric=one_line(outcome.rubric),
        question=one_line(outcome.question),
        answer=one_line(answer) or "(no answer)",
    )
    return await llm.generate(
        messages,
        GradeAnswer,
        purpose="grade",
        params=bounded_params(None, GRADE_MAX_TOKENS, temperature=0.0),
        sample_index=sample_index,
    )


async def measure_all(
    llm: LanguageModel,
    agent: Agent,
    outcomes: Sequence[AnyOutcome],
    now: datetime,
    *,
    memories: int = 4,
    replicates: int = 1,
    mode: AnswerMode = "mode",
    stimulus: str = "",
    seed: int = 0,
) -> list[tuple[str, int, Measurement]]:
    """Every outcome, ``replicates`` times each: ``(outcome id, replicate, measurement)``.

    Replicates are deliberate repeated samples of the same prompt (``sample_index``). A question
    the model cannot answer validly becomes a failed :class:`Measurement` and the others go on; an
    unreachable model (:class:`~societas.llm.types.LLMUnavailableError`) still stops the survey,
    which resumes later. ``stimulus`` (what the agent was just shown) is placed first in every
    prompt; option orders and drawn answers come from :func:`respondent_rng` with ``seed``.
    """
    jobs = [(o, r) for o in outcomes for r in range(replicates)]

    async def one(outcome: AnyOutcome, replicate: int) -> Measurement:
        rng = respondent_rng(seed, agent.name, outcome.id, replicate)
        asking = Asking(mode=mode, stimulus=stimulus, rng=rng)
        try:
            return await measure(
                llm, agent, outcome, now, memories=memories, sample_index=replicate, asking=asking
            )
        except LLMOutputError as error:
            return Measurement.failed(error, mode, stimulus_shown=bool(stimulus.strip()))

    answers = await asyncio.gather(*(one(o, r) for o, r in jobs))
    return [(o.id, r, m) for (o, r), m in zip(jobs, answers, strict=True)]


async def survey(
    llm: LanguageModel,
    agents: Sequence[Agent],
    outcomes: Sequence[AnyOutcome],
    now: datetime,
    *,
    memories: int = 4,
    replicates: int = 1,
    mode: AnswerMode = "mode",
    seed: int = 0,
) -> dict[str, list[tuple[str, int, Measurement]]]:
    """Every agent's answers to every outcome, all asked concurrently (name -> answers)."""
    answers = await asyncio.gather(
        *(
            measure_all(
                llm,
                a,
                outcomes,
                now,
                memories=memories,
                replicates=replicates,
                mode=mode,
                seed=seed,
            )
            for a in agents
        )
    )
    return {agent.name: rows for agent, rows in zip(agents, answers, strict=True)}
