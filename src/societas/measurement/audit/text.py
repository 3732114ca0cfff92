"""Checks of written text: texts cut off mid-sentence, letters of another script, and memories
that do not read as English ("Tomas Alvarez is have a hearty breakfast")."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from societas.measurement.audit.reader import RunRecord
from societas.measurement.audit.report import CheckResult, Finding, check_result

FAMILY = "text"
SENTENCE_WORDS = 6  # a sentence-like text this long must end as a sentence does
SCRIPT_SHARE = 0.01  # a script is the scenario's own when this share of its letters use it


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words a text does not end on unless it was cut off.
DANGLING = _words(
    """a an the and or but nor so to of in on at by for from with into about as than that
    which who whom whose when while because if though although is are was were be been being
    has have had will would shall should can could may might must do does did not very just
    my your his her its our their this these those i we they he she also then promised"""
)
_TERMINAL = ".!?…\"'”’)]*"
# Base-form verbs that cannot follow "is" ("is have", "is make"); words that are also
# adjectives or participles ("open", "set", "read") are left out.
BASE_VERBS = _words(
    """have make go eat take get do write cook bake walk prepare check drink sit play practise
    practice talk meet help buy sell start finish wash shower brush sleep wake rest review plan
    chat visit call watch greet serve arrange organise organize tend feed sweep pack leave
    head grab enjoy relax attend browse look listen sing draft edit fill jog stretch think work
    bring carry fix build paint teach learn study sketch tune order pay count stock unlock lock
    lay pick pour brew sip chop stir bike drive ride swim weed dig rake mow
    chop hang fold iron sew knit mend answer ask tell say speak discuss decide try want need
    love hate see hear feel find give keep let put show turn begin continue stay wait
    spend become follow create move live believe hold happen"""
)
_BE_VERB = re.compile(r"\b(is|are|was|were|am)\s+([a-z]+)\b", re.IGNORECASE)
_REPEATED_WORD = re.compile(r"\b([a-z]+)\s+\1\b", re.IGNORECASE)
# Repeats that are English ("had had", "that that").
_FINE_REPEATS = frozenset({"had", "that", "very", "so", "bye", "no", "yes", "really", "ha"})


@dataclass(frozen=True)
class _Text:
    agent: str | None
    when: str
    source: str  # what the text is: "line", "summary", "memory", ...
    text: str
    sentence: bool  # written as sentences (lines, summaries, notes), not as a short phrase


def text_checks(record: RunRecord) -> list[CheckResult]:
    texts = list(_texts(record))
    return [_cut_off(texts), _other_script(record, texts), _ungrammatical(record)]


def _texts(record: RunRecord) -> Iterator[_Text]:
    for line in record.lines:
        yield _Text(line.speaker, _at(line.time), "line", line.text, True)
    for talk in record.talks:
        if talk.summary:
            yield _Text(None, _at(talk.time), "summary", talk.summary, True)
    for note in record.notes:
        # A note is a label ("my younger brother; works with me"), not a sentence: no stop needed.
        yield _Text(note.agent, _at(note.time), f"note on {note.other}", note.text, False)
    for memory in record.memories:
        sentence = memory.kind in ("dialogue", "reflection")
        yield _Text(memory.agent, _at(memory.time), f"{memory.kind} memory", memory.text, sentence)
    for action in record.actions:
        yield _Text(action.agent, _at(action.time), "action", action.description, False)
    for plan in record.final_plans():
        for block in plan.blocks:
            when = f"{plan.day} {block.span()}"
            yield _Text(plan.agent, when, "plan block", block.activity, False)


def _at(time: object) -> str:
    return f"{time:%Y-%m-%d %H:%M}"


def _finding(text: _Text, detail: str) -> Finding:
    return Finding(
        agent=text.agent, when=text.when, detail=f"{text.source} {detail}: {text.text!r}"
    )


# --------------------------------------------------------------------------- cut-off texts


def cut_off_reason(text: str, *, sentence: bool) -> str | None:
    """Why ``text`` looks cut off mid-sentence, or None.

    >>> cut_off_reason("and Tomas has promised to", sentence=True)
    "ends on 'to'"
    >>> cut_off_reason("Making coffee,", sentence=False)
    "ends on ','"
    >>> cut_off_reason("make coffee", sentence=False) is None
    True
    """
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[-1] in ",;:-–—(/&":
        return f"ends on {stripped[-1]!r}"
    words = re.findall(r"[\w']+", stripped.lower())
    if words and stripped[-1].isalnum() and words[-1] in DANGLING:
        return f"ends on {words[-1]!r}"
    ends_as_sentence = stripped[-1] in _TERMINAL or not stripped[-1].isalnum()
    if sentence and len(words) >= SENTENCE_WORDS and not ends_as_sentence:
        return "ends without finishing its sentence"
    return None


def _cut_off(texts: list[_Text]) -> CheckResult:
    findings = []
    for text in texts:
        reason = cut_off_reason(text.text, sentence=text.sentence)
        if reason is not None:
            findings.append(_finding(text, reason))
    return check_result(
        "cut_off_texts",
        FAMILY,
        "texts that stop mid-sentence (lines, summaries, notes, memories, actions, plan blocks)",
        "texts",
        findings,
        len(texts),
    )


# --------------------------------------------------------------------------- other scripts


def script_of(char: str) -> str | None:
    """The script a letter is written in ("LATIN", "CJK", "CYRILLIC"...); None for others.

    >>> script_of("a"), script_of("都"), script_of("ひ"), script_of("1")
    ('LATIN', 'CJK', 'CJK', None)
    """
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    script = name.split(" ", 1)[0] if name else "UNKNOWN"
    return "CJK" if script in ("HIRAGANA", "KATAKANA", "CJK", "HANGUL") else script


def scripts_of(text: str) -> Counter[str]:
    return Counter(script for script in map(script_of, text) if script is not None)


def _other_script(record: RunRecord, texts: list[_Text]) -> CheckResult:
    own = scripts_of(record.scenario.source_text)
    letters = sum(own.values())
    allowed = {script for script, count in own.items() if count >= SCRIPT_SHARE * letters}
    findings = []
    for text in texts:
        foreign = sorted(set(scripts_of(text.text)) - allowed)
        if foreign:
            findings.append(_finding(text, f"has {', '.join(foreign)} letters"))
    return check_result(
        "other_script",
        FAMILY,
        f"texts with letters of a script the scenario does not use ({', '.join(sorted(allowed))})",
        "texts",
        findings,
        len(texts),
    )


# --------------------------------------------------------------------------- grammar


def grammar_problem(text: str) -> str | None:
    """What makes a memory ungrammatical, or None.

    >>> grammar_problem("Tomas Alvarez is have a hearty breakfast")
    "'is have'"
    >>> grammar_problem("Tomas Alvarez: having a hearty breakfast") is None
    True
    """
    for match in _BE_VERB.finditer(text):
        if match.group(2).lower() in BASE_VERBS:
            return repr(match.group(0))
    for match in _REPEATED_WORD.finditer(text):
        if match.group(1).lower() not in _FINE_REPEATS:
            return f"repeated {match.group(1)!r}"
    return None


def _ungrammatical(record: RunRecord) -> CheckResult:
    findings = []
    for memory in record.memories:
        problem = grammar_problem(memory.text)
        if problem is not None:
            findings.append(
                Finding(
                    agent=memory.agent,
                    when=_at(memory.time),
                    detail=f"{memory.kind} memory {problem}: {memory.text!r}",
                )
            )
    return check_result(
        "ungrammatical_memories",
        FAMILY,
        "memories with a bare verb after 'is' or a doubled word",
        "memories",
        findings,
        len(record.memories),
    )
