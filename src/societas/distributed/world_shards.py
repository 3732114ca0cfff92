"""A large world's agents on a Ray cluster: ``societas run --ray --world-shards K``.

Each of K Ray actors holds the whole world and steps the agents of one strip of the map with
its own copy of the model (see :mod:`societas.engine.sharding`); at the end of each phase of a
step the actors share their agents' results through a small hub actor, so all of them take the
same decisions about the world. The driver (this process) writes the run store from what the
actors ship, so the run is the same run a single process records with the same seed and
response cache, and it resumes the same way, on any number of shards.

Example (Ray initialised, e.g. in :func:`~societas.distributed.session.ray_session`)::

    source = SpecModel("qwen2.5-7b", cache_path="/shared/llm-cache.sqlite")
    async with ray_world_shards(scenario, source, config, shards=8) as handles:
        run = await ShardedRun.start(scenario, "runs/city", handles, config)
        await run.run(hours=24)
        run.close("finished")
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from societas.distributed.model_workers import ModelSource, WorkerResources
from societas.distributed.session import placed, ray_module, ray_result
from societas.engine.config import SimulationConfig
from societas.engine.sharded_run import ShardReport, WorldShard, split_scenario
from societas.engine.sharding import HubMember, LocalHub
from societas.llm.meter import Meter
from societas.llm.types import LanguageModel
from societas.scenarios.scenario import Scenario

# Every shard waits in the hub once per phase, so the hub must hold all of them at once.
HUB_CONCURRENCY = 10_000


class ExchangeHub:
    """A Ray actor body: the meeting point where the shards swap their agents' results."""

    def __init__(self, shards: int) -> None:
        self._hub = LocalHub(shards)

    async def gather(self, round_no: int, index: int, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._hub.gather(round_no, index, payload)

    async def usage(self) -> dict[str, float]:
        return process_usage()


def ray_member(hub: Any, index: int, owned: frozenset[str]) -> HubMember:
    """A shard's :class:`~societas.engine.sharding.AgentExchange` through the hub actor."""

    async def send(round_no: int, shard: int, payload: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = await ray_result(hub.gather.remote(round_no, shard, payload))
        return merged

    return HubMember(send, index, owned)


class ShardActor:
    """A Ray actor body: one :class:`~societas.engine.sharded_run.WorldShard` and its model."""

    def __init__(
        self,
        scenario: Scenario,
        source: ModelSource,
        config: SimulationConfig,
        hub: Any,
        index: int,
        owned: frozenset[str],
    ) -> None:
        self._scenario = scenario
        self._source = source
        self._config = config
        self._exchange = ray_member(hub, index, owned)
        self._opened: AbstractAsyncContextManager[LanguageModel] | None = None
        self._shard: WorldShard | None = None

    async def start(self) -> ShardReport:
        return await (await self._ready()).start()

    async def restore(self, state: dict[str, Any], checkpoint_step: int) -> ShardReport:
        return await (await self._ready()).restore(state, checkpoint_step)

    async def step(self) -> ShardReport:
        return await (await self._ready()).step()

    async def finish(self) -> ShardReport:
        return await (await self._ready()).finish()

    async def usage(self) -> dict[str, float]:
        return process_usage()

    async def close(self) -> None:
        opened, self._opened, self._shard = self._opened, None, None
        if opened is not None:
            await opened.__aexit__(None, None, None)

    async def _ready(self) -> WorldShard:
        if self._shard is None:
            opened = self._source.open()
            llm = await opened.__aenter__()
            self._opened = opened
            meter = getattr(llm, "meter", None)
            self._shard = WorldShard(
                self._scenario,
                llm,
                self._config,
                self._exchange,
                meter if isinstance(meter, Meter) else None,
            )
        return self._shard


class RayShard:
    """The driver's :class:`~societas.engine.sharded_run.ShardHandle` for a :class:`ShardActor`
    (``hub`` is the exchange actor all shards share)."""

    def __init__(self, actor: Any, hub: Any) -> None:
        self.actor = actor
        self.hub = hub

    async def usage(self) -> dict[str, float]:
        """CPU seconds and peak memory of the shard's process (to see where time goes)."""
        used: dict[str, float] = await ray_result(self.actor.usage.remote())
        return used

    async def hub_usage(self) -> dict[str, float]:
        """:meth:`usage` of the exchange actor's process."""
        used: dict[str, float] = await ray_result(self.hub.usage.remote())
        return used

    async def start(self) -> ShardReport:
        report: ShardReport = await ray_result(self.actor.start.remote())
        return report

    async def restore(self, state: dict[str, Any], checkpoint_step: int) -> ShardReport:
        report: ShardReport = await ray_result(self.actor.restore.remote(state, checkpoint_step))
        return report

    async def step(self) -> ShardReport:
        report: ShardReport = await ray_result(self.actor.step.remote())
        return report

    async def finish(self) -> ShardReport:
        report: ShardReport = await ray_result(self.actor.finish.remote())
        return report


def process_usage() -> dict[str, float]:
    """This process's CPU seconds so far and its peak resident memory (MB)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": round(used.ru_utime + used.ru_stime, 2),
        "peak_rss_mb": round(used.ru_maxrss / 1024, 1),  # Linux reports KB
    }


@asynccontextmanager
async def ray_world_shards(
    scenario: Scenario,
    source: ModelSource,
    config: SimulationConfig,
    shards: int,
    resources: WorkerResources | None = None,
) -> AsyncIterator[list[RayShard]]:
    """``shards`` shard actors for ``scenario`` (Ray must be initialised), stopped at the end."""
    ray = ray_module()
    groups = split_scenario(scenario, shards)
    chosen = resources or WorkerResources()
    hub = ray.remote(ExchangeHub).options(num_cpus=0, max_concurrency=HUB_CONCURRENCY)
    hub_actor = hub.remote(shards)
    body = ray.remote(ShardActor).options(num_cpus=chosen.num_cpus, num_gpus=chosen.num_gpus)
    # The scenario goes to the object store once, not once per actor.
    scenario_ref = ray.put(scenario)
    actors = [
        body.remote(scenario_ref, source, config, hub_actor, index, frozenset(owned))
        for index, owned in enumerate(groups)
    ]
    try:
        await placed([hub_actor, *actors], "world shards")
        yield [RayShard(actor, hub_actor) for actor in actors]
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):  # a shard that died has nothing to close
                await ray_result(actor.close.remote())
            ray.kill(actor)
        ray.kill(hub_actor)
