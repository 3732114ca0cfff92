"""Servers stay on this machine unless told otherwise, and the model server wants its key.

``societas serve`` binds 127.0.0.1 by default (and checks the Host header against DNS rebinding);
the embedded llama.cpp server listens only on 127.0.0.1 and refuses requests without its random
key (a started smollm2-135m).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from societas.cli import viewer_commands
from societas.cli.app import app
from societas.llm.catalog import get_entry
from societas.llm.embedded import EmbeddedBackend


@pytest.fixture(scope="module")
def run_dir(recorded_town: Path) -> Path:
    return recorded_town


def serve(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: calls.append({"app": asgi, **kw}))
    return CliRunner().invoke(app, ["serve", *args]), calls


def test_serve_binds_loopback_by_default(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = inspect.signature(viewer_commands.serve).parameters["host"].default
    assert default == "127.0.0.1"
    result, calls = serve([str(run_dir)], monkeypatch)
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1"
    viewer = TestClient(calls[0]["app"], base_url="http://127.0.0.1:8765")
    assert viewer.get("/api/run").status_code == 200
    # A page on another origin that resolves its own name to 127.0.0.1 is refused.
    assert viewer.get("/api/run", headers={"host": "attacker.example"}).status_code == 400


def test_serve_shares_on_the_network_only_when_told(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, calls = serve([str(run_dir), "--host", "0.0.0.0"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "0.0.0.0"
    assert "anyone who can reach this port can read the run" in result.output


def test_serve_refuses_hosts_that_are_not_addresses(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for host in ("127.0.0.1; rm -rf ~", "", "exa mple", "-h", "a" * 300):
        result, calls = serve([str(run_dir), "--host", host], monkeypatch)
        assert result.exit_code == 2 and not calls, host


@pytest.fixture(scope="module")
def llama() -> Iterator[EmbeddedBackend]:
    server = EmbeddedBackend.for_entry(get_entry("smollm2-135m"), parallel=1, ctx_per_slot=512)
    asyncio.run(server.start())
    yield server
    asyncio.run(server.aclose())


@pytest.mark.model
def test_embedded_server_listens_on_loopback_only(llama: EmbeddedBackend) -> None:
    assert urlsplit(llama.http_base_url).hostname == "127.0.0.1"


@pytest.mark.model
def test_embedded_server_refuses_requests_without_its_key(llama: EmbeddedBackend) -> None:
    url = llama.http_base_url + "/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    assert len(llama.api_key) >= 32
    wrong = "Bearer " + llama.api_key[:-1] + ("A" if llama.api_key[-1] != "A" else "B")
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": wrong}):
        refused = httpx.post(url, json=body, headers=headers, timeout=60)
        assert refused.status_code == 401, headers
        assert "choices" not in refused.text
    keyed = httpx.post(
        url, json=body, headers={"Authorization": f"Bearer {llama.api_key}"}, timeout=60
    )
    assert keyed.status_code == 200
    assert keyed.json()["choices"]
    assert llama.api_key not in repr(llama)
