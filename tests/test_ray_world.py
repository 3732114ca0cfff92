"""A world's agents sharded over Ray actors record the run one process records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.cli.run_commands import BUDGET_EXIT_CODE
from societas.distributed.model_workers import SpecModel
from societas.distributed.session import ray_session
from societas.distributed.world_shards import ray_world_shards
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.sharded_run import ShardedRun
from societas.engine.simulation import Simulation
from societas.llm.registry import open_llm
from support.run_logs import world_events
from support.scripted import grid_scenario as town

MODEL = "fake:world"
HOURS = 2.0
# What a call cost where it ran (its server, its cache), not what the run did.
PER_PROCESS = {"latency_s", "cached", "backend_calls", "reused_prompt_tokens"}


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    with ray_session(num_cpus=4) as ray:
        yield ray


def log_of(run_dir: Path) -> list[tuple[Any, ...]]:
    """The event log, without what differs by process: call latencies, and whether a call was
    answered from a cache in memory (a text one agent had embedded is cached for all agents of
    that process only)."""
    with RunStore.open(run_dir, readonly=True) as store:
        rows = []
        for stored in store.iter_events():
            event = stored.event
            data = {k: v for k, v in event.data.items() if k not in PER_PROCESS}
            rows.append((event.step, event.kind, event.agent, json.dumps(data, sort_keys=True)))
        meta = store.meta()
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        return [*rows, ("state", json.dumps(checkpoint.state, sort_keys=True)), meta.get("shards")]


async def test_ray_shards_record_what_one_process_records(ray_local: Any, tmp_path: Path) -> None:
    config = SimulationConfig(seed=3)
    async with open_llm(MODEL, use_cache=False) as llm:
        sim = await Simulation.start(town(), tmp_path / "one", llm, config, meter=llm.meter)
        await sim.run(hours=HOURS)
        sim.close("finished")
    source = SpecModel(MODEL, use_cache=False)
    async with ray_world_shards(town(), source, config, shards=2) as handles:
        run = await ShardedRun.start(town(), tmp_path / "ray", handles, config)
        await run.run(hours=HOURS)
        run.close("finished")
    one, ray = log_of(tmp_path / "one"), log_of(tmp_path / "ray")
    assert one[-1] is None and ray[-1] == 2  # the run says how it was split
    assert one[:-1] == ray[:-1]
    kinds = {row[1] for row in one[:-2]}
    assert {"move", "action", "memory", "llm_call"} <= kinds


def test_run_with_world_shards_from_the_cli(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    common = ["run", "duo", "--model", MODEL, "--hours", "1", "--no-interviews"]
    local = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    args = [*common, "--ray", "--world-shards", "2", "--out", str(tmp_path / "sharded")]
    sharded = CliRunner().invoke(app, args)
    assert sharded.exit_code == 0, sharded.output
    assert "Run summary" in sharded.output
    assert world_events(tmp_path / "sharded") == world_events(tmp_path / "local")
    assert (tmp_path / "sharded" / "summary.json").exists()
    # Either run goes on the other way: the sharded one in one process, the other on shards.
    more = ["--hours", "0.5", "--no-interviews"]
    in_one = CliRunner().invoke(app, ["resume", str(tmp_path / "sharded"), *more])
    assert in_one.exit_code == 0, in_one.output
    on_shards = CliRunner().invoke(
        app, ["resume", str(tmp_path / "local"), *more, "--ray", "--world-shards", "2"]
    )
    assert on_shards.exit_code == 0, on_shards.output
    assert world_events(tmp_path / "sharded") == world_events(tmp_path / "local")
    with RunStore.open(tmp_path / "local", readonly=True) as store:
        assert store.get_meta("status") == "finished"


def test_a_run_on_world_shards_stops_at_its_budget_and_resumes_on_them(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    # A model no run has asked before: the Ray workers started before this test set
    # SOCIETAS_HOME, so their response cache may be one that other runs filled, and an answer
    # from a cache costs no model call.
    model = f"fake:budget-{uuid.uuid4().hex[:12]}"
    common = ["run", "duo", "--model", model, "--hours", "1", "--no-interviews"]
    run_dir = str(tmp_path / "budget")
    shards = ["--ray", "--world-shards", "2"]
    stopped = CliRunner().invoke(app, [*common, *shards, "--max-calls", "5", "--out", run_dir])
    assert stopped.exit_code == BUDGET_EXIT_CODE, stopped.output
    assert "model-call budget used up" in " ".join(stopped.output.split())
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.get_meta("status") == "budget"
        assert store.get_meta("spent")["calls"] >= 5
        assert store.get_meta("budget")["max_calls"] == 5
    more = CliRunner().invoke(app, ["resume", run_dir, *shards, "--max-calls", "100000"])
    assert more.exit_code == 0, more.output
    local = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    # Stopped and resumed, the run ends where the uninterrupted one did, event for event.
    assert world_events(tmp_path / "budget") == world_events(tmp_path / "local")
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.get_meta("status") == "finished"
        assert store.get_meta("budget")["max_calls"] == 100000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--world-shards", "2"], "--world-shards needs --ray"),
        (["--ray", "--world-shards", "2", "--model-servers", "2"], "not both"),
    ],
)
def test_world_shard_options_that_cannot_work_are_refused(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["run", "duo", "--model", MODEL, *extra, "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
