"""``societas run --ray --model-servers K``: a large town's model calls served by K Ray actors.

The world and the agents stay in this process (the engine steps them as always); what costs is
the model, so only backend calls travel. Each :class:`ModelServer` actor holds its own chat and
embedding backends (an embedded llama.cpp model, or a client of a nearby vLLM server). A call
goes to the server of the agent it is made for, by a stable hash of the agent's name, so each
server keeps seeing the same agents' prompts and its prompt-prefix cache stays warm; a call made
for no agent goes by a hash of its text. (Splitting the agents themselves over actors is world
sharding, :mod:`societas.distributed.world_shards`.)

:func:`open_served_llm` puts the servers behind the usual :class:`~societas.llm.client.LLM`, so
the response cache, the meter, retries and schema validation stay in this process. The cache key
does not depend on the server, so a run gives the same answers as a local run with the same seed
and cache.

Example::

    async with open_served_llm("qwen2.5-coder-1.5b", servers=4, address="auto") as llm:
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
from societas.distributed.model_workers import WorkerResources
from societas.distributed.session import placed, ray_module, ray_result, ray_session
from societas.engine.agent_turns import acting_agent
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
    """Picklable recipe of a server's backends: a model specification, as ``--model`` takes it."""

    spec: str
    base_url: str | None = None
    endpoints: str | None = None

    def __call__(self) -> Backends:
        return open_backends(self.spec, base_url=self.base_url, endpoints=self.endpoints)


@dataclass(frozen=True)
class ServerInfo:
    """What the driver needs to know of a server's backends (equal on every server)."""

    model_id: str
    supports_json_schema: bool
    parallel: int
    embed_model_id: str
    dim: int


def server_of(key: str, servers: int) -> int:
    """The server of ``key`` (an agent name): stable across runs, processes and machines.

    >>> server_of("Iris Vance", 4) == server_of("Iris Vance", 4)
    True
    >>> {server_of(f"agent {i}", 3) for i in range(30)} == {0, 1, 2}
    True
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % servers


class ModelServer:
    """A Ray actor body holding one chat and one embedding backend."""

    def __init__(self, backends: BackendFactory) -> None:
        self._chat, self._embedder = backends()

    async def info(self) -> ServerInfo:
        return ServerInfo(
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


class ModelServers:
    """The running model servers, and which one a call goes to."""

    def __init__(
        self, actors: list[Any], info: ServerInfo, *, stop: Callable[[Any], None] | None = None
    ) -> None:
        self.actors = actors
        self.info = info
        self.calls = [0] * len(actors)
        # How an actor is stopped once its backends are closed (``ray.kill`` by default).
        self._stop = stop

    @classmethod
    async def start(
        cls, backends: BackendFactory, servers: int, resources: WorkerResources | None = None
    ) -> ModelServers:
        """``servers`` actors (Ray must be initialised); their backends must agree on the model."""
        if servers < 1:
            raise ValueError(f"servers must be at least 1, got {servers}")
        ray = ray_module()
        chosen = resources or WorkerResources()
        actor = ray.remote(ModelServer).options(num_cpus=chosen.num_cpus, num_gpus=chosen.num_gpus)
        actors = [actor.remote(backends) for _ in range(servers)]
        await placed(actors, "model servers")
        infos = [await ray_result(a.info.remote()) for a in actors]
        models = {(i.model_id, i.embed_model_id) for i in infos}
        if len(models) != 1:
            await cls(actors, infos[0]).aclose()
            raise ValueError(f"the model servers run different models: {sorted(models)}")
        return cls(actors, infos[0])

    def pick(self, text: str) -> Any:
        """The actor for the acting agent, else for ``text`` (a call made for no agent)."""
        index = server_of(acting_agent() or text, len(self.actors))
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


class ServedChatBackend:
    """A :class:`~societas.llm.types.ChatBackend` whose calls run on the model servers."""

    def __init__(self, servers: ModelServers) -> None:
        self.servers = servers
        self.model_id = servers.info.model_id
        self.supports_json_schema = servers.info.supports_json_schema

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        server = self.servers.pick(messages[-1].content if messages else "")
        reference = server.chat.remote(list(messages), params, json_schema)
        result: Completion = await ray_result(reference)
        return result

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        reference = self.servers.pick(prompt).complete.remote(prompt, params)
        result: Completion = await ray_result(reference)
        return result

    async def aclose(self) -> None:
        await self.servers.aclose()


class ServedEmbedder:
    """An :class:`~societas.llm.types.EmbeddingBackend` whose calls run on the model servers."""

    def __init__(self, servers: ModelServers) -> None:
        self.servers = servers
        self.model_id = servers.info.embed_model_id
        self.dim = servers.info.dim

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        server = self.servers.pick(texts[0] if texts else "")
        result: FloatMatrix = await ray_result(server.embed.remote(list(texts), is_query))
        return result

    async def aclose(self) -> None:
        await self.servers.aclose()  # the chat backend's close stops the same servers


@asynccontextmanager
async def open_served_llm(
    spec: str,
    *,
    servers: int,
    address: str | None = None,
    base_url: str | None = None,
    cache_path: Path | None = None,
    meter: Meter | None = None,
    resources: WorkerResources | None = None,
    backends: BackendFactory | None = None,
    endpoints: str | None = None,
) -> AsyncIterator[LLM]:
    """An :class:`LLM` for ``spec`` whose backend calls run on ``servers`` Ray actors.

    Joins Ray at ``address`` (None: a local Ray instance) unless Ray is already initialised.
    The response cache (default: the user cache) stays in this process. ``endpoints`` is a
    file of endpoints for every model server to use (``--endpoints``); ``backends`` replaces
    the servers' recipe (``BackendSpec(spec, base_url, endpoints)``), for tests and custom backends.
    """
    recipe = backends or BackendSpec(spec, base_url, endpoints)
    with ray_session(address):
        model_servers = await ModelServers.start(recipe, servers, resources)
        try:
            cache = ResponseCache(cache_path or paths.default_llm_cache_path())
        except BaseException:
            await model_servers.aclose()
            raise
        llm = LLM(
            ServedChatBackend(model_servers),
            ServedEmbedder(model_servers),
            cache=cache,
            meter=meter,
            max_concurrency=servers * model_servers.info.parallel,
        )
        try:
            yield llm
        finally:
            try:
                await llm.aclose()
            finally:
                cache.close()
