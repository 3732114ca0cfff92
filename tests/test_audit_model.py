"""End to end on the embedded model: a short run ends with the coherence audit, saved beside
the summary, and ``societas audit`` reads the same report back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.measurement.audit import AuditReport

pytestmark = pytest.mark.model


def test_a_run_ends_with_its_audit(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    runner = CliRunner()
    args = ["run", "duo", "--model", "smollm2-135m", "--hours", "1", "--no-interviews"]
    ran = runner.invoke(app, [*args, "--out", str(run_dir)], terminal_width=120)
    assert ran.exit_code == 0, ran.output
    assert "Coherence audit" in ran.output
    saved = AuditReport.model_validate(json.loads((run_dir / "audit.json").read_text()))
    # The plans of both agents were audited minute by minute.
    assert saved.check("long_blocks").denominator > 0
    assert saved.check("ungrammatical_memories").denominator > 0
    again = runner.invoke(app, ["audit", str(run_dir), "--json"])
    assert again.exit_code == 0, again.output
    assert AuditReport.model_validate_json(again.output) == saved
