"""``societas serve``: the viewer's command binds loopback, guards hosts and refuses bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from societas.cli import viewer_commands


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    viewer_commands.register(app)
    return app


def test_serve_binds_loopback_and_guards_hosts(
    cli: typer.Typer, recorded_town: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    result = CliRunner().invoke(cli, ["serve", str(recorded_town), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8123
    assert "http://127.0.0.1:8123/" in result.output
    guarded = TestClient(calls[0]["app"], base_url="http://127.0.0.1")
    assert guarded.get("/api/run", headers={"host": "evil.example"}).status_code == 400


def test_serve_refuses_bad_directories_and_ports(cli: typer.Typer, tmp_path: Path) -> None:
    # A wide terminal, so the error panel never cuts the message (the temporary path varies).
    runner = CliRunner(env={"COLUMNS": "400"})
    empty = runner.invoke(cli, ["serve", str(tmp_path)])
    assert empty.exit_code == 2 and "no run.sqlite" in empty.output
    assert runner.invoke(cli, ["serve", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(cli, ["serve", str(tmp_path), "--port", "70000"]).exit_code == 2


def test_loopback_detection() -> None:
    assert viewer_commands.is_loopback("127.0.0.1")
    assert viewer_commands.is_loopback("::1")
    assert not viewer_commands.is_loopback("0.0.0.0")
    assert not viewer_commands.is_loopback("example.org")
