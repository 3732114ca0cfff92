"""The model judge for interview answers no rule can check (``prompts/judge_believability.yaml``).

One structured call per answer at temperature 0: a whole-number score from 1 to 5 and a short
reason, validated by :class:`JudgeAnswer`; :func:`judge_score` maps it to [0, 1].

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: '{"score": 4, "why": "sensible and in character"}')
>>> verdict = asyncio.run(judge_answer(llm, name="Ada", category="reactions",
...     question="Your breakfast is burning!", answer="I'd pull the pan off the stove.",
...     rubric="A sensible reaction.", facts=["Ada is a baker"]))
>>> verdict.score, judge_score(verdict)
(4, 0.75)
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from societas.agents.cognition.schemas import bounded_params, bullet_list, one_line
from societas.llm.types import LanguageModel
from societas.prompts import load_prompt

JUDGE_MAX_TOKENS = 48
JUDGE_PURPOSE = "judge"


class JudgeAnswer(BaseModel):
    """The answer of ``judge_believability.yaml``."""

    score: int = Field(ge=1, le=5)
    why: str = Field(max_length=100)


def judge_score(verdict: JudgeAnswer) -> float:
    """The 1-5 score on [0, 1] (1 -> 0.0, 3 -> 0.5, 5 -> 1.0)."""
    return (verdict.score - 1) / 4


async def judge_answer(
    llm: LanguageModel,
    *,
    name: str,
    category: str,
    question: str,
    answer: str,
    rubric: str,
    facts: Sequence[str],
) -> JudgeAnswer:
    """Score one answer (purpose ``judge``); raises the model's errors to the caller."""
    messages = load_prompt("societas.evaluation.believability", "judge_believability").render(
        name=name,
        category=category.replace("_", " "),
        facts=bullet_list(list(facts), empty="(none)"),
        rubric=one_line(rubric),
        question=one_line(question),
        answer=one_line(answer) or "(no answer)",
    )
    return await llm.generate(
        messages,
        JudgeAnswer,
        purpose=JUDGE_PURPOSE,
        params=bounded_params(None, JUDGE_MAX_TOKENS, temperature=0.0),
    )
