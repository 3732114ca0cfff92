"""Rule graders: facts in an interview answer checked against the run's ground truth.

Each rule takes the question's ``expected`` facts, the answer and the question, and returns a
:class:`Grade`: a score in [0, 1], whether the answer claims knowledge the agent never received (a
hallucination), and a short reason. No rule can be satisfied by echoing the question: words the
answer repeats from it are no evidence, a denial ("not mentioned in my memory") is a denial
wherever it appears, and a description of a person must fit that person's facts better than any
other person's. Questions without a checkable fact go to the model judge
(:mod:`.judge`).

Examples
--------
>>> grade_rule("stranger", {"person": "Dorothea Quill"}, "I don't know anyone by that name.")
Grade(score=1.0, hallucinated=False, reason='says it does not know Dorothea Quill')
>>> grade_rule("stranger", {"person": "Dorothea Quill"}, "Dorothea is my best friend!").hallucinated
True
>>> grade_rule("knows_person", {"person": "Hollis Pike", "details": ["Hollis Pike, the baker"]},
...            "Hollis Pike is not mentioned in my memory.", "Who is Hollis Pike?").score
0.0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from societas.evaluation.believability.text import (
    ages_claimed,
    content_words,
    denies_knowing,
    evidence_words,
    matched_words,
    mentions_person,
    names_claimed,
    people_named,
    place_words,
    shares_words,
    telling_words,
    unknown_full_names,
)
from societas.measurement.awareness import claims_awareness


@dataclass(frozen=True)
class Grade:
    """One graded answer: ``score`` in [0, 1]; ``hallucinated`` for invented knowledge."""

    score: float
    hallucinated: bool
    reason: str


Expected = Mapping[str, Any]
Rule = Callable[[Expected, str, str], Grade]
"""``(expected, answer, question) -> Grade``."""


def grade_rule(rule: str, expected: Expected, answer: str, question: str = "") -> Grade:
    """Grade ``answer`` to ``question`` with the rule named ``rule`` (see :data:`RULES`)."""
    try:
        grader = RULES[rule]
    except KeyError:
        raise ValueError(f"no grading rule {rule!r}; rules: {', '.join(sorted(RULES))}") from None
    return grader(expected, answer, question)


def _fraction(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def _introduction(expected: Expected, answer: str, question: str) -> Grade:
    name, occupation, age = expected["name"], expected.get("occupation", ""), expected["age"]
    said_age = age in ages_claimed(answer) or bool(re.search(rf"\b{int(age)}\b", answer))
    checks = {"name": mentions_person(answer, name), "age": said_age}
    if occupation:
        checks["occupation"] = shares_words(answer, occupation, ignore=question)
    wrong_name = _claims_other_name(answer, name, expected.get("others", []))
    wrong_age = bool(ages_claimed(answer)) and not checks["age"]
    said = [k for k, ok in checks.items() if ok]
    return Grade(
        _fraction(list(checks.values())),
        wrong_name or wrong_age,
        f"mentions {', '.join(said) or 'none'} of {', '.join(checks)}"
        + ("; gives another name" if wrong_name else "")
        + ("; gives another age" if wrong_age else ""),
    )


def _claims_other_name(answer: str, name: str, others: list[str]) -> bool:
    """Whether the speaker introduces itself as someone else of the town."""
    own = name.split()[0].lower()
    theirs = {other.split()[0].lower() for other in others} - {own}
    return any(claimed.lower() in theirs for claimed in names_claimed(answer))


def _occupation(expected: Expected, answer: str, question: str) -> Grade:
    occupation = str(expected["occupation"])
    hits = matched_words(answer, occupation, ignore=question)
    share = len(hits) / max(1, min(2, len(content_words(occupation))))
    return Grade(min(1.0, share), False, f"occupation words used: {', '.join(hits) or 'none'}")


def _age(expected: Expected, answer: str, question: str) -> Grade:
    age, stated = int(expected["age"]), ages_claimed(answer)
    if age in stated:
        return Grade(1.0, False, f"says {age}")
    if stated:
        return Grade(0.0, True, f"says {stated[0]}, is {age}")
    return Grade(0.0, False, "gives no age")


def _traits(expected: Expected, answer: str, question: str) -> Grade:
    traits = [str(t) for t in expected["traits"]]
    used = [t for t in traits if shares_words(answer, t, ignore=question)]
    share = len(used) / min(2, len(traits)) if traits else 0.0
    return Grade(min(1.0, share), False, f"traits named: {', '.join(used) or 'none'}")


def _home(expected: Expected, answer: str, question: str) -> Grade:
    hits = matched_words(answer, place_words(str(expected["home"])), ignore=question)
    return Grade(1.0 if hits else 0.0, False, f"home words used: {', '.join(hits) or 'none'}")


def _knows_person(expected: Expected, answer: str, question: str) -> Grade:
    """Right details of the person, not the question's words, praise, or someone else's facts.

    ``details`` are what the speaker should know (occupation, its note on the person);
    ``profile`` is the rest of the person's facts; ``others`` maps every other person of the
    town (the speaker included) to their facts, so that a description of someone else fails.
    """
    person = str(expected["person"])
    if denies_knowing(answer):
        return Grade(0.0, False, f"says it does not know {person}")
    echo = [question, person]
    if not telling_words(evidence_words(answer, echo)):
        return Grade(0.0, False, f"says nothing about {person} beyond the question")
    details = [str(d) for d in expected.get("details", [])]
    truth = [*details, str(expected.get("profile", ""))]
    hits = telling_words(matched_words(answer, truth, ignore=echo))
    wrong = _someone_else(answer, expected.get("others", {}), [*echo, *truth])
    if wrong is not None and len(wrong[1]) > len(hits):
        other, words = wrong
        return Grade(0.0, True, f"describes {other}, not {person}: {', '.join(words)}")
    if hits or not details:
        return Grade(1.0, False, f"knows {person}: {', '.join(hits) or 'recognised'}")
    return Grade(0.5, False, f"recognises {person} but gives none of: {'; '.join(details)}")


def _someone_else(
    answer: str, others: Mapping[str, Any], ignore: list[str]
) -> tuple[str, list[str]] | None:
    """The other person whose own facts (none shared with ``ignore``) the answer uses most."""
    best: tuple[str, list[str]] | None = None
    for name, facts in sorted(others.items()):
        text = facts if isinstance(facts, str) else " ".join(str(f) for f in facts)
        words = [
            w
            for w in telling_words(matched_words(answer, text, ignore=ignore))
            if w not in content_words(name.lower())
        ]
        if words and (best is None or len(words) > len(best[1])):
            best = (name, words)
    return best


def _stranger(expected: Expected, answer: str, question: str) -> Grade:
    person = str(expected["person"])
    if denies_knowing(answer):
        return Grade(1.0, False, f"says it does not know {person}")
    return Grade(0.0, True, f"claims to know {person}, whom it never met")


def _news(expected: Expected, answer: str, question: str) -> Grade:
    asked = set(content_words(question))
    # Keywords the question itself spells out are no sign of having heard the news.
    groups = [
        [str(k) for k in group if not set(content_words(str(k))) <= asked]
        for group in expected.get("keywords", [])
    ]
    keywords = [group for group in groups if group]
    claims = claims_awareness(answer, keywords or None)
    knows = bool(expected["knows"])
    truth = "received" if knows else "never received"
    if claims == knows:
        return Grade(1.0, False, f"{'claims' if claims else 'denies'} it, and {truth} it")
    return Grade(0.0, claims, f"{'claims' if claims else 'denies'} it, but {truth} it")


def _plan_at(expected: Expected, answer: str, question: str) -> Grade:
    place = str(expected["place"])
    wanted = place_words(place) + (["home", "house", "flat"] if expected.get("at_home") else [])
    at_place = bool(matched_words(answer, wanted, ignore=question))
    doing = shares_words(answer, str(expected["activity"]), ignore=question)
    return Grade(
        (at_place + doing) / 2,
        False,
        f"place {'right' if at_place else 'missing'} ({place}), "
        f"activity {'right' if doing else 'missing'} ({expected['activity']})",
    )


def _pick_person(expected: Expected, answer: str, question: str) -> Grade:
    others = [str(p) for p in expected.get("others", [])]
    named = people_named(answer, others)
    met, known = set(expected.get("met", [])), set(expected.get("known", []))
    if any(p in met for p in named):
        return Grade(1.0, False, f"names {', '.join(p for p in named if p in met)}, met recently")
    if any(p in known for p in named):
        return Grade(0.5, False, f"names {', '.join(named)}, known but not met in this run")
    if named:
        return Grade(0.0, True, f"names {', '.join(named)}, never met")
    invented = unknown_full_names(answer, [*others, *expected.get("places", [])])
    if invented:
        return Grade(0.0, True, f"names {', '.join(invented)}, who is nobody in the town")
    if not met and not known:
        return Grade(1.0, False, "met nobody and names nobody")
    return Grade(0.0, False, "names nobody it met")


RULES: dict[str, Rule] = {
    "introduction": _introduction,
    "occupation": _occupation,
    "age": _age,
    "traits": _traits,
    "home": _home,
    "knows_person": _knows_person,
    "stranger": _stranger,
    "news": _news,
    "plan_at": _plan_at,
    "pick_person": _pick_person,
}
"""Rule name -> grader."""
