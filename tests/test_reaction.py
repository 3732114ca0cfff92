"""Reaction decisions: choices and targets restricted to what the agent can see (scripted model)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from societas.agents.cognition.reaction import (
    REACT_MAX_TOKENS,
    Reaction,
    SeenAgent,
    decide_reaction,
)
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedLLM
from societas.llm.types import LLMOutputError

MARA = Persona(name="Mara Quist", age=34, traits=["warm"], occupation="baker")
NOW = datetime(2023, 2, 13, 9, 30)
BO = SeenAgent(
    name="Bo Lin",
    activity="walking to the cafe",
    memories=("Bo is planning a party at the cafe", "Bo lent me a ladder last week"),
)
IDA = SeenAgent(name="Ida Moss", activity="painting", memories=("Ida paints the harbour",))


def answer(
    do: str,
    who: str = "none",
    why: str = "reason",
    act: str = "none",
    at: str = "none",
    mins: int = 15,
) -> dict[str, Any]:
    return {"why": why, "do": do, "who": who, "act": act, "at": at, "mins": mins}


async def react(llm: ScriptedLLM, visible: list[SeenAgent], **options: Any) -> Reaction:
    return await decide_reaction(
        llm,
        MARA,
        now=NOW,
        activity="opening the bakery",
        observation="Bo Lin is walking by",
        visible=visible,
        place="bakery:shop",
        **options,
    )


def schema_properties(llm: ScriptedLLM) -> dict[str, Any]:
    (call,) = llm.calls
    assert call.schema is not None
    properties: dict[str, Any] = call.schema.model_json_schema()["properties"]
    return properties


async def test_target_enum_is_the_visible_agents() -> None:
    llm = ScriptedLLM(lambda call: answer("talk", "Bo Lin", "ask about the party"))
    reaction = await react(llm, [BO, IDA])
    assert reaction == Reaction(choice="talk", target="Bo Lin", reason="ask about the party")
    properties = schema_properties(llm)
    assert properties["who"]["enum"] == ["Bo Lin", "Ida Moss", "none"]
    assert properties["do"]["enum"] == ["continue", "talk", "replan"]
    assert llm.calls[0].purpose == "react"
    params = llm.calls[0].params
    assert params is not None and params.max_tokens <= REACT_MAX_TOKENS


async def test_an_agent_out_of_sight_cannot_be_the_target() -> None:
    llm = ScriptedLLM(lambda call: answer("talk", "Cy Hart"))
    with pytest.raises(LLMOutputError):
        await react(llm, [BO])


async def test_prompt_carries_memories_about_each_visible_agent() -> None:
    llm = ScriptedLLM(lambda call: answer("continue"))
    await react(llm, [BO, IDA])
    system, user = llm.calls[0].messages
    assert "Mara" not in system.content  # shared by every agent, so the server reuses it
    assert user.content.startswith("You are Mara Quist.")
    assert "Bo Lin is walking by" not in system.content
    for memory in (*BO.memories, *IDA.memories):
        assert memory in user.content
    assert "- Bo Lin, walking to the cafe. You remember:" in user.content
    assert "bakery:shop" in user.content


async def test_talk_is_not_offered_during_a_cooldown_or_to_nobody() -> None:
    cooled = ScriptedLLM(lambda call: answer("continue"))
    await react(cooled, [BO], allow_talk=False)
    assert schema_properties(cooled)["do"]["enum"] == ["continue", "replan"]

    alone = ScriptedLLM(lambda call: answer("replan", why="the oven is smoking"))
    reaction = await react(alone, [])
    properties = schema_properties(alone)
    assert properties["do"]["enum"] == ["continue", "replan"]
    assert properties["who"]["const"] == "none"
    assert reaction == Reaction(choice="replan", target=None, reason="the oven is smoking")
    assert "(nobody)" in alone.calls[0].messages[1].content

    with pytest.raises(LLMOutputError):
        await react(ScriptedLLM(lambda call: answer("talk")), [BO], allow_talk=False)


async def test_talk_without_a_target_picks_the_only_one_in_sight() -> None:
    one = await react(ScriptedLLM(lambda call: answer("talk")), [BO])
    assert (one.choice, one.target) == ("talk", "Bo Lin")
    two = await react(ScriptedLLM(lambda call: answer("talk")), [BO, IDA])
    assert (two.choice, two.target) == ("continue", None)


def test_reaction_record_matches_the_event_fields() -> None:
    reaction = Reaction(choice="talk", target="Bo Lin", reason="party")
    assert reaction.to_record() == {"choice": "talk", "target": "Bo Lin", "reason": "party"}


@pytest.mark.model
async def test_real_model_reaction_stays_within_the_choices() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        free = await react(llm, [BO, IDA])  # type: ignore[arg-type]
        cooled = await react(llm, [BO], allow_talk=False)  # type: ignore[arg-type]
    assert free.choice in ("continue", "talk", "replan")
    assert free.target in (None, "Bo Lin", "Ida Moss")
    assert cooled.choice in ("continue", "replan")
    assert cooled.target in (None, "Bo Lin")


async def test_replan_carries_its_detour_with_places_from_the_caller() -> None:
    llm = ScriptedLLM(
        lambda call: answer(
            "replan", why="the oven smokes", act="air the shop", at="bakery:shop", mins=30
        )
    )
    reaction = await react(llm, [BO], places=["bakery:shop", "home:kitchen"])
    assert reaction.choice == "replan"
    assert (reaction.detour, reaction.place, reaction.minutes) == (
        "air the shop",
        "bakery:shop",
        30,
    )
    assert schema_properties(llm)["at"]["enum"] == ["bakery:shop", "home:kitchen", "none"]
    assert reaction.to_record()["detour"] == "air the shop"


async def test_a_detour_without_a_place_is_left_to_a_full_replan() -> None:
    llm = ScriptedLLM(lambda call: answer("replan", act="go somewhere", at="none"))
    reaction = await react(llm, [BO], places=["bakery:shop"])
    assert reaction.choice == "replan"
    assert reaction.detour == "" and reaction.place is None
    assert "detour" not in reaction.to_record()


async def test_a_reason_cut_at_its_cap_or_drifting_script_reads_as_whole_words() -> None:
    cut = "I must file my candidacy papers with Mei Chen at the Town Hall office on Mond"
    cut = cut + "a" * (80 - len(cut))  # the grammar stopped it at 80 characters, mid-word
    reaction = await react(ScriptedLLM(lambda call: answer("talk", "Bo Lin", why=cut)), [BO])
    assert (
        reaction.reason == "I must file my candidacy papers with Mei Chen at the Town Hall office"
    )
    drifted = await react(
        ScriptedLLM(lambda call: answer("talk", "Bo Lin", why="it is a good时机 to ask")), [BO]
    )
    assert drifted.reason == "it is a good to ask"


async def test_a_detour_called_none_is_no_detour() -> None:
    # From a town run: "12:00-12:15 none @ Bluebird Cafe:dining room" came from this answer.
    llm = ScriptedLLM(lambda call: answer("replan", act="none", at="bakery:shop"))
    reaction = await react(llm, [BO], places=["bakery:shop"])
    assert reaction.detour == "" and reaction.place is None
