"""The embedded llama.cpp backend: grammar building (unit) and the real smollm2-135m (model)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from societas.llm import embedded
from societas.llm.catalog import get_entry
from societas.llm.embedded import EmbeddedBackend, closed_schema, json_grammar
from societas.llm.types import (
    BackendTransientError,
    ChatBackend,
    LLMConfigError,
    LLMError,
    Message,
    SamplingParams,
)

# --- grammar construction (no model) -------------------------------------------------------------


class _Place(BaseModel):
    name: str


class _Plan(BaseModel):
    where: _Place
    steps: list[str] = Field(max_length=3)
    extra: dict[str, int] = Field(default_factory=dict)


def test_closed_schema_closes_every_listed_object_but_keeps_maps() -> None:
    closed = closed_schema(_Plan.model_json_schema())
    assert closed["additionalProperties"] is False
    assert closed["$defs"]["_Place"]["additionalProperties"] is False
    # A dict field states its own additionalProperties; it must stay a map.
    assert closed["properties"]["extra"]["additionalProperties"] == {"type": "integer"}
    # A property that happens to be called "properties" is a schema, not a property map.
    odd = closed_schema(
        {"type": "object", "properties": {"properties": {"type": "string"}}, "required": []}
    )
    assert odd["properties"] == {"properties": {"type": "string"}}


def test_closed_schema_leaves_the_input_untouched() -> None:
    schema = _Plan.model_json_schema()
    before = json.dumps(schema, sort_keys=True)
    closed_schema(schema)
    assert json.dumps(schema, sort_keys=True) == before


def test_json_grammar_asks_llguidance_for_compact_json() -> None:
    grammar = json_grammar({"type": "object", "properties": {"a": {"type": "integer"}}})
    header, _, schema_text = grammar.partition("start: %json ")
    assert header == "%llguidance {}\n"
    schema = json.loads(schema_text)
    assert schema["x-guidance"]["whitespace_flexible"] is False
    assert schema["additionalProperties"] is False


def test_constructor_rejects_nonsense_sizes() -> None:
    entry = get_entry("smollm2-135m")
    with pytest.raises(LLMConfigError, match="ctx_per_slot"):
        EmbeddedBackend.for_entry(entry, ctx_per_slot=16)


def test_model_id_and_repr_identify_weights_not_the_key() -> None:
    backend = EmbeddedBackend.for_entry(get_entry("smollm2-135m"))
    assert backend.model_id == "smollm2-135m@b179c9523d0e6a0f"
    assert backend.api_key not in repr(backend)
    assert isinstance(backend, ChatBackend)
    assert backend.supports_json_schema
    with pytest.raises(LLMError, match="not running"):
        _ = backend.http_base_url


# --- the real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[EmbeddedBackend]:
    """One smollm2-135m server for the whole module (two slots keep memory and load small)."""
    server = EmbeddedBackend.for_entry(get_entry("smollm2-135m"), parallel=2, ctx_per_slot=1024)
    asyncio.run(server.start())
    yield server
    asyncio.run(server.aclose())


class Mood(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mood: Literal["happy", "sad", "angry"]
    reason: str = Field(max_length=40)


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5)


FRUITS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "maxLength": 12},
    "maxItems": 2,
}

SYSTEM = Message(role="system", content="You are Rosa, the town baker. Answer in JSON.")


def _ask(text: str) -> list[Message]:
    return [SYSTEM, Message(role="user", content=text)]


@pytest.mark.model
@pytest.mark.parametrize("seed", [1, 2])
async def test_object_with_enum_is_valid_json(backend: EmbeddedBackend, seed: int) -> None:
    answer = await backend.chat(
        _ask("How do you feel today, and why?"),
        SamplingParams(temperature=1.0, max_tokens=60, seed=seed),
        json_schema=Mood.model_json_schema(),
    )
    Mood.model_validate_json(answer.text)  # extra keys or a wrong enum would fail here
    assert "\n" not in answer.text  # compact JSON: no tokens spent on layout


@pytest.mark.model
async def test_array_with_max_items_is_respected(backend: EmbeddedBackend) -> None:
    answer = await backend.chat(
        _ask("List five fruits you bake with."),
        SamplingParams(temperature=1.0, max_tokens=60, seed=3),
        json_schema=FRUITS_SCHEMA,
    )
    fruits = TypeAdapter(list[str]).validate_json(answer.text)
    assert len(fruits) <= 2
    assert all(len(fruit) <= 12 for fruit in fruits)


@pytest.mark.model
async def test_integer_range_is_respected(backend: EmbeddedBackend) -> None:
    answer = await backend.chat(
        _ask("Rate your bread from 1 to 5. Rate it 9 if you like."),
        SamplingParams(temperature=1.0, max_tokens=20, seed=4),
        json_schema=Rating.model_json_schema(),
    )
    assert 1 <= Rating.model_validate_json(answer.text).score <= 5
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


@pytest.mark.model
async def test_stable_prefix_is_reused(backend: EmbeddedBackend) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=8)
    await backend.chat(_ask("Say hello."), params)
    again = await backend.chat(_ask("Say goodbye."), params)
    assert again.usage.cached_prompt_tokens > 0


@pytest.mark.model
async def test_plain_completion_and_usage(backend: EmbeddedBackend) -> None:
    answer = await backend.complete(
        "The capital of France is", SamplingParams(temperature=0.0, max_tokens=6)
    )
    assert answer.text.strip()
    assert answer.usage.prompt_tokens > 0
    assert 0 < answer.usage.completion_tokens <= 6
    assert answer.finish_reason in ("stop", "length")


@pytest.mark.model
async def test_stop_strings_apply_to_free_text(backend: EmbeddedBackend) -> None:
    answer = await backend.complete(
        "Count: 1, 2, 3, 4, 5, 6,", SamplingParams(temperature=0.0, max_tokens=30, stop=("9",))
    )
    assert "9" not in answer.text


@pytest.mark.model
async def test_http_endpoint_requires_the_key(backend: EmbeddedBackend) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    url = backend.http_base_url + "/v1/chat/completions"
    async with httpx.AsyncClient(timeout=60) as client:
        anonymous = await client.post(url, json=body)
        wrong = await client.post(url, json=body, headers={"Authorization": "Bearer nope"})
        right = await client.post(
            url, json=body, headers={"Authorization": f"Bearer {backend.api_key}"}
        )
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.json()["choices"][0]["message"]["content"] is not None


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the listening TCP sockets on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if int(port_hex, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.model
def test_server_binds_loopback_only(backend: EmbeddedBackend) -> None:
    parts = urlsplit(backend.http_base_url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port is not None
    assert _listening_addresses(parts.port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    with socket.create_connection(("127.0.0.1", parts.port), timeout=5):
        pass


@pytest.mark.model
async def test_too_long_prompt_is_a_final_error(backend: EmbeddedBackend) -> None:
    with pytest.raises(LLMError, match="context") as caught:
        await backend.chat(_ask("bread " * 3000), SamplingParams(max_tokens=4))
    assert not isinstance(caught.value, BackendTransientError)


@pytest.mark.model
async def test_cancelled_request_frees_its_slot(backend: EmbeddedBackend) -> None:
    endless = SamplingParams(temperature=1.0, max_tokens=900)
    tasks = [asyncio.create_task(backend.complete("Once upon a time", endless)) for _ in range(2)]
    await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    started = time.perf_counter()
    # Both slots were busy; this only runs promptly if cancelling stopped their generation.
    answer = await backend.complete("Hi", SamplingParams(max_tokens=2))
    assert answer.usage.completion_tokens >= 1
    assert time.perf_counter() - started < 20


@pytest.mark.model
async def test_timeout_is_transient() -> None:
    server = EmbeddedBackend.for_entry(get_entry("smollm2-135m"), parallel=1, ctx_per_slot=512)
    try:
        await asyncio.gather(server.start(), server.start())  # starting twice is harmless
        server.request_timeout_s = 0.05
        with pytest.raises(BackendTransientError, match="no answer within"):
            await server.complete("Once upon a time", SamplingParams(max_tokens=800))
        server.request_timeout_s = 120
        await server.aclose()
        assert not server.running
        # A closed backend starts again on the next call.
        answer = await server.complete("Hi", SamplingParams(max_tokens=2))
        assert answer.usage.completion_tokens >= 1
        assert server.running
    finally:
        await server.aclose()


def test_default_threads_use_every_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIETAS_LLM_THREADS", raising=False)
    monkeypatch.setattr(embedded, "machine_threads", lambda: 8)
    assert embedded.default_threads() == 8
    monkeypatch.setattr(embedded, "machine_threads", lambda: 1)
    assert embedded.default_threads() == 1
    monkeypatch.setenv("SOCIETAS_LLM_THREADS", "3")
    assert embedded.default_threads() == 3
    assert EmbeddedBackend.for_entry(get_entry("smollm2-135m")).threads == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("SOCIETAS_LLM_THREADS", bad)
        with pytest.raises(LLMConfigError, match="SOCIETAS_LLM_THREADS"):
            embedded.default_threads()
