"""The LLM facade: caching, dedupe, retries, timeouts, structured output, repair and metering."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field, RootModel

from societas.llm.cache import ResponseCache
from societas.llm.client import LLM
from societas.llm.fake import (
    CRASH,
    TRANSIENT,
    BackendRequest,
    HashEmbedder,
    ScriptedBackend,
    ScriptedEmbedder,
)
from societas.llm.jsonrepair import JSONExtractionError, extract_json
from societas.llm.meter import CallRecord, Meter
from societas.llm.structured import compact_schema, with_schema_instructions
from societas.llm.types import (
    LanguageModel,
    LLMError,
    LLMOutputError,
    LLMUnavailableError,
    Message,
    SamplingParams,
)


class Mood(BaseModel):
    mood: Literal["happy", "sad"]
    why: str = Field(max_length=80)


ASK = [
    Message(role="system", content="You are Ada, a baker."),
    Message(role="user", content="How do you feel today?"),
]
HAPPY = '{"mood": "happy", "why": "fresh bread"}'


def _llm(
    backend: ScriptedBackend,
    cache: ResponseCache | None = None,
    *,
    meter: Meter | None = None,
    max_retries: int = 3,
    timeout_s: float = 5.0,
    max_concurrency: int = 4,
    default_params: SamplingParams | None = None,
    purpose_params: dict[str, SamplingParams] | None = None,
) -> LLM:
    return LLM(
        backend,
        HashEmbedder(dim=16),
        cache=cache,
        meter=meter,
        max_concurrency=max_concurrency,
        timeout_s=timeout_s,
        max_retries=max_retries,
        default_params=default_params,
        purpose_params=purpose_params,
        retry_base_s=0.001,
    )


def test_llm_implements_the_language_model_protocol() -> None:
    assert isinstance(_llm(ScriptedBackend()), LanguageModel)


async def test_generate_validates_into_the_schema_and_sends_it() -> None:
    backend = ScriptedBackend([HAPPY])
    answer = await _llm(backend).generate(ASK, Mood, purpose="mood")
    assert answer == Mood(mood="happy", why="fresh bread")
    assert backend.requests[0].json_schema == Mood.model_json_schema()
    assert list(backend.requests[0].messages) == ASK


async def test_cache_hit_on_rerun_returns_identical_answer_without_backend(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    first_backend = ScriptedBackend([HAPPY])
    with ResponseCache(path) as cache:
        first = await _llm(first_backend, cache).generate(ASK, Mood, purpose="mood")
    rerun_backend = ScriptedBackend()  # any call would fail: its script is empty
    with ResponseCache(path) as cache:
        rerun = _llm(rerun_backend, cache)
        again = await rerun.generate(ASK, Mood, purpose="mood")
    assert again == first
    assert rerun_backend.calls == 0
    totals = rerun.meter.snapshot().purposes["mood"]
    assert (totals.calls, totals.cache_hits, totals.prompt_tokens) == (0, 1, 0)


async def test_sample_index_and_params_make_distinct_requests() -> None:
    backend = ScriptedBackend([HAPPY, HAPPY, HAPPY])
    llm = _llm(backend, ResponseCache(":memory:"))
    await llm.generate(ASK, Mood, purpose="mood")
    await llm.generate(ASK, Mood, purpose="mood", sample_index=1)
    await llm.generate(ASK, Mood, purpose="mood", params=SamplingParams(temperature=0.1))
    await llm.generate(ASK, Mood, purpose="mood", sample_index=1)
    assert backend.calls == 3


async def test_concurrent_identical_requests_share_one_backend_call() -> None:
    backend = ScriptedBackend(responder=lambda request: HAPPY, delay_s=0.05)
    llm = _llm(backend, ResponseCache(":memory:"))
    answers = await asyncio.gather(*(llm.generate(ASK, Mood, purpose="mood") for _ in range(5)))
    assert backend.calls == 1
    assert all(a == answers[0] for a in answers)
    assert len({id(a) for a in answers}) == 5  # each caller owns its object
    totals = llm.meter.snapshot().purposes["mood"]
    assert (totals.requests, totals.calls, totals.cache_hits) == (5, 1, 4)


async def test_dedupe_works_without_a_cache_and_survives_a_cancelled_caller() -> None:
    backend = ScriptedBackend(responder=lambda request: "hello", delay_s=0.05)
    llm = _llm(backend)
    first = asyncio.create_task(llm.chat_text(ASK, purpose="talk"))
    second = asyncio.create_task(llm.chat_text(ASK, purpose="talk"))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "hello"
    assert backend.calls == 1
    totals = llm.meter.snapshot().purposes["talk"]
    assert (totals.requests, totals.calls, totals.cache_hits) == (2, 1, 1)  # cost counted once


async def test_answers_cut_off_at_max_tokens_are_named_in_the_error() -> None:
    backend = ScriptedBackend(responder=lambda request: HAPPY)
    short = SamplingParams(max_tokens=2)
    with pytest.raises(LLMOutputError, match="max_tokens=2") as caught:
        await _llm(backend).generate(ASK, Mood, purpose="mood", params=short)
    assert caught.value.raw == '{"mood": "happy",'
    assert "max_tokens=2" in backend.requests[1].messages[-1].content


async def test_transient_failures_are_retried_then_succeed() -> None:
    backend = ScriptedBackend([HAPPY]).fail_transient(2)
    llm = _llm(backend)
    answer = await llm.generate(ASK, Mood, purpose="mood")
    assert answer.mood == "happy"
    assert backend.calls == 3
    totals = llm.meter.snapshot().purposes["mood"]
    assert (totals.retries, totals.calls, totals.errors) == (2, 1, 0)


async def test_retries_exhausted_raise_unavailable() -> None:
    backend = ScriptedBackend([HAPPY]).fail_transient(3)
    llm = _llm(backend, max_retries=2)
    with pytest.raises(LLMUnavailableError, match="after 3 attempts"):
        await llm.generate(ASK, Mood, purpose="mood")
    assert backend.calls == 3
    assert llm.meter.snapshot().purposes["mood"].errors == 1


async def test_hanging_backend_times_out_is_retried_and_never_hangs() -> None:
    backend = ScriptedBackend().hang(10)
    llm = _llm(backend, timeout_s=0.05, max_retries=2)
    with pytest.raises(LLMUnavailableError, match=r"no answer within 0\.05 s"):
        await asyncio.wait_for(llm.chat_text(ASK, purpose="talk"), 3)
    assert backend.calls == 3


async def test_one_timeout_then_an_answer() -> None:
    backend = ScriptedBackend(["fine"]).hang(1)
    llm = _llm(backend, timeout_s=0.05)
    assert await asyncio.wait_for(llm.chat_text(ASK, purpose="talk"), 3) == "fine"
    assert llm.meter.snapshot().purposes["talk"].retries == 1


async def test_unexpected_backend_exception_is_wrapped_and_not_retried() -> None:
    backend = ScriptedBackend([CRASH, "never"])
    with pytest.raises(LLMError, match="RuntimeError") as caught:
        await _llm(backend).chat_text(ASK, purpose="talk")
    assert type(caught.value) is LLMError
    assert backend.calls == 1


async def test_malformed_json_is_repaired() -> None:
    backend = ScriptedBackend(['{"mood": "happy", "why": "fresh', HAPPY])
    llm = _llm(backend, ResponseCache(":memory:"))
    answer = await llm.generate(ASK, Mood, purpose="mood")
    assert answer.why == "fresh bread"
    repair = backend.requests[1]
    assert repair.messages[: len(ASK)] == tuple(ASK)
    assert repair.messages[-2] == Message(
        role="assistant", content='{"mood": "happy", "why": "fresh'
    )
    assert "cut off" in repair.messages[-1].content
    assert "JSON" in repair.messages[-1].content
    assert repair.params.temperature == 0.0
    totals = llm.meter.snapshot().purposes["mood"]
    assert (totals.calls, totals.repairs, totals.errors) == (2, 1, 0)
    assert await llm.generate(ASK, Mood, purpose="mood") == answer  # the repaired answer is cached
    assert backend.calls == 2


async def test_schema_violation_is_repaired_naming_the_field() -> None:
    backend = ScriptedBackend(['{"mood": "angry", "why": "burnt"}', HAPPY])
    answer = await _llm(backend).generate(ASK, Mood, purpose="mood")
    assert answer.mood == "happy"
    instruction = backend.requests[1].messages[-1].content
    assert "mood" in instruction
    assert "'happy' or 'sad'" in instruction


async def test_still_invalid_after_repair_raises_output_error_with_raw() -> None:
    backend = ScriptedBackend(["I feel great!", '{"mood": "meh", "why": "x"}', HAPPY])
    llm = _llm(backend, ResponseCache(":memory:"))
    with pytest.raises(LLMOutputError, match="after one repair") as caught:
        await llm.generate(ASK, Mood, purpose="mood")
    assert caught.value.raw == '{"mood": "meh", "why": "x"}'
    assert llm.meter.snapshot().purposes["mood"].errors == 1
    assert (await llm.generate(ASK, Mood, purpose="mood")).mood == "happy"  # nothing was cached
    assert backend.calls == 3


async def test_backend_without_schema_support_gets_instructions_and_fenced_json() -> None:
    fenced = 'Here you go:\n```json\n{"mood": "sad", "why": "rain",}\n```'
    backend = ScriptedBackend([fenced], supports_json_schema=False)
    answer = await _llm(backend).generate(ASK, Mood, purpose="mood")
    assert answer == Mood(mood="sad", why="rain")
    sent = backend.requests[0]
    assert sent.json_schema is None
    assert sent.messages[0].content.startswith("You are Ada, a baker.")
    assert compact_schema(Mood.model_json_schema()) in sent.messages[0].content
    assert sent.messages[1:] == tuple(ASK[1:])


def test_schema_instructions_without_system_message_and_without_titles() -> None:
    class Titled(BaseModel):
        title: str

    messages = with_schema_instructions([ASK[1]], Titled.model_json_schema())
    assert messages[0].role == "system"
    schema_text = messages[0].content.split("\n", 1)[1]
    assert json.loads(schema_text) == {
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "type": "object",
    }


async def test_non_schema_path_never_invents_a_truncated_answer() -> None:
    backend = ScriptedBackend(
        ['{"mood": "sad"', '{"mood": "sad", "why":'], supports_json_schema=False
    )
    with pytest.raises(LLMOutputError) as caught:
        await _llm(backend).generate(ASK, Mood, purpose="mood")
    assert caught.value.raw == '{"mood": "sad", "why":'


async def test_errors_are_never_cached() -> None:
    cache = ResponseCache(":memory:")
    failing = ScriptedBackend().fail_transient(4)
    with pytest.raises(LLMUnavailableError):
        await _llm(failing, cache).chat_text(ASK, purpose="talk")
    assert cache.stats().entries == 0
    healthy = ScriptedBackend(["hi"])
    assert await _llm(healthy, cache).chat_text(ASK, purpose="talk") == "hi"
    assert healthy.calls == 1


async def test_meter_totals_per_purpose_match_backend_usage() -> None:
    backend = ScriptedBackend(responder=lambda request: HAPPY)
    llm = _llm(backend, ResponseCache(":memory:"))
    await llm.generate(ASK, Mood, purpose="plan")
    await llm.generate(ASK, Mood, purpose="plan", sample_index=1)
    await llm.chat_text(ASK, purpose="talk")
    await llm.chat_text(ASK, purpose="talk")
    snapshot = llm.meter.snapshot()
    prompt_words = len("\n".join(m.content for m in ASK).split())
    plan, talk = snapshot.purposes["plan"], snapshot.purposes["talk"]
    assert (plan.requests, plan.calls, plan.prompt_tokens) == (2, 2, 2 * prompt_words)
    assert plan.completion_tokens == 2 * len(HAPPY.split())
    assert plan.reused_prompt_tokens == prompt_words  # the second call reused the whole prompt
    assert (talk.requests, talk.calls, talk.cache_hits) == (2, 1, 1)
    assert snapshot.total.requests == 4
    assert snapshot.total.calls == 3


async def test_listener_receives_a_record_for_every_request() -> None:
    backend = ScriptedBackend([HAPPY]).fail_transient(1).queue(TRANSIENT, TRANSIENT)
    meter = Meter()
    records: list[CallRecord] = []
    meter.subscribe(records.append)
    llm = _llm(backend, ResponseCache(":memory:"), meter=meter, max_retries=1)
    await llm.generate(ASK, Mood, purpose="plan")
    await llm.generate(ASK, Mood, purpose="plan")
    with pytest.raises(LLMUnavailableError):
        await llm.chat_text(ASK, purpose="talk")
    assert [(r.purpose, r.cached, r.retries, r.error is None) for r in records] == [
        ("plan", False, 1, True),
        ("plan", True, 0, True),
        ("talk", False, 1, False),
    ]
    first = records[0]
    assert first.model_id == "scripted-chat" and first.kind == "chat"
    assert first.prompt_tokens > 0 and first.completion_tokens > 0 and first.latency_s >= 0
    assert records[2].error is not None and "LLMUnavailableError" in records[2].error


async def test_concurrency_is_bounded() -> None:
    backend = ScriptedBackend(responder=lambda request: request.last_user, delay_s=0.02)
    llm = _llm(backend, max_concurrency=2)
    prompts = [[Message(role="user", content=f"q{i}")] for i in range(6)]
    answers = await asyncio.gather(*(llm.chat_text(p, purpose="talk") for p in prompts))
    assert answers == [f"q{i}" for i in range(6)]
    assert backend.max_active == 2


async def test_default_params_per_purpose_and_overall() -> None:
    seen: list[BackendRequest] = []

    def respond(request: BackendRequest) -> str:
        seen.append(request)
        return "ok"

    rate = SamplingParams(temperature=0.0, max_tokens=8)
    overall = SamplingParams(max_tokens=200)
    llm = _llm(
        ScriptedBackend(responder=respond), default_params=overall, purpose_params={"rate": rate}
    )
    await llm.chat_text(ASK, purpose="rate")
    await llm.complete("Once upon a time", purpose="story")
    assert seen[0].params == rate
    assert seen[1].params == overall
    assert seen[1].kind == "complete" and seen[1].prompt == "Once upon a time"


async def test_complete_is_cached_separately_from_chat() -> None:
    backend = ScriptedBackend(responder=lambda request: request.kind)
    llm = _llm(backend, ResponseCache(":memory:"))
    assert await llm.complete("hi", purpose="x") == "complete"
    assert await llm.chat_text([Message(role="user", content="hi")], purpose="x") == "chat"
    assert await llm.complete("hi", purpose="x") == "complete"
    assert backend.calls == 2


async def test_embed_normalises_caches_per_text_and_separates_queries() -> None:
    embedder = ScriptedEmbedder(dim=16)
    llm = LLM(ScriptedBackend(), embedder, cache=ResponseCache(":memory:"))
    first = await llm.embed(["bread and butter", "rainy day"])
    assert first.shape == (2, 16) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    again = await llm.embed(["rainy day", "bread and butter", "new words here"])
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    assert embedder.requests[-1] == (("new words here",), False)
    await llm.embed(["rainy day"], is_query=True)
    assert embedder.requests[-1] == (("rainy day",), True)
    await llm.embed(["rainy day", "bread and butter"])
    assert embedder.calls == 3
    totals = llm.meter.snapshot().purposes["embed"]
    assert (totals.requests, totals.calls, totals.cache_hits) == (4, 3, 1)
    assert (await llm.embed([])).shape == (0, 16)


async def test_embed_retries_transient_failures_and_batches() -> None:
    embedder = ScriptedEmbedder([TRANSIENT], dim=8)
    llm = LLM(ScriptedBackend(), embedder, embed_batch_size=2, retry_base_s=0.001)
    vectors = await llm.embed(["a", "b", "c", "a"], purpose="memory")
    assert vectors.shape == (4, 8)
    assert np.array_equal(vectors[0], vectors[3])
    assert [texts for texts, _ in embedder.requests] == [("a", "b"), ("a", "b"), ("c",)]
    assert llm.meter.snapshot().purposes["memory"].retries == 1


async def test_a_broken_cache_degrades_to_no_cache() -> None:
    cache = ResponseCache(":memory:")
    cache.close()
    backend = ScriptedBackend([HAPPY])
    answer = await _llm(backend, cache).generate(ASK, Mood, purpose="mood")
    assert answer.mood == "happy"


async def test_aclose_closes_both_backends() -> None:
    backend, embedder = ScriptedBackend(), ScriptedEmbedder()
    llm = LLM(backend, embedder)
    await llm.aclose()
    assert backend.closed and embedder.closed


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(LLMError, match="max_concurrency"):
        LLM(ScriptedBackend(), HashEmbedder(), max_concurrency=0)
    with pytest.raises(LLMError, match="timeout_s"):
        LLM(ScriptedBackend(), HashEmbedder(), timeout_s=0)


def test_same_llm_across_several_event_loops() -> None:
    backend = ScriptedBackend(responder=lambda request: request.last_user, delay_s=0.01)
    llm = _llm(backend, max_concurrency=1)

    async def burst(tag: str) -> list[str]:
        prompts = [[Message(role="user", content=f"{tag}{i}")] for i in range(3)]
        answers: list[str] = await asyncio.gather(
            *(llm.chat_text(p, purpose="talk") for p in prompts)
        )
        return answers

    assert asyncio.run(burst("a")) == ["a0", "a1", "a2"]
    assert asyncio.run(burst("b")) == ["b0", "b1", "b2"]


async def test_array_schemas_are_extracted_as_arrays() -> None:
    class Scores(RootModel[list[int]]):
        pass

    backend = ScriptedBackend(["Scores: [3, 4,]"], supports_json_schema=False)
    assert (await _llm(backend).generate(ASK, Scores, purpose="rate")).root == [3, 4]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('Sure, see [1].\n```\n{"a": [1, 2,],}\n```\nDone.', '{"a": [1, 2]}'),
        ('Note [1] then {"a": 1}', '{"a": 1}'),
        ('{"a": "x,}", "b": [1,2,],}', '{"a": "x,}", "b": [1,2]}'),
        ('{"a": "}{ ]["}', '{"a": "}{ ]["}'),
        ('{"a": "say \\"hi\\" }"} trailing', '{"a": "say \\"hi\\" }"}'),
        ('draft {oops} final {"a": 1}', '{"a": 1}'),
        ('odd ] bracket {"a": 1}', '{"a": 1}'),
    ],
)
def test_extract_json_finds_the_answer(text: str, expected: str) -> None:
    assert extract_json(text, "object") == expected
    assert json.loads(extract_json(text, "object")) == json.loads(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": 1, "b": ', "cut off"),
        ("no json at all", "no JSON object"),
        ('{"a": {"b": 1}, c}', "invalid JSON"),  # never the inner object of a broken answer
        ('{"a": tru}', "invalid JSON"),
    ],
)
def test_extract_json_refuses_to_invent(text: str, problem: str) -> None:
    with pytest.raises(JSONExtractionError, match=problem):
        extract_json(text, "object")


def test_extract_json_any_takes_the_first_value() -> None:
    assert extract_json("values: [1, 2] and {}") == "[1, 2]"
    assert extract_json("values: [1, 2] and {}", "array") == "[1, 2]"


async def test_a_servers_retry_after_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from societas.llm.types import BackendTransientError

    backend = ScriptedBackend([HAPPY])
    original = backend.chat
    refusals = iter([BackendTransientError("429 slow down", status=429, retry_after_s=7.5)])

    async def rate_limited(*args: object, **kwargs: object) -> object:
        for refusal in refusals:
            raise refusal
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "chat", rate_limited)
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("societas.llm.client.asyncio.sleep", record_sleep)
    answer = await _llm(backend).generate(ASK, Mood, purpose="mood")
    assert answer.mood == "happy"
    assert waits == [7.5]
