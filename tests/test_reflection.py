"""Reflection: the trigger, the two calls, checked citations and growing depth."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from societas.agents.cognition.reflection import (
    INSIGHT_CHARS,
    InsightsAnswer,
    QuestionsAnswer,
    ReflectionConfig,
    reflect,
    should_reflect,
)
from societas.agents.persona import Persona
from societas.llm.fake import HashEmbedder, ScriptedCall, ScriptedLLM
from societas.llm.types import LLMOutputError
from societas.memory.records import MemoryKind
from societas.memory.stream import MemoryStream

ADA = Persona(name="Ada Lind", age=31, occupation="baker")
NOW = datetime(2024, 2, 13, 21, 0)
EMBED = HashEmbedder()
DAY = [
    "Ada baked rye bread before dawn",
    "Tom told Ada the bakery rent will double next month",
    "Ada worried about paying the rent",
    "Klaus asked Ada to cater his wedding for a good fee",
    "Ada agreed to cater the wedding",
    "the town square was busy with the market",
    "Maria praised Ada's rye bread",
    "Ada counted the money in the till",
]

Insights = list[dict[str, Any]]


def _day_stream(importance: float = 6) -> MemoryStream:
    stream = MemoryStream()
    times = [NOW - timedelta(hours=len(DAY) - i) for i in range(len(DAY))]
    stream.add_many("observation", DAY, times, importance, EMBED.embed_sync(DAY))
    return stream


def _statements(call: ScriptedCall) -> list[str]:
    """The numbered statements of an insights prompt, in order."""
    text = call.messages[-1].content.split("Statements:")[1]
    return re.findall(r"^\d+\. (.*)$", text, flags=re.MULTILINE)


def _reflector(insights: Callable[[ScriptedCall], Insights]) -> ScriptedLLM:
    def answer(call: ScriptedCall) -> dict[str, Any]:
        assert call.schema is not None
        if issubclass(call.schema, QuestionsAnswer):
            return {"questions": ["How will Ada pay the rent?", "Who values Ada's bread?"]}
        assert issubclass(call.schema, InsightsAnswer)
        return {"insights": insights(call)}

    return ScriptedLLM(answer, embedder=EMBED)


def _cite_by_text(*pairs: tuple[str, list[str], int]) -> Callable[[ScriptedCall], Insights]:
    """Insights citing (up to six of) the statements that contain one of the fragments."""

    def insights(call: ScriptedCall) -> Insights:
        listed = _statements(call)

        def cites(fragments: list[str]) -> list[int]:
            found = [n for n, s in enumerate(listed, start=1) if any(f in s for f in fragments)]
            return found[:6]

        return [
            {"text": text, "cites": cites(fragments), "importance": importance}
            for text, fragments, importance in pairs
        ]

    return insights


def test_the_trigger_follows_the_importance_gathered() -> None:
    stream = _day_stream(importance=6)  # 8 x 6 = 48
    assert should_reflect(stream, threshold=48)
    assert not should_reflect(stream, threshold=49)
    assert not should_reflect(stream)  # the default 150
    stream.add("reflection", "a thought", NOW, 10, EMBED.embed_sync(["a thought"])[0])
    assert not should_reflect(stream, threshold=49)  # reflections do not feed the trigger
    stream.mark_reflected()
    assert not should_reflect(stream, threshold=1)


async def test_reflection_makes_two_calls_and_records_citing_valid_evidence() -> None:
    stream = _day_stream()
    llm = _reflector(
        _cite_by_text(
            ("Ada's bakery is under money pressure", ["rent", "till"], 8),
            ("Catering can save Ada's bakery", ["cater"], 7),
        )
    )
    new = await reflect(llm, ADA, stream, NOW)
    assert llm.purposes() == ["reflect", "reflect"]
    assert len(new) == 2 and new == [len(DAY), len(DAY) + 1]
    pressure, catering = (stream.by_id(i) for i in new)
    assert pressure.kind is MemoryKind.REFLECTION and pressure.created == NOW
    assert pressure.importance == 8 and catering.importance == 7
    for record in (pressure, catering):
        assert record.evidence and record.depth == 1
        assert all(0 <= i < len(DAY) for i in record.evidence)
    assert set(stream.texts(catering.evidence)) == {DAY[3], DAY[4]}
    assert {DAY[1], DAY[2]} <= set(stream.texts(pressure.evidence))
    assert stream.unreflected_importance == 0


async def test_the_prompts_put_shared_instructions_first_then_the_persona() -> None:
    """Every agent's reflection calls share their instructions as a prompt prefix: the system
    message names no one, and the user message opens with the persona."""
    bo = Persona(name="Bo Quist", age=52, occupation="postman")
    calls = []
    for persona in (ADA, bo):
        llm = _reflector(_cite_by_text(("Ada is busy", ["Ada"], 5)))
        await reflect(llm, persona, _day_stream(), NOW)
        calls.append(llm.calls)
        for call in llm.calls:
            assert persona.first_name not in call.messages[0].content
            assert call.messages[-1].content.startswith(persona.summary())
    for ada_call, bo_call in zip(*calls, strict=True):
        assert ada_call.messages[0] == bo_call.messages[0]
    questions_call, insights_call = calls[0]
    assert DAY[-1] in questions_call.messages[-1].content
    assert "How will Ada pay the rent?" in insights_call.messages[-1].content


async def test_invalid_citations_are_dropped() -> None:
    def insights(call: ScriptedCall) -> Insights:
        count = len(_statements(call))
        return [
            {"text": "Ada is tired", "cites": [1, count + 1, 99], "importance": 5},
            {"text": "Ada dreams of Paris", "cites": [count + 2], "importance": 9},
            {"text": "Ada is tired", "cites": [2], "importance": 5},
        ]

    stream = _day_stream()
    llm = _reflector(insights)
    new = await reflect(llm, ADA, stream, NOW)
    assert [stream.by_id(i).text for i in new] == ["Ada is tired."]
    listed = _statements(llm.calls[1])
    assert stream.texts(stream.by_id(new[0]).evidence) == [listed[0]]


async def test_reflections_on_reflections_grow_deeper() -> None:
    stream = _day_stream()
    first = await reflect(
        _reflector(_cite_by_text(("Money worries Ada", ["rent"], 8))), ADA, stream, NOW
    )
    assert stream.by_id(first[0]).depth == 1
    later = NOW + timedelta(hours=1)
    second = await reflect(
        _reflector(_cite_by_text(("Ada fears losing the bakery", ["Money worries"], 9))),
        ADA,
        stream,
        later,
    )
    deeper = stream.by_id(second[0])
    assert deeper.evidence == (first[0],)
    assert deeper.depth == 2


async def test_retrieved_evidence_is_touched() -> None:
    stream = _day_stream()
    llm = _reflector(_cite_by_text(("Ada is busy", ["Ada"], 5)))
    await reflect(llm, ADA, stream, NOW)
    listed = set(_statements(llm.calls[1]))
    for memory_id, text in enumerate(DAY):
        touched = stream.by_id(memory_id).last_access == NOW
        assert touched == (text in listed)


async def test_the_evidence_shown_is_capped() -> None:
    stream = MemoryStream()
    texts = [f"Ada sold loaf number {i} to a neighbour" for i in range(60)]
    stream.add_many("observation", texts, NOW, 5, EMBED.embed_sync(texts))
    llm = _reflector(_cite_by_text(("Ada sells a lot", ["loaf"], 6)))
    config = ReflectionConfig(recent=20, per_question=15, evidence=12)
    await reflect(llm, ADA, stream, NOW, config=config)
    assert len(re.findall(r"^\d+\. ", llm.calls[0].messages[-1].content, re.MULTILINE)) == 20
    assert len(_statements(llm.calls[1])) == 12


async def test_an_empty_stream_makes_no_call() -> None:
    llm = _reflector(_cite_by_text())
    assert await reflect(llm, ADA, MemoryStream(), NOW) == []
    assert llm.calls == []


async def test_no_valid_insight_still_ends_the_reflection_period() -> None:
    stream = _day_stream()
    llm = _reflector(lambda call: [{"text": "nothing", "cites": [99], "importance": 3}])
    assert await reflect(llm, ADA, stream, NOW) == []
    assert len(stream) == len(DAY)
    assert stream.unreflected_importance == 0


async def test_a_failing_model_ends_the_period_and_raises() -> None:
    stream = _day_stream()
    llm = ScriptedLLM(lambda call: {"wrong": True}, embedder=EMBED)
    with pytest.raises(LLMOutputError):
        await reflect(llm, ADA, stream, NOW)
    assert stream.unreflected_importance == 0
    assert len(llm.calls) == 1


def test_config_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="reflection setting questions"):
        ReflectionConfig(questions=0)
    with pytest.raises(ValueError, match="reflection setting evidence"):
        ReflectionConfig(evidence=500)


async def test_an_insight_cut_at_its_bound_or_drifting_script_keeps_whole_sentences() -> None:
    # From a town run: "... He will work on his campaign by enl余" and an insight stopped at
    # its length bound ("... to celebrate her brother Daniel's 31st").
    cut = "Ada works hard. She hopes the bakery will grow and that she can hire " + "x" * 200
    cut = cut[:INSIGHT_CHARS]

    def insights(call: ScriptedCall) -> Insights:
        return [
            {"text": "Ada is tired. She will rest by enl余", "cites": [1], "importance": 5},
            {"text": cut, "cites": [2], "importance": 5},
        ]

    stream = _day_stream()
    new = await reflect(_reflector(insights), ADA, stream, NOW)
    assert [stream.by_id(i).text for i in new] == ["Ada is tired.", "Ada works hard."]
