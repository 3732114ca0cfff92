"""Reflection: turning recent memories into higher-level insights, in at most two model calls.

When the importance of what an agent lived through since its last reflection adds up to the
threshold (:func:`should_reflect`), :func:`reflect`:

1. shows the model the most recent memories (numbered) and asks for the few most salient
   high-level questions they raise (call 1, ``reflect_questions.yaml``);
2. retrieves memories for every question at once (embedding retrieval, no model call), takes the
   union, and asks for up to five insights, each citing the numbers of the memories it rests on
   and rated for importance in the same answer (call 2, ``reflect_insights.yaml``);
3. keeps the insights that cite at least one listed memory (invalid numbers are dropped) and
   stores them as reflection records, embedded in one call. A reflection's depth is one above
   the deepest memory it cites, so reflections build on reflections.

Examples
--------
>>> import asyncio
>>> from datetime import datetime
>>> from societas.llm.fake import ScriptedLLM
>>> from societas.memory.stream import MemoryStream
>>> def answer(call):
...     if "questions" in call.schema.model_fields:
...         return {"questions": ["What does Ada care about?"]}
...     return {"insights": [{"text": "Ada loves her bakery", "cites": [1, 2], "importance": 7}]}
>>> llm = ScriptedLLM(answer)
>>> stream = MemoryStream()
>>> now = datetime(2024, 2, 13, 20)
>>> texts = ["Ada baked bread at dawn", "Ada smiled at her bakery's queue"]
>>> stream.add_many("observation", texts, now, 6, llm.embedder.embed_sync(texts))
[0, 1]
>>> new = asyncio.run(reflect(llm, Persona(name="Ada", age=30), stream, now))
>>> [(stream.by_id(i).text, stream.by_id(i).evidence) for i in new]
[('Ada loves her bakery.', (0, 1))]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated

from pydantic import BaseModel, Field, create_model

from societas.agents.cognition.importance import Score, numbered
from societas.agents.cognition.schemas import bounded_params, render_prompt
from societas.agents.cognition.sentences import main_script, readable
from societas.agents.persona import Persona
from societas.llm.types import LanguageModel, SamplingParams
from societas.memory.records import MemoryKind
from societas.memory.retrieval import DEFAULT_WEIGHTS, RetrievalWeights, retrieve_union
from societas.memory.stream import MemoryStream
from societas.world.phrasing import was_cut

DEFAULT_THRESHOLD = 150.0
MAX_QUESTIONS = 5
MAX_INSIGHTS = 8
MAX_CITES = 6
MAX_LISTED = 99
"""Statement numbers in the insights prompt go up to this (citations are 1..99 in the schema)."""
QUESTION_CHARS = 100
INSIGHT_CHARS = 160


# --- answer schemas -------------------------------------------------------------------------

Question = Annotated[str, Field(min_length=3, max_length=QUESTION_CHARS)]


class QuestionsAnswer(BaseModel):
    """The answer of ``reflect_questions.yaml``."""

    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)


class InsightAnswer(BaseModel):
    """One insight: its text, the numbers of the statements it rests on, its importance."""

    text: str = Field(min_length=3, max_length=INSIGHT_CHARS)
    cites: list[Annotated[int, Field(ge=1, le=MAX_LISTED)]] = Field(
        min_length=1, max_length=MAX_CITES
    )
    importance: Score


class InsightsAnswer(BaseModel):
    """The answer of ``reflect_insights.yaml``."""

    insights: list[InsightAnswer] = Field(min_length=0, max_length=MAX_INSIGHTS)


@cache
def questions_answer(count: int) -> type[QuestionsAnswer]:
    """``QuestionsAnswer`` with at most ``count`` questions."""
    return create_model(
        f"QuestionsAnswer{count}",
        __base__=QuestionsAnswer,
        __module__=__name__,
        questions=(list[Question], Field(min_length=1, max_length=count)),
    )


@cache
def insights_answer(count: int) -> type[InsightsAnswer]:
    """``InsightsAnswer`` with at most ``count`` insights."""
    return create_model(
        f"InsightsAnswer{count}",
        __base__=InsightsAnswer,
        __module__=__name__,
        insights=(list[InsightAnswer], Field(min_length=0, max_length=count)),
    )


# --- configuration --------------------------------------------------------------------------


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"reflection setting {name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True)
class ReflectionConfig:
    """How much a reflection reads and asks for.

    ``recent``: memories shown when asking for questions (records rated below
    ``min_importance``, the idle and routine ones, are skipped); ``per_question``: memories
    retrieved for each question; ``evidence``: cap on their union shown for insights;
    ``max_tokens_*``: answer budgets of the two calls.
    """

    threshold: float = DEFAULT_THRESHOLD
    recent: int = 50
    min_importance: float = 2.0
    questions: int = 3
    per_question: int = 10
    evidence: int = 30
    insights: int = 5
    max_tokens_questions: int = 200
    max_tokens_insights: int = 560

    def __post_init__(self) -> None:
        _check_range("threshold", self.threshold, 0.0, float("inf"))
        _check_range("recent", self.recent, 1, MAX_LISTED)
        _check_range("questions", self.questions, 1, MAX_QUESTIONS)
        _check_range("per_question", self.per_question, 1, MAX_LISTED)
        _check_range("evidence", self.evidence, 1, MAX_LISTED)
        _check_range("insights", self.insights, 1, MAX_INSIGHTS)
        _check_range("max_tokens_questions", self.max_tokens_questions, 16, 4096)
        _check_range("max_tokens_insights", self.max_tokens_insights, 32, 4096)


DEFAULT_CONFIG = ReflectionConfig()


# --- reflecting -----------------------------------------------------------------------------


def should_reflect(stream: MemoryStream, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether the importance gathered since the last reflection reaches ``threshold``.

    >>> should_reflect(MemoryStream(), threshold=150)
    False
    """
    return stream.unreflected_importance >= threshold


@dataclass(frozen=True)
class Insight:
    """A checked insight: citations mapped to memory ids, ready to store."""

    text: str
    evidence: tuple[int, ...]
    importance: int


async def reflect(
    llm: LanguageModel,
    persona: Persona,
    stream: MemoryStream,
    now: datetime,
    *,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    config: ReflectionConfig = DEFAULT_CONFIG,
    params: SamplingParams | None = None,
) -> list[int]:
    """Reflect once and return the ids of the new reflection records (possibly none).

    Makes at most two ``reflect`` calls and two embedding calls. The reflection period restarts
    (:meth:`MemoryStream.mark_reflected`) whatever the outcome, an error included, so a failing
    model is not asked again at every step.
    """
    recent = stream.recent(config.recent, min_importance=config.min_importance)
    if not recent:
        recent = stream.recent(config.recent)
    if not recent:
        return []
    try:
        questions = await ask_questions(llm, persona, stream.texts(recent), config, params)
        evidence = await gather_evidence(llm, stream, questions, now, weights, config)
        insights = await draw_insights(llm, persona, stream, questions, evidence, config, params)
        return await store_insights(llm, stream, insights, now)
    finally:
        stream.mark_reflected()


async def ask_questions(
    llm: LanguageModel,
    persona: Persona,
    memories: Sequence[str],
    config: ReflectionConfig = DEFAULT_CONFIG,
    params: SamplingParams | None = None,
) -> list[str]:
    """Call 1: the most salient high-level questions the numbered ``memories`` raise."""
    messages = render_prompt(
        "reflect_questions",
        persona=persona.summary(),
        name=persona.first_name,
        count=config.questions,
        memories=numbered(memories),
    )
    answer = await llm.generate(
        messages,
        questions_answer(config.questions),
        purpose="reflect",
        params=bounded_params(params, config.max_tokens_questions),
    )
    cleaned = (" ".join(q.split()) for q in answer.questions)
    return list(dict.fromkeys(q for q in cleaned if q))


async def gather_evidence(
    llm: LanguageModel,
    stream: MemoryStream,
    questions: Sequence[str],
    now: datetime,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    config: ReflectionConfig = DEFAULT_CONFIG,
) -> list[int]:
    """Memory ids retrieved for the questions (one embedding call), oldest first.

    Retrieval touches what it returns, as remembering does.
    """
    if not questions:
        return []
    vectors = await llm.embed(list(questions), is_query=True)
    found = retrieve_union(
        stream,
        vectors,
        now,
        k=config.per_question,
        limit=config.evidence,
        weights=weights,
        touch=True,
    )
    return sorted(found)


async def draw_insights(
    llm: LanguageModel,
    persona: Persona,
    stream: MemoryStream,
    questions: Sequence[str],
    evidence: Sequence[int],
    config: ReflectionConfig = DEFAULT_CONFIG,
    params: SamplingParams | None = None,
) -> list[Insight]:
    """Call 2: insights drawn from the ``evidence`` records, citations checked and mapped to ids."""
    if not evidence:
        return []
    messages = render_prompt(
        "reflect_insights",
        persona=persona.summary(),
        name=persona.first_name,
        count=config.insights,
        questions=numbered(questions),
        statements=numbered(stream.texts(evidence)),
    )
    answer = await llm.generate(
        messages,
        insights_answer(config.insights),
        purpose="reflect",
        params=bounded_params(params, config.max_tokens_insights),
    )
    return checked_insights(answer.insights, evidence)


def checked_insights(drafts: Sequence[InsightAnswer], listed: Sequence[int]) -> list[Insight]:
    """Map cited numbers (1-based positions in ``listed``) to memory ids.

    Numbers outside the list are dropped; an insight left with no valid citation is dropped,
    and so is a repeated insight text.

    >>> drafts = [InsightAnswer(text="Bo is shy", cites=[2, 7], importance=4),
    ...           InsightAnswer(text="Bo is lost", cites=[9], importance=5)]
    >>> checked_insights(drafts, [10, 14])
    [Insight(text='Bo is shy.', evidence=(14,), importance=4)]
    """
    kept: dict[str, Insight] = {}
    for draft in drafts:
        # Whole sentences in one script: an insight stopped at its length bound loses its
        # unfinished sentence (and is dropped when none is left).
        said = " ".join(draft.text.split())
        text = readable(said, cut=was_cut(draft.text, INSIGHT_CHARS), script=main_script(said))
        ids = sorted({listed[n - 1] for n in draft.cites if 1 <= n <= len(listed)})
        if ids and text and text.lower() not in kept:
            kept[text.lower()] = Insight(text, tuple(ids), draft.importance)
    return list(kept.values())


async def store_insights(
    llm: LanguageModel, stream: MemoryStream, insights: Sequence[Insight], now: datetime
) -> list[int]:
    """Add the insights as reflection records created ``now`` (one embedding call)."""
    if not insights:
        return []
    texts = [insight.text for insight in insights]
    vectors = await llm.embed(texts)
    return stream.add_many(
        MemoryKind.REFLECTION,
        texts,
        now,
        [float(insight.importance) for insight in insights],
        vectors,
        evidence=[insight.evidence for insight in insights],
    )
