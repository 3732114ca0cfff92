"""Driving a world split over shards: each shard steps its agents, the driver keeps the record.

:class:`WorldShard` is one shard (a :class:`~societas.engine.simulation.Simulation` that owns
some of the agents); :class:`ShardedRun` steps all shards together and writes what they ship
into one run store, the same store a run in one process writes. Shards are reached through
:class:`ShardHandle`, so the same driver runs shards in this process (:func:`local_shards`,
used by tests and to check a split before a cluster run) or on Ray actors
(``societas.distributed.world_shards``).

Example (in one process, with any model)::

    handles = local_shards(scenario, llm, config, shards=2)
    run = await ShardedRun.start(scenario, "runs/split", handles, config)
    await run.run(hours=2)
    run.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from societas.concurrency import all_or_first_error
from societas.engine.budget import BudgetExhausted, BudgetGuard
from societas.engine.config import SimulationConfig
from societas.engine.gc_thresholds import fewer_collections
from societas.engine.run_directory import SCENARIO_COPY, has_checkpoint, restart_meta
from societas.engine.run_meta import run_meta
from societas.engine.runstore import RunStore
from societas.engine.sharding import (
    AgentExchange,
    LocalHub,
    Shipment,
    commit_shipment,
    merge_shipments,
    partition_agents,
)
from societas.engine.simulation import Simulation
from societas.llm.meter import Meter
from societas.llm.types import LanguageModel
from societas.scenarios.scenario import Scenario
from societas.world.state import World

T = TypeVar("T")


@dataclass
class ShardReport:
    """What a shard did since the driver last asked: its commits, the game time now, and the
    chat-model tokens and calls its agents spent (for a budget)."""

    shipments: list[Shipment]
    now: datetime
    step: int
    tokens: int = 0
    calls: int = 0


class ShardHandle(Protocol):
    """A shard as the driver reaches it (in this process or on another machine)."""

    async def start(self) -> ShardReport: ...

    async def restore(self, state: dict[str, Any], checkpoint_step: int) -> ShardReport: ...

    async def step(self) -> ShardReport: ...

    async def finish(self) -> ShardReport: ...


class WorldShard:
    """One shard: the whole world, and the agents of ``exchange.owned`` stepped here."""

    def __init__(
        self,
        scenario: Scenario,
        llm: LanguageModel,
        config: SimulationConfig,
        exchange: AgentExchange,
        meter: Meter | None = None,
    ) -> None:
        self.scenario = scenario
        self.llm = llm
        self.config = config
        self.exchange = exchange
        self.meter = meter
        self.sim: Simulation | None = None
        self._reported = (0, 0)  # the simulation's (tokens, calls) at the last report

    async def start(self) -> ShardReport:
        self._reported = (0, 0)
        self.sim = await Simulation.start(
            self.scenario, None, self.llm, self.config, meter=self.meter, exchange=self.exchange
        )
        return self._report()

    async def restore(self, state: dict[str, Any], checkpoint_step: int) -> ShardReport:
        """Take up a run from the checkpoint of ``checkpoint_step`` (its whole ``state``)."""
        self._reported = (0, 0)
        self.sim = Simulation.from_state(
            self.scenario,
            state,
            self.llm,
            None,
            meter=self.meter,
            exchange=self.exchange,
            checkpoint_step=checkpoint_step,
        )
        return self._report()

    async def step(self) -> ShardReport:
        with fewer_collections():
            await self._sim.step()
        return self._report()

    async def finish(self) -> ShardReport:
        """Checkpoint where the run stands (the end of a run, or a pause)."""
        self._sim.checkpoint()
        return self._report()

    @property
    def _sim(self) -> Simulation:
        if self.sim is None:
            raise RuntimeError("the shard has not started: call start() or restore() first")
        return self.sim

    def _report(self) -> ShardReport:
        sim = self._sim
        shipments = sim.recorder.take_shipments()
        (tokens, calls), self._reported = self._reported, (sim.tokens_spent, sim.calls_spent)
        return ShardReport(
            shipments, sim.now, sim.step_index, sim.tokens_spent - tokens, sim.calls_spent - calls
        )


def split_scenario(scenario: Scenario, shards: int) -> list[set[str]]:
    """The agents of each shard: neighbours together (see
    :func:`~societas.engine.sharding.partition_agents`)."""
    world = World.from_scenario(scenario)
    homes = {}
    for spec in scenario.agent_specs():
        x0, y0, x1, y1 = world.places.bbox(spec.home)
        homes[spec.persona.name] = ((x0 + x1) / 2, (y0 + y1) / 2)
    return partition_agents(homes, shards)


def local_shards(
    scenario: Scenario,
    llm: LanguageModel,
    config: SimulationConfig,
    shards: int,
    *,
    meter: Meter | None = None,
) -> list[WorldShard]:
    """``shards`` shards of ``scenario`` in this process, sharing ``llm``."""
    hub = LocalHub(shards)
    return [
        WorldShard(scenario, llm, config, hub.member(index, owned), meter)
        for index, owned in enumerate(split_scenario(scenario, shards))
    ]


class ShardedRun:
    """A run whose agents are stepped by several shards; the run store is written here."""

    def __init__(
        self, scenario: Scenario, shards: Sequence[ShardHandle], store: RunStore | None
    ) -> None:
        if not shards:
            raise ValueError("a sharded run needs at least one shard")
        self.scenario = scenario
        self.shards = list(shards)
        self.store = store
        self.now = datetime.min  # set by the shards as soon as they start
        self.step_index = 0
        # The store write of the last step, still going while the shards run the next one.
        self._writing: asyncio.Future[None] | None = None
        self._budget: BudgetGuard | None = None  # counts what the shards report, during run()
        # Tokens and calls the shards reported that no budget has counted yet (those of start).
        self._uncounted = (0, 0)

    @classmethod
    async def start(
        cls,
        scenario: Scenario,
        out_dir: str | Path | None,
        shards: Sequence[ShardHandle],
        config: SimulationConfig,
        *,
        meta: dict[str, Any] | None = None,
    ) -> ShardedRun:
        """Start every shard on a new run of ``scenario`` recorded in ``out_dir``."""
        store = None
        if out_dir is not None:
            world = World.from_scenario(scenario)
            extra = {**(meta or {}), "shards": len(shards)}
            store = RunStore.create(
                out_dir,
                run_meta(scenario, world, config, extra),
                companions={SCENARIO_COPY: scenario.source_text},
            )
        run = cls(scenario, shards, store)
        await run._together(lambda shard: shard.start())
        return run

    @classmethod
    async def resume(
        cls, run_dir: str | Path, scenario: Scenario, shards: Sequence[ShardHandle]
    ) -> ShardedRun:
        """Reopen a run at its last checkpoint (written by any number of shards, or by one
        process) and hand every shard the state there; a run stopped before its first
        checkpoint starts again from the beginning."""
        if not has_checkpoint(Path(run_dir)):
            config, meta = restart_meta(Path(run_dir))
            return await cls.start(scenario, run_dir, shards, config, meta=meta)
        store, checkpoint = RunStore.reopen_at_checkpoint(run_dir)
        run = cls(scenario, shards, store)
        await run._together(lambda shard: shard.restore(checkpoint.state, checkpoint.step))
        return run

    async def step(self) -> None:
        """One step on every shard; returns once the step is in the store."""
        await self._together(lambda shard: shard.step())

    async def run(
        self,
        *,
        hours: float | None = None,
        until: datetime | None = None,
        on_step: Callable[[ShardedRun], None] | None = None,
        budget: BudgetGuard | None = None,
    ) -> None:
        """Step until ``until`` (or ``hours`` of game time from now); checkpoints at the end.

        Each step is written while the shards run the next one (a step is in the store by the
        time the step after it ends), so the driver's writing costs the shards no time. If a
        shard fails, the steps before are written before the error is raised. A ``budget``
        counts what the shards report and is checked before every step; when it is used up
        the run checkpoints and raises :class:`~societas.engine.budget.BudgetExhausted`.
        """
        if until is None:
            if hours is None:
                raise ValueError("give hours or until")
            until = self.now + timedelta(hours=hours)
        self._budget = budget
        self._count_spending()
        try:
            with fewer_collections():
                while self.now < until:
                    if budget is not None and (reason := budget.exceeded()) is not None:
                        await self._together(lambda shard: shard.finish())
                        raise BudgetExhausted(reason, budget.spent())
                    await self._together(lambda shard: shard.step(), write_behind=True)
                    if on_step is not None:
                        on_step(self)
                await self._together(lambda shard: shard.finish())
        finally:
            self._budget = None
            await self._written(quiet=True)

    def close(self, status: str = "stopped") -> None:
        if self._writing is not None and not self._writing.done():
            raise RuntimeError("a step is still being written: await run() or step() first")
        if self.store is not None:
            store, self.store = self.store, None
            try:
                store.set_meta("status", status)
            finally:
                store.close()

    async def _together(
        self, work: Callable[[ShardHandle], Awaitable[ShardReport]], *, write_behind: bool = False
    ) -> None:
        """``work`` on every shard at once; their shipments merged and written (in a thread,
        finished by the next call, when ``write_behind``)."""
        reports = await all_or_first_error([work(shard) for shard in self.shards])
        if len({(report.now, report.step) for report in reports}) != 1:
            raise RuntimeError("the shards' clocks disagree; the run stops here")
        self.now, self.step_index = reports[0].now, reports[0].step
        tokens, calls = self._uncounted
        self._uncounted = (
            tokens + sum(r.tokens for r in reports),
            calls + sum(r.calls for r in reports),
        )
        self._count_spending()
        merged = merge_shipments([report.shipments for report in reports])
        await self._written()  # steps go in one after the other
        if self.store is None or not merged:
            return
        store = self.store

        def write() -> None:
            for shipment in merged:
                commit_shipment(store, shipment)

        if write_behind:
            self._writing = asyncio.ensure_future(asyncio.to_thread(write))
        else:
            write()

    def _count_spending(self) -> None:
        if self._budget is not None:
            self._budget.add(*self._uncounted)
            self._uncounted = (0, 0)

    async def _written(self, *, quiet: bool = False) -> None:
        """Wait for the step being written; its error is raised unless ``quiet`` (when another
        error is on its way out, the write's own is secondary)."""
        writing = self._writing
        if writing is None:
            return
        try:
            # Shielded: a write under way finishes even if the run is cancelled meanwhile.
            await asyncio.shield(writing)
        except Exception:
            if not quiet:
                raise
        finally:
            if writing.done():
                self._writing = None
