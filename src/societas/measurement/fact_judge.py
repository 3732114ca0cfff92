"""The rubric judge for news facts that no rule can check (``prompts/judge_fact.yaml``).

One schema-constrained call per (answer, fact) at temperature 0; the verdict is one of two enum
values, so the model cannot answer "maybe". Failures are the caller's to count.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: {"verdict": "stated", "why": "says a party"})
>>> asyncio.run(judge_fact(llm, question="What is on tonight?", answer="A party!", fact="a party"))
True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from societas.agents.cognition.schemas import bounded_params, one_line
from societas.llm.types import LanguageModel
from societas.prompts import load_prompt

JUDGE_FACT_PURPOSE = "judge_fact"
JUDGE_FACT_MAX_TOKENS = 48


class FactVerdict(BaseModel):
    """The answer of ``judge_fact.yaml``."""

    verdict: Literal["stated", "not stated"]
    why: str = Field(max_length=100)


async def judge_fact(llm: LanguageModel, *, question: str, answer: str, fact: str) -> bool:
    """Whether ``answer`` states ``fact``; raises the model's errors to the caller."""
    messages = load_prompt("societas.measurement", "judge_fact").render(
        question=one_line(question), answer=one_line(answer) or "(no answer)", fact=one_line(fact)
    )
    verdict = await llm.generate(
        messages,
        FactVerdict,
        purpose=JUDGE_FACT_PURPOSE,
        params=bounded_params(None, JUDGE_FACT_MAX_TOKENS, temperature=0.0),
    )
    return verdict.verdict == "stated"
