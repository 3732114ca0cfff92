"""End to end on the real tiny model: a short duo run, then ``societas evaluate`` on it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.evaluation.believability.questions import CATEGORIES

pytestmark = pytest.mark.model


def test_evaluate_a_short_duo_run_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    run_dir, out = tmp_path / "duo", tmp_path / "eval"
    ran = runner.invoke(
        app,
        [
            "run",
            "duo",
            "--model",
            "smollm2-135m",
            "--hours",
            "0.2",
            "--no-interviews",
            "--out",
            str(run_dir),
        ],
    )
    assert ran.exit_code == 0, ran.output
    # The judge is named: by default a smollm2 run would be judged by the larger installed model.
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            str(run_dir),
            "--per-category",
            "1",
            "--judge-model",
            "smollm2-135m",
            "--no-controls",
            "--out",
            str(out),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "Believability" in evaluated.output
    items = pd.read_csv(out / "items.csv")
    assert len(items) == 2 * len(CATEGORIES)  # two agents, one question per category
    assert set(items["category"]) == set(CATEGORIES)
    assert set(items["method"]) <= {"rule", "judge"}
    scored = items["score"].dropna()
    assert len(scored) >= len(items) - 2 and scored.between(0, 1).all()
    document = json.loads((out / "believability.json").read_text())
    assert document["model"] == "smollm2-135m"
    overall = document["summary"]["overall"]["estimate"]
    assert 0.0 <= overall <= 1.0
    assert (out / "report.html").stat().st_size > 1000
    # The judge was calibrated on the shipped examples and, grading its own answers, says so.
    calibration = document["judge"]["calibration"]
    assert calibration["examples"] >= 20 and calibration["absurd"] > 0
    assert document["judge"]["self_judged"]
    assert any("its own answers" in c for c in document["judge"]["caveats"])
    assert "calibration: Spearman" in evaluated.output
    assert not (out / "controls.csv").exists() and document["controls"]["items"] == {}
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a run directory" in missing.output
