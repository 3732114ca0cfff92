"""Text checks the rule graders share: names, denials, content words, ages, clock times.

Interview answers are free text, so every check is tolerant: a person counts as named by their
first name alone, words match on a shared stem ("writer" and "writing"), and "I have no idea"
counts as not knowing. Two things never count as evidence: words the answer repeats from the
question ("Who is Hollis Pike?" -- "Hollis Pike is not mentioned in my memory" knows nothing), and
praise that fits anybody ("friendly", "kind"). A denial counts wherever it stands in the answer.

Examples
--------
>>> mentions_person("Oh, Noah? He lives next door.", "Noah Bell")
True
>>> denies_knowing("Sorry, I don't know anyone by that name.")
True
>>> shares_words("I write novels at home", "writer")
True
>>> clock_phrase(15 * 60 + 30)
'3:30 pm'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORD_TEXT = """
a an the and or but of at in on to for with from by as is are was were be been am i me my you your
he she it we they them his her its our their this that these those there here what who whom which
when where why how do does did doing done have has had having will would shall should can could
may might must not no yes so very just also too then than some any all each about into over under
up down out off again more most other such only own same few while during before after above below
between through until once because if else get got go going gone make made day today time thing
things really well lot bit main room street area
"""
# Words that say nothing about a person, a place or an activity ("main room" is every home).
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_DENIAL = re.compile(
    r"\b(?:don'?t know|do not know|didn'?t know|not know|never met|haven'?t met|have not met"
    r"|not sure who|no idea|never heard|haven'?t heard|have not heard|not familiar|unfamiliar"
    r"|doesn'?t ring a bell|does not ring a bell|don'?t recogni[sz]e|do not recogni[sz]e"
    r"|can'?t say i know|cannot say i know|who is that|who's that|not someone i know"
    r"|no one by that name|nobody by that name|don'?t think i know|do not think i know"
    r"|i'?m afraid i don'?t|never came across|not acquainted"
    # Denials of having a record at all ("X is not mentioned in my memory").
    r"|not mentioned|isn'?t mentioned|no mention|not in my memor(?:y|ies)|no memor(?:y|ies) of"
    r"|don'?t remember|do not remember|can'?t recall|cannot recall|don'?t recall|do not recall"
    r"|no information|no record|nothing about|not aware of|unknown to me)\b",
    re.IGNORECASE,
)
# Praise that fits anybody: it says nothing about which person is meant.
_GENERIC_PRAISE_TEXT = """
friendly kind nice lovely good great wonderful helpful pleasant sweet caring amazing awesome fine
person people someone guy man woman lady gentleman friend know known knows
"""
_GENERIC_PRAISE = frozenset(_GENERIC_PRAISE_TEXT.split())
_TITLE = r"(?:mr|mrs|ms|miss|dr|mister)\.?\s+"
# "I'm 42", "aged 42", "42 years old"; not "I'm 5 minutes away" or "for 10 years".
_AGE_CLAIM = re.compile(
    r"\b(?:i'?m|i am)\s+(\d{1,3})(?=\s*(?:[,.;!]|and\b|$))"
    r"|\b(?:aged?|age of|age is)\s+(\d{1,3})\b"
    r"|\b(\d{1,3})[\s-]*(?:years?|yrs?)[\s-]*old\b",
    re.IGNORECASE,
)
_SELF_NAME = re.compile(r"\b(?i:my name is|i am|i'm|call me)\s+([A-Z][a-z]+)")


def words(text: str) -> list[str]:
    """Lower-case words of ``text``."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Words that carry meaning (no stopwords, at least three letters), in order, unique."""
    return list(dict.fromkeys(w for w in words(text) if len(w) >= 3 and w not in _STOPWORDS))


def same_stem(first: str, second: str) -> bool:
    """Whether two words share a stem: equal, or a common prefix of at least four letters
    covering most of the shorter word ("writer"/"writing", "book"/"books")."""
    if first == second:
        return True
    shorter = min(len(first), len(second))
    common = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        common += 1
    return common >= 4 and common >= 0.6 * shorter


def _joined(text: str | Iterable[str]) -> str:
    return text if isinstance(text, str) else " ".join(text)


def evidence_words(answer: str, ignore: str | Iterable[str] = ()) -> list[str]:
    """The content words of ``answer`` that are not in ``ignore`` (on a shared stem).

    Words an answer repeats from the question are no evidence of knowing anything:

    >>> evidence_words("Hollis Pike is a baker.", "Who is Hollis Pike?")
    ['baker']
    """
    echoed = content_words(_joined(ignore))
    return [w for w in content_words(answer) if not any(same_stem(w, e) for e in echoed)]


def matched_words(
    answer: str, expected: str | Iterable[str], ignore: str | Iterable[str] = ()
) -> list[str]:
    """The content words of ``expected`` that ``answer`` uses (on a shared stem), leaving out
    the words of ``ignore`` (the question: repeating it is no evidence)."""
    wanted = content_words(_joined(expected))
    said = evidence_words(answer, ignore)
    return [w for w in wanted if any(same_stem(w, s) for s in said)]


def shares_words(
    answer: str, expected: str | Iterable[str], ignore: str | Iterable[str] = ()
) -> bool:
    """Whether ``answer`` uses at least one content word of ``expected`` (not of ``ignore``)."""
    return bool(matched_words(answer, expected, ignore))


def telling_words(words_: Iterable[str]) -> list[str]:
    """``words_`` without praise that fits anybody ("friendly", "kind", "nice person")."""
    return [w for w in words_ if w not in _GENERIC_PRAISE]


def mentions_person(text: str, name: str) -> bool:
    """Whether ``text`` names ``name``: the full name, the first name, or a title and surname."""
    parts = name.split()
    if not parts:
        return False
    patterns = [re.escape(name), re.escape(parts[0])]
    if len(parts) > 1:
        patterns.append(_TITLE + re.escape(parts[-1]))
    return any(re.search(rf"\b{p}\b", text, re.IGNORECASE) for p in patterns)


def people_named(text: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` the text mentions."""
    return [name for name in names if mentions_person(text, name)]


_FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")


def unknown_full_names(text: str, known: Iterable[str]) -> list[str]:
    """Capitalised multi-word names in ``text`` that are none of ``known`` (people or places).

    >>> unknown_full_names("Liam Blackwood, from Corner Cafe", ["Corner Cafe", "Noah Bell"])
    ['Liam Blackwood']
    """
    lowered = [k.lower() for k in known]
    return [
        name
        for name in _FULL_NAME.findall(text)
        if not any(name.lower() in k or k in name.lower() for k in lowered)
    ]


def denies_knowing(text: str) -> bool:
    """Whether the answer says the speaker does not know (someone or something)."""
    return bool(_DENIAL.search(text.replace("\u2019", "'")))


def ages_claimed(text: str) -> list[int]:
    """Ages the speaker states ("I'm 42", "42 years old")."""
    found = _AGE_CLAIM.findall(text.replace("\u2019", "'"))
    return [int(next(group for group in groups if group)) for groups in found]


def names_claimed(text: str) -> list[str]:
    """First names the speaker gives as their own ("my name is Ada", "I'm Ada")."""
    return _SELF_NAME.findall(text.replace("\u2019", "'"))


def clock_phrase(minute: int) -> str:
    """A minute of the day as people say it: ``'9:00 am'``, ``'3:30 pm'``, ``'12:00 pm'``."""
    hour, rest = divmod(minute % (24 * 60), 60)
    suffix = "am" if hour < 12 else "pm"
    return f"{(hour % 12) or 12}:{rest:02d} {suffix}"


def place_words(address: str) -> list[str]:
    """Words naming a place address ``"area:room[:object]"`` (its area first)."""
    return content_words(" ".join(address.split(":")))
