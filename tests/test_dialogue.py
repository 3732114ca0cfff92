"""Conversations in one call: per-person grounding, outcomes, and invitations that change plans."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from societas.agents.cognition.dialogue import (
    Conversation,
    Participant,
    conversation_answer,
    converse,
)
from societas.agents.cognition.planning import DayPlan, PlanBlock, revise_plan
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.llm.types import LLMOutputError

PLACES = ["home:bedroom", "bakery:kitchen", "cafe:hall", "park:lawn"]
NOW = datetime(2023, 2, 13, 10, 0)
BO = Participant(
    persona=Persona(name="Bo Lin", age=41, traits=["sociable"], occupation="cafe owner"),
    activity="walking to the cafe",
    memories=("I am throwing a party at the cafe at 17:00 today",),
)
MARA = Participant(
    persona=Persona(name="Mara Quist", age=34, traits=["warm"], occupation="baker"),
    activity="opening the bakery",
    memories=("My sister is visiting next week",),
)
IDA = Participant(
    persona=Persona(name="Ida Moss", age=29, occupation="painter"),
    activity="painting",
    memories=("I lost my blue scarf",),
)


def turn(who: str, say: str) -> dict[str, str]:
    return {"who": who, "say": say}


def outcome(
    who: str, memory: str, plans: list[dict[str, str]] | None = None, **notes: str
) -> dict[str, Any]:
    return {
        "who": who,
        "memory": memory,
        "imp": 5,
        "plans": plans or [],
        "notes": [
            {"about": about.replace("_", " "), "note": note} for about, note in notes.items()
        ],
    }


INVITATION = {
    "turns": [
        turn("Bo Lin", "Mara! I'm having a party at the cafe at 17:00, will you come?"),
        turn("Mara Quist", "I'd love to, I'll bring bread."),
    ],
    "gist": "Bo invited Mara to his party at the cafe at 17:00.",
    "after": [
        outcome(
            "Bo Lin",
            "I invited Mara to my party.",
            [{"what": "host the party", "place": "cafe:hall", "time": "17:00"}],
            Mara_Quist="kind neighbour, coming to the party",
        ),
        outcome(
            "Mara Quist",
            "Bo invited me to his party at the cafe at 17:00.",
            [{"what": "go to Bo's party", "place": "cafe:hall", "time": "17:00"}],
            Bo_Lin="generous host",
        ),
    ],
}


async def talk(answer: Any, people: list[Participant] | None = None, **options: Any) -> Any:
    llm = ScriptedLLM(lambda call: answer)
    conversation = await converse(
        llm,
        people or [BO, MARA],
        now=NOW,
        place="park:lawn",
        places=PLACES,
        reason="to invite Mara",
        **options,
    )
    return llm, conversation


async def test_conversation_returns_turns_and_each_persons_outcome() -> None:
    llm, conversation = await talk(INVITATION)
    assert isinstance(conversation, Conversation)
    assert conversation.participants == ("Bo Lin", "Mara Quist")
    assert [u.speaker for u in conversation.turns] == ["Bo Lin", "Mara Quist"]
    assert conversation.summary == "Bo invited Mara to his party at the cafe at 17:00."
    mara = conversation.outcomes["Mara Quist"]
    assert mara.memory == "Bo invited me to his party at the cafe at 17:00."
    assert mara.relationships == {"Bo Lin": "generous host"}
    (commitment,) = mara.commitments
    assert (commitment.place, commitment.start, commitment.fixed) == ("cafe:hall", 1020, True)
    assert conversation.listeners_of("Bo Lin") == ["Mara Quist"]
    (call,) = llm.calls
    assert call.purpose == "converse"


async def test_each_person_has_a_separate_section_with_only_their_memories() -> None:
    llm, _ = await talk(INVITATION)
    system, user = llm.calls[0].messages
    assert "ONLY what is in their own section" in system.content
    assert "Bo Lin" not in system.content  # the system part is shared by every conversation
    bo_section, mara_section = user.content.split("### ")[1:]
    assert bo_section.startswith("Bo Lin\n")
    assert BO.memories[0] in bo_section and MARA.memories[0] not in bo_section
    assert MARA.memories[0] in mara_section and BO.memories[0] not in mara_section
    assert "Was doing: opening the bakery" in mara_section
    assert "Bo Lin starts the conversation (to invite Mara)" in user.content


async def test_an_invitation_in_a_conversation_changes_the_invitees_plan() -> None:
    _, conversation = await talk(INVITATION)
    commitments = conversation.outcomes["Mara Quist"].commitments
    plan = DayPlan(
        day=date(2023, 2, 13),
        wake=6 * 60,
        sleep=21 * 60,
        home="home:bedroom",
        blocks=(PlanBlock(start=360, end=1260, activity="baking", place="bakery:kitchen"),),
    )
    # the revision forgets the party; the commitment still lands in the plan
    replanner = ScriptedLLM(
        lambda call: {
            "blocks": [
                {"start": "10:00", "end": "21:00", "act": "baking", "place": "bakery:kitchen"}
            ]
        }
    )
    revised = await revise_plan(
        replanner,
        MARA.persona,
        plan,
        now=NOW,
        reason=conversation.outcomes["Mara Quist"].memory,
        places=PLACES,
        commitments=commitments,
    )
    party = revised.block_at(17 * 60 + 10)
    assert (party.place, party.start, party.activity) == ("cafe:hall", 1020, "go to Bo's party")
    assert revised.block_at(16 * 60).activity == "baking"


async def test_speakers_are_restricted_to_the_participants() -> None:
    bad = {**INVITATION, "turns": [turn("Bo Lin", "hi"), turn("Cy Hart", "hello")]}
    with pytest.raises(LLMOutputError):
        await talk(bad)


async def test_schema_bounds_turns_and_outcomes() -> None:
    llm, _ = await talk(INVITATION, max_turns=4)
    call: ScriptedCall = llm.calls[0]
    assert call.schema is not None
    schema = call.schema.model_json_schema()
    assert (
        schema["properties"]["turns"]["minItems"],
        schema["properties"]["turns"]["maxItems"],
    ) == (
        2,
        4,
    )
    assert (
        schema["properties"]["after"]["minItems"] == schema["properties"]["after"]["maxItems"] == 2
    )
    plan_place = schema["$defs"]["PlanAnswer"]["properties"]["place"]["enum"]
    assert plan_place == [*PLACES, "none"]
    long_llm, _ = await talk(INVITATION, max_turns=8)
    assert long_llm.calls[0].params is not None and call.params is not None
    assert long_llm.calls[0].params.max_tokens > call.params.max_tokens


async def test_outcomes_are_repaired_per_participant() -> None:
    answer = {
        "turns": [
            turn("Ida Moss", "Seen my scarf?"),
            turn("Bo Lin", "No,  sorry."),
            turn("Bo Lin", "no, sorry."),  # small models repeat themselves
            turn("Mara Quist", "..."),
        ],
        "gist": "",
        "after": [
            outcome(
                "Ida Moss",
                "I asked Bo about my scarf.",
                [
                    {"what": "look for the scarf", "place": "none", "time": "none"},
                    {"what": "ask Mara", "place": "bakery:kitchen", "time": "soon"},
                ],
                Ida_Moss="me",  # a note about oneself is dropped
                Bo_Lin="helpful",
            ),
            outcome("Ida Moss", "a second entry for Ida is ignored"),
            outcome("Mara Quist", "I listened.", Bo_Lin="busy"),
        ],
    }
    _, conversation = await talk(answer, [IDA, BO, MARA])
    assert [(u.speaker, u.text) for u in conversation.turns] == [
        ("Ida Moss", "Seen my scarf?"),
        ("Bo Lin", "No, sorry."),
    ]
    ida = conversation.outcomes["Ida Moss"]
    assert ida.memory == "I asked Bo about my scarf."
    assert ida.relationships == {"Bo Lin": "helpful"}
    assert [(c.place, c.start, c.fixed) for c in ida.commitments] == [
        (None, None, False),
        ("bakery:kitchen", None, False),
    ]
    assert (
        conversation.outcomes["Bo Lin"].memory
        == "I talked with Ida Moss and Mara Quist at park:lawn."
    )
    assert conversation.summary == "Ida Moss and Bo Lin and Mara Quist talked at park:lawn."


async def test_participants_and_turns_are_validated() -> None:
    with pytest.raises(ValueError, match="2-3 people"):
        await talk(INVITATION, [BO])
    with pytest.raises(ValueError, match="distinct names"):
        await talk(INVITATION, [BO, BO])
    with pytest.raises(ValueError, match="max_turns"):
        await talk(INVITATION, max_turns=9)


def test_conversation_schema_allows_only_its_speakers_places_and_lengths() -> None:
    schema = conversation_answer(("A", "B"), ("x",), 4)
    answer = {
        "turns": [{"who": "A", "say": "Hi"}, {"who": "B", "say": "Hello"}],
        "gist": "greetings",
        "after": [
            {"who": who, "memory": "m", "imp": 3, "plans": [], "notes": []} for who in ("A", "B")
        ],
    }
    assert schema.model_validate(answer).turns[1].who == "B"
    for path, bad in [
        (("turns", 0, "who"), "C"),
        (("after", 1, "who"), "C"),
        (("after", 0, "plans"), [{"what": "w", "place": "y", "time": "none"}]),
        (("after", 0, "notes"), [{"about": "B", "note": "n"}] * 2),
        (("turns",), [{"who": "A", "say": "x"}] * 5),
        (("after",), answer["after"][:1]),
    ]:
        broken = json.loads(json.dumps(answer))
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        with pytest.raises(ValidationError):
            schema.model_validate(broken)


@pytest.mark.model
async def test_real_model_conversation_is_well_formed() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        conversation = await converse(
            llm, [BO, MARA], now=NOW, place="park:lawn", places=PLACES, max_turns=2
        )
    assert set(conversation.outcomes) == {"Bo Lin", "Mara Quist"}
    assert len(conversation.turns) <= 2
    assert all(u.speaker in conversation.participants for u in conversation.turns)
    for result in conversation.outcomes.values():
        assert result.memory
        for commitment in result.commitments:
            assert commitment.place in (None, *PLACES)
            assert commitment.start is None or 0 <= commitment.start <= 1440
