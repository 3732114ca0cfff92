"""Conversations line by line, each line and each takeaway from its own person's view."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from societas.agents.cognition.dialogue import (
    LINE_CHARS,
    MEMORY_CHARS,
    Conversation,
    Participant,
    Speaker,
    TalkState,
    converse,
    takeaway_answer,
    view_of,
)
from societas.agents.cognition.planning import DayPlan, PlanBlock, revise_plan
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedCall, ScriptedLLM
from support.scripted import lines_said

PLACES = ["home:bedroom", "bakery:kitchen", "cafe:hall", "park:lawn"]
NOW = datetime(2023, 2, 13, 10, 0)
BO_SECRET = "I am secretly selling the cafe to a chain next month"
MARA_SECRET = "I failed my driving test again and told nobody"
BO = Participant(
    speaker=Speaker(
        persona=Persona(name="Bo Lin", age=41, traits=["sociable"], occupation="cafe owner"),
        views={"Mara Quist": view_of("Mara Quist", "my sister; I worry about her")},
        activity="walking to the cafe",
        plan=("17:00-19:00 host my party at cafe:hall",),
    ),
    memories=("I am throwing a party at the cafe at 17:00 today", BO_SECRET),
)
MARA = Participant(
    speaker=Speaker(
        persona=Persona(name="Mara Quist", age=34, traits=["warm"], occupation="baker"),
        views={"Bo Lin": view_of("Bo Lin", "my brother; he runs the cafe")},
        activity="opening the bakery",
    ),
    memories=("My cousin is visiting next week", MARA_SECRET),
)
IDA = Participant(
    speaker=Speaker(persona=Persona(name="Ida Moss", age=29, occupation="painter")),
    memories=("I lost my blue scarf",),
)
LINES = {
    "Bo Lin": ["Mara! I'm having a party at the cafe at 17:00, will you come?", "Great, see you!"],
    "Mara Quist": ["I'd love to, I'll bring bread.", "Bye for now."],
    "Ida Moss": ["Has anyone seen my blue scarf?", "Thanks anyway."],
}
TAKEAWAYS = {
    "Bo Lin": {
        "memory": "I invited Mara to my party and she is coming.",
        "imp": 4,
        "plans": [{"what": "host the party", "place": "cafe:hall", "time": "17:00"}],
        "notes": [{"about": "Mara Quist", "note": "kind, coming to the party"}],
    },
    "Mara Quist": {
        "memory": "Bo invited me to his party at the cafe at 17:00.",
        "imp": 6,
        "plans": [{"what": "go to Bo's party", "place": "cafe:hall", "time": "17:00"}],
        "notes": [{"about": "Bo Lin", "note": "generous host"}],
    },
}


def who(call: ScriptedCall) -> str:
    """The person a call speaks for (its prompt says "You are NAME.")."""
    found = re.search(r"You are ([^.\n]+)\.", call.messages[-1].content)
    assert found, call.messages[-1].content
    return found.group(1)


def scripted(
    line: Callable[[str, int], dict[str, Any]] | None = None,
    takeaway: Callable[[str], dict[str, Any]] | None = None,
) -> ScriptedLLM:
    """Lines by (speaker, how many lines were said before), takeaways by speaker."""

    def default_line(name: str, said: int) -> dict[str, Any]:
        mine = LINES[name]
        return {"say": mine[min(said // 2, len(mine) - 1)], "end": said >= 2}

    def default_takeaway(name: str) -> dict[str, Any]:
        return TAKEAWAYS.get(name, {"memory": "We chatted.", "imp": 2, "plans": [], "notes": []})

    def respond(call: ScriptedCall) -> Any:
        if call.purpose == "converse_line":
            return (line or default_line)(who(call), lines_said(call))
        assert call.purpose == "converse_takeaway"
        return (takeaway or default_takeaway)(who(call))

    return ScriptedLLM(respond)


async def talk(
    llm: ScriptedLLM, people: list[Participant] | None = None, **options: Any
) -> Conversation:
    return await converse(
        llm,
        people or [BO, MARA],
        now=NOW,
        place="park:lawn",
        places=PLACES,
        reason="to invite Mara",
        **options,
    )


def calls_for(llm: ScriptedLLM, name: str) -> list[ScriptedCall]:
    return [call for call in llm.calls if who(call) == name]


async def test_each_line_is_written_by_its_speakers_own_call_in_turn() -> None:
    llm = scripted()
    conversation = await talk(llm)
    assert [(u.speaker, u.text) for u in conversation.turns] == [
        ("Bo Lin", LINES["Bo Lin"][0]),
        ("Mara Quist", LINES["Mara Quist"][0]),
        ("Bo Lin", LINES["Bo Lin"][1]),  # he ends the talk (end: true after two lines)
    ]
    assert [(c.purpose, who(c)) for c in llm.calls] == [
        ("converse_line", "Bo Lin"),
        ("converse_line", "Mara Quist"),
        ("converse_line", "Bo Lin"),
        ("converse_takeaway", "Bo Lin"),
        ("converse_takeaway", "Mara Quist"),
    ]
    third = llm.calls[2].messages[-1].content
    assert "Bo (you): Mara! I'm having a party" in third
    assert "Mara: I'd love to, I'll bring bread." in third


async def test_a_speaker_sees_only_their_own_persona_view_plan_and_memories() -> None:
    llm = scripted()
    await talk(llm)
    for name, mine, theirs in [("Bo Lin", BO, MARA), ("Mara Quist", MARA, BO)]:
        for call in calls_for(llm, name):
            system, user = call.messages
            assert name not in system.content  # one instruction part for every speaker
            text = user.content
            assert theirs.speaker.persona.summary() not in text
            assert all(memory not in text for memory in theirs.memories)
            if call.purpose == "converse_line":
                assert all(memory in text for memory in mine.memories)
    bo_line = calls_for(llm, "Bo Lin")[0].messages[-1].content
    assert "Mara Quist — your sister; you worry about her" in bo_line
    assert "17:00-19:00 host my party at cafe:hall" in bo_line
    assert "You started this talk with Mara Quist (to invite Mara)." in bo_line
    mara_line = calls_for(llm, "Mara Quist")[0].messages[-1].content
    assert "Bo Lin — your brother; he runs the cafe" in mara_line
    assert "Bo Lin came up to talk with you." in mara_line
    assert "(no plan)" in mara_line


async def test_a_secret_reaches_a_listener_only_when_its_knower_says_it() -> None:
    def line(name: str, said: int) -> dict[str, Any]:
        if name == "Bo Lin" and said == 2:
            return {"say": "Between us: I am selling the cafe to a chain.", "end": True}
        return {"say": f"{LINES[name][0]}", "end": False}

    llm = scripted(line)
    await talk(llm)
    mara_calls = calls_for(llm, "Mara Quist")
    for call in mara_calls:  # never what Bo only remembers
        assert BO_SECRET not in call.prompt_text
        assert "selling the cafe" not in call.prompt_text or call.purpose == "converse_takeaway"
    # ...but what he chose to say, she heard: it is in her takeaway's view of the talk.
    assert "Bo: Between us: I am selling the cafe" in mara_calls[-1].prompt_text
    for call in calls_for(llm, "Bo Lin"):
        assert MARA_SECRET not in call.prompt_text


async def test_prompt_order_keeps_the_changing_parts_last() -> None:
    llm = scripted()
    await talk(llm)
    text = calls_for(llm, "Bo Lin")[1].messages[-1].content
    order = [
        text.index("You are Bo Lin."),
        text.index("Mara Quist — your sister"),
        text.index("You remember:"),
        text.index("<talk>"),
    ]
    assert order == sorted(order)


async def test_memories_are_recalled_afresh_by_what_was_just_said() -> None:
    queries: dict[str, list[str]] = {"Bo Lin": [], "Mara Quist": []}

    def recaller(name: str) -> Any:
        async def recall(query: str) -> list[str]:
            queries[name].append(query)
            return [f"memory about {query[:12]}"]

        return recall

    people = [Participant(speaker=p.speaker, recall=recaller(p.name)) for p in (BO, MARA)]
    llm = scripted()
    await talk(llm, people)
    assert queries["Bo Lin"] == ["Mara Quist to invite Mara", LINES["Mara Quist"][0]]
    assert queries["Mara Quist"] == [LINES["Bo Lin"][0]]
    assert "memory about I'd love to," in calls_for(llm, "Bo Lin")[1].prompt_text


async def test_turns_go_round_and_stop_at_the_cap() -> None:
    def line(name: str, said: int) -> dict[str, Any]:
        return {"say": f"Point number {said + 1} from {name.split()[0]}.", "end": False}

    conversation = await talk(scripted(line), [IDA, BO, MARA], max_turns=5)
    assert [u.speaker for u in conversation.turns] == [
        "Ida Moss",
        "Bo Lin",
        "Mara Quist",
        "Ida Moss",
        "Bo Lin",
    ]


def test_the_talk_state_decides_endings() -> None:
    state = TalkState(("A", "B"), 6)
    state.add("Bye already.", True)  # the first line always gets a reply
    assert (state.over, state.next_speaker) == (False, "B")
    state.add("Oh, bye then.", False)
    assert state.over and state.next_speaker is None
    repeat = TalkState(("A", "B"), 6)
    repeat.add("Hello there.", False)
    repeat.add("hello there.", False)  # a verbatim repeat ends it and is not said twice
    assert repeat.over and len(repeat.turns) == 1
    # From a town run: a reply that parrots the line before it is an echo, not a reply.
    echo = TalkState(("Jonah Reed", "Mei Chen"), 6)
    echo.add("Hello Mei! I was just making toast. Is there something you need?", False)
    echo.add("Hi Jonah! I was just making toast. Is there something you need?", False)
    assert echo.over and len(echo.turns) == 1
    # The same greeting back, with the other's name: an echo too.
    greeting = TalkState(("Mateo Alvarez", "Rosa Alvarez"), 6)
    greeting.add("Hello Rosa, how are you?", False)
    greeting.add("Hello Mateo, how are you?", False)
    assert greeting.over and len(greeting.turns) == 1
    wrapped = TalkState(("Daniel Okafor", "Tomas Alvarez"), 6)
    wrapped.add("I'll make breakfast right now, Tomas!", False)
    wrapped.add("I'll make breakfast right now, Tomas! Let's continue working.", False)
    assert wrapped.over and len(wrapped.turns) == 1
    answered = TalkState(("A", "B"), 6)
    answered.add("See you at the cafe at five.", False)
    answered.add("See you then, at five.", False)  # shares words but says something back
    answered.add("Yes.", False)
    answered.add("Yes.", False)  # a short line echoes only when identical
    assert [t.text for t in answered.turns] == [
        "See you at the cafe at five.",
        "See you then, at five.",
        "Yes.",
    ]
    silent = TalkState(("A", "B"), 6)
    silent.add("", False)
    assert silent.over and not silent.turns
    with pytest.raises(ValueError, match="2-3 people"):
        TalkState(("A",), 4)
    with pytest.raises(ValueError, match="distinct names"):
        TalkState(("A", "A"), 4)
    with pytest.raises(ValueError, match="max_turns"):
        TalkState(("A", "B"), 9)


async def test_each_participant_takes_away_their_own_outcome() -> None:
    conversation = await talk(scripted())
    mara = conversation.outcomes["Mara Quist"]
    assert mara.memory == "Bo invited me to his party at the cafe at 17:00."
    assert (mara.importance, mara.relationships) == (6, {"Bo Lin": "generous host"})
    (commitment,) = mara.commitments
    assert (commitment.place, commitment.start, commitment.fixed) == ("cafe:hall", 1020, True)
    assert conversation.outcomes["Bo Lin"].importance == 4
    assert conversation.summary == "Bo Lin and Mara Quist talked at park:lawn (3 lines)."


async def test_the_takeaway_schema_allows_only_the_others_and_the_places() -> None:
    llm = scripted()
    await talk(llm)
    call = calls_for(llm, "Mara Quist")[-1]
    assert call.schema is not None
    schema = call.schema.model_json_schema()
    assert schema["$defs"]["NoteAnswer"]["properties"]["about"]["const"] == "Bo Lin"
    assert schema["$defs"]["PlanAnswer"]["properties"]["place"]["enum"] == [*PLACES, "none"]
    narrowed = takeaway_answer(("Bo Lin",), ("cafe:hall",))
    with pytest.raises(ValueError):
        narrowed.model_validate(
            {"memory": "m", "imp": 3, "plans": [], "notes": [{"about": "Mara Quist", "note": "x"}]}
        )


async def test_an_invitation_changes_the_invitees_plan() -> None:
    conversation = await talk(scripted())
    commitments = conversation.outcomes["Mara Quist"].commitments
    plan = DayPlan(
        day=date(2023, 2, 13),
        wake=6 * 60,
        sleep=21 * 60,
        home="home:bedroom",
        blocks=(PlanBlock(start=360, end=1260, activity="baking", place="bakery:kitchen"),),
    )
    replanner = ScriptedLLM(
        lambda call: {
            "blocks": [
                {"start": "10:00", "end": "21:00", "act": "baking", "place": "bakery:kitchen"}
            ]
        }
    )
    revised = await revise_plan(
        replanner,
        MARA.speaker.persona,
        plan,
        now=NOW,
        reason=conversation.outcomes["Mara Quist"].memory,
        places=PLACES,
        commitments=commitments,
    )
    party = revised.block_at(17 * 60 + 10)
    assert (party.place, party.start, party.activity) == ("cafe:hall", 1020, "go to Bo's party")


async def test_no_text_is_left_cut_by_its_length_bound() -> None:
    long_line = ("We should talk about the party. " * 10)[:LINE_CHARS]
    assert long_line.endswith("We should talk a")

    def line(name: str, said: int) -> dict[str, Any]:
        return {"say": long_line if name == "Bo Lin" else "Sure thing", "end": said >= 1}

    def takeaway(name: str) -> dict[str, Any]:
        memory = ("I talked with my sibling at length. " * 10)[: MEMORY_CHARS - 2] + "xy"
        return {"memory": memory, "imp": 3, "plans": [], "notes": []}

    conversation = await talk(scripted(line, takeaway))
    bo, mara = (u.text for u in conversation.turns)
    assert bo.endswith("about the party.") and len(bo) < LINE_CHARS
    assert mara == "Sure thing."  # finished but unpunctuated: a stop is added
    for outcome in conversation.outcomes.values():
        assert outcome.memory.endswith("at length.")


async def test_a_line_that_drifts_into_another_script_is_repaired() -> None:
    def line(name: str, said: int) -> dict[str, Any]:
        if name == "Bo Lin":
            return {"say": "Bo Lin: See you at five. And they都会 come too", "end": False}
        return {"say": "Sounds good.", "end": True}

    def takeaway(name: str) -> dict[str, Any]:
        return {"memory": "他们都会来", "imp": 3, "plans": [], "notes": [
            {"about": "Mara Quist" if name == "Bo Lin" else "Bo Lin", "note": "kind and他们"}
        ]}  # fmt: skip

    conversation = await talk(scripted(line, takeaway))
    assert conversation.turns[0].text == "See you at five."  # label dropped, drift cut
    bo = conversation.outcomes["Bo Lin"]
    assert bo.memory == "I talked with Mara Quist at park:lawn."  # nothing readable was left
    assert bo.relationships == {}


async def test_an_unreadable_line_is_asked_for_once_more_then_ends_the_talk() -> None:
    def respond(call: ScriptedCall) -> Any:
        if call.purpose == "converse_takeaway":
            return {"memory": "We met.", "imp": 2, "plans": [], "notes": []}
        if who(call) == "Bo Lin":
            return {"say": "全部都好" if call.sample_index == 0 else "Hello Mara.", "end": False}
        return {"say": "……", "end": False}

    llm = ScriptedLLM(respond)
    conversation = await talk(llm)
    assert [(u.speaker, u.text) for u in conversation.turns] == [("Bo Lin", "Hello Mara.")]
    lines = [(who(c), c.sample_index) for c in llm.calls if c.purpose == "converse_line"]
    assert lines == [("Bo Lin", 0), ("Bo Lin", 1), ("Mara Quist", 0), ("Mara Quist", 1)]


async def test_an_observation_read_out_or_assistant_talk_is_not_a_line() -> None:
    # From a town run: "Mateo Alvarez: preparing guitar." and "I'm not sure how to assist you
    # with that request." were said as lines; neither is something a townsperson says.
    def respond(call: ScriptedCall) -> Any:
        if call.purpose == "converse_takeaway":
            return {"memory": "We met.", "imp": 2, "plans": [], "notes": []}
        if who(call) == "Bo Lin":
            return {"say": "Hello Mara, fresh bread today?", "end": False}
        if call.sample_index == 0:
            return {"say": "Bo Lin: walking in the park.", "end": False}
        return {"say": "I'm sorry, I'm not sure how to assist you with that request.", "end": False}

    conversation = await talk(ScriptedLLM(respond))
    assert [(u.speaker, u.text) for u in conversation.turns] == [
        ("Bo Lin", "Hello Mara, fresh bread today?")
    ]


def test_views_address_the_speaker() -> None:
    assert view_of("Rosa Alvarez", "my mother; she expects me to run the market") == (
        "Rosa Alvarez — your mother; she expects you to run the market"
    )
    assert view_of("Jonah Reed", "", "talks too much") == (
        "Jonah Reed — someone you know by sight (lately: talks too much)"
    )


@pytest.mark.model
async def test_real_model_conversation_is_well_formed() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        conversation = await converse(
            llm, [BO, MARA], now=NOW, place="park:lawn", places=PLACES, max_turns=2
        )
    assert set(conversation.outcomes) == {"Bo Lin", "Mara Quist"}
    assert 1 <= len(conversation.turns) <= 2
    assert [u.speaker for u in conversation.turns] == ["Bo Lin", "Mara Quist"][
        : len(conversation.turns)
    ]
    for utterance in conversation.turns:
        assert utterance.text[-1] in ".!?…\"'”’)]", utterance.text
    for result in conversation.outcomes.values():
        assert result.memory
        for commitment in result.commitments:
            assert commitment.place in (None, *PLACES)
            assert commitment.start is None or 0 <= commitment.start <= 1440
