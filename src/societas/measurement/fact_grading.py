"""Grade an open answer about a news item against the facts it must state (by rule).

The headline "knows" of a news item is not a yes/no: an agent knows the item when its answer to
the item's open question states every declared fact (see :mod:`societas.world.news_facts`). The
rules are written so that an answer cannot earn a fact it did not give:

- words of the question never count as evidence (echoing "the council election" states nothing);
- a denial ("I don't know", "not mentioned", "never heard") anywhere makes the whole answer a
  denial, whatever names it also contains;
- a ``who`` term matches whole words only, and the scenario already refuses terms such as a shared
  surname; the respondent's own name is matched by "I"/"my" (Rosa saying "I am running");
- a clock time ``HH:MM`` among the terms matches the same time written as "5pm" or "5:00 p.m.".

Facts without terms need the rubric judge (:mod:`societas.measurement.fact_judge`); their verdicts
come in as ``verdicts``; a missing verdict (the judge failed) counts as not stated.

Examples
--------
>>> from societas.world.news_facts import NewsFact
>>> facts = [NewsFact(aspect="who", text="Rosa", match=["Rosa"]),
...          NewsFact(aspect="what", text="running", match=["running", "candidate"])]
>>> q = "What have you heard about the town council election?"
>>> grade_answer("Rosa is running against Harold.", question=q, facts=facts).knows
True
>>> grade_answer("I am running for a fourth term.", question=q, facts=facts,
...              respondent="Harold Finch").knows
False
>>> grade_answer("I don't know whether Rosa is running.", question=q, facts=facts).denial
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from societas.world.news_facts import NewsFact, contains_term, term_pattern

_DENIAL = re.compile(
    r"(?<!\w)(?:(?:i\s+)?(?:do\s+not|don't|dont|did\s+not|didn't|didnt)\s+know"
    r"|(?:have|has|had)\s+not\s+heard|(?:haven't|hasn't|hadn't|havent)\s+heard"
    r"|never\s+heard|not\s+heard|(?:did\s+not|didn't)\s+hear"
    r"|not\s+(?:been\s+)?mentioned|never\s+mentioned|no\s+mention|nobody\s+(?:told|mentioned)"
    r"|no\s+one\s+(?:told|mentioned)|no\s+idea|not\s+aware|unaware"
    r"|(?:know|heard|knew)\s+nothing|nothing\s+about|(?:can't|cannot|can\s+not)\s+say"
    r"|not\s+that\s+i\s+know)(?!\w)",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"(?<!\w)(?:i|i'm|im|i've|i'll|me|my|myself|mine)(?!\w)", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:'\w+)?")
_CLOCK_TERM = re.compile(r"^(\d{1,2}):(\d{2})$")
_CLOCK_IN_TEXT = re.compile(
    r"(?<![\w:.])(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?\s?m\.?|p\.?\s?m\.?)?(?![\w:])", re.IGNORECASE
)

FactSource = Literal["rule", "judge", "judge failed", "denial", "empty"]


class FactCheck(BaseModel):
    """Whether an answer states one fact, how that was decided and the evidence."""

    aspect: str
    text: str
    stated: bool
    by: FactSource
    evidence: str = ""


class AnswerGrade(BaseModel):
    """An answer graded against every fact of its news item."""

    knows: bool = Field(description="states every fact (and is not a denial)")
    denial: bool
    facts: list[FactCheck]

    @property
    def stated(self) -> int:
        return sum(check.stated for check in self.facts)


def is_denial(answer: str) -> bool:
    """Whether the answer says, anywhere, that the agent does not know or has not heard."""
    return _DENIAL.search(answer) is not None


def question_words(question: str) -> frozenset[str]:
    return frozenset(word.casefold() for word in _WORD.findall(question))


def needs_judge(answer: str | None, facts: Sequence[NewsFact]) -> list[int]:
    """Indices of the facts a judge must read for ``answer`` (none for an empty or denied one)."""
    if not answer or not answer.strip() or is_denial(answer):
        return []
    return [index for index, fact in enumerate(facts) if not fact.by_rule]


def grade_answer(
    answer: str | None,
    *,
    question: str,
    facts: Sequence[NewsFact],
    respondent: str = "",
    verdicts: Mapping[int, bool] | None = None,
) -> AnswerGrade:
    """Grade ``answer`` (None or blank: no answer) against ``facts``; see the module notes."""
    if not facts:
        raise ValueError("a news item without facts cannot be graded")
    text = (answer or "").strip()
    if not text or is_denial(text):
        by: FactSource = "denial" if text else "empty"
        return AnswerGrade(
            knows=False,
            denial=bool(text),
            facts=[FactCheck(aspect=f.aspect, text=f.text, stated=False, by=by) for f in facts],
        )
    asked = question_words(question)
    checks = []
    for index, fact in enumerate(facts):
        if fact.by_rule:
            evidence = _rule_evidence(text, fact, asked, respondent)
            checks.append(
                FactCheck(
                    aspect=fact.aspect,
                    text=fact.text,
                    stated=evidence is not None,
                    by="rule",
                    evidence=evidence or "",
                )
            )
            continue
        verdict = (verdicts or {}).get(index)
        checks.append(
            FactCheck(
                aspect=fact.aspect,
                text=fact.text,
                stated=bool(verdict),
                by="judge failed" if verdict is None else "judge",
            )
        )
    return AnswerGrade(knows=all(c.stated for c in checks), denial=False, facts=checks)


def _rule_evidence(
    answer: str, fact: NewsFact, asked: frozenset[str], respondent: str
) -> str | None:
    """The term (or the answer's words) that state ``fact``; None when nothing does."""
    for term in fact.match:
        if all(word.casefold() in asked for word in _WORD.findall(term)):
            continue  # the question's own words prove nothing
        found = term_pattern(term).search(answer)
        if found:
            return found.group(0)
        clock = _clock_minutes(term)
        if clock is not None:
            said = _clock_in(answer, clock)
            if said:
                return said
        if fact.aspect == "who" and respondent and contains_term(respondent, term):
            self_reference = _FIRST_PERSON.search(answer)
            if self_reference:
                return self_reference.group(0)
    return None


def _clock_minutes(term: str) -> int | None:
    match = _CLOCK_TERM.match(term.strip())
    if match is None:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    return hours * 60 + minutes if hours < 24 and minutes < 60 else None


def _clock_in(answer: str, minutes: int) -> str | None:
    """A time in ``answer`` that reads as ``minutes`` after midnight ("5pm", "17:00", "5:00")."""
    for found in _CLOCK_IN_TEXT.finditer(answer):
        hours, mins, meridiem = int(found.group(1)), found.group(2), found.group(3)
        if mins is None and meridiem is None:
            continue  # a bare number is not a time
        if hours > 23 or (mins is not None and int(mins) > 59):
            continue
        total = int(mins or 0)
        if meridiem:
            if not 1 <= hours <= 12:
                continue
            hours = hours % 12 + (12 if meridiem.lower().startswith("p") else 0)
            candidates = {hours * 60 + total}
        else:
            candidates = {hours * 60 + total, (hours % 12 + 12) * 60 + total}
        if minutes in candidates:
            return found.group(0).strip()
    return None
