"""The facts an agent must name to show it knows a piece of news, and their checks.

A scenario's news item declares ``facts``: what an answer to the item's open end-of-run question
has to say (who, what, where, when). A fact with ``match`` terms is graded by rule (a term must
appear in the answer as whole words); a fact without terms is graded by a rubric judge that reads
its ``text``. The checks here run when the scenario loads, so a fact that could never be graded
fairly is a clear error instead of a flattering figure:

- a term that the question itself contains could be echoed back, so it would prove nothing;
- a ``who`` term that names several people or places (a shared surname such as "Alvarez")
  would credit an answer about the wrong person.

Examples
--------
>>> contains_term("Rosa is running", "rosa"), contains_term("Rosalind came", "Rosa")
(True, False)
>>> ambiguous_name("Alvarez", ["Rosa Alvarez", "Tomas Alvarez", "Mei Chen"], [])
['Rosa Alvarez', 'Tomas Alvarez']
>>> ambiguous_name("Rosa", ["Rosa Alvarez", "Tomas Alvarez"], ["Alvarez Market"])
[]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Aspect = Literal["who", "what", "where", "when"]
FactTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class NewsFact(BaseModel):
    """One fact an answer must state: graded by rule when ``match`` lists terms, else by a judge.

    ``match`` holds alternative words or phrases, any one of which states the fact ("Rosa"; "5pm",
    "17:00"). A clock time written ``HH:MM`` also matches the same time written another way in an
    answer ("5 pm", "5:00 p.m."). A ``who`` term that is part of the respondent's own name is also
    matched by a first-person answer ("I am running").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    aspect: Aspect
    text: str = Field(min_length=1, max_length=200, description="The fact, for people and judges.")
    match: list[FactTerm] = Field(default_factory=list, max_length=20)

    @property
    def by_rule(self) -> bool:
        return bool(self.match)


@lru_cache(maxsize=1024)
def term_pattern(term: str) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern of ``term``; any whitespace between its words."""
    words = term.split()
    if not words:
        raise ValueError("a fact term is blank")
    body = r"\s+".join(map(re.escape, words))
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def contains_term(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as whole words (ignoring case)."""
    return term_pattern(term).search(text) is not None


def ambiguous_name(term: str, people: Iterable[str], places: Iterable[str]) -> list[str]:
    """The names ``term`` could stand for when it names more than one person or place.

    A term that is a full name is never ambiguous; a single word (a first name or a surname) is
    ambiguous when it is a word of two or more names among ``people`` and ``places``.
    """
    names = [*people, *places]
    if any(term.casefold() == name.casefold() for name in names):
        return []
    holders = [name for name in names if contains_term(name, term)]
    return holders if len(holders) > 1 else []


def fact_problems(
    facts: Iterable[NewsFact], question: str | None, people: list[str], places: list[str]
) -> list[tuple[int, str]]:
    """Problems of a news item's facts as (fact index, message); empty when they are sound."""
    problems: list[tuple[int, str]] = []
    for index, fact in enumerate(facts):
        for term in fact.match:
            if question and contains_term(question, term):
                problems.append(
                    (
                        index,
                        f"term {term!r} appears in the question, so an answer that echoes the "
                        "question would state it; rephrase the question or drop the term",
                    )
                )
            if fact.aspect == "who":
                holders = ambiguous_name(term, people, places)
                if holders:
                    problems.append(
                        (
                            index,
                            f"term {term!r} names several people or places ({', '.join(holders)});"
                            " use a name that names one (a full name)",
                        )
                    )
    return problems
