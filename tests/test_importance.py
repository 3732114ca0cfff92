"""Importance rating: batching, routine rules, caller-given scores, the memo, failures."""

from __future__ import annotations

import json
import re

import pytest

from societas.agents.cognition.importance import (
    ImportanceAnswer,
    ImportanceMemo,
    ImportanceRules,
    RoutineRule,
    importance_answer,
    numbered,
    rate_importance,
)
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.llm.types import LLMOutputError

ADA = Persona(name="Ada Lind", age=31, occupation="baker", traits=["warm"])
NOTABLE = [
    "Tom told Ada that the bakery rent will double",
    "Klaus asked Ada to cater his wedding",
    "a stranger argued with Maria at the market",
    "the mayor announced an election",
]


def _scores_by_length(call: ScriptedCall) -> dict[str, list[int]]:
    """Rate each numbered item by its length, so answers depend on what was asked."""
    items = re.findall(r"^\d+\. (.*)$", call.messages[-1].content, flags=re.MULTILINE)
    return {"scores": [1 + len(item) % 10 for item in items]}


def _expected(text: str) -> int:
    return 1 + len(text) % 10


async def test_one_call_rates_a_whole_batch_in_order() -> None:
    llm = ScriptedLLM(_scores_by_length)
    scores = await rate_importance(llm, ADA, NOTABLE, memo=ImportanceMemo())
    assert scores == [_expected(t) for t in NOTABLE]
    assert llm.purposes() == ["rate"]
    call = llm.calls[0]
    assert call.schema is importance_answer(4)
    schema = call.schema.model_json_schema()["properties"]["scores"]
    assert (schema["minItems"], schema["maxItems"]) == (4, 4)
    assert (schema["items"]["minimum"], schema["items"]["maximum"]) == (1, 10)
    assert call.params is not None and call.params.max_tokens <= 8 + 4 * 4


async def test_the_instructions_are_shared_and_the_memories_come_last() -> None:
    llm = ScriptedLLM(_scores_by_length)
    await rate_importance(llm, ADA, NOTABLE[:2], memo=ImportanceMemo())
    system, user = (m.content for m in llm.calls[0].messages)
    assert ADA.name not in system  # the same for every agent: one cached prefix on the server
    assert user.startswith(ADA.summary())
    assert user.rstrip().endswith(numbered(NOTABLE[:2]))


async def test_large_lists_are_split_into_capped_batches() -> None:
    llm = ScriptedLLM(_scores_by_length)
    texts = [f"Ada heard rumour number {i} about the mill" for i in range(30)]
    scores = await rate_importance(llm, ADA, texts, memo=ImportanceMemo(), batch_size=12)
    assert scores == [_expected(t) for t in texts]
    sizes = [call.messages[-1].content.count("rumour number") for call in llm.calls]
    assert sizes == [12, 12, 6]


async def test_routine_texts_never_reach_the_model() -> None:
    llm = ScriptedLLM(_scores_by_length)
    routine = [
        "the bed is idle",
        "the oven is off",
        "Klaus is sleeping",
        "Maria is walking to the park",
        "Ada Lind is kneading dough",
        "Ada is sweeping the floor",
    ]
    scores = await rate_importance(llm, ADA, [*routine, NOTABLE[0]], memo=ImportanceMemo())
    assert scores[:6] == [1, 1, 1, 2, 2, 2]
    assert len(llm.calls) == 1
    prompt = llm.calls[0].messages[-1].content
    assert all(text not in prompt for text in routine)
    assert await rate_importance(llm, ADA, routine, memo=ImportanceMemo()) == [1, 1, 1, 2, 2, 2]
    assert len(llm.calls) == 1


async def test_rules_are_configurable() -> None:
    llm = ScriptedLLM(_scores_by_length)
    rules = ImportanceRules(routines=(RoutineRule(r"\bfeeds the cat\b", 3),), own_action_score=None)
    texts = ["Bo feeds the cat", "Ada Lind is kneading dough"]
    scores = await rate_importance(llm, ADA, texts, memo=ImportanceMemo(), rules=rules)
    assert scores == [3, _expected(texts[1])]
    assert texts[1] in llm.calls[0].messages[-1].content
    with pytest.raises(ValueError, match="routine rule"):
        RoutineRule("x", 11)
    with pytest.raises(ValueError, match="not a valid pattern"):
        RoutineRule("(unclosed", 1)


async def test_caller_given_scores_skip_rating() -> None:
    llm = ScriptedLLM(_scores_by_length)
    known = [7, None, 2, None]
    scores = await rate_importance(llm, ADA, NOTABLE, memo=ImportanceMemo(), known=known)
    assert scores == [7, _expected(NOTABLE[1]), 2, _expected(NOTABLE[3])]
    assert NOTABLE[0] not in llm.calls[0].messages[-1].content
    with pytest.raises(ValueError, match="known has 1 entries for 4 texts"):
        await rate_importance(llm, ADA, NOTABLE, memo=ImportanceMemo(), known=[3])
    with pytest.raises(ValueError, match="known score #0"):
        await rate_importance(llm, ADA, NOTABLE[:1], memo=ImportanceMemo(), known=[12])


async def test_memo_hits_and_duplicates_cost_no_calls() -> None:
    llm = ScriptedLLM(_scores_by_length)
    memo = ImportanceMemo()
    texts = [NOTABLE[0], NOTABLE[1], NOTABLE[0]]
    first = await rate_importance(llm, ADA, texts, memo=memo)
    assert first[0] == first[2]
    assert llm.calls[0].messages[-1].content.count(NOTABLE[0]) == 1
    again = await rate_importance(llm, ADA, [NOTABLE[1], NOTABLE[0]], memo=memo)
    assert again == [first[1], first[0]]
    assert len(llm.calls) == 1
    assert memo.hits == 2


async def test_nothing_to_rate_makes_no_call() -> None:
    llm = ScriptedLLM(_scores_by_length)
    assert await rate_importance(llm, ADA, [], memo=ImportanceMemo()) == []
    assert llm.calls == []


def test_memo_forgets_the_least_recently_used() -> None:
    memo = ImportanceMemo(max_entries=2)
    memo.put("a", 3)
    memo.put("b", 4)
    assert memo.get("a") == 3
    memo.put("c", 5)
    assert "b" not in memo and "a" in memo and "c" in memo


def test_memo_state_round_trips_and_copies_share_nothing() -> None:
    memo = ImportanceMemo(max_entries=10)
    memo.put("a", 3)
    memo.put("b", 9)
    memo.get("a")
    state = json.loads(json.dumps(memo.get_state()))
    copy = ImportanceMemo.from_state(state)
    assert copy.get_state() == memo.get_state()
    copy.put("c", 2)
    assert "c" not in memo
    with pytest.raises(ValueError, match="importance memo state is malformed"):
        ImportanceMemo.from_state({"max_entries": 5, "entries": [["a", 99]]})
    with pytest.raises(ValueError, match="importance memo state is malformed"):
        ImportanceMemo.from_state({"entries": []})


async def test_a_failed_batch_raises_or_falls_back() -> None:
    def broken(call: ScriptedCall) -> dict[str, list[int]]:
        return {"scores": [5]}  # wrong count for any batch of two

    memo = ImportanceMemo()
    with pytest.raises(LLMOutputError):
        await rate_importance(ScriptedLLM(broken), ADA, NOTABLE[:2], memo=memo)
    scores = await rate_importance(ScriptedLLM(broken), ADA, NOTABLE[:2], memo=memo, fallback=3)
    assert scores == [3, 3]
    assert len(memo) == 0  # fallbacks are not remembered


async def test_successful_batches_are_memoised_even_when_another_fails() -> None:
    def second_batch_fails(call: ScriptedCall) -> dict[str, list[int]]:
        if "rumour 1" in call.messages[-1].content:
            return {"scores": []}
        return _scores_by_length(call)

    memo = ImportanceMemo()
    texts = ["rumour 0 about the mill", "rumour 1 about the mill"]
    with pytest.raises(LLMOutputError):
        await rate_importance(ScriptedLLM(second_batch_fails), ADA, texts, memo=memo, batch_size=1)
    assert texts[0] in memo and texts[1] not in memo


def test_batch_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="a rating batch holds"):
        importance_answer(0)
    assert ImportanceAnswer.model_json_schema()["properties"]["scores"]["maxItems"] >= 12


async def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await rate_importance(
            ScriptedLLM(_scores_by_length), ADA, NOTABLE, memo=ImportanceMemo(), batch_size=0
        )


def test_numbered_lists_are_flat_and_cut() -> None:
    text = numbered(["one\n two", "x" * 300], max_chars=20)
    first, second = text.splitlines()
    assert first == "1. one two"
    assert second.startswith("2. x") and len(second) == len("2. ") + 20
