"""Runs and resumes SIGKILLed at random moments, then resumed: each ends exactly as the
uninterrupted run of the same seed (event log, model calls, memories, metadata, summary).

The short version runs here; ``benchmarks/kills.py`` runs hundreds of kills
(``SOCIETAS_KILL_TRIALS=200``) and prints how many landed in each phase.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from societas.testing.cli_process import CliProcesses
from societas.testing.random_kills import (
    Workload,
    record_reference,
    run_trial,
    summarise,
)

FAKE = "fake:random-kills"


@pytest.fixture(scope="module")
def cli() -> CliProcesses:
    return CliProcesses()


def duo(home: Path, *, model: str = FAKE, hours: str = "12") -> Workload:
    args = ("duo", "--model", model, "--hours", hours, "--seed", "5", "--no-interviews")
    return Workload("duo", args, env={"SOCIETAS_HOME": str(home)} if home.name else {})


def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_run(
    cli: CliProcesses, tmp_path: Path
) -> None:
    workload = duo(tmp_path / "home")
    reference = record_reference(cli, workload, tmp_path / "whole")
    rng = random.Random(19)
    results = [
        run_trial(cli, workload, reference, tmp_path / f"killed{trial}", rng, kills=3, trial=trial)
        for trial in range(4)
    ]
    report = summarise(results)
    assert report["failures"] == [], report
    assert report["refusals"] == report["duplicated_events"] == 0
    assert report["identical_logs"] == "4/4"
    # Runs and resumes alike were killed (the moments are random; where they land is not
    # asserted, only counted: see benchmarks/kills.py).
    commands = {kill.command for result in results for kill in result.kills}
    assert commands == {"run", "resume"}, report


def test_a_kill_before_the_store_exists_is_reported_in_plain_words(
    cli: CliProcesses, tmp_path: Path
) -> None:
    log = tmp_path / "cli.log"
    (tmp_path / "left").mkdir()
    code = cli.run(["resume", str(tmp_path / "left")], log=log)
    text = " ".join(log.read_text().split())
    assert code == 2
    assert "never started" in text and "societas run SCENARIO --out" in text
    assert "()" not in text  # no method of the code base is named to the user
