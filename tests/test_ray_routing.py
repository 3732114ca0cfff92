"""Model servers: each agent's calls reach its own server, and the run does not change.

The servers here are in-process stand-ins for Ray actor handles (``method.remote(...)`` runs the
real :class:`ModelServer` method), so routing is checked without starting Ray; the real actors
are exercised in ``test_ray_distributed.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from societas.distributed.model_servers import (
    ModelServer,
    ModelServers,
    ServedChatBackend,
    ServedEmbedder,
    server_of,
)
from societas.engine.agent_turns import acting_agent
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM
from societas.llm.fake import fake_backends
from societas.scenarios.scenario import load_scenario

SCENARIO = "duo"


class Remote:
    """``handle.method.remote(*args)`` as Ray spells it, run in this process."""

    def __init__(self, method: Callable[..., Awaitable[Any]]) -> None:
        self.remote = method


class LocalServer:
    """A stand-in actor handle that notes which agent each call was made for."""

    def __init__(self) -> None:
        self.body = ModelServer(lambda: fake_backends("routing"))
        self.agents: set[str | None] = set()
        self.chat = Remote(self._noted(self.body.chat))
        self.complete = Remote(self._noted(self.body.complete))
        self.embed = Remote(self._noted(self.body.embed))
        self.aclose = Remote(self.body.aclose)

    def _noted(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any) -> Any:
            self.agents.add(acting_agent())
            return await method(*args)

        return call


async def run_town(llm: LLM, out: Path) -> list[Any]:
    sim = await Simulation.start(
        load_scenario(SCENARIO), out, llm, SimulationConfig(seed=1), meter=llm.meter
    )
    await sim.run(hours=1.0)
    sim.close()
    with RunStore.open(out, readonly=True) as store:
        events = [stored.event for stored in store.events(limit=None)]
    # Latency and the prompt tokens a server reused measure where a call ran, not what the
    # run did: a server's prefix cache holds only its own agents' prompts.
    unplaced = {"latency_s", "reused_prompt_tokens"}
    return [(e.step, e.kind, e.agent, {k: v for k, v in e.data.items() if k not in unplaced})
            for e in events]  # fmt: skip


async def test_each_agent_is_pinned_to_its_server_and_the_log_is_unchanged(tmp_path: Path) -> None:
    chat, embedder = fake_backends("routing")
    local = LLM(chat, embedder, cache=ResponseCache(tmp_path / "local.sqlite"))
    expected = await run_town(local, tmp_path / "local")

    handles = [LocalServer() for _ in range(3)]
    stopped: list[Any] = []
    servers = ModelServers(handles, await handles[0].body.info(), stop=stopped.append)
    served = LLM(
        ServedChatBackend(servers), ServedEmbedder(servers), cache=ResponseCache(":memory:")
    )
    assert served.model_id == local.model_id  # so cache keys do not depend on the servers
    assert await run_town(served, tmp_path / "served") == expected

    agents = load_scenario(SCENARIO).agent_names()
    for index, handle in enumerate(handles):
        named = handle.agents - {None}
        assert named == {a for a in agents if server_of(a, 3) == index}
    assert sum(servers.calls) > 10
    await served.aclose()  # closes the chat and the embedding side: one stop per server
    assert servers.actors == [] and stopped == handles
    assert all(h.body._chat.closed for h in handles)
