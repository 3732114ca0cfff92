"""Independent model work spread over Ray actors, each holding one opened model.

:func:`map_on_ray` applies an async function ``fn(llm, item)`` to every item. A pool of
:class:`ModelWorker` actors each opens the model once from a picklable :class:`ModelSource`
(a model specification string and the response-cache path; every worker shares that cache), then
takes items as they come, a few at a time, so a slow item never holds the others up. Results come
back in the order of ``items`` whatever order they finish in, and the workers' call records are
returned too, so the meter's totals equal a local run's.

Example (``fake:`` is the instant testing model)::

    async def ask(llm: LanguageModel, question: str) -> str:
        return await llm.chat_text([Message(role="user", content=question)], purpose="ask")

    with ray_session():
        outcome = await map_on_ray(SpecModel("fake:demo"), ask, ["Hello?", "Why?"])
    outcome.results  # two answers, in the order asked
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from societas.concurrency import all_or_first_error
from societas.distributed.session import (
    PLACEMENT_TIMEOUT_S,
    placed,
    ray_module,
    ray_result,
    ray_session,
)
from societas.llm.meter import CallRecord, Meter
from societas.llm.registry import open_llm
from societas.llm.types import LanguageModel

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
Work = Callable[[LanguageModel, ItemT], Awaitable[ResultT]]
ITEMS_PER_WORKER = 4  # items a worker holds at once: enough to keep its model's slots busy


class ModelSource(Protocol):
    """Something picklable that opens a model where it is unpickled (on a Ray worker)."""

    def open(self) -> AbstractAsyncContextManager[LanguageModel]: ...


@dataclass(frozen=True)
class SpecModel:
    """A model opened from its specification string, as ``societas --model`` takes it.

    ``cache_path`` is the response cache every worker shares (None: each worker's default user
    cache, which on one machine is one file). On a cluster of several machines give a path on a
    shared file system, or every machine keeps its own cache. ``endpoints`` is a file of
    OpenAI-compatible servers for the model (``--endpoints``), read on each worker.
    """

    spec: str
    base_url: str | None = None
    cache_path: str | None = None
    use_cache: bool = True
    endpoints: str | None = None

    def open(self) -> AbstractAsyncContextManager[LanguageModel]:
        cache = Path(self.cache_path) if self.cache_path is not None else None
        return open_llm(
            self.spec,
            base_url=self.base_url,
            cache_path=cache,
            use_cache=self.use_cache,
            endpoints=self.endpoints,
        )


@dataclass(frozen=True)
class WorkerResources:
    """What Ray reserves for each worker (a GPU share for a model on a GPU, for example)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass
class MapOutcome(Generic[ResultT]):
    """The results, in the order of the items, and every model call the workers made."""

    results: list[ResultT]
    records: list[CallRecord] = field(default_factory=list)

    def meter(self) -> Meter:
        """A meter holding the workers' calls (for ``usage.json``)."""
        meter = Meter()
        for record in self.records:
            meter.record(record)
        return meter


class ModelWorker:
    """A Ray actor body: opens the model on first use and runs work items against it."""

    def __init__(self, source: ModelSource) -> None:
        self._source = source
        self._opened: AbstractAsyncContextManager[LanguageModel] | None = None
        self._llm: LanguageModel | None = None
        self._lock: asyncio.Lock | None = None
        self._records: list[CallRecord] = []

    async def run(self, fn: Work[Any, Any], item: Any) -> Any:
        return await fn(await self._model(), item)

    async def drain_records(self) -> list[CallRecord]:
        """The calls made since the last drain (the pool drains between batches)."""
        records, self._records = self._records, []
        return records

    async def close(self) -> None:
        opened, self._opened, self._llm = self._opened, None, None
        if opened is not None:
            await opened.__aexit__(None, None, None)

    async def _model(self) -> LanguageModel:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:  # concurrent first items must not open two models
            if self._llm is None:
                opened = self._source.open()
                llm = await opened.__aenter__()
                meter = getattr(llm, "meter", None)
                if isinstance(meter, Meter):
                    meter.subscribe(lambda record: self._records.append(record))
                self._opened, self._llm = opened, llm
            return self._llm


class ModelPool:
    """Ray workers that open the model from ``source`` once and run many batches of items.

    Workers start when a batch first needs them (at most ``workers``, default the cluster's
    CPUs) and stay until :meth:`aclose`, so the model loads once per worker, not per batch.
    Workers Ray cannot place within ``placement_timeout_s`` raise
    :class:`~societas.distributed.session.RayCapacityError`. Ray must be initialised.
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        workers: int | None = None,
        resources: WorkerResources | None = None,
        placement_timeout_s: float = PLACEMENT_TIMEOUT_S,
    ) -> None:
        self.ray = ray_module()
        self.placement_timeout_s = placement_timeout_s
        self.source = source
        self.size = workers or _cluster_cpus(self.ray)
        chosen = resources or WorkerResources()
        self._actor = self.ray.remote(ModelWorker).options(
            num_cpus=chosen.num_cpus, num_gpus=chosen.num_gpus
        )
        self._workers: list[Any] = []

    async def __aenter__(self) -> ModelPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def map(
        self,
        fn: Work[ItemT, ResultT],
        items: Sequence[ItemT],
        on_result: Callable[[int, ResultT], None] | None = None,
    ) -> MapOutcome[ResultT]:
        """``fn(llm, item)`` for every item; ``on_result(index, result)`` as each finishes.

        The first failure cancels the rest and is raised as it was raised on the worker (an
        :class:`~societas.llm.types.LLMError` stays one).
        """
        if not items:
            return MapOutcome([])
        missing = min(self.size, len(items)) - len(self._workers)
        if missing > 0:
            fresh = [self._actor.remote(self.source) for _ in range(missing)]
            await placed(fresh, "model workers", self.placement_timeout_s)
            self._workers += fresh
        busy = self._workers[: min(self.size, len(items))]
        results: list[Any] = [None] * len(items)
        waiting = deque(range(len(items)))

        async def feed(worker: Any) -> None:
            while waiting:
                index = waiting.popleft()
                results[index] = await ray_result(worker.run.remote(fn, items[index]))
                if on_result is not None:
                    on_result(index, results[index])

        await all_or_first_error([feed(w) for w in busy for _ in range(ITEMS_PER_WORKER)])
        records = [r for w in busy for r in await ray_result(w.drain_records.remote())]
        return MapOutcome(results, records)

    async def aclose(self) -> None:
        """Close every worker's model and stop the workers."""
        workers, self._workers = self._workers, []
        try:
            await asyncio.gather(*(ray_result(w.close.remote()) for w in workers))
        finally:
            for worker in workers:
                self.ray.kill(worker)


async def map_on_ray(
    source: ModelSource,
    fn: Work[ItemT, ResultT],
    items: Sequence[ItemT],
    *,
    workers: int | None = None,
    resources: WorkerResources | None = None,
    on_result: Callable[[int, ResultT], None] | None = None,
) -> MapOutcome[ResultT]:
    """One :meth:`ModelPool.map` on a pool of its own (Ray must be initialised)."""
    async with ModelPool(source, workers=workers, resources=resources) as pool:
        return await pool.map(fn, items, on_result)


async def run_on_ray(
    items: Sequence[ItemT],
    fn: Work[ItemT, ResultT],
    address: str | None,
    *,
    model: ModelSource,
    workers: int | None = None,
) -> list[ResultT]:
    """:func:`map_on_ray` inside a Ray session at ``address`` (None: a local Ray instance)."""
    with ray_session(address):
        return (await map_on_ray(model, fn, items, workers=workers)).results


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
