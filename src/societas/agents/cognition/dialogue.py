"""Whole conversations in ONE call, with each participant's outcome in the same answer.

The prompt gives every participant a separate section (persona, current activity, their OWN
memories) and tells the model that each person knows only their own section, so news travels only
when someone says it. The answer holds the turns and, per participant, a first-person memory of
the talk, the commitments they made (which :func:`~societas.agents.cognition.planning.revise_plan`
turns into plan blocks) and an updated note about each other participant.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> answer = {"turns": [{"who": "Ada Quist", "say": "Party at the cafe at 17:00!"},
...                     {"who": "Bo Lin", "say": "I'll be there."}],
...           "gist": "Ada invited Bo to the party.",
...           "after": [{"who": "Ada Quist", "memory": "I invited Bo.", "imp": 4, "plans": [],
...                      "notes": []},
...                     {"who": "Bo Lin", "memory": "Ada invited me to a party.", "imp": 6,
...                      "plans": [{"what": "party", "place": "cafe:hall", "time": "17:00"}],
...                      "notes": [{"about": "Ada Quist", "note": "friendly host"}]}]}
>>> people = [Participant(persona=Persona(name="Ada Quist", age=30), activity="walking"),
...           Participant(persona=Persona(name="Bo Lin", age=40), activity="reading")]
>>> talk = asyncio.run(converse(ScriptedLLM(lambda call: answer), people,
...     now=datetime(2023, 2, 13, 9, 0), place="park:lawn", places=["cafe:hall"]))
>>> talk.outcomes["Bo Lin"].commitments[0].start
1020
"""

from __future__ import annotations

from collections.abc import Sequence
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
from societas.agents.persona import Persona
from societas.llm.narrowing import Count, Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams

MIN_PEOPLE, MAX_PEOPLE = 2, 3
MIN_TURNS, MAX_TURNS = 2, 8
MAX_PLANS = 2
# Answer sizes (strings are grammar-bounded in characters; small models may spend a token on
# every two characters of unusual text), so a long answer is never cut off mid-JSON.
TOKENS_PER_TURN = 90
TOKENS_PER_OUTCOME = 100
TOKENS_PER_PLAN = 60
TOKENS_PER_NOTE = 50


# --- inputs and results ----------------------------------------------------------------------


class Participant(BaseModel):
    """One person in a conversation: who they are, what they were doing, what THEY remember."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    persona: Persona
    activity: str = ""
    memories: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.persona.name

    def section(self) -> str:
        """This person's block of the prompt (header, persona, activity, own memories).

        The block is quoted data between ``<person>`` tags; angle brackets inside it are replaced,
        so nothing a persona or memory says can close the block or open another person's.
        """
        body = (
            f"### {self.name}\n{self.persona.summary()}\n"
            f"Was doing: {one_line(self.activity) or 'nothing in particular'}\n"
            f"{self.persona.first_name} knows:\n{bullet_list(self.memories)}"
        )
        name = _quoted(self.name).replace('"', "'")
        return f'<person name="{name}">\n{_quoted(body)}\n</person>'


def _quoted(text: str) -> str:
    """``text`` safe inside a tag-delimited block of a prompt: no ``<`` or ``>`` left."""
    return text.replace("<", "‹").replace(">", "›")


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
    # memory needs no importance call; None when the answer had no outcome for them.
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


# --- answer schema (names and places become enums at call time) --------------------------------


class TurnAnswer(BaseModel):
    who: str
    say: str = Field(max_length=150)


class PlanAnswer(BaseModel):
    what: str = Field(max_length=60)
    place: str
    time: str = Field(max_length=5, description='HH:MM or "none"')


class NoteAnswer(BaseModel):
    about: str
    note: str = Field(max_length=80)


class OutcomeAnswer(BaseModel):
    who: str
    memory: str = Field(max_length=150)
    imp: int = Field(ge=1, le=10)
    plans: list[PlanAnswer] = Field(max_length=MAX_PLANS)
    notes: list[NoteAnswer] = Field(max_length=MAX_PEOPLE - 1)


class ConversationAnswer(BaseModel):
    """The answer of ``converse.yaml``."""

    turns: list[TurnAnswer] = Field(min_length=MIN_TURNS, max_length=MAX_TURNS)
    gist: str = Field(max_length=100)
    after: list[OutcomeAnswer] = Field(min_length=1, max_length=MAX_PEOPLE)


def conversation_answer(
    names: tuple[str, ...], places: tuple[str, ...], max_turns: int
) -> Narrowed[ConversationAnswer]:
    """``ConversationAnswer`` for these speakers, commitment places and turn bound."""
    return narrow(
        ConversationAnswer,
        {
            "turns": Count(min=MIN_TURNS, max=max_turns),
            "turns.who": names,
            "after": Count(min=len(names), max=len(names)),
            "after.who": names,
            "after.plans.place": (*places, NONE),
            "after.notes": Count(max=len(names) - 1),
            "after.notes.about": names,
        },
    )


# --- the call --------------------------------------------------------------------------------


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
    """Generate a conversation between 2-3 people at ``place`` and its outcomes in ONE call.

    The first participant starts it (``reason``: why, e.g. the reaction's reason); ``places``
    are the room addresses a commitment may name; ``max_turns`` bounds the turns (2-8).
    """
    names = _names(participants)
    if not MIN_TURNS <= max_turns <= MAX_TURNS:
        raise ValueError(f"max_turns must be {MIN_TURNS}-{MAX_TURNS}, got {max_turns}")
    allowed_places = tuple(dict.fromkeys(places))
    starter = participants[0].name
    answer = await ask(
        llm,
        conversation_answer(names, allowed_places, max_turns),
        "converse",
        dict(
            places=bullet_list(allowed_places),
            max_turns=max_turns,
            now=moment_text(now),
            place=place,
            starter=starter,
            reason=f" ({one_line(reason)})" if reason.strip() else "",
            people=", ".join(names),
            sections="\n\n".join(p.section() for p in participants),
        ),
        purpose="converse",
        max_tokens=_max_tokens(len(names), max_turns),
        params=params,
    )
    return _conversation(answer, names, place)


def _names(participants: Sequence[Participant]) -> tuple[str, ...]:
    names = tuple(p.name for p in participants)
    if not MIN_PEOPLE <= len(names) <= MAX_PEOPLE:
        raise ValueError(f"a conversation needs {MIN_PEOPLE}-{MAX_PEOPLE} people, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"conversation participants must have distinct names: {names}")
    return names


def _max_tokens(people: int, turns: int) -> int:
    outcome = TOKENS_PER_OUTCOME + TOKENS_PER_PLAN * MAX_PLANS + TOKENS_PER_NOTE * (people - 1)
    return TOKENS_PER_TURN * turns + outcome * people + 40


def _conversation(answer: ConversationAnswer, names: tuple[str, ...], place: str) -> Conversation:
    turns = _turns(answer.turns)
    outcomes = {name: _outcome(answer.after, name, names, place) for name in names}
    summary = model_text(answer.gist) or f"{' and '.join(names)} talked at {place}."
    return Conversation(
        participants=names, place=place, summary=summary, turns=turns, outcomes=outcomes
    )


def _turns(answers: Sequence[TurnAnswer]) -> tuple[Utterance, ...]:
    """The turns with text, without verbatim repeats (small models loop on a line)."""
    said: set[str] = set()
    turns: list[Utterance] = []
    for answer in answers:
        text = model_text(answer.say)
        if text and text.lower() not in said:
            said.add(text.lower())
            turns.append(Utterance(speaker=answer.who, text=text))
    return tuple(turns)


def _outcome(
    answers: Sequence[OutcomeAnswer], name: str, names: tuple[str, ...], place: str
) -> ConversationOutcome:
    """``name``'s outcome: the first answer about them, else a plain memory of having talked."""
    mine = next((a for a in answers if a.who == name), None)
    others = [n for n in names if n != name]
    if mine is None:
        return ConversationOutcome(memory=f"I talked with {' and '.join(others)} at {place}.")
    notes: dict[str, str] = {}
    for note in mine.notes:
        text = model_text(note.note)
        if note.about in others and text:
            notes.setdefault(note.about, text)
    memory = model_text(mine.memory)
    return ConversationOutcome(
        memory=memory or f"I talked with {' and '.join(others)} at {place}.",
        commitments=tuple(c for c in map(_commitment, mine.plans) if c is not None),
        relationships=notes,
        importance=mine.imp,
    )


def _commitment(plan: PlanAnswer) -> Commitment | None:
    """A commitment from the answer; the time "none" or an unreadable one means no fixed time."""
    description = model_text(plan.what)
    if not description:
        return None
    start = None if plan.time.strip().lower() == NONE else parse_clock(plan.time)
    return Commitment(description=description, place=choice_or_none(plan.place), start=start)
