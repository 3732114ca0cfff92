"""Checks of spoken lines: who is addressed (names, kinship), whose point of view a line keeps,
and news the speaker never heard."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from societas.engine.events import Event
from societas.measurement.audit.reader import Line, RunRecord
from societas.measurement.audit.report import CheckResult, Finding, check_result
from societas.measurement.news_spread import news_diffusion
from societas.world.news_keywords import detect_news
from societas.world.phrasing import ASSISTANT_SPEAK
from societas.world.storylines import TrackedNews

FAMILY = "dialogue"

# Words one calls a relative by, and the words a relationship note uses for that relative.
KIN_TERMS = {
    "father": (("dad", "daddy", "papa", "pa", "father"), ("father", "dad", "papa")),
    "mother": (("mom", "mum", "mama", "mommy", "mummy", "mother"), ("mother", "mom", "mum")),
    "son": (("son",), ("son",)),
    "daughter": (("daughter",), ("daughter",)),
    "brother": (("bro", "brother"), ("brother",)),
    "sister": (("sis", "sister"), ("sister",)),
    "grandfather": (("grandpa", "granddad", "grandad"), ("grandfather", "grandpa")),
    "grandmother": (("grandma", "granny", "nana"), ("grandmother", "grandma")),
    "husband": ((), ("husband",)),
    "wife": ((), ("wife",)),
}
# Words that may open a line before a name ("Oh Tomas, ...") and words after which a name is
# someone addressed anywhere in a line ("thanks Tomas").
_OPENER = (
    r"(?:hi|hey|hello|morning|good morning|good afternoon|good evening|thanks|thank you|bye"
    r"|goodbye|oh|well|dear|sorry|yes|no|sure|okay|ok)"
)
_GREETING = r"(?:hi|hey|hello|good morning|good afternoon|good evening|thanks|thank you|goodbye)"


@dataclass(frozen=True)
class _People:
    """Names of the agents: full and first names (a first name shared by two is left out)."""

    by_name: dict[str, str]  # lower-cased full or first name -> agent
    relations: dict[str, dict[str, str]]  # agent -> other -> how the agent describes them

    def names_pattern(self) -> str:
        names = sorted(self.by_name, key=len, reverse=True)
        return "|".join(re.escape(name) for name in names)


def _people(record: RunRecord) -> _People:
    by_name: dict[str, str] = {}
    firsts: dict[str, list[str]] = {}
    for spec in record.scenario.agent_specs():
        by_name[spec.name.lower()] = spec.name
        firsts.setdefault(spec.name.split()[0].lower(), []).append(spec.name)
    by_name |= {first: names[0] for first, names in firsts.items() if len(names) == 1}
    relations = {
        spec.name: {other: text.lower() for other, text in spec.relationships.items()}
        for spec in record.scenario.agent_specs()
    }
    return _People(by_name, relations)


def dialogue_checks(record: RunRecord) -> list[CheckResult]:
    return [_identity(record), _point_of_view(record), _unheard_news(record)]


# --------------------------------------------------------------------------- identity


def _identity(record: RunRecord) -> CheckResult:
    people = _people(record)
    participants = {talk.id: set(talk.participants) for talk in record.talks}
    findings = []
    for line in record.lines:
        problem = _identity_problem(line, people, participants.get(line.conversation_id))
        if problem is not None:
            findings.append(_line_finding(line, problem))
    return check_result(
        "identity",
        FAMILY,
        "lines with a wrong speaker, a wrong name or kinship for the listener, or the speaker "
        "calling himself someone else",
        "lines",
        findings,
        len(record.lines),
    )


def _identity_problem(line: Line, people: _People, talkers: set[str] | None) -> str | None:
    if talkers is not None and line.speaker not in talkers:
        return f"{line.speaker} speaks in a conversation of {', '.join(sorted(talkers))}"
    return _wrong_name(line, people) or _wrong_kinship(line, people)


def _wrong_name(line: Line, people: _People) -> str | None:
    """A listener called by another agent's name, or the speaker saying he is someone else."""
    names = people.names_pattern()
    listeners = set(line.listeners)
    for called in _vocatives(line.text, names):
        person = people.by_name.get(called.lower())
        if person is not None and person not in listeners:
            return f"calls {', '.join(sorted(listeners)) or 'nobody'} {called!r}"
    if names:
        for match in re.finditer(
            rf"\b(?:i am|i'm|my name is)\s+({names})\b(?!['’])", line.text, re.I
        ):
            if people.by_name[match.group(1).lower()] != line.speaker:
                return f"{line.speaker} says he or she is {match.group(1)}"
    return None


def _wrong_kinship(line: Line, people: _People) -> str | None:
    """A listener called "dad" (or "son"...) who is not that to the speaker, or someone named
    as "my wife" who is not."""
    seen = people.relations.get(line.speaker, {})
    for kin, (called_by, _) in KIN_TERMS.items():
        for word in _vocatives(line.text, "|".join(called_by)):
            if not any(_is_kin(seen.get(listener, ""), kin) for listener in line.listeners):
                who = ", ".join(sorted(line.listeners))
                return f"calls {who} {word!r}; {line.speaker}'s {kin} is not among them"
    names = people.names_pattern()
    if not names:
        return None
    for match in re.finditer(rf"\bmy ({_kin_words()}),?\s+({names})\b", line.text, re.I):
        said = _kin_named(match.group(1))
        person = people.by_name[match.group(2).lower()]
        if said is not None and not _is_kin(seen.get(person, ""), said):
            return f"calls {person} 'my {match.group(1)}'"
    return None


def _vocatives(text: str, names: str) -> Iterator[str]:
    """Words of ``names`` (a regex alternation) used to address someone: "Tomas, ...",
    "Hi Tomas", "..., Tomas." or "..., Tomas! Let's go" (see :func:`_is_vocative_at`)."""
    if not names:
        return
    text = text.strip()
    for match in re.finditer(rf"\b({names})\b", text, re.IGNORECASE):
        if _is_vocative_at(text, match.start(), match.end()):
            yield match.group(1)


def _kin_words() -> str:
    words = {w for called, described in KIN_TERMS.values() for w in (*called, *described)}
    return "|".join(sorted(words, key=len, reverse=True))


def _kin_named(word: str) -> str | None:
    word = word.lower()
    for kin, (called, described) in KIN_TERMS.items():
        if word in called or word in described:
            return kin
    return None


def _is_kin(description: str, kin: str) -> bool:
    """Whether a relationship note ("my dad; easy to talk to") says ``kin``."""
    words = KIN_TERMS[kin][1]
    return any(re.search(rf"\b{word}\b", description) for word in words)


# --------------------------------------------------------------------------- point of view


def _point_of_view(record: RunRecord) -> CheckResult:
    people = _people(record)
    findings = []
    for line in record.lines:
        problem = _point_of_view_problem(line, people)
        if problem is not None:
            findings.append(_line_finding(line, problem))
    return check_result(
        "point_of_view",
        FAMILY,
        "lines that speak of the one listener as someone absent, read out an observation "
        '("Name: doing something") or answer like a chat assistant',
        "lines",
        findings,
        len(record.lines),
    )


def _point_of_view_problem(line: Line, people: _People) -> str | None:
    text = line.text.strip()
    leaked = re.match(r"^([A-Z][\w'’-]*(?: [A-Z][\w'’-]*)+):\s", text)
    if leaked and leaked.group(1).lower() in people.by_name:
        return "reads out an observation"
    if ASSISTANT_SPEAK.search(text):
        return "answers like a chat assistant"
    if len(line.listeners) != 1:
        return None  # with two listeners, speaking of one to the other is natural
    (listener,) = line.listeners
    called = {name for name, person in people.by_name.items() if person == listener}
    covered: list[range] = []  # "Rosa" inside an already judged "Rosa Alvarez"
    for name in sorted(called, key=len, reverse=True):
        for match in re.finditer(rf"\b{re.escape(name)}\b(?!['’]s\b)", text, re.IGNORECASE):
            if any(match.start() in span for span in covered):
                continue
            covered.append(range(match.start(), match.end()))
            if _is_vocative_at(text, match.start(), match.end()):
                continue
            return f"speaks of {listener}, the listener, as someone absent"
    return None


def _is_vocative_at(text: str, start: int, end: int) -> bool:
    """Whether the name at ``text[start:end]`` addresses someone: at the start of a sentence
    before a comma or "!", after a greeting, or set off by commas."""
    before, after = text[:start], text[end:]
    sentence_start = rf"(?:^|[.!?]\s+)\W*(?:{_OPENER}\W+)?$"
    if re.search(sentence_start, before, re.IGNORECASE) and re.match(r"\s*[,!?]", after):
        return True
    if re.search(rf"\b{_GREETING},?\s+$", before, re.IGNORECASE):
        return True
    return bool(re.search(r",\s*$", before) and re.match(r"\s*[.!?,]", after))


# --------------------------------------------------------------------------- news


def _unheard_news(record: RunRecord) -> CheckResult:
    findings = []
    mentions = 0
    for item in record.news:
        heard = _first_heard(record.events, item, record)
        for line in record.lines:
            if not detect_news(line.text, item.keywords):
                continue
            mentions += 1
            if not _knew(record, item, line, heard):
                findings.append(_line_finding(line, f"states {item.id!r} before hearing it"))
    return check_result(
        "unheard_news",
        FAMILY,
        "lines stating a news item the speaker had not heard",
        "news mentions in lines",
        findings,
        mentions,
    )


def _knew(record: RunRecord, item: TrackedNews, line: Line, heard: dict[str, datetime]) -> bool:
    """Whether the speaker knew ``item`` when saying ``line``: an initial knower, or told
    before, as the run's news measurement traces it."""
    time = heard.get(line.speaker)
    if time is None or time > line.time:
        return False
    if time < line.time:
        return True
    # Heard at the same step: only what was recorded before this line counts.
    return line.speaker in _first_heard(record.events[: line.position], item, record)


def _first_heard(
    events: Sequence[Event], item: TrackedNews, record: RunRecord
) -> dict[str, datetime]:
    """When each agent first heard ``item`` from anyone (the engine's news tracing, reused)."""
    return news_diffusion(
        events, item, agents=record.agents, start=record.start, from_knowers_only=False
    ).first_heard


def _line_finding(line: Line, detail: str) -> Finding:
    return Finding(
        agent=line.speaker,
        when=f"{line.time:%Y-%m-%d %H:%M}",
        detail=f"{detail}: {line.text!r}",
    )
