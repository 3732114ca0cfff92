"""Command output at 80 columns and piped (the test runner is no terminal), and ``--json``."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from societas.cli import model_commands, run_commands
from societas.cli.app import app
from societas.cli.output import Table, print_table, prose_column, whole_column
from societas.llm.catalog import CATALOG

runner = CliRunner()


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh response cache per test, so the fake model's calls really reach it."""
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))


@pytest.fixture
def width(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Set the width the commands' consoles print at."""

    class Width:
        def __call__(self, columns: int) -> None:
            for console in (model_commands.console, run_commands.console):
                monkeypatch.setattr(console, "_width", columns)

    yield Width()


def _lines_fit(text: str, columns: int) -> bool:
    return all(len(line) <= columns for line in text.splitlines())


@pytest.mark.parametrize("columns", [80, 40])
def test_models_shows_every_name_whole(width: object, columns: int) -> None:
    width(columns)  # type: ignore[operator]
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    for name in CATALOG:
        assert re.search(rf"(^|\W){re.escape(name)}(\W|$)", result.stdout, re.M), name
    assert _lines_fit(result.stdout.split("* the default model")[0], columns)


def test_models_json_has_the_figures_of_the_table(width: object) -> None:
    width(80)  # type: ignore[operator]
    table = runner.invoke(app, ["models"]).stdout
    data = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert [row["model"] for row in data["models"]] == list(CATALOG)
    for row in data["models"]:
        assert f"{row['size_bytes'] / 1e6:,.0f} MB" in table
        assert row["licence"] in table
        assert row["installed"] == (row["install_command"] is None)
    assert sum(row["default"] for row in data["models"]) == 1


def test_a_table_too_wide_for_the_console_lists_its_rows_instead() -> None:
    ids = ["ml2_choosing_rejecting", "anchor_everest"]
    figures = ["0.123 [-0.456, 0.789]", "1.5 [1.1, 1.9]"]
    table = Table(
        whole_column("experiment", ids),
        whole_column("sim d [95% CI]", figures),
        prose_column("note"),
        title="Validity",
    )
    for experiment, figure in zip(ids, figures, strict=True):
        table.add_row(experiment, figure, "a remark that wraps " * 3)
    for columns in (80, 30):
        out = io.StringIO()
        print_table(Console(file=out, width=columns), table)
        text = out.getvalue()
        assert "…" not in text and _lines_fit(text, columns)
        assert all(value in text for value in ids + figures)
    assert "- experiment:\n    ml2_choosing_rejecting" in text  # 30 columns: listed


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app,
        ["run", "duo", "--hours", "0.5", "--out", str(run_dir), "--model", "fake:cli", "--json"],
    )
    assert result.exit_code == 0, result.output
    (run_dir / "stdout.json").write_text(result.stdout, encoding="utf-8")
    return run_dir


def test_run_json_is_the_summary_alone_on_stdout(fake_run: Path) -> None:
    data = json.loads((fake_run / "stdout.json").read_text(encoding="utf-8"))
    written = json.loads((fake_run / "summary.json").read_text(encoding="utf-8"))
    assert data["run_dir"] == str(fake_run)
    assert data["usage"] == written["usage"]
    total = data["usage"]["total"]
    assert total["calls"] > 0 and total["prompt_tokens"] > 0
    assert "reuse_share" in total and "reused_prompt_tokens" in total


def test_the_summary_text_shows_the_reuse_share(fake_run: Path, width: object) -> None:
    width(80)  # type: ignore[operator]
    result = runner.invoke(app, ["resume", str(fake_run), "--hours", "0.25", "--no-interviews"])
    assert result.exit_code == 0, result.output
    assert re.search(r"prompt tokens reused by the server \(\d+%\)", result.stdout)


def test_inspect_table_and_json_agree(fake_run: Path, width: object) -> None:
    width(80)  # type: ignore[operator]
    agent = "Iris"
    text = runner.invoke(app, ["inspect", str(fake_run), agent]).stdout
    data = json.loads(runner.invoke(app, ["inspect", str(fake_run), agent, "--json"]).stdout)
    assert data["memories"] and "…" not in text
    for memory in data["memories"]:
        assert re.search(rf"^\S*\s*{memory['id']}\s", text, re.M), memory["id"]
    assert data["persona"].splitlines()[0] in text


def test_interview_json(fake_run: Path) -> None:
    question = "What did you do this morning?"
    result = runner.invoke(app, ["interview", str(fake_run), "Iris", question, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["question"] == question and data["agent"] == "Iris Vance"
    assert isinstance(data["answer"], str)


def test_models_check_keeps_names_and_times_whole_at_80_columns(
    width: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def quick_check(name: str) -> model_commands.CheckResult:
        return model_commands.CheckResult(True, 12.25, '{"answer": "yes"}')

    monkeypatch.setattr(model_commands, "_check_one", quick_check)
    width(80)  # type: ignore[operator]
    result = runner.invoke(app, ["models", "--check"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert "smollm2-135m" in result.stdout and "ok 12.2 s" in result.stdout
    data = json.loads(runner.invoke(app, ["models", "--check", "--json"]).stdout)
    checked = {row["model"]: row["check"] for row in data["models"]}
    assert checked["smollm2-135m"] == {"ok": True, "seconds": 12.25, "detail": '{"answer": "yes"}'}
