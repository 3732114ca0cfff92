"""Agents' stated awareness of a news item, scored against what the dialogue actually told them."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from pydantic import BaseModel, Field

from societas.world.news_keywords import detect_news
from societas.world.storylines import TrackedNews

_FILLER = re.compile(r"^(?:\W|oh|well|hmm+|ah|um+|uh+|so)+\b", re.IGNORECASE)
_LEADING_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|of course|indeed|definitely|absolutely|certainly)\b", re.IGNORECASE
)
_LEADING_NO = re.compile(
    r"^(?:no|nope|nah|not|nobody|never|nothing|unfortunately not|i'm not|i am not)\b"
    r"|^i (?:do not|don't|did not|didn't|have not|haven't|had not|hadn't|never)\b",
    re.IGNORECASE,
)
_DENIAL = re.compile(
    r"\b(?:never heard|not heard|haven't heard|have not heard|hadn't heard|didn't hear"
    r"|did not hear|don't know|do not know|not aware|unaware|no idea|not sure|no one told"
    r"|nobody told|know nothing|heard nothing|knew nothing)\b",
    re.IGNORECASE,
)
_ACKNOWLEDGE = re.compile(
    r"^i (?:do|did|have|know|knew|heard|'ve heard)\b|\b(?:heard|know about|knew about|told me"
    r"|aware of|mentioned)\b",
    re.IGNORECASE,
)


def claims_awareness(answer: str, keyword_groups: Sequence[Sequence[str]] | None = None) -> bool:
    """Whether an interview answer to "Do you know about X?" says yes.

    A leading yes or no decides; otherwise a denial anywhere ("I haven't heard", "no idea") means
    no, and having heard of it or mentioning the item (its keywords) means yes.

    >>> claims_awareness("Oh yes, Isabella told me about the party.")
    True
    >>> claims_awareness("Hmm, I haven't heard anything about that.")
    False
    >>> claims_awareness("The party at the cafe on Friday!", [["party"]])
    True
    """
    text = _FILLER.sub("", answer.strip()).strip()
    if _LEADING_YES.match(text):
        return True
    if _LEADING_NO.match(text) or _DENIAL.search(text):
        return False
    if _ACKNOWLEDGE.search(text):
        return True
    return keyword_groups is not None and detect_news(text, keyword_groups)


class AwarenessCheck(BaseModel):
    """Agents' stated awareness of a news item against the dialogue's ground truth."""

    news_id: str
    interviewed: int
    claimed: list[str] = Field(description="say they know it")
    actual: list[str] = Field(description="interviewed agents who did receive it")
    agreement: float = Field(description="share of interviewed whose claim matches the truth")
    hallucinated: list[str] = Field(description="claim it but never received it")
    missed: list[str] = Field(description="received it but deny it")


def compare_awareness(
    answers: Mapping[str, str], item: TrackedNews, knowers: Collection[str]
) -> AwarenessCheck:
    """Score interview ``answers`` (agent -> answer) against ``knowers`` (ground truth)."""
    if not answers:
        raise ValueError(f"no interview answers to score for news {item.id!r}")
    claimed = {name for name, text in answers.items() if claims_awareness(text, item.keywords)}
    actual = {name for name in answers if name in knowers}
    agreeing = sum((name in claimed) == (name in actual) for name in answers)
    return AwarenessCheck(
        news_id=item.id,
        interviewed=len(answers),
        claimed=sorted(claimed),
        actual=sorted(actual),
        agreement=agreeing / len(answers),
        hallucinated=sorted(claimed - actual),
        missed=sorted(actual - claimed),
    )
