"""Believability interviews of a finished run (the Generative Agents paper's evaluation).

:func:`evaluate_run` reads a run's ground truth, asks every agent the questions of
:mod:`.questions` in character (grounded in what the architecture of that run
allows it to know), grades each answer by rule or by the model judge, and returns the graded
items; :mod:`.stats` aggregates them and :mod:`.report` writes tables
and an HTML report.

What an interviewed agent is given follows the run's architecture switches, like everything the
agent did during the run: its retrieved memories only with ``memory`` on, its plan for the day only
with ``planning`` on (reflections exist only with ``reflection`` on).

Example (on a run recorded in ``runs/duo``)::

    async with open_llm("smollm2-135m") as llm:
        evaluation = await evaluate_run("runs/duo", llm)
    print(evaluation.items[0].category, evaluation.items[0].score)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from societas.agents.agent import Agent
from societas.agents.cognition.interview import answer_in_character
from societas.evaluation.believability.controls import (
    CONTROLS,
    control_interviewees,
    shuffled_donors,
)
from societas.evaluation.believability.facts import RunFacts, read_run
from societas.evaluation.believability.grading import grade_rule
from societas.evaluation.believability.judge import judge_answer, judge_score
from societas.evaluation.believability.judge_calibration import (
    JudgeReport,
    calibrate_judge,
    judge_caveats,
    load_calibration,
)
from societas.evaluation.believability.questions import (
    DEFAULT_PER_CATEGORY,
    JUDGE,
    Category,
    Question,
    generate_questions,
)
from societas.evaluation.believability.text import clock_phrase
from societas.llm.types import LanguageModel, LLMError
from societas.memory.retrieval import RetrievalWeights

MEMORIES_PER_QUESTION = 8
INTERVIEW_PURPOSE = "believability"


class GradedItem(BaseModel):
    """One interview question, the agent's answer and its grade.

    ``score`` is in [0, 1], or None when no answer or no grade could be had (a model error,
    given in ``reason``); ``method`` says who graded: a ``rule`` (``grader`` names it) or the
    model ``judge``.
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    category: Category
    question_id: str
    question: str
    answer: str
    expected: dict[str, Any]
    method: Literal["rule", "judge"]
    grader: str
    score: float | None = Field(ge=0.0, le=1.0)
    hallucinated: bool
    reason: str


class Evaluation(BaseModel):
    """Every graded item of one run, with what the run was.

    ``controls`` holds, per negative control of :mod:`.controls`, the same
    questions answered by the control's stand-ins and graded the same way; ``control_donors``
    says whose experience each agent answered with in the ``shuffled`` control.
    """

    run_dir: str
    scenario: str
    model: str | None
    judge_model: str | None
    architecture: dict[str, bool]
    game_time: str
    items: list[GradedItem]
    controls: dict[str, list[GradedItem]] = Field(default_factory=dict)
    control_donors: dict[str, str] = Field(default_factory=dict)
    judge: JudgeReport | None = None

    @property
    def agents(self) -> list[str]:
        return sorted({item.agent for item in self.items})


async def evaluate_run(
    run_dir: str | Path,
    llm: LanguageModel,
    *,
    judge: LanguageModel | None = None,
    max_per_category: int = DEFAULT_PER_CATEGORY,
    seed: int = 0,
    model_name: str | None = None,
    judge_name: str | None = None,
    controls: bool = True,
    judge_report: JudgeReport | None = None,
    calibrate: bool = True,
) -> Evaluation:
    """Interview every agent of the run in ``run_dir`` and grade the answers.

    ``llm`` answers in character; ``judge`` (default ``llm``) grades what no rule can check.
    With ``controls``, the same questions also go to each negative control's stand-ins (which
    triples the interview calls; unchanged answers come from the response cache).
    ``judge_report`` says how the judge was chosen and calibrated (see
    :mod:`.judge_choice`); without one and with ``calibrate``, the judge is
    calibrated here. Answers graded by an unfit judge say so in their ``reason``.
    Interviews never change the run (memories are recalled without touching them).
    """
    run, agents = read_run(run_dir)
    questions = generate_questions(run, max_per_category=max_per_category, seed=seed)
    name = judge_name or model_name or run.model
    if judge_report is None and calibrate:
        own = judge is None or judge is llm
        calibration = await calibrate_judge(judge or llm, load_calibration(), judge_name=name)
        why = "no other judge was given"
        judge_report = JudgeReport(
            model=name,
            self_judged=own,
            chosen=why if own else "given by the caller",
            calibration=calibration,
            caveats=judge_caveats(calibration, own, why),
        )
    unfit = judge_report is not None and judge_report.fit is False
    items = await _interview(run, agents, questions, llm, judge or llm, unfit)
    control_items: dict[str, list[GradedItem]] = {}
    for control in CONTROLS if controls else ():
        stand_ins = control_interviewees(agents, control)
        if stand_ins:
            asked = [q for q in questions if q.agent in stand_ins]
            control_items[control] = await _interview(
                run, stand_ins, asked, llm, judge or llm, unfit
            )
    return Evaluation(
        run_dir=str(run.run_dir),
        scenario=run.scenario.name,
        model=model_name or run.model,
        judge_model=name,
        architecture={
            "memory": run.config.memory,
            "reflection": run.config.reflection,
            "planning": run.config.planning,
        },
        game_time=run.now.isoformat(),
        items=items,
        controls=control_items,
        control_donors=shuffled_donors(list(agents)) if "shuffled" in control_items else {},
        judge=judge_report,
    )


async def _interview(
    run: RunFacts,
    agents: dict[str, Agent],
    questions: Sequence[Question],
    llm: LanguageModel,
    judge: LanguageModel,
    unfit_judge: bool = False,
) -> list[GradedItem]:
    answers = await asyncio.gather(*(_answer(run, agents[q.agent], q, llm) for q in questions))
    pairs = zip(questions, answers, strict=True)
    items = await asyncio.gather(*(_grade(q, answer, judge) for q, answer in pairs))
    if not unfit_judge:
        return list(items)
    return [
        i.model_copy(update={"reason": f"UNFIT JUDGE: {i.reason}"}) if i.method == "judge" else i
        for i in items
    ]


async def _answer(
    run: RunFacts, agent: Agent, question: Question, llm: LanguageModel
) -> str | LLMError:
    try:
        return await answer_in_character(
            llm,
            agent.persona,
            question.text,
            memories=await interview_context(run, agent, question.text, llm),
            now=run.now,
            activity=agent.current.description if agent.current else "",
            purpose=INTERVIEW_PURPOSE,
        )
    except LLMError as error:
        return error


async def interview_context(
    run: RunFacts, agent: Agent, question: str, llm: LanguageModel
) -> list[str]:
    """What the agent may draw on to answer: relationship notes, plan, retrieved memories."""
    context = [f"{other}: {note}" for other, note in sorted(agent.relationships.items()) if note]
    if run.config.planning and agent.plan is not None:
        context.extend(
            f"My plan today, {clock_phrase(b.start)}-{clock_phrase(b.end)}: {b.activity} "
            f"at {b.place}"
            for b in agent.plan.blocks
        )
    if run.config.memory:
        context.extend(
            await agent.recall(
                llm,
                question,
                run.now,
                k=MEMORIES_PER_QUESTION,
                weights=RetrievalWeights(),
                touch=False,
            )
        )
    return context


async def _grade(question: Question, answer: str | LLMError, judge: LanguageModel) -> GradedItem:
    if isinstance(answer, LLMError):
        return _item(question, "", None, False, f"no answer: {answer}")
    if question.grader != JUDGE:
        grade = grade_rule(question.grader, question.expected, answer, question.text)
        return _item(question, answer, grade.score, grade.hallucinated, grade.reason)
    try:
        verdict = await judge_answer(
            judge,
            name=question.agent,
            category=question.category,
            question=question.text,
            answer=answer,
            rubric=question.rubric,
            facts=_strings(question.expected.get("facts", [])),
        )
    except LLMError as error:
        return _item(question, answer, None, False, f"no grade: {error}")
    return _item(
        question, answer, judge_score(verdict), False, f"judge {verdict.score}/5: {verdict.why}"
    )


def _item(
    question: Question, answer: str, score: float | None, hallucinated: bool, reason: str
) -> GradedItem:
    return GradedItem(
        agent=question.agent,
        category=question.category,
        question_id=question.id,
        question=question.text,
        answer=answer,
        expected=dict(question.expected),
        method="judge" if question.grader == JUDGE else "rule",
        grader=question.grader,
        score=score,
        hallucinated=hallucinated,
        reason=reason,
    )


def _strings(values: Sequence[Any]) -> list[str]:
    return [str(v) for v in values]
