"""Importance (poignancy, 1-10) of new memories, rated in batches and mostly without the model.

A text gets its score from the first of these that applies:

1. the caller's own figure (``known``; the planning call already rates the agent's own actions);
2. the routine rules: idle objects, sleeping, walking, the agent's own doings... get a low fixed
   score, since the original spent a model call on each of them for a 1 or a 2;
3. the agent's memo of texts already rated (scenes repeat word for word all day);
4. the model: what is left, deduplicated, in batches of up to ``batch_size`` texts per call
   (a numbered list in, a list of exactly that many integers out).

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> llm = ScriptedLLM(lambda call: {"scores": [8]})
>>> ada = Persona(name="Ada Lind", age=30)
>>> memo = ImportanceMemo()
>>> texts = ["the bed is idle", "Tom proposed to Ada", "the bed is idle"]
>>> asyncio.run(rate_importance(llm, ada, texts, memo=memo)), len(llm.calls)
([1, 8, 1], 1)
>>> asyncio.run(rate_importance(llm, ada, ["Tom proposed to Ada"], memo=memo)), len(llm.calls)
([8], 1)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from societas.agents.cognition.memo import TextMemo
from societas.agents.cognition.schemas import bounded_params, render_prompt
from societas.agents.persona import Persona
from societas.llm.types import LanguageModel, LLMError, SamplingParams

MIN_SCORE = 1
MAX_SCORE = 10
DEFAULT_BATCH = 12
MAX_BATCH = 32
ITEM_CHARS = 200
"""Longer memory texts are cut to this many characters in prompts."""

Score = Annotated[int, Field(ge=MIN_SCORE, le=MAX_SCORE)]


def _check_score(score: object, what: str) -> None:
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"{what} must be an integer {MIN_SCORE}-{MAX_SCORE}, got {score!r}")


class ImportanceAnswer(BaseModel):
    """The answer of ``rate_importance.yaml``: one score per numbered memory, in order."""

    scores: list[Score] = Field(min_length=1, max_length=MAX_BATCH)


@cache
def importance_answer(count: int) -> type[ImportanceAnswer]:
    """``ImportanceAnswer`` holding exactly ``count`` scores (the grammar enforces the count)."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"a rating batch holds 1-{MAX_BATCH} texts, not {count}")
    exactly = Field(min_length=count, max_length=count)
    return create_model(
        f"ImportanceAnswer{count}",
        __base__=ImportanceAnswer,
        __module__=__name__,
        scores=(list[Score], exactly),
    )


# --- the routine rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class RoutineRule:
    """Texts matching ``pattern`` (a case-insensitive regular expression) score ``score``."""

    pattern: str
    score: int

    def __post_init__(self) -> None:
        _check_score(self.score, f"routine rule {self.pattern!r}")
        try:
            re.compile(self.pattern)
        except re.error as error:
            raise ValueError(
                f"routine rule {self.pattern!r} is not a valid pattern: {error}"
            ) from None


_OBJECT_AT_REST = (
    r"\bis (?:idle|empty|unused|off|closed|clean|tidy|made|turned off|switched off|not in use"
    r"|not being used)\s*\.?$"
)

DEFAULT_ROUTINES: tuple[RoutineRule, ...] = (
    RoutineRule(r"\bis idle\b", 1),
    RoutineRule(_OBJECT_AT_REST, 1),
    RoutineRule(r"\bis (?:sleeping|asleep|napping|in bed)\b", 1),
    RoutineRule(
        r"\bis (?:walking|strolling|commuting|heading|going) (?:to|toward|towards|home)\b", 2
    ),
    RoutineRule(r"\bis (?:walking|strolling)\s*\.?$", 2),
)


@dataclass(frozen=True)
class ImportanceRules:
    """Cheap scores for routine texts.

    ``own_action_score`` is what the agent's own doings score (texts of the form
    "<the agent's name> is ..."): the agent chose them while planning, and the plan's own
    estimate, when the caller has it, comes in through ``known``. None sends them to the model.
    """

    routines: tuple[RoutineRule, ...] = DEFAULT_ROUTINES
    own_action_score: int | None = 2
    _compiled: tuple[tuple[re.Pattern[str], int], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.own_action_score is not None:
            _check_score(self.own_action_score, "own_action_score")
        compiled = tuple((re.compile(r.pattern, re.IGNORECASE), r.score) for r in self.routines)
        object.__setattr__(self, "_compiled", compiled)

    def score(self, text: str, persona: Persona) -> int | None:
        """The routine score of ``text``, or None when it needs rating.

        >>> ImportanceRules().score("Ada Lind is sleeping", Persona(name="Ada Lind", age=30))
        1
        """
        for pattern, score in self._compiled:
            if pattern.search(text):
                return score
        if self.own_action_score is not None and _is_own_action(text, persona):
            return self.own_action_score
        return None


DEFAULT_RULES = ImportanceRules()


def _is_own_action(text: str, persona: Persona) -> bool:
    lowered = " ".join(text.split()).lower()
    subjects = {persona.name.lower(), persona.first_name.lower()}
    return any(lowered.startswith(f"{subject} is ") for subject in subjects)


# --- the memo -------------------------------------------------------------------------------


class ImportanceMemo(TextMemo[int]):
    """One agent's scores of texts already rated, keyed by exact text (least recently used go);
    ``hits`` counts the scores it gave back.

    >>> memo = ImportanceMemo(max_entries=2)
    >>> memo.put("a", 3); memo.put("b", 4); memo.put("c", 5)
    >>> memo.get("a"), memo.get("c"), len(memo), memo.hits
    (None, 5, 2, 1)
    """

    label = "importance memo"

    def __init__(self, max_entries: int | None = None) -> None:
        super().__init__(max_entries)
        self.hits = 0

    def get(self, text: str) -> int | None:
        """The remembered score (counted as a hit), or None."""
        score = super().get(text)
        if score is not None:
            self.hits += 1
        return score

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "hits": self.hits}

    def _checked(self, text: str, value: int) -> int:
        _check_score(value, f"memo score of {text!r}")
        return value

    def _stored(self, value: Any) -> int:
        return int(value)

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.hits = int(state.get("hits", 0))


# --- rating ---------------------------------------------------------------------------------


async def rate_importance(
    llm: LanguageModel,
    persona: Persona,
    texts: Sequence[str],
    *,
    memo: ImportanceMemo,
    known: Sequence[int | None] | None = None,
    rules: ImportanceRules = DEFAULT_RULES,
    batch_size: int = DEFAULT_BATCH,
    fallback: int | None = None,
    params: SamplingParams | None = None,
) -> list[int]:
    """Scores 1-10 for ``texts`` (in order), calling the model only for what nothing else covers.

    ``known`` gives the caller's own score per text (None where it has none). Texts the model
    rates go into ``memo``. If a batch's call fails, its texts get ``fallback`` (not memoised)
    when one is given, else the :class:`~societas.llm.types.LLMError` propagates.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1-{MAX_BATCH}, got {batch_size}")
    if fallback is not None:
        _check_score(fallback, "fallback")
    scores = _cheap_scores(persona, texts, memo, known, rules)
    pending = list(dict.fromkeys(t for t, s in zip(texts, scores, strict=True) if s is None))
    rated = await _rate_pending(llm, persona, pending, memo, batch_size, fallback, params)
    return [rated[t] if s is None else s for t, s in zip(texts, scores, strict=True)]


async def _rate_pending(
    llm: LanguageModel,
    persona: Persona,
    pending: Sequence[str],
    memo: ImportanceMemo,
    batch_size: int,
    fallback: int | None,
    params: SamplingParams | None,
) -> dict[str, int]:
    """Model scores of distinct ``pending`` texts, one call per batch, calls run concurrently."""
    batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
    results = await asyncio.gather(*(_rate_batch(llm, persona, b, params) for b in batches))
    rated: dict[str, int] = {}
    failures: list[LLMError] = []
    for batch, result in zip(batches, results, strict=True):
        if isinstance(result, LLMError):
            failures.append(result)
            rated.update(dict.fromkeys(batch, fallback or MIN_SCORE))
            continue
        for text, score in zip(batch, result, strict=True):
            memo.put(text, score)
            rated[text] = score
    if failures and fallback is None:
        raise failures[0]  # the batches that did succeed are memoised already
    return rated


def _cheap_scores(
    persona: Persona,
    texts: Sequence[str],
    memo: ImportanceMemo,
    known: Sequence[int | None] | None,
    rules: ImportanceRules,
) -> list[int | None]:
    """Scores from the caller, the rules or the memo; None where the model must rate."""
    if known is not None and len(known) != len(texts):
        raise ValueError(f"known has {len(known)} entries for {len(texts)} texts")
    scores: list[int | None] = []
    for position, text in enumerate(texts):
        given = known[position] if known is not None else None
        if given is not None:
            _check_score(given, f"known score #{position}")
            scores.append(given)
            continue
        routine = rules.score(text, persona)
        scores.append(routine if routine is not None else memo.get(text))
    return scores


async def _rate_batch(
    llm: LanguageModel, persona: Persona, batch: Sequence[str], params: SamplingParams | None
) -> list[int] | LLMError:
    """One call rating ``batch``; a failure is returned, so the other batches still count."""
    messages = render_prompt(
        "rate_importance",
        persona=persona.summary(),
        name=persona.first_name,
        memories=numbered(batch),
    )
    try:
        answer = await llm.generate(
            messages,
            importance_answer(len(batch)),
            purpose="rate",
            params=bounded_params(params, max_tokens=8 + 4 * len(batch), temperature=0.0),
        )
    except LLMError as error:
        return error
    return list(answer.scores)


def numbered(texts: Sequence[str], *, max_chars: int = ITEM_CHARS) -> str:
    """Prompt text of a numbered list (from 1), each item on one line and cut to ``max_chars``.

    >>> print(numbered(["first  thing", "second"]))
    1. first thing
    2. second
    """
    lines = []
    for number, text in enumerate(texts, start=1):
        flat = " ".join(text.split())
        if len(flat) > max_chars:
            flat = flat[: max_chars - 1].rstrip() + "…"
        lines.append(f"{number}. {flat}")
    return "\n".join(lines)
