"""Whether a text mentions a news item: every keyword group of the item has a word in it.

The engine uses this to trace news through dialogue (``news_heard`` events) and the measurements
use it to follow news the engine did not trace (keyword spread, interview answers).

Examples
--------
>>> detect_news("Isabella's Valentine party is at Hobbs Cafe", [["party"], ["hobbs", "cafe"]])
True
>>> detect_news("The partygoers left", [["party"]])
False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


def detect_news(text: str, keyword_groups: Sequence[Sequence[str]]) -> bool:
    """True when ``text`` holds a word or phrase of every keyword group.

    Matching ignores case, respects word boundaries ("party" does not match "partygoers") and lets
    any run of whitespace stand between the words of a phrase.

    >>> detect_news("Town  HALL vote on Friday", [["town hall"], ["vote", "election"]])
    True
    >>> detect_news("a vote", [["town hall"], ["vote"]])
    False
    """
    patterns = _group_patterns(tuple(tuple(group) for group in keyword_groups))
    return all(pattern.search(text) for pattern in patterns)


@lru_cache(maxsize=256)
def _group_patterns(groups: tuple[tuple[str, ...], ...]) -> tuple[re.Pattern[str], ...]:
    if not groups:
        raise ValueError("keyword_groups is empty: a news item needs at least one keyword group")
    patterns = []
    for index, group in enumerate(groups):
        words = [word.split() for word in group]
        if not words or any(not parts for parts in words):
            raise ValueError(f"keyword group {index} is empty or has a blank word: {list(group)}")
        alternatives = "|".join(r"\s+".join(map(re.escape, parts)) for parts in words)
        # Lookarounds instead of \b so keywords ending in punctuation still match whole words.
        patterns.append(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))
    return tuple(patterns)
