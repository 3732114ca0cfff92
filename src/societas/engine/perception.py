"""What agents notice each step, and what they remember of it.

Seeing someone do something is remembered with the importance the actor's own planning call
gave that action, and a changed object is routine, so perception costs no model call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from societas.agents.agent import Agent
from societas.engine.agent_turns import MINDS_ONLY
from societas.memory.records import MemoryKind
from societas.world.phrasing import doing

if TYPE_CHECKING:
    from societas.engine.simulation import Simulation

ROUTINE_IMPORTANCE = 2
Sights = dict[str, list[tuple[str, int]]]
"""What each agent newly noticed in a step: (text, importance) pairs by agent name."""


def perceive(sim: Simulation, now: datetime) -> Sights:
    """New things each agent notices this step, with their importance."""
    seen: Sights = {}
    config = sim.config
    # On a shard, each agent's owner looks for it.
    for name in sim.recorder.pass_over(sim.turns.mine):
        agent = sim.agents[name]
        if agent.is_asleep(now):
            seen[name] = []
            continue
        perception = sim.world.perceive(
            name, radius=config.vision_radius, limit=config.max_perceived
        )
        fresh: list[tuple[str, int]] = []
        for key, text in perception.items(limit=config.max_perceived):
            if agent.last_seen.get(key) != text:
                agent.last_seen[key] = text
                fresh.append((text, importance_of_sight(sim.agents, key)))
        seen[name] = fresh
        for text, _ in fresh:
            sim.recorder.emit(name, "observation", {"text": text})
    return seen


def importance_of_sight(agents: Mapping[str, Agent], key: str) -> int:
    """How much a sight (a perception key) matters: what the agent seen rated its action."""
    kind, _, subject = key.partition(":")
    other = agents.get(subject) if kind == "agent" else None
    if other is not None and other.current is not None:
        return other.current.importance
    return ROUTINE_IMPORTANCE


async def remember_observations(
    sim: Simulation, seen: Sights, now: datetime, changed: set[str]
) -> None:
    """Each agent remembers what it saw, and its own new action (the agents in ``changed``)."""
    if not sim.config.memory:
        return

    async def remember(agent: Agent) -> None:
        sights = list(seen.get(agent.name, []))
        if agent.name in changed and agent.current is not None:
            sights.append((doing(agent.name, agent.current.description), agent.current.importance))
        await agent.remember(
            sim.llm,
            [text for text, _ in sights],
            MemoryKind.OBSERVATION,
            now,
            known=[importance for _, importance in sights],
        )

    noticed = [n for n in sorted(sim.agents) if seen.get(n) or n in changed]
    await sim.turns.for_each(remember, only=noticed, share=MINDS_ONLY)
