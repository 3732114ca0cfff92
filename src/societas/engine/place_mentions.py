"""Which households a memory brings up, found through an index instead of a scan of the town.

A memory brings up another household when it names the household ("dinner at Finch Cottage",
matched case-insensitively anywhere in the text), or names one of its people (a whole word, case
as written) together with an invitation ("Harold invited me over") or a visit to that person
("visit Mei"). Checking every household against every memory costs households x memories regex
work per planning call, which grows with the town; here the names are indexed once by their first
few characters, so a memory costs one dictionary look-up per character plus the exact checks of
the few names that actually occur in it. The answer is the same as the scan's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache

_INVITED = re.compile(
    r"\b(invited me|invites me|asked me over|come over|came over|drop by|stop by"
    r"|at (?:his|her|their) (?:place|house|home))",
    re.IGNORECASE,
)
_PREFIX = 4  # characters a key is indexed by; shorter keys are checked one by one


class SubstringIndex:
    """The keys that occur in a text as substrings, found by their first characters."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._buckets: dict[str, list[str]] = {}
        self._short: list[str] = []
        for key in dict.fromkeys(keys):
            if len(key) < _PREFIX:
                self._short.append(key)
            else:
                self._buckets.setdefault(key[:_PREFIX], []).append(key)

    def occurring(self, text: str) -> Iterator[str]:
        """Every key that is a substring of ``text`` (a key may come more than once)."""
        buckets = self._buckets
        for start in range(len(text) - _PREFIX + 1):
            bucket = buckets.get(text[start : start + _PREFIX])
            if bucket is not None:
                for key in bucket:
                    if text.startswith(key, start):
                        yield key
        for key in self._short:
            if key in text:
                yield key


@lru_cache(maxsize=4096)
def _whole_word(name: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(name)}\b")


@lru_cache(maxsize=4096)
def _visit(name: str) -> re.Pattern[str]:
    return re.compile(rf"\bvisit\w*\s+{re.escape(name)}\b")


class HouseholdMentions:
    """Which households' areas memories bring up, given each area's people."""

    def __init__(self, residents: Mapping[str, Sequence[str]]) -> None:
        """``residents`` maps each household's area to the full names of its people."""
        self._area_of_lowered: dict[str, list[str]] = {}
        self._areas_of_name: dict[str, list[str]] = {}
        for area, people in residents.items():
            self._area_of_lowered.setdefault(area.lower(), []).append(area)
            for name in dict.fromkeys(p for person in people for p in (person, person.split()[0])):
                self._areas_of_name.setdefault(name, []).append(area)
        self._areas = SubstringIndex(self._area_of_lowered)
        self._names = SubstringIndex(self._areas_of_name)

    def brought_up(self, memories: Iterable[str]) -> set[str]:
        """The areas any of ``memories`` brings up."""
        found: set[str] = set()
        for memory in memories:
            found.update(self._brought_up_by(memory))
        return found

    def _brought_up_by(self, memory: str) -> set[str]:
        found: set[str] = set()
        for lowered in self._areas.occurring(memory.lower()):
            found.update(self._area_of_lowered[lowered])
        named = {
            n for n in dict.fromkeys(self._names.occurring(memory)) if _whole_word(n).search(memory)
        }
        if not named:
            return found
        if _INVITED.search(memory):
            for name in named:
                found.update(self._areas_of_name[name])
            return found
        for name in named:
            if _visit(name).search(memory):
                found.update(self._areas_of_name[name])
        return found
