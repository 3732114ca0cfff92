"""The end-of-run questions: one open question per news item and one acquaintance question per
agent, asked of every agent from its own memories (the run itself is not changed).

Asking needs the model, grading mostly does not: this module records the answers (and the
rubric judge's verdicts for the facts that need it) in :class:`EndOfRunAnswers`, which goes into
the run's summary; :mod:`societas.measurement.diffusion` grades them. A failed call is recorded
with its error, never dropped, so the figures can count it against themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field

from societas.agents.agent import Agent
from societas.agents.cognition.interview import answer_in_character
from societas.llm.affinity import affinity_scope
from societas.llm.types import LanguageModel, LLMError
from societas.measurement.acquaintance import Acquaintance, ask_acquaintances
from societas.measurement.fact_grading import needs_judge
from societas.measurement.fact_judge import judge_fact
from societas.memory.retrieval import RetrievalWeights
from societas.scenarios.scenario import NewsSpec, Scenario

MEMORIES_PER_QUESTION = 6
NEWS_PURPOSE = "news_question"

T = TypeVar("T")


class NewsAnswer(BaseModel):
    """One agent's answer to a news item's open question (``answer`` None: the call failed)."""

    agent: str
    news_id: str
    question: str
    answer: str | None
    error: str | None = None
    verdicts: dict[int, bool] = Field(
        default_factory=dict, description="the judge's verdict per fact index that needed one"
    )
    judge_errors: dict[int, str] = Field(default_factory=dict)


class AcquaintanceAnswer(BaseModel):
    """One agent's answer to "whom do you know, and how?" (``people`` None: the call failed)."""

    agent: str
    people: list[Acquaintance] | None
    error: str | None = None


class EndOfRunAnswers(BaseModel):
    """Everything the end-of-run questions returned."""

    news: list[NewsAnswer] = Field(default_factory=list)
    acquaintances: list[AcquaintanceAnswer] = Field(default_factory=list)


def graded_items(scenario: Scenario) -> list[NewsSpec]:
    """The news items that have an open question and facts to grade it by."""
    return [news for news in scenario.news if news.question and news.facts]


async def ask_end_of_run(
    scenario: Scenario,
    agents: Mapping[str, Agent],
    llm: LanguageModel,
    now: datetime,
    *,
    network: bool = True,
    on_answer: Callable[[], None] | None = None,
) -> EndOfRunAnswers:
    """Ask every agent each graded news item's question (and, with ``network``, whom it knows).

    All calls of a round run concurrently, each under its agent's affinity key (the model
    server's slot for that agent still holds its persona); every failure is kept with its error.
    ``on_answer`` is called after each question, answered or not (a progress bar counts them:
    :func:`question_count` in all).
    """
    names = sorted(agents)
    items = graded_items(scenario)

    async def as_agent(name: str, work: Awaitable[T]) -> T:
        # The coroutine's body runs when awaited, so inside the agent's affinity scope.
        try:
            with affinity_scope(name):
                return await work
        finally:
            if on_answer is not None:
                on_answer()

    news_answers = await asyncio.gather(
        *(
            as_agent(name, _ask_news(agents[name], item, llm, now))
            for item in items
            for name in names
        )
    )
    acquaintances: list[AcquaintanceAnswer] = []
    if network:
        acquaintances = list(
            await asyncio.gather(
                *(as_agent(n, _ask_acquaintances(agents[n], names, llm, now)) for n in names)
            )
        )
    return EndOfRunAnswers(news=list(news_answers), acquaintances=acquaintances)


def question_count(scenario: Scenario, agents: int, *, network: bool = True) -> int:
    """How many questions :func:`ask_end_of_run` puts to ``agents`` agents."""
    return agents * (len(graded_items(scenario)) + (1 if network else 0))


async def _ask_news(agent: Agent, item: NewsSpec, llm: LanguageModel, now: datetime) -> NewsAnswer:
    question = item.question or ""
    try:
        memories = await agent.recall(
            llm, question, now, k=MEMORIES_PER_QUESTION, weights=RetrievalWeights(), touch=False
        )
        text = await answer_in_character(
            llm, agent.persona, question, memories=memories, now=now, purpose=NEWS_PURPOSE
        )
    except LLMError as error:
        return NewsAnswer(
            agent=agent.name, news_id=item.id, question=question, answer=None, error=str(error)
        )
    answer = NewsAnswer(agent=agent.name, news_id=item.id, question=question, answer=text)
    for index in needs_judge(text, item.facts):
        try:
            answer.verdicts[index] = await judge_fact(
                llm, question=question, answer=text, fact=item.facts[index].text
            )
        except LLMError as error:
            answer.judge_errors[index] = str(error)
    return answer


async def _ask_acquaintances(
    agent: Agent, population: list[str], llm: LanguageModel, now: datetime
) -> AcquaintanceAnswer:
    try:
        people = await ask_acquaintances(llm, agent, population, now)
    except LLMError as error:
        return AcquaintanceAnswer(agent=agent.name, people=None, error=str(error))
    return AcquaintanceAnswer(agent=agent.name, people=people)
