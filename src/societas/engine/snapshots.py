"""A simulation's state as checkpoints save it, and the agents and news read back from one.

The state is JSON: the world, every agent (its memory stream whole, or as the part its run
store lacks: see :mod:`societas.engine.checkpoints`), the config, and who knows each news item.
A shard saves its own agents only, and the world and the news only on the lead shard
(:func:`~societas.engine.sharding.merge_states` joins the parts); it keeps the other shards'
agents without their memories (:func:`shadow_agent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from societas.agents.agent import Agent
from societas.agents.cognition.importance import ImportanceMemo
from societas.engine.checkpoints import StreamSaver
from societas.engine.config import SimulationConfig
from societas.memory.stream import MemoryStream
from societas.world.state import World

STATE_VERSION = 1


def simulation_state(
    world: World | None,
    agents: Mapping[str, Agent],
    config: SimulationConfig,
    knowers: Mapping[str, set[str]] | None,
    saver: StreamSaver | None = None,
    step: int = 0,
) -> dict[str, Any]:
    """The state of ``agents`` (in name order) and, unless None, the ``world`` and the news'
    ``knowers``; with a ``saver``, memory streams as the parts its run store lacks."""
    saved = {
        name: agent.get_state(
            memory=None if saver is None else saver.part(name, agent.memory, step)
        )
        for name, agent in sorted(agents.items())
    }
    return {
        "version": STATE_VERSION,
        "world": world.get_state() if world is not None else None,
        "agents": saved,
        "config": config.model_dump(mode="json"),
        "knowers": (
            {news: sorted(names) for news, names in sorted(knowers.items())}
            if knowers is not None
            else None
        ),
    }


def check_state_version(state: Mapping[str, Any]) -> None:
    """Raise a clear error for a state this version of the engine cannot read."""
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported simulation state version {state.get('version')}")


def agents_from_state(state: Mapping[str, Any], owned: frozenset[str] | None) -> dict[str, Agent]:
    """The agents of ``state``: whole when ``owned`` is None or names them, else shadows."""
    return {
        name: Agent.from_state(a) if owned is None or name in owned else shadow_agent(a)
        for name, a in state["agents"].items()
    }


def knowers_from_state(state: Mapping[str, Any]) -> dict[str, set[str]]:
    """Who knows each news item, from a whole state."""
    return {news: set(names) for news, names in state["knowers"].items()}


def shadow_agent(state: dict[str, Any]) -> Agent:
    """Another shard's agent as this shard keeps it: everything but its memories."""
    return Agent.from_state(
        {
            **state,
            "memory": MemoryStream().get_state(),
            "importance_memo": ImportanceMemo().get_state(),
        }
    )
