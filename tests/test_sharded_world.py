"""A world split over shards records what one process records, resumes, and fails cleanly."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from societas.engine.budget import Budget, BudgetExhausted, BudgetGuard
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.sharded_run import ShardedRun, local_shards, split_scenario
from societas.engine.sharding import LocalHub, merge_shipments, partition_agents
from societas.engine.simulation import Simulation
from societas.llm.client import LLM
from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM
from societas.llm.registry import open_llm
from societas.llm.types import LLMUnavailableError
from support.run_logs import event_log, final_state
from support.scripted import GRID_HINTS, scripted_llm
from support.scripted import grid_scenario as town

HOURS = 4.0
FAKE = "fake:world"  # a deterministic stand-in model behind the real client (with a meter)


def model() -> ScriptedLLM:
    return scripted_llm(hints=GRID_HINTS)


async def one_process(run_dir: Path, llm: ScriptedLLM, hours: float = HOURS) -> None:
    sim = await Simulation.start(town(), run_dir, llm, SimulationConfig(seed=5))
    await sim.run(hours=hours)
    sim.close("finished")


async def sharded(run_dir: Path, llm: ScriptedLLM, shards: int, hours: float = HOURS) -> None:
    config = SimulationConfig(seed=5)
    handles = local_shards(town(), llm, config, shards)
    run = await ShardedRun.start(town(), run_dir, handles, config)
    await run.run(hours=hours)
    run.close("finished")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    run_dir = tmp_path_factory.mktemp("one") / "run"
    llm = model()
    asyncio.run(one_process(run_dir, llm))
    return run_dir, llm.counts


@pytest.mark.parametrize("shards", [2, 3])
async def test_shards_record_the_events_and_state_of_one_process(
    tmp_path: Path, reference: tuple[Path, Counter[str]], shards: int
) -> None:
    run_dir, counts = reference
    llm = model()
    await sharded(tmp_path / "split", llm, shards)
    log = event_log(tmp_path / "split")
    assert log == event_log(run_dir)
    assert final_state(tmp_path / "split") == final_state(run_dir)
    assert llm.counts == counts  # no model call is made twice, or skipped
    # The comparison means something: people of different shards talked to each other.
    owner = {name: i for i, group in enumerate(split_scenario(town(), shards)) for name in group}
    talks = [
        json.loads(data)["participants"] for _, _, kind, _, data in log if kind == "conversation"
    ]
    assert any(len({owner[name] for name in names}) > 1 for names in talks), "no talk across shards"


async def test_a_sharded_run_resumes_on_another_split(
    tmp_path: Path, reference: tuple[Path, Counter[str]]
) -> None:
    run_dir, _ = reference
    config = SimulationConfig(seed=5)
    split = tmp_path / "split"
    first = await ShardedRun.start(town(), split, local_shards(town(), model(), config, 2), config)
    until = first.now + timedelta(hours=HOURS)
    for _ in range(config.checkpoint_every + 3):  # then the driver dies: no final checkpoint
        await first.step()
    assert first.store is not None
    first.store.close()
    again = await ShardedRun.resume(split, town(), local_shards(town(), model(), config, 3))
    assert 0 < again.step_index < first.step_index  # back to the last checkpoint
    await again.run(until=until)
    again.close("finished")
    assert event_log(tmp_path / "split") == event_log(run_dir)
    assert final_state(tmp_path / "split") == final_state(run_dir)


async def test_a_shard_that_fails_stops_the_run_without_hanging(tmp_path: Path) -> None:
    config = SimulationConfig(seed=5)
    filler = SchemaFiller(random.Random(0), GRID_HINTS)
    victim = sorted(split_scenario(town(), 2)[1])[0]

    def answer(call: ScriptedCall) -> Any:
        if call.purpose == "react" and f"You are {victim}" in call.prompt_text:
            raise LLMUnavailableError("the model server went away")
        return filler.responder(call)

    handles = local_shards(town(), ScriptedLLM(answer), config, 2)
    run = await ShardedRun.start(town(), tmp_path / "split", handles, config)
    with pytest.raises(LLMUnavailableError, match="went away"):
        await asyncio.wait_for(run.run(hours=HOURS), timeout=60)
    run.close("failed")
    # What was committed is intact and resumable.
    with RunStore.open(tmp_path / "split", readonly=True) as store:
        assert store.latest_checkpoint() is not None


async def test_a_failed_store_write_stops_the_run_after_the_steps_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps are written while the shards run the next one; a write that fails is still
    raised, and every step before it is in the store."""
    config = SimulationConfig(seed=5)
    run = await ShardedRun.start(
        town(), tmp_path / "split", local_shards(town(), model(), config, 2), config
    )
    assert run.store is not None
    commit_rows = run.store.commit_rows
    written: list[int] = []
    failed: list[int] = []

    def failing_commit(step: int, *args: Any, **kwargs: Any) -> None:
        if len(written) == 3:
            failed.append(step)
            raise OSError("disk full")
        commit_rows(step, *args, **kwargs)
        written.append(step)

    monkeypatch.setattr(run.store, "commit_rows", failing_commit)
    stepped: list[int] = []
    with pytest.raises(OSError, match="disk full"):
        await run.run(hours=HOURS, on_step=lambda r: stepped.append(r.step_index))
    run.close("failed")
    # The run stopped in the step after the one whose write failed (step_index names the next
    # step to run, so the last one reported is the failed step's successor).
    assert failed and stepped[-2:] == [failed[0], failed[0] + 1]
    with RunStore.open(tmp_path / "split", readonly=True) as store:
        assert store.get_meta("last_step") == written[-1]


def model_calls(run_dir: Path) -> Counter[tuple[str | None, str]]:
    """The run's chat-model calls by agent and purpose (embeddings, latencies and cache flags
    aside: each shard has its own embedding cache)."""
    with RunStore.open(run_dir, readonly=True) as store:
        return Counter(
            (e.event.agent, e.event.data["purpose"])
            for e in store.iter_events(kinds=["llm_call"])
            if e.event.data["purpose"] != "embed"
        )


def chat_use(run_dir: Path) -> tuple[int, int]:
    """Tokens and backend calls of the run's chat-model calls, as a budget counts them."""
    with RunStore.open(run_dir, readonly=True) as store:
        calls = [
            e.event.data
            for e in store.iter_events(kinds=["llm_call"])
            if e.event.data["purpose"] != "embed"
        ]
    tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    return tokens, sum(c["backend_calls"] for c in calls)


def world_events(run_dir: Path) -> list[tuple[Any, ...]]:
    return [row for row in event_log(run_dir) if row[2] != "llm_call"]


async def test_shards_sharing_one_model_record_and_count_each_call_once(tmp_path: Path) -> None:
    config = SimulationConfig(seed=5)
    async with open_llm(FAKE, use_cache=False) as llm:
        await one_process_metered(tmp_path / "one", llm, config)
    async with open_llm(FAKE, use_cache=False) as llm:
        handles = local_shards(town(), llm, config, 2, meter=llm.meter)
        run = await ShardedRun.start(town(), tmp_path / "split", handles, config)
        guard = BudgetGuard(Budget(), None)
        await run.run(hours=HOURS, budget=guard)
        run.close("finished")
    calls = model_calls(tmp_path / "split")
    assert calls == model_calls(tmp_path / "one") and sum(calls.values()) > 50
    spent = guard.spent()
    assert (spent.tokens, spent.calls) == chat_use(tmp_path / "split") > (0, 0)
    assert world_events(tmp_path / "split") == world_events(tmp_path / "one")


async def test_a_sharded_run_stops_at_its_budget_and_resumes_to_the_same_end(
    tmp_path: Path,
) -> None:
    config = SimulationConfig(seed=5)
    async with open_llm(FAKE, use_cache=False) as llm:
        await one_process_metered(tmp_path / "one", llm, config)
    limit = sum(model_calls(tmp_path / "one").values()) // 2
    async with open_llm(FAKE, use_cache=False) as llm:
        handles = local_shards(town(), llm, config, 2, meter=llm.meter)
        run = await ShardedRun.start(town(), tmp_path / "split", handles, config)
        end = run.now + timedelta(hours=HOURS)
        guard = BudgetGuard(Budget(max_calls=limit), None)
        with pytest.raises(BudgetExhausted, match="model-call budget used up"):
            await run.run(until=end, budget=guard)
        run.close("budget")
    assert guard.spent().calls >= limit
    with RunStore.open(tmp_path / "split", readonly=True) as store:
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None and checkpoint.time < end
    async with open_llm(FAKE, use_cache=False) as llm:
        handles = local_shards(town(), llm, config, 3, meter=llm.meter)
        again = await ShardedRun.resume(tmp_path / "split", town(), handles)
        await again.run(until=end)
        again.close("finished")
    assert world_events(tmp_path / "split") == world_events(tmp_path / "one")


async def one_process_metered(run_dir: Path, llm: LLM, config: SimulationConfig) -> None:
    sim = await Simulation.start(town(), run_dir, llm, config, meter=llm.meter)
    await sim.run(hours=HOURS)
    sim.close("finished")


def test_agents_are_split_evenly_by_where_they_live() -> None:
    homes = {f"agent {i}": (float(i % 7), float(i // 7)) for i in range(20)}
    groups = partition_agents(homes, 3)
    assert sorted(len(g) for g in groups) == [6, 7, 7]
    assert set().union(*groups) == set(homes) and sum(len(g) for g in groups) == 20
    assert groups == partition_agents(dict(reversed(homes.items())), 3)
    # Strips: everyone in the first group lives west of everyone in the last.
    assert max(homes[n][0] for n in groups[0]) <= min(homes[n][0] for n in groups[2])
    with pytest.raises(ValueError, match="at most one shard per agent"):
        partition_agents(homes, 21)
    with pytest.raises(ValueError, match="at least 1"):
        partition_agents(homes, 0)


async def test_a_hub_round_waits_for_every_shard() -> None:
    hub = LocalHub(3)
    members = [hub.member(i, {f"a{i}"}) for i in range(3)]
    first = asyncio.ensure_future(members[0].gather({"a0": 0}))
    await asyncio.sleep(0)
    assert not first.done()
    rest = await asyncio.gather(members[1].gather({"a1": 1}), members[2].gather({"a2": 2}))
    assert await first == rest[0] == rest[1] == {"a0": 0, "a1": 1, "a2": 2}
    with pytest.raises(ValueError, match="not one of"):
        hub.member(3, set())


def test_shards_that_disagree_are_refused() -> None:
    with pytest.raises(RuntimeError, match="how many commits"):
        merge_shipments([[], [None]])  # type: ignore[list-item]
