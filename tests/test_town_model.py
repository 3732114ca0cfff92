"""End to end on the real tiny model: a 2-agent town run, killed with SIGKILL, resumed, and rerun
from the response cache to exactly the same log and state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from societas.engine.runstore import RunStore
from societas.failpoints import KILL_VARIABLE
from support.run_logs import final_state, world_events

pytestmark = pytest.mark.model

HOURS = "4"  # long enough that the kill after the first hourly checkpoint lands mid-run


def societas(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "societas.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def test_killed_run_resumes_to_the_same_log_as_an_uninterrupted_one(tmp_path: Path) -> None:
    env = {**os.environ, "SOCIETAS_HOME": str(tmp_path / "home")}
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    common = ["duo", "--model", "smollm2-135m", "--hours", HOURS, "--no-interviews"]

    # The process kills itself right after committing step 9 (past the first checkpoint after
    # the start): once the day is planned, later steps can take milliseconds each, so a kill
    # from outside on a timer could land after the run ended.
    process = societas("run", *common, "--out", str(killed), env={**env, KILL_VARIABLE: "commit:9"})
    assert process.wait(timeout=540) == -signal.SIGKILL
    with RunStore.open(killed, readonly=True) as store:
        assert any(step > 0 for step in store.checkpoint_steps())
    with RunStore.open(killed, readonly=True) as store:
        assert store.get_meta("status") == "running"  # it really died mid-run

    output = finish(societas("resume", str(killed), "--no-interviews", env=env))
    assert "Run summary" in output
    # The same work again, uninterrupted: every answer now comes from the cache.
    output = finish(societas("run", *common, "--out", str(whole), env=env))
    assert "Model: " in output

    whole_events = world_events(whole)
    assert world_events(killed) == whole_events
    assert final_state(killed) == final_state(whole)
    kinds = {kind for _, kind, _, _ in whole_events}
    assert {"move", "action", "plan", "memory"} <= kinds
    with RunStore.open(whole, readonly=True) as store:
        calls = [s.event.data for s in store.iter_events(kinds=["llm_call"])]
    assert calls and all(call["cached"] for call in calls)
    summary = json.loads((whole / "summary.json").read_text())
    usage = summary["usage"]
    assert usage["total"]["calls"] + usage["embeddings"]["calls"] == len(calls)
    assert summary["agents"] == 2
