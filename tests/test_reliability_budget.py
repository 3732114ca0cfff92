"""Budgets: a run that uses up its tokens, calls or wall time stops at a step boundary with a
checkpoint and status "budget", says so, and resumes (with a larger budget) to the same end as a
run that was never stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from societas.engine.budget import Budget, BudgetExhausted, BudgetGuard, Spent
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.meter import CallRecord, Meter
from societas.llm.registry import open_llm
from societas.scenarios.scenario import load_scenario
from societas.testing.cli_process import CliProcesses
from support.run_logs import final_state, world_events

RUN_ARGS = ["duo", "--model", "fake:budget", "--hours", "8", "--seed", "2", "--no-interviews"]
BUDGET_EXIT_CODE = 3


def test_a_token_budget_stops_the_run_resumably(cli: CliProcesses, tmp_path: Path) -> None:
    whole, limited, log = tmp_path / "whole", tmp_path / "limited", tmp_path / "cli.log"
    env = {"SOCIETAS_HOME": str(tmp_path / "home-whole")}
    assert cli.run(["run", *RUN_ARGS, "--out", str(whole)], env=env, log=log) == 0
    with RunStore.open(whole, readonly=True) as store:
        total = store.get_meta("spent")["tokens"]
    assert total > 0

    env = {"SOCIETAS_HOME": str(tmp_path / "home")}  # a cold cache: cached answers cost nothing
    args = ["run", *RUN_ARGS, "--out", str(limited), "--max-tokens", str(total // 3)]
    assert cli.run(args, env=env, log=log) == BUDGET_EXIT_CODE
    said = " ".join(log.read_text().split())  # the console wraps long lines
    assert "stopped at a checkpoint: token budget used up" in said
    assert f"societas resume {limited} --max-tokens N" in said
    with RunStore.open(limited, readonly=True) as store:
        meta = store.meta()
        checkpoint = store.latest_checkpoint()
    assert meta["status"] == "budget"
    assert total // 3 <= meta["spent"]["tokens"] < total
    assert checkpoint is not None and checkpoint.step == meta["last_step"]

    # The same budget again: nothing more is spent, the run stays where it was.
    assert cli.run(["resume", str(limited)], env=env, log=log) == BUDGET_EXIT_CODE
    with RunStore.open(limited, readonly=True) as store:
        assert store.get_meta("last_step") == meta["last_step"]
        assert store.get_meta("spent")["tokens"] == meta["spent"]["tokens"]

    bigger = ["resume", str(limited), "--max-tokens", str(total * 10)]
    assert cli.run(bigger, env=env, log=log) == 0, log.read_text()
    with RunStore.open(limited, readonly=True) as store:
        assert store.get_meta("status") == "finished"
        assert store.get_meta("budget")["max_tokens"] == total * 10
    assert world_events(limited) == world_events(whole)
    assert final_state(limited) == final_state(whole)


@pytest.fixture
def clock() -> Iterator[list[float]]:
    yield [0.0]


async def test_call_and_wall_budgets_stop_the_engine_at_a_step_boundary(
    tmp_path: Path, clock: list[float]
) -> None:
    async with open_llm("fake:budget", use_cache=False) as llm:
        sim = await Simulation.start(load_scenario("duo"), tmp_path / "run", llm, meter=llm.meter)
        guard = BudgetGuard(Budget(max_calls=4), llm.meter)
        with pytest.raises(BudgetExhausted, match="model-call budget used up") as caught:
            await sim.run(hours=8, budget=guard)
        assert caught.value.spent.calls >= 4
        stopped_at = sim.step_index
        assert sim.store is not None
        checkpoint = sim.store.latest_checkpoint()
        assert checkpoint is not None and checkpoint.state == sim.get_state()

        # Wall time: each step "takes" one minute on this clock; the limit allows three.
        def tick() -> float:
            clock[0] += 60.0
            return clock[0]

        guard = BudgetGuard(Budget(max_wall_s=200), llm.meter, clock=tick)
        steps_before = sim.step_index
        with pytest.raises(BudgetExhausted, match="time budget used up"):
            await sim.run(hours=8, budget=guard)
        assert steps_before < sim.step_index and sim.step_index > stopped_at
        guard.close()
        sim.close("budget")


def test_the_guard_adds_earlier_spending_and_ignores_embeddings_and_cache_hits() -> None:
    meter = Meter()
    guard = BudgetGuard(Budget(max_tokens=1000), meter, spent_before=Spent(tokens=5, calls=1))
    meter.record(CallRecord(purpose="embed", model_id="e", kind="embed", backend_calls=1))
    meter.record(CallRecord(purpose="plan", model_id="m", kind="chat", cached=True))
    meter.record(
        CallRecord(
            purpose="plan",
            model_id="m",
            kind="chat",
            prompt_tokens=10,
            completion_tokens=4,
            backend_calls=2,
            repaired=True,
        )
    )
    assert (guard.spent().tokens, guard.spent().calls) == (19, 3)
    guard.close()
    meter.record(CallRecord(purpose="plan", model_id="m", kind="chat", prompt_tokens=99))
    assert guard.spent().tokens == 19
    assert Spent.from_meta(guard.spent().to_meta()).tokens == 19


def test_budget_limits_must_be_positive_and_cli_options_override_saved_ones() -> None:
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        Budget(max_tokens=0)
    saved = Budget.from_meta(Budget(max_tokens=10, max_wall_s=5.0).to_meta())
    assert saved.overridden(Budget(max_tokens=50)) == Budget(max_tokens=50, max_wall_s=5.0)
    assert not Budget().limited and saved.limited
