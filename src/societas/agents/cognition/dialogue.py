"""Conversations written line by line, each line from its speaker's own view.

A line is written by a call that sees only its speaker (``converse_line.yaml``): their persona,
how they see each listener (names and kinship stated by code, :func:`view_of`), their plan for
today, their own memories (the caller refreshes them from what was just said) and the talk so
far. Nobody else's memories are in that prompt, so a secret travels only when someone who knows
it says it. Code decides who speaks next and how many lines a talk may have (:class:`TalkState`);
the model decides what the speaker says and whether they end the talk. At the end each
participant's own call (``converse_takeaway.yaml``) writes what they take away: a first-person
memory, how much it matters, what they agreed to do (:class:`Commitment`) and a note about each
other participant.

Every free text is repaired by code (:mod:`~societas.agents.cognition.sentences`): a text the
length bound cut keeps its whole sentences, and one that drifts into another script is cut back
before the drift; a line left with nothing is asked for once more, then the talk ends.

The engine drives the rounds itself (each speaker's call runs where that agent lives); here,
:func:`converse` runs a whole talk in one process for callers that hold every participant.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> def answer(call):
...     if call.purpose == "converse_line" and "You are Ada" in call.prompt_text:
...         return {"say": "Bo, party at the cafe at 17:00!", "end": False}
...     if call.purpose == "converse_line":
...         return {"say": "I'd love to. See you there!", "end": True}
...     return {"memory": "We talked about the party.", "imp": 5,
...             "plans": [{"what": "party", "place": "cafe:hall", "time": "17:00"}], "notes": []}
>>> people = [Participant(speaker=Speaker(persona=Persona(name="Ada Quist", age=30))),
...           Participant(speaker=Speaker(persona=Persona(name="Bo Lin", age=40)))]
>>> talk = asyncio.run(converse(ScriptedLLM(answer), people,
...     now=datetime(2023, 2, 13, 9, 0), place="park:lawn", places=["cafe:hall"]))
>>> [(u.speaker, u.text) for u in talk.turns]  # Bo ends the talk
[('Ada Quist', 'Bo, party at the cafe at 17:00!'), ('Bo Lin', "I'd love to. See you there!")]
>>> talk.outcomes["Bo Lin"].commitments[0].start
1020
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from societas.agents.cognition.planning import Commitment
from societas.agents.cognition.schemas import (
    NONE,
    ask,
    bullet_list,
    choice_or_none,
    model_text,
    moment_text,
    one_line,
    parse_clock,
)
from societas.agents.cognition.sentences import main_script, readable
from societas.agents.persona import Persona
from societas.llm.narrowing import Count, Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import ASSISTANT_SPEAK, was_cut

MIN_PEOPLE, MAX_PEOPLE = 2, 3
MIN_TURNS, MAX_TURNS = 2, 8
MAX_PLANS = 2
# Character bounds of the answers' strings. Prompts ask for about half of each (a line is one
# or two short sentences), so a model finishes its text well before the grammar would cut it.
LINE_CHARS = 240
MEMORY_CHARS = 240
NOTE_CHARS = 120
WHAT_CHARS = 60
# Token bounds (a small model may spend a token on every two characters of unusual text).
LINE_TOKENS = 140
TAKEAWAY_TOKENS = 150
TOKENS_PER_PLAN = 50
TOKENS_PER_NOTE = 70
# Kinship and first-person wording in a relationship note, as the speaker is addressed.
_SECOND_PERSON = {"my": "your", "i": "you", "me": "you", "mine": "yours", "am": "are"}
_PERSON_WORD = re.compile(r"\b(my|I|me|mine|am)\b", re.I)


# --- who speaks, and how they see the others ---------------------------------------------------


def view_of(name: str, note: str, latest: str = "") -> str:
    """How the speaker sees ``name``, addressed to the speaker: ``"Tomas Alvarez — your dad;
    easy to talk to"`` from the note ``"my dad; easy to talk to"`` (kinship as the scenario states
    it); ``latest`` is the speaker's newest impression, when it differs from the note.

    >>> view_of("Tomas Alvarez", "my dad; I am his only son", "tired today")
    'Tomas Alvarez — your dad; you are his only son (lately: tired today)'
    >>> view_of("Cy Hart", "")
    'Cy Hart — someone you know by sight'
    """
    addressed = _PERSON_WORD.sub(lambda m: _SECOND_PERSON[m.group(1).lower()], one_line(note))
    text = f"{name} — {addressed or 'someone you know by sight'}"
    latest = one_line(latest)
    if latest and latest != one_line(note):
        text += f" (lately: {latest})"
    return text


class Speaker(BaseModel):
    """One person as their own calls see them: who they are, how they see the others, their day.

    ``views`` maps each other participant to how this person sees them (see :func:`view_of`);
    ``plan`` holds today's plan as lines ("12:00-13:00 lunch at home").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    persona: Persona
    views: dict[str, str] = Field(default_factory=dict)
    activity: str = ""
    plan: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.persona.name

    @property
    def script(self) -> str:
        """The script this person talks in (that of their persona's text)."""
        return main_script(self.persona.summary())

    def view_lines(self, others: Sequence[str]) -> str:
        return bullet_list([self.views.get(other) or view_of(other, "") for other in others])

    def plan_lines(self) -> str:
        return bullet_list(self.plan, empty="(no plan)")


class Utterance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    speaker: str
    text: str


class ConversationOutcome(BaseModel):
    """What one participant takes away: a memory, commitments, notes about the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory: str
    commitments: tuple[Commitment, ...] = ()
    relationships: dict[str, str] = Field(default_factory=dict)
    # How memorable the talk is for this person (1-10), rated in the same call so storing the
    # memory needs no importance call; None when their call gave no answer.
    importance: int | None = Field(default=None, ge=1, le=10)


class Conversation(BaseModel):
    """A finished conversation; ``outcomes`` has one entry per participant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    participants: tuple[str, ...]
    place: str
    summary: str
    turns: tuple[Utterance, ...]
    outcomes: dict[str, ConversationOutcome]

    def listeners_of(self, speaker: str) -> list[str]:
        """Everyone in the conversation except ``speaker``."""
        return [name for name in self.participants if name != speaker]


# --- turn order and ending (code's part) -------------------------------------------------------


@dataclass
class TalkState:
    """A talk in progress: who speaks next, and whether it is over.

    People speak in turn, the first (who started the talk) first, for at most ``max_turns``
    lines. A speaker who ends the talk has the last word, except that the first line always gets
    a reply; a speaker with nothing to say, or echoing a line already said (most of its words
    are an earlier line's: small models parrot the last line back), ends it at once.
    """

    names: tuple[str, ...]
    max_turns: int
    turns: list[Utterance] = field(default_factory=list)
    closing: bool = False
    over: bool = False
    _said: list[frozenset[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_people(self.names)
        if not MIN_TURNS <= self.max_turns <= MAX_TURNS:
            raise ValueError(f"max_turns must be {MIN_TURNS}-{MAX_TURNS}, got {self.max_turns}")

    @property
    def next_speaker(self) -> str | None:
        if self.over:
            return None
        return self.names[len(self.turns) % len(self.names)]

    def add(self, text: str, ends: bool) -> None:
        """The next speaker's line (``""``: they said nothing) and whether they end the talk."""
        speaker = self.next_speaker
        if speaker is None:
            raise ValueError("the talk is over")
        # The participants' names aside: "Hello Mateo, how are you?" answered with "Hello Rosa,
        # how are you?" is the same line.
        names = {word for name in self.names for word in _WORD.findall(name.lower())}
        words = frozenset(_WORD.findall(text.lower())) - names
        if not words or any(_echoes(words, earlier) for earlier in self._said):
            self.over = True
            return
        self._said.append(words)
        self.turns.append(Utterance(speaker=speaker, text=text))
        if self.closing or len(self.turns) >= self.max_turns:
            self.over = True
        elif ends:
            self.over = len(self.turns) >= MIN_TURNS
            self.closing = not self.over


_WORD = re.compile(r"[^\W_]+")
# Share of the shorter line's words that both lines use, above which the later is an echo.
ECHO_SHARE = 0.8


def _echoes(words: frozenset[str], earlier: frozenset[str]) -> bool:
    """Whether a line of ``words`` mostly repeats an ``earlier`` one, or wraps it in a few words
    of its own (short lines only when identical: "Yes." after "Yes.", but not "See you then, at
    five." after "See you at the cafe at five.")."""
    shorter = min(len(words), len(earlier))
    if shorter < 4:
        return words == earlier
    return len(words & earlier) > ECHO_SHARE * shorter


def check_people(names: Sequence[str]) -> None:
    if not MIN_PEOPLE <= len(names) <= MAX_PEOPLE:
        raise ValueError(f"a conversation needs {MIN_PEOPLE}-{MAX_PEOPLE} people, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"conversation participants must have distinct names: {tuple(names)}")


# --- answer schemas ----------------------------------------------------------------------------


class LineAnswer(BaseModel):
    """The answer of ``converse_line.yaml``."""

    say: str = Field(max_length=LINE_CHARS)
    end: bool


class PlanAnswer(BaseModel):
    what: str = Field(max_length=WHAT_CHARS)
    place: str
    time: str = Field(max_length=5, description='HH:MM or "none"')


class NoteAnswer(BaseModel):
    about: str
    note: str = Field(max_length=NOTE_CHARS)


class TakeawayAnswer(BaseModel):
    """The answer of ``converse_takeaway.yaml``."""

    memory: str = Field(max_length=MEMORY_CHARS)
    imp: int = Field(ge=1, le=10)
    plans: list[PlanAnswer] = Field(max_length=MAX_PLANS)
    notes: list[NoteAnswer] = Field(max_length=MAX_PEOPLE - 1)


def takeaway_answer(others: tuple[str, ...], places: tuple[str, ...]) -> Narrowed[TakeawayAnswer]:
    """``TakeawayAnswer`` whose notes are about ``others`` and whose plans name ``places``."""
    return narrow(
        TakeawayAnswer,
        {
            "plans.place": (*places, NONE),
            "notes": Count(max=len(others)),
            "notes.about": others,
        },
    )


# --- the calls ---------------------------------------------------------------------------------


async def next_line(
    llm: LanguageModel,
    speaker: Speaker,
    talk: TalkState,
    *,
    memories: Sequence[str],
    now: datetime,
    place: str,
    reason: str = "",
    params: SamplingParams | None = None,
) -> tuple[str, bool]:
    """``speaker``'s next line of ``talk`` (``""`` when they have nothing readable to say) and
    whether they end the talk. ``memories`` are the speaker's own; ``reason`` is why the first
    speaker started the talk."""
    if talk.next_speaker != speaker.name:
        raise ValueError(f"it is {talk.next_speaker}'s turn, not {speaker.name}'s")
    others = [name for name in talk.names if name != speaker.name]
    variables = dict(
        name=speaker.name,
        first=speaker.persona.first_name,
        persona=_quoted(speaker.persona.summary()),
        now=moment_text(now),
        place=place,
        activity=_quoted(one_line(speaker.activity) or "nothing in particular"),
        others=_quoted(speaker.view_lines(others)),
        plan=_quoted(speaker.plan_lines()),
        memories=_quoted(bullet_list(memories)),
        opening=_opening(speaker, talk, others, reason),
        talk=_quoted(transcript(talk.turns, me=speaker.name) or "(nobody has spoken yet)"),
    )
    for attempt in range(2):  # a line with nothing readable left is asked for once more
        answer = await ask(
            llm,
            LineAnswer,
            "converse_line",
            variables,
            purpose="converse_line",
            max_tokens=LINE_TOKENS,
            params=params,
            sample_index=attempt,
        )
        text = _line_text(answer.say, speaker, others)
        if text:
            return text, answer.end
    return "", True


async def take_away(
    llm: LanguageModel,
    speaker: Speaker,
    talk: TalkState,
    *,
    now: datetime,
    place: str,
    places: Sequence[str],
    params: SamplingParams | None = None,
) -> ConversationOutcome:
    """What ``speaker`` takes away from the finished ``talk``, from their own view only."""
    others = tuple(name for name in talk.names if name != speaker.name)
    allowed = tuple(dict.fromkeys(places))
    answer = await ask(
        llm,
        takeaway_answer(others, allowed),
        "converse_takeaway",
        dict(
            name=speaker.name,
            first=speaker.persona.first_name,
            persona=_quoted(speaker.persona.summary()),
            now=moment_text(now),
            place=place,
            others=_quoted(speaker.view_lines(others)),
            talk=_quoted(transcript(talk.turns, me=speaker.name) or "(nothing was said)"),
            places=bullet_list(allowed),
        ),
        purpose="converse_takeaway",
        max_tokens=TAKEAWAY_TOKENS + TOKENS_PER_PLAN * MAX_PLANS + TOKENS_PER_NOTE * len(others),
        params=params,
    )
    return _outcome(answer, speaker, others, place)


@dataclass(frozen=True)
class Participant:
    """A speaker and how to recall their memories (by a query: what was just said)."""

    speaker: Speaker
    memories: tuple[str, ...] = ()
    recall: Callable[[str], Awaitable[Sequence[str]]] | None = None

    @property
    def name(self) -> str:
        return self.speaker.name

    async def remembered(self, query: str) -> Sequence[str]:
        return self.memories if self.recall is None else await self.recall(query)


async def converse(
    llm: LanguageModel,
    participants: Sequence[Participant],
    *,
    now: datetime,
    place: str,
    places: Sequence[str],
    reason: str = "",
    max_turns: int = 6,
    params: SamplingParams | None = None,
) -> Conversation:
    """A whole conversation between 2-3 people at ``place``, one call per line and one
    takeaway call per person. The first participant starts it (``reason``: why); ``places``
    are the room addresses a commitment may name."""
    talk = TalkState(tuple(p.name for p in participants), max_turns)
    by_name = {p.name: p for p in participants}
    while (name := talk.next_speaker) is not None:
        person = by_name[name]
        memories = await person.remembered(recall_query(talk, name, reason))
        text, ends = await next_line(
            llm,
            person.speaker,
            talk,
            memories=memories,
            now=now,
            place=place,
            reason=reason,
            params=params,
        )
        talk.add(text, ends)
    outcomes = {
        p.name: await take_away(
            llm, p.speaker, talk, now=now, place=place, places=places, params=params
        )
        for p in participants
    }
    return finished(talk, place, outcomes)


def recall_query(talk: TalkState, speaker: str, reason: str = "") -> str:
    """What ``speaker``'s memories are retrieved by before their line: the last thing said to
    them, else the people they are talking to and why."""
    if talk.turns:
        return talk.turns[-1].text
    others = [name for name in talk.names if name != speaker]
    return " ".join([*others, one_line(reason)]).strip()


def finished(talk: TalkState, place: str, outcomes: dict[str, ConversationOutcome]) -> Conversation:
    """The finished conversation (its summary is stated by code: nobody's view, nothing cut)."""
    lines = len(talk.turns)
    summary = (
        f"{' and '.join(talk.names)} talked at {place} ({lines} line{'s' if lines != 1 else ''})."
    )
    return Conversation(
        participants=talk.names,
        place=place,
        summary=summary,
        turns=tuple(talk.turns),
        outcomes=outcomes,
    )


def transcript(turns: Sequence[Utterance], *, me: str) -> str:
    """The talk so far as ``me`` heard it: one ``First: line`` per turn, "(you)" on own lines."""
    return "\n".join(
        f"{turn.speaker.split()[0]}{' (you)' if turn.speaker == me else ''}: {turn.text}"
        for turn in turns
    )


# --- repairs -----------------------------------------------------------------------------------


def _opening(speaker: Speaker, talk: TalkState, others: list[str], reason: str) -> str:
    if speaker.name == talk.names[0]:
        why = f" ({_quoted(one_line(reason))})" if reason.strip() else ""
        return f"You started this talk with {' and '.join(others)}{why}."
    return f"{talk.names[0]} came up to talk with you."


def _line_text(say: str, speaker: Speaker, others: list[str]) -> str:
    """The line as spoken: no leading "Name:" label, whole sentences, in the talk's script.

    Nothing is said (the talk ends) when the model reads out an observation of a listener
    ("Mateo Alvarez: preparing guitar.") or answers like a chat assistant.
    """
    text = model_text(say)
    for label in (speaker.name, speaker.persona.first_name):
        if text.lower().startswith(label.lower() + ":"):
            text = text[len(label) + 1 :]
            break
    labels = {label.lower() for other in others for label in (other, other.split()[0])}
    if text.split(":", 1)[0].strip().lower() in labels or ASSISTANT_SPEAK.search(text):
        return ""
    return readable(text, cut=was_cut(say, LINE_CHARS), script=speaker.script)


def _outcome(
    answer: TakeawayAnswer, speaker: Speaker, others: tuple[str, ...], place: str
) -> ConversationOutcome:
    script = speaker.script
    notes: dict[str, str] = {}
    for note in answer.notes:
        text = readable(note.note, cut=was_cut(note.note, NOTE_CHARS), script=script)
        if note.about in others and text:
            notes.setdefault(note.about, text.rstrip("."))
    memory = readable(answer.memory, cut=was_cut(answer.memory, MEMORY_CHARS), script=script)
    return ConversationOutcome(
        memory=memory or f"I talked with {' and '.join(others)} at {place}.",
        commitments=tuple(c for c in (_commitment(p, script) for p in answer.plans) if c),
        relationships=notes,
        importance=answer.imp,
    )


def _commitment(plan: PlanAnswer, script: str) -> Commitment | None:
    """A commitment from the answer; the time "none" or an unreadable one means no fixed time."""
    what = readable(plan.what, cut=False, script=script).rstrip(".")
    if was_cut(plan.what, WHAT_CHARS) and " " in what:
        what = what.rsplit(" ", 1)[0]  # a cut description keeps its whole words
    if not what:
        return None
    start = None if plan.time.strip().lower() == NONE else parse_clock(plan.time)
    return Commitment(description=what, place=choice_or_none(plan.place), start=start)


def _quoted(text: str) -> str:
    """``text`` safe inside a tag-delimited block of a prompt: no ``<`` or ``>`` left."""
    return text.replace("<", "‹").replace(">", "›")
