"""The endpoint pool against several real OpenAI-compatible HTTP servers on loopback.

Each fake server is a threaded HTTP server on 127.0.0.1 (an ephemeral port) answering
``POST /v1/chat/completions`` with valid JSON derived only from the prompt (so every replica gives
the same answer) and ``GET /v1/models``; on cue it fails with 500, closes the connection
unanswered, answers 429 with ``Retry-After``, or echoes the Authorization header it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from societas.cli.app import app
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.affinity import affinity_scope
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM
from societas.llm.endpoint_pool import EndpointPool
from societas.llm.endpoints import (
    EndpointsConfig,
    EndpointsFileError,
    EndpointSpec,
    endpoints_from_text,
    public_url,
)
from societas.llm.fake import HashEmbedder
from societas.llm.openai_compat import OpenAIBackend
from societas.llm.ratelimit import ManualClock
from societas.llm.registry import open_chat_backend, open_llm
from societas.llm.types import (
    BackendTransientError,
    ChatBackend,
    LLMConfigError,
    LLMError,
    Message,
)
from societas.llm.types import SamplingParams as Params
from societas.scenarios.scenario import load_scenario
from support.network import free_port

Mode = Literal["ok", "fail", "close", "echo-auth", "reject"]
SECRET = "sk-test-5ecret-value-0123456789"


class Mood(BaseModel):
    mood: str
    reason: str


def ask(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


PARAMS = Params(temperature=0.0, max_tokens=20)


class FakeServer:
    """An OpenAI-compatible server on a loopback port with scripted behaviour."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.mode: Mode = "ok"
        self.delay_s = delay_s
        self.rate_limit_next = 0  # how many coming chat requests get 429
        self.retry_after = "7"
        self.chat_requests = 0
        self.model_requests = 0
        self.cached_tokens = 0  # reported as prompt_tokens_details.cached_tokens when set
        self.active = 0
        self.peak = 0
        self.auth_seen: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.model_requests += 1
                if server.mode in ("fail", "close"):
                    server.reply(self, 500, {"error": {"message": "down for maintenance"}})
                else:
                    server.reply(self, 200, {"object": "list", "data": [{"id": "m"}]})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.chat(self, json.loads(body or b"{}"))

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def chat(self, handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        with self._lock:
            self.chat_requests += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.auth_seen.add(handler.headers.get("Authorization", ""))
            limited = self.rate_limit_next > 0
            self.rate_limit_next -= int(limited)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if limited:
                message = {"error": {"message": "rate limit reached"}}
                self.reply(handler, 429, message, {"Retry-After": self.retry_after})
            elif self.mode == "fail":
                self.reply(handler, 500, {"error": {"message": "internal error"}})
            elif self.mode == "echo-auth":
                echoed = f"bad gateway for {handler.headers.get('Authorization')}"
                self.reply(handler, 502, {"error": {"message": echoed}})
            elif self.mode == "reject":
                self.reply(handler, 400, {"error": {"message": "max_tokens is too large"}})
            elif self.mode == "close":
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            else:
                answer = completion(request)
                if self.cached_tokens:
                    details = {"cached_tokens": self.cached_tokens}
                    answer["usage"]["prompt_tokens_details"] = details
                self.reply(handler, 200, answer)
        finally:
            with self._lock:
                self.active -= 1

    @staticmethod
    def reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def completion(request: dict[str, Any]) -> dict[str, Any]:
    """A chat completion whose answer depends only on the prompt."""
    prompt = " ".join(m["content"] for m in request["messages"])
    answer = json.dumps({"mood": "calm", "reason": f"{len(prompt)} characters"})
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": 7,
            "total_tokens": len(prompt.split()) + 7,
        },
    }


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    started = [FakeServer() for _ in range(3)]
    yield started
    for server in started:
        server.close()


@pytest.fixture(autouse=True)
def no_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOCIETAS_API_KEY", "OPENAI_API_KEY", "SOCIETAS_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def pool_of(
    urls: list[str],
    *,
    unhealthy_after: int = 2,
    probe_interval_s: float = 0.05,
    **options: Any,
) -> EndpointPool:
    config = EndpointsConfig(
        endpoints=tuple(EndpointSpec(url=url, max_concurrency=4) for url in urls),
        unhealthy_after=unhealthy_after,
        probe_interval_s=probe_interval_s,
    )
    return EndpointPool("m", config, request_timeout_s=5.0, **options)


async def wait_until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- spreading and concurrency ------------------------------------------------------------------


async def test_calls_spread_over_endpoints_within_their_concurrency() -> None:
    slow = [FakeServer(delay_s=0.15) for _ in range(3)]
    try:
        urls = [server.url for server in slow]
        config = EndpointsConfig(
            endpoints=tuple(EndpointSpec(url=url, max_concurrency=2) for url in urls)
        )
        pool = EndpointPool("m", config)
        assert isinstance(pool, ChatBackend)
        try:
            answers = await asyncio.gather(
                *(pool.chat(ask(f"question {i}"), PARAMS) for i in range(18))
            )
        finally:
            await pool.aclose()
    finally:
        for server in slow:
            server.close()
    assert all(Mood.model_validate_json(a.text).mood == "calm" for a in answers)
    peaks = [server.peak for server in slow]
    assert max(peaks) == 2 and all(peak <= 2 for peak in peaks)  # used fully, never above
    assert sum(server.chat_requests for server in slow) == 18
    stats = pool.stats()
    assert [s.calls for s in stats] == [server.chat_requests for server in slow]
    assert all(s.calls >= 4 for s in stats)
    assert sum(s.prompt_tokens for s in stats) == 18 * 2
    assert sum(s.completion_tokens for s in stats) == 18 * 7
    assert all(s.in_flight == 0 and s.healthy for s in stats)


async def test_least_loaded_endpoint_wins_and_ties_go_to_the_first(
    servers: list[FakeServer],
) -> None:
    pool = pool_of([s.url for s in servers])
    try:
        for i in range(3):  # one at a time: every endpoint is idle, the first one wins each tie
            await pool.chat(ask(f"q{i}"), PARAMS)
    finally:
        await pool.aclose()
    assert [s.chat_requests for s in servers] == [3, 0, 0]


async def test_an_affinity_key_keeps_to_its_home_endpoint(servers: list[FakeServer]) -> None:
    pool = pool_of([s.url for s in servers])
    try:
        for round_ in range(3):  # every endpoint is idle: without keys all would go to the first
            for agent in ("Ada", "Bo", "Cy", "Di"):
                with affinity_scope(agent):
                    await pool.chat(ask(f"{agent} {round_}"), PARAMS)
    finally:
        await pool.aclose()
    homes = {agent: pool.homes.place_of(agent) for agent in ("Ada", "Bo", "Cy", "Di")}
    assert homes == {"Ada": 0, "Bo": 1, "Cy": 2, "Di": 0}
    assert [s.chat_requests for s in servers] == [6, 3, 3]


async def test_an_affinity_home_that_is_down_hands_its_calls_to_another(
    servers: list[FakeServer],
) -> None:
    servers[1].mode = "fail"
    pool = pool_of([s.url for s in servers[:2]], unhealthy_after=1, probe_interval_s=60)
    try:
        with affinity_scope("Bo"):  # Bo's home would be the second endpoint, after Ada's
            pool.homes.place_of("Ada")
            answers = [await pool.chat(ask(f"q{i}"), PARAMS) for i in range(3)]
    finally:
        await pool.aclose()
    assert len(answers) == 3 and servers[0].chat_requests == 3


async def test_the_servers_cached_tokens_count_as_reused(servers: list[FakeServer]) -> None:
    servers[0].cached_tokens = 2
    llm = LLM(pool_of([servers[0].url]), HashEmbedder(), cache=ResponseCache(":memory:"))
    try:
        await llm.chat_text(ask("one two three four"), purpose="talk", params=PARAMS)
    finally:
        await llm.aclose()
    totals = llm.meter.snapshot().purposes["talk"]
    assert (totals.prompt_tokens, totals.reused_prompt_tokens) == (4, 2)


# -- failover and health ------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["fail", "close", "down"])
async def test_failover_to_a_working_endpoint(servers: list[FakeServer], failure: str) -> None:
    broken, working = servers[0], servers[1]
    urls = [broken.url, working.url]
    if failure == "down":
        urls[0] = f"http://127.0.0.1:{free_port()}/v1"
    else:
        broken.mode = "fail" if failure == "fail" else "close"
    pool = pool_of(urls, unhealthy_after=2, probe_interval_s=60)
    try:
        answers = [await pool.chat(ask(f"q{i}"), PARAMS) for i in range(5)]
    finally:
        await pool.aclose()
    assert len(answers) == 5 and working.chat_requests == 5
    first, second = pool.stats()
    # Two failures set the first endpoint aside; later calls go straight to the second.
    assert (first.calls, first.failures, first.retried_elsewhere) == (2, 2, 2)
    assert not first.healthy and second.healthy
    assert (second.calls, second.failures) == (5, 0)
    if failure != "down":
        assert broken.chat_requests == 2


async def test_endpoint_recovers_after_its_health_probe(servers: list[FakeServer]) -> None:
    flaky, steady = servers[0], servers[1]
    flaky.mode = "fail"
    pool = pool_of([flaky.url, steady.url], unhealthy_after=1, probe_interval_s=0.05)
    try:
        await pool.chat(ask("first"), PARAMS)
        assert not pool.stats()[0].healthy
        await asyncio.sleep(0.2)
        assert flaky.model_requests >= 1  # probed, still failing
        assert not pool.stats()[0].healthy
        flaky.mode = "ok"
        await wait_until(lambda: pool.stats()[0].healthy)
        await pool.chat(ask("second"), PARAMS)  # idle again, the first endpoint wins the tie
    finally:
        await pool.aclose()
    assert flaky.chat_requests == 2 and pool.stats()[0].calls == 2
    assert pool.stats()[0].failures == 1


async def test_when_every_endpoint_is_down_calls_wait_then_fail(
    servers: list[FakeServer],
) -> None:
    only = servers[0]
    only.mode = "fail"
    pool = pool_of([only.url], unhealthy_after=1, probe_interval_s=0.05, recovery_wait_s=0.3)
    try:
        with pytest.raises(BackendTransientError, match="HTTP 500"):
            await pool.chat(ask("one"), PARAMS)
        started = time.monotonic()
        with pytest.raises(BackendTransientError, match="no healthy endpoint"):
            await pool.chat(ask("two"), PARAMS)
        assert time.monotonic() - started >= 0.25  # it waited for a recovery first
    finally:
        await pool.aclose()
    # A recovery during the wait lets the call through (a long wait: a busy machine is slow).
    patient = pool_of([only.url], unhealthy_after=1, probe_interval_s=0.05, recovery_wait_s=30)
    try:
        with pytest.raises(BackendTransientError, match="HTTP 500"):
            await patient.chat(ask("four"), PARAMS)
        waiting = asyncio.ensure_future(patient.chat(ask("three"), PARAMS))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        only.mode = "ok"
        assert Mood.model_validate_json((await waiting).text).mood == "calm"
    finally:
        await patient.aclose()


async def test_client_errors_are_final_not_moved_elsewhere(servers: list[FakeServer]) -> None:
    servers[0].mode = "reject"
    pool = pool_of([servers[0].url, servers[1].url])
    try:
        with pytest.raises(LLMError, match="HTTP 400") as failure:
            await pool.chat(ask("x"), PARAMS)
    finally:
        await pool.aclose()
    assert not isinstance(failure.value, BackendTransientError)
    assert servers[1].chat_requests == 0
    first = pool.stats()[0]
    assert (first.calls, first.failures, first.retried_elsewhere, first.healthy) == (1, 1, 0, True)


# -- rate limits --------------------------------------------------------------------------------


async def test_retry_after_pauses_the_endpoint_on_the_injected_clock(
    servers: list[FakeServer],
) -> None:
    only = servers[0]
    only.rate_limit_next, only.retry_after = 1, "7"
    clock = ManualClock()
    pool = pool_of([only.url], clock=clock)
    try:
        answer = await pool.chat(ask("hello"), PARAMS)
    finally:
        await pool.aclose()
    assert Mood.model_validate_json(answer.text).mood == "calm"
    assert clock.slept == [7.0]  # waited exactly the server's Retry-After, then tried again
    (stats,) = pool.stats()
    assert (stats.calls, stats.rate_limited, stats.failures, stats.healthy) == (2, 1, 1, True)


async def test_a_rate_limited_endpoint_hands_calls_to_the_others(
    servers: list[FakeServer],
) -> None:
    limited, other = servers[0], servers[1]
    limited.rate_limit_next, limited.retry_after = 1, "30"
    clock = ManualClock()
    pool = pool_of([limited.url, other.url], clock=clock)
    try:
        for i in range(3):
            await pool.chat(ask(f"q{i}"), PARAMS)
        assert clock.slept == []  # nobody waited: the other endpoint took over
        clock.advance(31)  # the pause is over: the first endpoint wins ties again
        await pool.chat(ask("later"), PARAMS)
    finally:
        await pool.aclose()
    assert (limited.chat_requests, other.chat_requests) == (2, 3)
    assert pool.stats()[0].retried_elsewhere == 1


async def test_requests_per_minute_limit_spaces_calls(servers: list[FakeServer]) -> None:
    clock = ManualClock()
    config = EndpointsConfig(endpoints=(EndpointSpec(url=servers[0].url, rpm=6),))
    pool = EndpointPool("m", config, clock=clock)
    try:
        for i in range(4):
            await pool.chat(ask(f"q{i}"), PARAMS)
    finally:
        await pool.aclose()
    # 6 a minute holds a burst of one (10 s worth), then one every 10 s.
    assert clock.slept == [10.0, 10.0, 10.0]


# -- answers and keys ---------------------------------------------------------------------------


async def test_answers_and_cache_keys_do_not_depend_on_the_endpoint(
    servers: list[FakeServer], tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = LLM(pool_of([servers[0].url, servers[1].url]), HashEmbedder(), cache=cache)
    try:
        mood = await first.generate(ask("How are you?"), Mood, purpose="mood", params=PARAMS)
    finally:
        await first.aclose()
    # Another deployment of the same model: other URLs, same answers from the shared cache.
    second = LLM(pool_of([servers[2].url]), HashEmbedder(), cache=cache)
    try:
        again = await second.generate(ask("How are you?"), Mood, purpose="mood", params=PARAMS)
    finally:
        await second.aclose()
        cache.close()
    assert again == mood
    assert second.meter.snapshot().total.cache_hits == 1 and servers[2].chat_requests == 0
    assert first.model_id == second.model_id == "openai:m"
    assert "127.0.0.1" not in first.model_id


async def test_keys_never_reach_logs_errors_or_stats(
    servers: list[FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("POOL_KEY", SECRET)
    echo, working = servers[0], servers[1]
    echo.mode = "echo-auth"
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(
        "defaults: {api_key_env: POOL_KEY, max_concurrency: 2}\n"
        f"endpoints:\n  - url: {echo.url}\n  - url: {working.url}\n"
        "unhealthy_after: 1\nprobe_interval_s: 0.05\n"
    )
    caplog.set_level(logging.DEBUG)
    async with open_llm("openai:m", endpoints=endpoints, use_cache=False) as llm:
        pool = llm.chat_backend
        assert isinstance(pool, EndpointPool)
        await llm.generate(ask("hi"), Mood, purpose="mood", params=PARAMS)
        await asyncio.sleep(0.15)  # a few probes
        solo = EndpointPool(
            "m", endpoints_from_text(f"endpoints: [{{url: {echo.url}, api_key_env: POOL_KEY}}]")
        )
        with pytest.raises(BackendTransientError) as failure:
            await solo.chat(ask("hi"), PARAMS)
        await solo.aclose()
        shown = [repr(pool), json.dumps([s.model_dump() for s in pool.stats()])]
    assert echo.auth_seen == {f"Bearer {SECRET}"}  # the key was sent...
    assert "Bearer ***" in str(failure.value)  # ...and scrubbed from what came back
    for text in [caplog.text, str(failure.value), *shown]:
        assert SECRET not in text


# -- endpoints files and wiring -----------------------------------------------------------------


def test_endpoints_file_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTED_KEY", "k")
    config = endpoints_from_text(
        "defaults:\n  max_concurrency: 32\n"
        "endpoints:\n"
        "  - url: http://gpu01:8000/v1/\n"
        "  - url: https://api.example.com/v1\n"
        "    max_concurrency: 4\n    rpm: 500\n    tpm: 200000\n    api_key_env: HOSTED_KEY\n"
        "unhealthy_after: 5\n"
    )
    first, hosted = config.endpoints
    assert (first.url, first.max_concurrency, first.rpm) == ("http://gpu01:8000/v1", 32, None)
    assert (hosted.max_concurrency, hosted.rpm, hosted.tpm) == (4, 500.0, 200000.0)
    assert (hosted.api_key_env, config.unhealthy_after) == ("HOSTED_KEY", 5)
    # Defaults: a 120-s attempt, and twice as many attempts as endpoints.
    pool = EndpointPool("m", config)
    assert (pool.max_attempts, pool._endpoints[0].backend.request_timeout_s) == (4, 120.0)


def test_endpoints_file_sets_the_attempt_timeout_and_the_attempts_per_call() -> None:
    config = endpoints_from_text(
        "endpoints:\n  - url: http://a:8000/v1\n  - url: http://b:8000/v1\n"
        "request_timeout_s: 30\nmax_attempts: 5\n"
    )
    pool = EndpointPool("m", config)
    assert pool.max_attempts == 5
    assert [e.backend.request_timeout_s for e in pool._endpoints] == [30.0, 30.0]
    assert EndpointPool("m", config, max_attempts=2, request_timeout_s=3).max_attempts == 2
    with pytest.raises(EndpointsFileError, match=r"e\.yaml:3: max_attempts"):
        endpoints_from_text("endpoints:\n  - url: http://a/v1\nmax_attempts: 0\n", "e.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "endpoints:\n  - url: http://a/v1\n  - url: http://b/v1\n    max_concurrency: 0\n",
            "e.yaml:4: endpoints[1].max_concurrency: Input should be greater than or equal to 1",
        ),
        ("endpoints:\n  - url: ftp://a/v1\n", "e.yaml:2: endpoints[0].url: Value error, must be"),
        (
            "endpoints:\n  - url: http://a/v1\n    rpn: 5\n",
            "e.yaml:3: endpoints[0].rpn: Extra inputs are not permitted",
        ),
        (
            "endpoints:\n  - url: http://a/v1\n    api_key: sk-live-123\n",
            "e.yaml:3: endpoints[0].api_key: keys are read from the environment",
        ),
        (
            "endpoints:\n  - url: http://a/v1\n    api_key_env: NOT_SET_ANYWHERE\n",
            "e.yaml:3: endpoints[0].api_key_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "endpoints:\n  - url: http://a/v1\n  - url: http://a/v1/\n",
            "e.yaml:3: endpoints[1].url: http://a/v1 is listed twice",
        ),
        (
            "defaults:\n  rpm: -1\nendpoints:\n  - url: http://a/v1\n",
            "e.yaml:2: defaults.rpm: Input should be greater than 0",
        ),
        ("endpoints: []\n", "e.yaml:1: endpoints: Tuple should have at least 1 item"),
        ("- url: http://a/v1\n", "e.yaml:1: an endpoints file is a mapping"),
        ("endpoints:\n  - url: [\n", "e.yaml:3: invalid YAML"),
    ],
)
def test_bad_endpoints_files_name_file_field_and_line(text: str, expected: str) -> None:
    with pytest.raises(EndpointsFileError) as error:
        endpoints_from_text(text, "e.yaml")
    assert str(error.value).startswith(expected)
    assert "sk-live-123" not in str(error.value)


def test_urls_lists_and_files_choose_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = open_chat_backend("openai:m", base_url="http://a:8000/v1")
    assert isinstance(single, OpenAIBackend)
    listed = open_chat_backend("openai:m", base_url="http://a:8000/v1, http://b:8000/v1")
    assert isinstance(listed, EndpointPool) and len(listed.stats()) == 2
    monkeypatch.setenv("SOCIETAS_BASE_URL", "http://a:8000/v1,http://b:8000/v1,http://c/v1")
    from_env = open_chat_backend("openai:m")
    assert isinstance(from_env, EndpointPool) and from_env.total_concurrency == 24
    file = tmp_path / "endpoints.yaml"
    file.write_text("endpoints:\n  - {url: 'http://a:8000/v1', max_concurrency: 3, rpm: 60}\n")
    from_file = open_chat_backend("openai:m", endpoints=file)
    assert isinstance(from_file, EndpointPool) and from_file.total_concurrency == 3
    with pytest.raises(LLMConfigError, match="serves openai:NAME models"):
        open_chat_backend("smollm2-135m", endpoints=file)
    with pytest.raises(LLMConfigError, match="http:// or https://"):
        open_chat_backend("openai:m", base_url="http://a/v1,localhost:8000")
    assert public_url("https://u:p@h:1/v1?key=z") == "https://h:1/v1"


async def test_open_llm_runs_as_many_calls_as_the_endpoints_take(tmp_path: Path) -> None:
    file = tmp_path / "endpoints.yaml"
    file.write_text(
        "endpoints:\n  - {url: 'http://a/v1', max_concurrency: 5}\n"
        "  - {url: 'http://b/v1', max_concurrency: 7}\n"
    )
    llm = await open_llm("openai:m", endpoints=file, use_cache=False)
    try:
        assert llm.max_concurrency == 12
    finally:
        await llm.aclose()


def test_cli_asks_through_an_endpoints_file(servers: list[FakeServer], tmp_path: Path) -> None:
    file = tmp_path / "endpoints.yaml"
    file.write_text(f"endpoints:\n  - url: {servers[0].url}\n  - url: {servers[1].url}\n")
    runner = CliRunner()
    result = runner.invoke(
        app, ["ask", "Hello?", "--model", "openai:tiny", "--endpoints", str(file), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "calm" in result.output and "model openai:tiny: 1 call(s)" in result.output
    assert servers[0].chat_requests == 1
    file.write_text("endpoints:\n  - url: http://a/v1\n    max_concurrency: many\n")
    bad = runner.invoke(app, ["ask", "Hello?", "--model", "openai:m", "--endpoints", str(file)])
    assert bad.exit_code == 2
    expected = f"{file}:3: endpoints[0].max_concurrency: Input should be a valid integer"
    assert " ".join(bad.output.split()).endswith(
        f"error: {expected}, unable to parse string as an integer"
    )
    assert "Traceback" not in bad.output


async def test_a_run_store_keeps_each_endpoints_counts(
    servers: list[FakeServer], tmp_path: Path
) -> None:
    pool = pool_of([servers[0].url, servers[1].url])
    llm = LLM(pool, HashEmbedder())
    try:
        await llm.generate(ask("a"), Mood, purpose="x")
        await llm.generate(ask("b"), Mood, purpose="x")
        no_memory = SimulationConfig(memory=False)  # these servers only answer Mood
        sim = await Simulation.start(load_scenario("duo"), tmp_path / "run", llm, no_memory)
        sim.close("finished")
    finally:
        await llm.aclose()
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        stored = store.get_meta("endpoints")
    assert [e["url"] for e in stored] == [servers[0].url, servers[1].url]
    assert sum(e["calls"] for e in stored) == 2 and all(e["healthy"] for e in stored)
    assert "key" not in json.dumps(stored).lower()
