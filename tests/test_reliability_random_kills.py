"""Runs and resumes SIGKILLed at random moments, then resumed: each ends exactly as the
uninterrupted run of the same seed (event log, model calls, memories, metadata, summary).

The short version runs here; ``benchmarks/kills.py`` runs hundreds of kills
(``SOCIETAS_KILL_TRIALS=200``) and prints how many landed in each phase.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from societas.engine.runstore import RunStore
from societas.failpoints import KILL_VARIABLE
from societas.testing.cli_process import CliProcesses
from societas.testing.experiment_kills import (
    record_experiment,
    run_experiment_trial,
    summarise_experiments,
)
from societas.testing.random_kills import (
    Workload,
    compare_runs,
    record_reference,
    run_trial,
    summarise,
)

FAKE = "fake:random-kills"
EXAMPLES = Path(__file__).parents[1] / "src" / "societas" / "experiments" / "examples"


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


def _hold_for_writing(run_dir: str, ready: Any, release: Any) -> None:
    with RunStore.open(run_dir):
        ready.set()
        release.wait(60)


def test_a_writer_that_outlived_its_kill_keeps_a_resume_from_writing_beside_it(
    cli: CliProcesses, tmp_path: Path
) -> None:
    """Killing a wrapper (``uv run``, a shell) leaves the real writer running; a resume then
    wrote the same steps beside it (history twice) or met its later steps. Now it is told."""
    run_dir, log = tmp_path / "run", tmp_path / "cli.log"
    assert cli.run(["run", *duo(tmp_path / "home").run_args, "--out", str(run_dir)], log=log) == 0
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    writer = context.Process(target=_hold_for_writing, args=(str(run_dir), ready, release))
    writer.start()
    try:
        assert ready.wait(60)
        with RunStore.open(run_dir, readonly=True) as store:
            events = store.count_events()
        code = cli.run(["resume", str(run_dir), "--no-interviews"], log=log)
        text = " ".join(log.read_text().split())
        assert code == 2
        assert f"process {writer.pid} is still writing" in text and f"kill {writer.pid}" in text
        with RunStore.open(run_dir, readonly=True) as store:
            assert store.count_events() == events  # the resume wrote nothing
    finally:
        release.set()
        writer.join(60)
    assert cli.run(["resume", str(run_dir), "--no-interviews"], log=log) == 0


@pytest.mark.parametrize("spec", ["vignette_framing.yaml", "mask_policy_town.yaml"])
def test_experiments_killed_at_random_moments_end_with_the_uninterrupted_answers(
    cli: CliProcesses, tmp_path: Path, spec: str
) -> None:
    """Between-subjects units and a world design (its town forked into two branches) alike."""
    args = [str(EXAMPLES / spec), "--model", FAKE, "--n", "6"]
    env = {"SOCIETAS_HOME": str(tmp_path / "home")}
    reference = record_experiment(cli, args, tmp_path / "whole", env)
    rng = random.Random(len(spec))
    results = [
        run_experiment_trial(
            cli, args, reference, tmp_path / f"killed{t}", rng, kills=3, trial=t, env=env
        )
        for t in range(2)
    ]
    report = summarise_experiments(results)
    assert report["failures"] == [] and report["duplicated_units"] == 0, report
    assert report["identical_results"] == "2/2"


@pytest.mark.model
def test_smollm2_runs_killed_at_random_moments_resume_to_the_uninterrupted_run(
    cli: CliProcesses, tmp_path: Path
) -> None:
    """On the real tiny model: the first uninterrupted run fills the response cache, the
    killed run replays the same answers (benchmarks/kills.py also kills its news interviews)."""
    args = ("duo", "--model", "smollm2-135m", "--hours", "0.5", "--seed", "0", "--no-interviews")
    workload = Workload("duo-smollm2", args, env={"SOCIETAS_HOME": str(tmp_path)})
    record_reference(cli, workload, tmp_path / "first")
    reference = record_reference(cli, workload, tmp_path / "whole")
    result = run_trial(cli, workload, reference, tmp_path / "killed", random.Random(7), kills=2)
    assert result.identical, summarise([result])
    assert result.duplicated_events == 0 and result.kills


def test_a_run_killed_before_its_first_checkpoint_starts_again_on_resume(
    cli: CliProcesses, tmp_path: Path
) -> None:
    """Killed once its store exists but before its agents are set up: the resume starts it
    from the beginning (model, end and budget come from the store) and ends as a whole run."""
    workload = duo(tmp_path / "home", hours="6")
    log = tmp_path / "cli.log"
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli.run(["run", *workload.run_args, "--out", str(whole)], env=workload.env, log=log) == 0
    env = {**workload.env, KILL_VARIABLE: "created:0"}
    code = cli.run(["run", *workload.run_args, "--out", str(killed)], env=env, log=log)
    assert code == -signal.SIGKILL
    assert (killed / "scenario.yaml").is_file()  # written before the store appears
    with RunStore.open(killed, readonly=True) as store:
        assert store.checkpoint_steps() == [] and store.count_events() == 0
    command = ["resume", str(killed), "--no-interviews"]
    assert cli.run(command, env=workload.env, log=log) == 0, log.read_text()
    duplicated, differences = compare_runs(whole, killed)
    assert duplicated == 0 and differences == []
