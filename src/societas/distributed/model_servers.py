"""``societas run --ray --shards K``: a large town's model calls spread over K Ray actors.

The world and the agents stay in this process (the engine steps them as always); what costs is
the model, so only backend calls travel. Each :class:`BackendShard` actor holds its own chat and
embedding backends (an embedded llama.cpp model, or a client of a nearby vLLM server). A call
goes to the shard of the agent it is made for, by a stable hash of the agent's name, so each
shard keeps seeing the same agents' prompts and its prompt-prefix cache stays warm; a call made
for no agent goes by a hash of its text.

:func:`open_sharded_llm` puts the shards behind the usual :class:`~societas.llm.client.LLM`, so
the response cache, the meter, retries and schema validation stay in this process. The cache key
does not depend on the shard, so a run gives the same answers as a local run with the same seed
and cache.

Example::

    async with open_sharded_llm("qwen2.5-coder-1.5b", shards=4, address="auto") as llm:
        sim = await Simulation.start(scenario, "runs/big", llm, meter=llm.meter)
        await sim.run(hours=2)
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from societas import paths
from societas.distributed.pool import WorkerResources
from societas.distributed.session import placed, ray_module, ray_result, ray_session
from societas.engine.simulation import acting_agent
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM
from societas.llm.meter import Meter
from societas.llm.registry import DEFAULT_PARALLEL, open_backends
from societas.llm.types import (
    ChatBackend,
    Completion,
    EmbeddingBackend,
    FloatMatrix,
    Message,
    SamplingParams,
)

Backends = tuple[ChatBackend, EmbeddingBackend]
BackendFactory = Callable[[], Backends]


@dataclass(frozen=True)
class BackendSpec:
    """Picklable recipe of a shard's backends: a model specification, as ``--model`` takes it."""

    spec: str
    base_url: str | None = None
    endpoints: str | None = None

    def __call__(self) -> Backends:
        return open_backends(self.spec, base_url=self.base_url, endpoints=self.endpoints)


@dataclass(frozen=True)
class ShardInfo:
    """What the driver needs to know of a shard's backends (equal on every shard)."""

    model_id: str
    supports_json_schema: bool
    parallel: int
    embed_model_id: str
    dim: int


def shard_of(key: str, shards: int) -> int:
    """The shard of ``key`` (an agent name): stable across runs, processes and machines.

    >>> shard_of("Iris Vance", 4) == shard_of("Iris Vance", 4)
    True
    >>> {shard_of(f"agent {i}", 3) for i in range(30)} == {0, 1, 2}
    True
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


class BackendShard:
    """A Ray actor body holding one chat and one embedding backend."""

    def __init__(self, backends: BackendFactory) -> None:
        self._chat, self._embedder = backends()

    async def info(self) -> ShardInfo:
        return ShardInfo(
            model_id=self._chat.model_id,
            supports_json_schema=self._chat.supports_json_schema,
            parallel=int(getattr(self._chat, "parallel", DEFAULT_PARALLEL)),
            embed_model_id=self._embedder.model_id,
            dim=self._embedder.dim,
        )

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        return await self._chat.chat(messages, params, json_schema)

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        return await self._chat.complete(prompt, params)

    async def embed(self, texts: Sequence[str], is_query: bool) -> FloatMatrix:
        return await self._embedder.embed(texts, is_query=is_query)

    async def aclose(self) -> None:
        try:
            await self._chat.aclose()
        finally:
            await self._embedder.aclose()


class ShardSet:
    """The running shards, and which one a call goes to."""

    def __init__(
        self, actors: list[Any], info: ShardInfo, *, stop: Callable[[Any], None] | None = None
    ) -> None:
        self.actors = actors
        self.info = info
        self.calls = [0] * len(actors)
        # How an actor is stopped once its backends are closed (``ray.kill`` by default).
        self._stop = stop

    @classmethod
    async def start(
        cls, backends: BackendFactory, shards: int, resources: WorkerResources | None = None
    ) -> ShardSet:
        """``shards`` actors (Ray must be initialised); their backends must agree on the model."""
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        ray = ray_module()
        chosen = resources or WorkerResources()
        actor = ray.remote(BackendShard).options(num_cpus=chosen.num_cpus, num_gpus=chosen.num_gpus)
        actors = [actor.remote(backends) for _ in range(shards)]
        await placed(actors, "model shards")
        infos = [await ray_result(a.info.remote()) for a in actors]
        models = {(i.model_id, i.embed_model_id) for i in infos}
        if len(models) != 1:
            await cls(actors, infos[0]).aclose()
            raise ValueError(f"the shards run different models: {sorted(models)}")
        return cls(actors, infos[0])

    def pick(self, text: str) -> Any:
        """The actor for the acting agent, else for ``text`` (a call made for no agent)."""
        index = shard_of(acting_agent() or text, len(self.actors))
        self.calls[index] += 1
        return self.actors[index]

    async def aclose(self) -> None:
        actors, self.actors = self.actors, []
        try:
            for actor in actors:
                await ray_result(actor.aclose.remote())
        finally:
            stop = self._stop or ray_module().kill
            for actor in actors:
                stop(actor)


class ShardedChatBackend:
    """A :class:`~societas.llm.types.ChatBackend` whose calls run on the shards."""

    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards
        self.model_id = shards.info.model_id
        self.supports_json_schema = shards.info.supports_json_schema

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        shard = self.shards.pick(messages[-1].content if messages else "")
        reference = shard.chat.remote(list(messages), params, json_schema)
        result: Completion = await ray_result(reference)
        return result

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        reference = self.shards.pick(prompt).complete.remote(prompt, params)
        result: Completion = await ray_result(reference)
        return result

    async def aclose(self) -> None:
        await self.shards.aclose()


class ShardedEmbedder:
    """An :class:`~societas.llm.types.EmbeddingBackend` whose calls run on the shards."""

    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards
        self.model_id = shards.info.embed_model_id
        self.dim = shards.info.dim

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        shard = self.shards.pick(texts[0] if texts else "")
        result: FloatMatrix = await ray_result(shard.embed.remote(list(texts), is_query))
        return result

    async def aclose(self) -> None:
        await self.shards.aclose()  # the chat backend's close stops the same shards


@asynccontextmanager
async def open_sharded_llm(
    spec: str,
    *,
    shards: int,
    address: str | None = None,
    base_url: str | None = None,
    cache_path: Path | None = None,
    meter: Meter | None = None,
    resources: WorkerResources | None = None,
    backends: BackendFactory | None = None,
    endpoints: str | None = None,
) -> AsyncIterator[LLM]:
    """An :class:`LLM` for ``spec`` whose backend calls run on ``shards`` Ray actors.

    Joins Ray at ``address`` (None: a local Ray instance) unless Ray is already initialised.
    The response cache (default: the user cache) stays in this process. ``endpoints`` is a
    file of servers for every shard to use (``--endpoints``); ``backends`` replaces the shards'
    recipe (``BackendSpec(spec, base_url, endpoints)``), for tests and custom servers.
    """
    recipe = backends or BackendSpec(spec, base_url, endpoints)
    with ray_session(address):
        shard_set = await ShardSet.start(recipe, shards, resources)
        try:
            cache = ResponseCache(cache_path or paths.default_llm_cache_path())
        except BaseException:
            await shard_set.aclose()
            raise
        llm = LLM(
            ShardedChatBackend(shard_set),
            ShardedEmbedder(shard_set),
            cache=cache,
            meter=meter,
            max_concurrency=shards * shard_set.info.parallel,
        )
        try:
            yield llm
        finally:
            try:
                await llm.aclose()
            finally:
                cache.close()
