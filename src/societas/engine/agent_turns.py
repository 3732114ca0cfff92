"""Agents' turns in a phase of a step: each agent's work at once, its outcome shared by shards.

All model calls of one phase of a step run concurrently, each made in its agent's name
(:func:`acting_agent`, so backends can route an agent's calls to one place and the run store
can attribute them); their results are applied in a fixed order, so a run is reproducible
from its seed and the response cache. A shard (see :mod:`societas.engine.sharding`) runs the
turns of its own agents and then shares with the other shards what the phase says (a
:data:`Share`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from societas.agents.agent import Agent
from societas.engine.sharding import AgentExchange
from societas.llm.affinity import affinity_scope

T = TypeVar("T")

# What the shards of a world share after a phase: (the results of the agents' work, the agents'
# days, which the work may have changed).
Share = tuple[bool, bool]
EVERYTHING: Share = (True, True)
RESULTS: Share = (True, False)
DAYS: Share = (False, True)
MINDS_ONLY: Share = (False, False)  # the work changed only each agent's own memories

# Which agent a model call is made for, so the run store can attribute each call.
_acting_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "societas_acting_agent", default=None
)


def acting_agent() -> str | None:
    """The agent the current model call is made for (None outside an agent's turn).

    Backends may use it to route an agent's calls to one place (see ``societas.distributed``).
    """
    return _acting_agent.get()


class AgentTurns:
    """Runs a phase's work for the agents a simulation steps (all, or a shard's own)."""

    def __init__(self, agents: dict[str, Agent], exchange: AgentExchange | None) -> None:
        self.agents = agents
        self.exchange = exchange
        self.owned = exchange.owned if exchange is not None else None
        # The agents this simulation steps, in name order (every agent, unless it is a shard).
        self.mine = sorted(agents if self.owned is None else self.owned)

    def owns(self, name: str) -> bool:
        """Whether this simulation steps agent ``name`` (always, unless it is a shard)."""
        return self.owned is None or name in self.owned

    async def for_each(
        self,
        work: Callable[[Agent], Awaitable[T]],
        *,
        only: Sequence[str] | None = None,
        share: Share = EVERYTHING,
    ) -> dict[str, T]:
        """Run ``work`` for each agent (of ``only``) at once; the results by agent name.

        A shard runs it for its own agents, then shares what ``share`` says with the other
        shards (every shard calls this at the same points of a step): the results, which
        callers then read for every agent, and the agents' days (plan, action, place), which
        the work may have changed. Work that changes only an agent's own memories shares
        nothing, and its results are then this shard's own.
        """
        names = sorted(self.agents) if only is None else list(only)
        mine = names if self.owned is None else [n for n in names if n in self.owned]
        results = await asyncio.gather(*(self._with_agent(n, work(self.agents[n])) for n in mine))
        done = dict(zip(mine, results, strict=True))
        results_too, days_too = share
        if self.exchange is None or not (results_too or days_too):
            return done
        shared = await self.exchange.gather(
            {
                name: (
                    result if results_too else None,
                    public_state(self.agents[name]) if days_too else None,
                )
                for name, result in done.items()
            }
        )
        if days_too:
            for name, (_, public) in shared.items():
                if name not in done:
                    take_public_state(self.agents[name], public)
        return {name: shared[name][0] for name in sorted(shared)}

    async def _with_agent(self, name: str, work: Awaitable[T]) -> T:
        token = _acting_agent.set(name)
        try:
            with affinity_scope(name):  # the agent's calls share a server slot and its prefix
                return await work
        finally:
            _acting_agent.reset(token)


def public_state(agent: Agent) -> tuple[Any, ...]:
    """What other shards read of an agent: what it is doing, where, and what it agreed to.

    Its plan and the rest of its day stay with its owner, the only shard that plans for it.
    """
    return (agent.current, agent.current_place, tuple(agent.commitments))


def take_public_state(agent: Agent, public: tuple[Any, ...]) -> None:
    """Update another shard's copy of ``agent`` with what its owner shared."""
    current, agent.current_place, commitments = public
    agent.current, agent.commitments = current, list(commitments)
