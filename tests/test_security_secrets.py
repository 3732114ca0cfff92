"""API keys stay secret: never in a run store, a cache, a log line, an error message or a repr.

A whole ``societas run`` goes through the OpenAI-compatible backend to a loopback server that
demands the key and answers every call with a schema-valid answer. Afterwards every byte the run
left behind (run directory, response cache, captured logs, the command's output) is searched for
the key. A second server rejects the key and echoes it back, as some servers do.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.llm.client import LLM
from societas.llm.fake import HashEmbedder, SchemaFiller
from societas.llm.openai_compat import OpenAIBackend

KEY = "sk-secret-4f1c9a7e2b6d0c8e5a3f1b9d7c5e3a1f"


class FakeOpenAI:
    """A loopback chat-completions server that needs ``Bearer KEY`` and fills answer schemas."""

    def __init__(self, *, accept_key: bool = True) -> None:
        self.authorizations: list[str] = []
        self.requests = 0
        filler = SchemaFiller(random.Random(0))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                auth = self.headers.get("Authorization", "")
                server.authorizations.append(auth)
                server.requests += 1
                if not accept_key or auth != f"Bearer {KEY}":
                    given = auth.removeprefix("Bearer ")
                    message = f"Incorrect API key provided: {given}. Find your key at ..."
                    self._reply(401, {"error": {"message": message, "code": "invalid_api_key"}})
                    return
                schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
                text = json.dumps(filler.fill(schema)) if schema else "All is well."
                self._reply(200, _completion(text))

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "town-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@pytest.fixture
def keyed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The key in SOCIETAS_API_KEY; the response cache in a private home we can search."""
    home = tmp_path / "home"
    monkeypatch.setenv("SOCIETAS_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("SOCIETAS_HOME", str(home))
    return home


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


def files_holding(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_run_through_a_keyed_server_never_records_the_key(
    tmp_path: Path, keyed_env: Path, server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug logging too (openai, httpx)
    out = tmp_path / "run"
    args = ["run", "duo", "--model", "openai:town-model", "--base-url", server.base_url]
    result = CliRunner().invoke(app, [*args, "--hours", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert server.requests > 5 and set(server.authorizations) == {f"Bearer {KEY}"}
    assert (out / "run.sqlite").is_file() and keyed_env.is_dir()
    assert files_holding(tmp_path, KEY) == []
    assert KEY not in result.output
    assert KEY not in caplog.text
    assert len(caplog.records) > 0  # the logs were captured, so their silence means something


def test_a_rejected_key_is_reported_without_the_key(
    tmp_path: Path, keyed_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rejecting = FakeOpenAI(accept_key=False)
    try:
        args = ["ask", "hello", "--model", "openai:m", "--base-url", rejecting.base_url]
        result = CliRunner().invoke(app, [*args, "--no-cache"])
    finally:
        rejecting.close()
    assert rejecting.authorizations == [f"Bearer {KEY}"]  # the server saw it and echoed it back
    assert result.exit_code == 2
    assert "refused the API key" in result.output
    assert KEY not in result.output and KEY not in caplog.text
    assert files_holding(tmp_path, KEY) == []


async def test_clients_do_not_show_the_key(keyed_env: Path, server: FakeOpenAI) -> None:
    backend = OpenAIBackend("town-model", base_url=server.base_url)
    llm = LLM(backend, HashEmbedder())
    try:
        for shown in (repr(backend), str(backend), repr(llm), repr(backend._client)):
            assert KEY not in shown
        assert await llm.chat_text([], purpose="check") == "All is well."
    finally:
        await llm.aclose()
