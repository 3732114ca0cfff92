"""End to end on the tiny model: two suite experiments (4 agents each) via ``societas validate``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from societas import paths
from societas.cli.app import app

pytestmark = pytest.mark.model


def test_validate_two_experiments_on_the_tiny_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "default_llm_cache_path", lambda: tmp_path / "llm-cache.sqlite")
    out = tmp_path / "validity"
    args = ["validate", "--model", "smollm2-135m", "--only", "asian_disease,quote_attribution",
            "--n", "4", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("scorecard.json", "scorecard.csv", "scorecard.html", "calibration.json"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "scorecard.csv")
    assert sorted(table["id"]) == ["asian_disease", "quote_attribution"]
    assert set(table["n"]) == {4} and set(table["condition"]) == {"full"}
    data = json.loads((out / "scorecard.json").read_text())
    assert data["summaries"][0]["items"] == 2 and data["meta"]["model"] == "smollm2-135m"
    answers = pd.read_csv(out / "full" / "asian_disease" / "responses.csv")
    assert set(answers["answer"]) <= {"Program A", "Program B"}
    assert "Validity: full persona" in result.output


def test_validate_draws_answers_from_token_probabilities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "default_llm_cache_path", lambda: tmp_path / "llm-cache.sqlite")
    out = tmp_path / "validity"
    args = ["validate", "--model", "smollm2-135m", "--only", "asian_disease", "--n", "4",
            "--answer-mode", "token", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    answers = pd.read_csv(out / "full" / "asian_disease" / "responses.csv")
    assert set(answers["mode"]) == {"token"} and answers["stimulus_shown"].all()
    for text in answers["probabilities"]:
        shares = json.loads(text)
        assert set(shares) == {"Program A", "Program B"}
        assert sum(shares.values()) == pytest.approx(1.0)
    summary = json.loads((out / "scorecard.json").read_text())["summaries"][0]
    assert summary["sign_agreement_n"] == 1 and summary["order_answers"] == 4
