"""Kill a run at many points (after commits, inside commits, inside checkpoint writes) and resume
it: every saved run stays readable and the resumed run ends exactly like an uninterrupted one.
Experiments resume the same way without measuring finished units again.

The runs use the ``fake:`` testing model and forked command-line processes, so each of the
dozens of processes takes a fraction of a second.
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.failpoints import KILL_VARIABLE
from societas.llm.fake import ScriptedLLM
from societas.scenarios.scenario import load_scenario
from societas.testing.cli_process import CliProcesses
from support.run_logs import assert_store_intact

MODEL = "fake:reliability"
RUN_ARGS = ["duo", "--model", MODEL, "--hours", "12", "--seed", "3", "--no-interviews"]
KILL_KINDS = ("commit", "in-commit", "in-checkpoint")
KILLS = 24
EXAMPLES = Path(__file__).parents[1] / "src" / "societas" / "experiments" / "examples"

Row = tuple[Any, ...]


def home(directory: Path) -> dict[str, str]:
    return {"SOCIETAS_HOME": str(directory)}


def kill_plan(rng: random.Random, last_step: int, count: int) -> list[str]:
    """``count`` kill points spread over steps 1..last_step, in the order the run reaches them."""
    steps = sorted(rng.randint(1, last_step) for _ in range(count))
    return [f"{rng.choice(KILL_KINDS)}:{step}" for step in steps]


def assert_intact(run_dir: Path) -> int:
    """The store passes SQLite's integrity check and its last checkpoint loads; its step."""
    assert_store_intact(run_dir)
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.get_meta("status") == "running"
        checkpoint = store.latest_checkpoint()
    assert checkpoint is not None
    Simulation.from_state(load_scenario("duo"), checkpoint.state, ScriptedLLM(dict), None)
    return checkpoint.step


def recorded(run_dir: Path) -> tuple[list[Row], list[Row], dict[str, Any], dict[str, Any]]:
    """Events (model calls apart, without their timings), final state and meta of a run."""
    with RunStore.open(run_dir, readonly=True) as store:
        events, calls = [], []
        for stored in store.iter_events():
            e = stored.event
            if e.kind == "llm_call":
                calls.append((e.step, e.agent, e.data["purpose"], e.data["error"]))
            else:
                events.append((e.step, e.time, e.kind, e.agent, json.dumps(e.data, sort_keys=True)))
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        return events, sorted(calls, key=repr), checkpoint.state, store.meta()


def test_a_run_killed_at_24_points_resumes_to_the_uninterrupted_run(
    cli: CliProcesses, tmp_path: Path
) -> None:
    whole, killed, log = tmp_path / "whole", tmp_path / "killed", tmp_path / "cli.log"
    code = cli.run(["run", *RUN_ARGS, "--out", str(whole)], env=home(tmp_path / "h1"), log=log)
    assert code == 0, log.read_text()
    with RunStore.open(whole, readonly=True) as store:
        last_step = store.last_step()
    assert last_step is not None and last_step > 40

    command = ["run", *RUN_ARGS, "--out", str(killed)]
    resumed_from = []
    for point in kill_plan(random.Random(20), last_step, KILLS):
        env = {**home(tmp_path / "h2"), KILL_VARIABLE: point}
        code = cli.run(command, env=env, log=log)
        assert code == -signal.SIGKILL, f"{point}: exit {code}\n{log.read_text()}"
        resumed_from.append(assert_intact(killed))
        command = ["resume", str(killed), "--no-interviews"]
    assert cli.run(command, env=home(tmp_path / "h2"), log=log) == 0, log.read_text()

    # The kills really were spread over the run: resumes started from many checkpoints, the
    # last within two checkpoint intervals (6 steps each) of the end.
    assert len(set(resumed_from)) >= 6 and max(resumed_from) >= last_step - 2 * 6
    events, calls, state, meta = recorded(killed)
    whole_events, whole_calls, whole_state, whole_meta = recorded(whole)
    assert events == whole_events
    assert Counter(calls) == Counter(whole_calls)
    assert state == whole_state
    assert meta["status"] == whole_meta["status"] == "finished"
    assert {"plan", "action", "memory", "conversation"} <= {e[2] for e in events}
    assert (killed / "summary.json").is_file()


def responses(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]


def survey_requests(out: Path) -> int:
    """Model requests that asked agents the outcome questions (what a measurement costs)."""
    usage = json.loads((out / "usage.json").read_text())
    return sum(
        totals["requests"]
        for purpose, totals in usage["purposes"].items()
        if purpose.startswith(("answer", "survey", "measure"))
    )


def test_a_killed_experiment_resumes_without_measuring_finished_units_again(
    cli: CliProcesses, tmp_path: Path
) -> None:
    spec = str(EXAMPLES / "vignette_framing.yaml")
    whole, killed, log = tmp_path / "whole", tmp_path / "killed", tmp_path / "cli.log"
    args = ["experiment", spec, "--model", MODEL, "--n", "10"]
    assert cli.run([*args, "--out", str(whole)], env=home(tmp_path / "h1"), log=log) == 0

    env = {**home(tmp_path / "h2"), KILL_VARIABLE: "unit:4"}
    assert cli.run([*args, "--out", str(killed)], env=env, log=log) == -signal.SIGKILL
    finished = responses(killed)
    assert len(finished) == 4 and not (killed / "analysis.csv").exists()
    assert cli.run([*args, "--out", str(killed)], env=home(tmp_path / "h2"), log=log) == 0

    units = [entry["unit"] for entry in responses(killed)]
    assert len(units) == len(set(units)) == 10
    assert responses(killed)[:4] == finished  # kept as they were, not measured again
    per_unit = survey_requests(whole) / 10
    assert per_unit > 0
    assert survey_requests(killed) == per_unit * 6  # only the 6 units left were asked
    for table in ("responses.csv", "analysis.csv"):
        assert (killed / table).read_text() == (whole / table).read_text()
