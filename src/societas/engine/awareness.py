"""Ask every agent whether it knows each seeded piece of news (the paper's awareness interviews).

The answers are compared with the dialogue's ground truth in the run summary: agreement, and
hallucinated awareness (claiming to know what the agent never heard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from societas.agents.agent import Agent
from societas.agents.cognition.interview import answer_choice
from societas.llm.affinity import affinity_scope
from societas.llm.types import LanguageModel, LLMError
from societas.memory.retrieval import RetrievalWeights
from societas.world.scenario import Scenario

YES = "yes, I know about it"
NO = "no, I have not heard of it"
MEMORIES_PER_QUESTION = 6


async def ask_awareness(
    scenario: Scenario,
    agents: dict[str, Agent],
    llm: LanguageModel,
    now: datetime,
    *,
    on_answer: Callable[[], None] | None = None,
) -> dict[str, dict[str, str]]:
    """For each news item with a ``question``: agent name -> answer text ("yes, ...: why").

    One structured call per agent and question, all concurrent, each under its agent's affinity
    key (its slot still holds its persona); an agent whose call fails is left out rather than
    guessed. ``on_answer`` is called after each question put to an agent, answered or not (a
    progress bar counts them: :func:`interview_count` in all).
    """
    weights = RetrievalWeights()

    async def ask(agent: Agent, question: str) -> str | None:
        try:
            with affinity_scope(agent.name):
                return await answer(agent, question)
        finally:
            if on_answer is not None:
                on_answer()

    async def answer(agent: Agent, question: str) -> str | None:
        try:
            memories = await agent.recall(
                llm, question, now, k=MEMORIES_PER_QUESTION, weights=weights, touch=False
            )
            choice = await answer_choice(
                llm,
                agent.persona,
                question,
                (YES, NO),
                memories=memories,
                now=now,
                purpose="awareness",
            )
        except LLMError:
            return None
        return f"{choice.option}: {choice.reason}"

    answers: dict[str, dict[str, str]] = {}
    for news in scenario.news:
        if not news.question:
            continue
        names = sorted(agents)
        replies = await asyncio.gather(*(ask(agents[n], news.question) for n in names))
        answers[news.id] = {n: r for n, r in zip(names, replies, strict=True) if r is not None}
    return answers


def interview_count(scenario: Scenario, agents: int) -> int:
    """How many questions :func:`ask_awareness` puts: one per agent and news question."""
    return agents * sum(1 for news in scenario.news if news.question)
