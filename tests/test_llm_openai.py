"""The OpenAI-compatible backend against real HTTP servers on loopback.

The server is llama.cpp (xllamacpp) serving smollm2-135m behind a random API key. A small
forwarding proxy in front of it plays servers that reject ``response_format``, fail with 5xx or
429, or answer too slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from societas.llm.catalog import get_entry
from societas.llm.client import LLM
from societas.llm.embedded import EmbeddedBackend
from societas.llm.fake import HashEmbedder
from societas.llm.openai_compat import (
    KEYLESS_PLACEHOLDER,
    OpenAIBackend,
    api_key_from_env,
    response_format,
)
from societas.llm.types import (
    BackendTransientError,
    ChatBackend,
    LLMConfigError,
    LLMError,
    Message,
    SamplingParams,
)


class Mood(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mood: Literal["happy", "sad", "angry"]
    reason: str = Field(max_length=40)


ASK = [
    Message(role="system", content="You are Rosa, the town baker. Answer in JSON."),
    Message(role="user", content="How do you feel today, and why?"),
]
SHORT = SamplingParams(temperature=0.0, max_tokens=40)


@dataclass
class Behaviour:
    """What the proxy does with the next requests, and what it saw."""

    reject_response_format: bool = False
    status: int | None = None
    delay_s: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)


class Proxy:
    """A loopback HTTP server forwarding to the llama.cpp server, with scripted misbehaviour."""

    def __init__(self, upstream: str, key: str) -> None:
        self.behaviour = Behaviour()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # The client may have given up already (the timeout test does).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proxy.handle(self, body)

            def log_message(self, *args: Any) -> None:
                return None

        self._upstream = upstream
        self._key = key
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        request = json.loads(raw or b"{}")
        behaviour = self.behaviour
        behaviour.seen.append(request)
        if behaviour.delay_s:
            time.sleep(behaviour.delay_s)
            self._reply(handler, 504, {"error": {"message": "too late"}})
        elif behaviour.status is not None:
            self._reply(handler, behaviour.status, {"error": {"message": "scripted failure"}})
        elif behaviour.reject_response_format and "response_format" in request:
            message = "Unrecognized request argument supplied: response_format"
            self._reply(handler, 400, {"error": {"message": message, "type": "invalid_request"}})
        else:
            self._forward(handler, raw)

    def _forward(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        try:
            upstream = httpx.post(
                self._upstream + handler.path,
                content=raw,
                headers={"Authorization": f"Bearer {self._key}"},
                timeout=120,
            )
        except httpx.HTTPError as error:
            self._reply(handler, 502, {"error": {"message": str(error)}})
            return
        self._reply(handler, upstream.status_code, upstream.json())

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def llama() -> Iterator[EmbeddedBackend]:
    server = EmbeddedBackend.for_entry(get_entry("smollm2-135m"), parallel=2, ctx_per_slot=1024)
    asyncio.run(server.start())
    yield server
    asyncio.run(server.aclose())


@pytest.fixture(scope="module")
def proxy_server(llama: EmbeddedBackend) -> Iterator[Proxy]:
    proxy = Proxy(llama.http_base_url, llama.api_key)
    yield proxy
    proxy.close()


@pytest.fixture
def proxy(proxy_server: Proxy) -> Proxy:
    proxy_server.behaviour = Behaviour()
    return proxy_server


@pytest.fixture
def keyed(llama: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's key in SOCIETAS_API_KEY (and a wrong one in OPENAI_API_KEY)."""
    monkeypatch.setenv("SOCIETAS_API_KEY", llama.api_key)
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key-123")
    return llama.api_key


def _direct(llama: EmbeddedBackend, **options: Any) -> OpenAIBackend:
    return OpenAIBackend("smollm2", base_url=llama.http_base_url + "/v1", **options)


@pytest.mark.model
async def test_structured_output_through_the_server(llama: EmbeddedBackend, keyed: str) -> None:
    backend = _direct(llama)
    try:
        assert isinstance(backend, ChatBackend)
        answer = await backend.chat(ASK, SHORT, json_schema=Mood.model_json_schema())
    finally:
        await backend.aclose()
    Mood.model_validate_json(answer.text)
    assert backend.supports_json_schema
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert backend.model_id == f"openai:{llama.http_base_url}/v1:smollm2"


@pytest.mark.model
async def test_plain_completion_through_the_server(llama: EmbeddedBackend, keyed: str) -> None:
    backend = _direct(llama)
    try:
        answer = await backend.complete("The capital of France is", SHORT)
    finally:
        await backend.aclose()
    assert answer.text.strip()
    assert answer.usage.completion_tokens > 0


@pytest.mark.model
async def test_generate_end_to_end_through_the_client(llama: EmbeddedBackend, keyed: str) -> None:
    llm = LLM(_direct(llama), HashEmbedder())
    try:
        mood = await llm.generate(ASK, Mood, purpose="mood", params=SHORT)
    finally:
        await llm.aclose()
    assert mood.mood in ("happy", "sad", "angry")
    assert llm.meter.snapshot().purposes["mood"].calls == 1


@pytest.mark.model
async def test_wrong_key_is_a_config_error_that_never_shows_the_key(
    llama: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-very-secret-value-0042"
    monkeypatch.setenv("SOCIETAS_API_KEY", secret)
    monkeypatch.setenv("OPENAI_API_KEY", llama.api_key)  # SOCIETAS_API_KEY wins
    backend = _direct(llama)
    try:
        with pytest.raises(LLMConfigError, match="refused the API key") as caught:
            await backend.chat(ASK, SHORT)
    finally:
        await backend.aclose()
    assert secret not in str(caught.value)
    assert secret not in repr(backend)
    assert caught.value.__suppress_context__  # the openai error (and its request) is not chained


def test_key_comes_from_the_environment_in_order() -> None:
    assert api_key_from_env({"SOCIETAS_API_KEY": "a", "OPENAI_API_KEY": "b"}) == "a"
    assert api_key_from_env({"SOCIETAS_API_KEY": " ", "OPENAI_API_KEY": "b"}) == "b"
    assert api_key_from_env({}) is None


@pytest.mark.model
async def test_keyless_servers_get_a_placeholder(
    llama: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOCIETAS_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = _direct(llama)
    try:
        assert backend._client.api_key == KEYLESS_PLACEHOLDER
        with pytest.raises(LLMConfigError):  # this server does want a key
            await backend.complete("Hi", SHORT)
    finally:
        await backend.aclose()


@pytest.mark.model
async def test_rejected_response_format_falls_back_for_the_session(
    proxy: Proxy, keyed: str
) -> None:
    proxy.behaviour.reject_response_format = True
    backend = OpenAIBackend("smollm2", base_url=proxy.base_url)
    brief = SamplingParams(temperature=0.0, max_tokens=12)
    try:
        first = await backend.chat(ASK, brief, json_schema=Mood.model_json_schema())
        assert not backend.supports_json_schema
        assert first.text  # answered, as plain text
        rejected, retried = proxy.behaviour.seen
        assert "response_format" in rejected and "response_format" not in retried
        assert (
            "JSON schema" in retried["messages"][0]["content"]
        )  # the schema moved into the prompt

        await backend.chat(ASK, brief, json_schema=Mood.model_json_schema())
        assert len(proxy.behaviour.seen) == 3
        assert "response_format" not in proxy.behaviour.seen[-1]
    finally:
        await backend.aclose()


@pytest.mark.model
async def test_required_json_schema_mode_fails_loudly(proxy: Proxy, keyed: str) -> None:
    proxy.behaviour.reject_response_format = True
    backend = OpenAIBackend("smollm2", base_url=proxy.base_url, json_schema_mode="on")
    try:
        with pytest.raises(LLMConfigError, match="does not accept JSON-schema"):
            await backend.chat(ASK, SHORT, json_schema=Mood.model_json_schema())
    finally:
        await backend.aclose()


@pytest.mark.model
async def test_schema_mode_off_sends_no_schema(proxy: Proxy, keyed: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=proxy.base_url, json_schema_mode="off")
    try:
        assert not backend.supports_json_schema
        await backend.chat(ASK, SamplingParams(max_tokens=4), json_schema={"type": "object"})
    finally:
        await backend.aclose()
    assert "response_format" not in proxy.behaviour.seen[0]


@pytest.mark.parametrize(
    ("status", "transient"), [(503, True), (500, True), (429, True), (404, False), (400, False)]
)
@pytest.mark.model
async def test_status_codes_map_to_transient_or_final(
    proxy: Proxy, keyed: str, status: int, transient: bool
) -> None:
    proxy.behaviour.status = status
    backend = OpenAIBackend("smollm2", base_url=proxy.base_url)
    try:
        with pytest.raises(LLMError) as caught:
            await backend.chat(ASK, SHORT)
    finally:
        await backend.aclose()
    assert isinstance(caught.value, BackendTransientError) == transient
    assert f"HTTP {status}" in str(caught.value)
    assert len(proxy.behaviour.seen) == 1  # the openai client's own retries are off


@pytest.mark.model
async def test_slow_server_is_a_transient_timeout(proxy: Proxy, keyed: str) -> None:
    proxy.behaviour.delay_s = 1.5
    backend = OpenAIBackend("smollm2", base_url=proxy.base_url, request_timeout_s=0.3)
    try:
        with pytest.raises(BackendTransientError, match="did not answer in time"):
            await backend.complete("Hi", SHORT)
    finally:
        await backend.aclose()


@pytest.mark.model
async def test_unreachable_server_is_transient(keyed: str) -> None:
    backend = OpenAIBackend("smollm2", base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(BackendTransientError, match="cannot reach"):
            await backend.chat(ASK, SHORT)
    finally:
        await backend.aclose()


def test_response_format_names_are_sanitised() -> None:
    payload = response_format({"title": "Day plan (v2)", "type": "object"})
    assert payload["type"] == "json_schema"
    assert payload["json_schema"]["name"] == "Day_plan__v2_"
    assert payload["json_schema"]["schema"]["type"] == "object"


def test_unknown_schema_mode_is_rejected() -> None:
    with pytest.raises(LLMConfigError, match="json_schema_mode"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", json_schema_mode="maybe")  # type: ignore[arg-type]
