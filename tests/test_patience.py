"""Model call timeout and retries: from the CLI, through the environment, to every client."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.distributed import session
from societas.llm.patience import (
    RETRIES_VARIABLE,
    TIMEOUT_VARIABLE,
    Patience,
    patience_from,
)
from societas.llm.registry import open_llm
from societas.llm.types import LLMConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first so that whatever the CLI writes is undone after the test
    monkeypatch.setenv(TIMEOUT_VARIABLE, "")
    monkeypatch.setenv(RETRIES_VARIABLE, "")


def test_settings_come_from_the_environment_with_defaults() -> None:
    assert patience_from({}) == Patience(180.0, 3)
    assert patience_from({TIMEOUT_VARIABLE: " 42.5 ", RETRIES_VARIABLE: "0"}) == Patience(42.5, 0)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (TIMEOUT_VARIABLE, "soon", f"{TIMEOUT_VARIABLE} must be a number of seconds, got 'soon'"),
        (RETRIES_VARIABLE, "2.5", f"{RETRIES_VARIABLE} must be a whole number, got '2.5'"),
        (TIMEOUT_VARIABLE, "-1", "timeout must be positive, got -1.0"),
        (RETRIES_VARIABLE, "99", "retries must be 0-20, got 99"),
    ],
)
def test_bad_settings_are_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(LLMConfigError, match=message):
        patience_from({variable: value})


async def test_open_llm_uses_the_environment_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "7")
    monkeypatch.setenv(RETRIES_VARIABLE, "1")
    async with open_llm("fake:patience", use_cache=False) as llm:
        assert (llm.timeout_s, llm.max_retries) == (7.0, 1)
    async with open_llm("fake:patience", use_cache=False, timeout_s=9, max_retries=0) as llm:
        assert (llm.timeout_s, llm.max_retries) == (9.0, 0)


def test_the_cli_options_set_them_for_the_command_and_its_workers() -> None:
    result = CliRunner().invoke(app, ["--llm-timeout", "600", "--llm-retries", "6", "version"])
    assert result.exit_code == 0, result.output
    assert patience_from() == Patience(600.0, 6)
    result = CliRunner().invoke(app, ["--llm-retries", "0", "version"])
    assert result.exit_code == 0, result.output
    assert patience_from() == Patience(600.0, 0)  # an option left out keeps its setting


def test_the_cli_refuses_bad_values() -> None:
    result = CliRunner().invoke(app, ["--llm-retries", "-1", "version"])
    assert result.exit_code == 2
    assert "--llm-retries" in result.output
    result = CliRunner().invoke(
        app, ["--llm-timeout", "5", "version"], env={RETRIES_VARIABLE: "many"}
    )
    assert result.exit_code == 2
    assert f"{RETRIES_VARIABLE} must be a whole number" in result.output


class FakeRay:
    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def is_initialized(self) -> bool:
        return False

    def init(self, address: str | None = None, **options: Any) -> None:
        self.options = options

    def shutdown(self) -> None:
        pass


def test_ray_sessions_hand_the_settings_to_their_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = FakeRay()
    monkeypatch.setattr(session, "ray_module", lambda: ray)
    with session.ray_session():
        pass
    assert "runtime_env" not in ray.options  # nothing set: nothing to hand over
    monkeypatch.setenv(TIMEOUT_VARIABLE, "600")
    with session.ray_session():
        pass
    assert ray.options["runtime_env"] == {"env_vars": {TIMEOUT_VARIABLE: "600"}}
