"""Who gets which condition: seeded randomisation, blocking, counterbalanced twins, world forks.

- :func:`assign_between` gives each agent one arm, randomised within blocks of demographics; arm
  counts differ by at most one overall and within every block.
- :func:`counterbalanced_orders` gives every agent both arms, half of them control first.
- :func:`measure_within` snapshots an agent, exposes and measures it under each arm in turn,
  restoring the snapshot before each, so nothing of one condition leaks into the next.
- :func:`fork_world` forks a running town so the intervention happens in one branch only.

Examples
--------
>>> import numpy as np
>>> arms = assign_between(["a", "b", "c", "d"], ["x", "y"], np.random.default_rng(0))
>>> sorted(arms.values())
['x', 'x', 'y', 'y']
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import numpy as np

from societas.agents.agent import Agent
from societas.engine.simulation import Simulation

T = TypeVar("T")


class DesignError(ValueError):
    """A design cannot be applied to this population (unknown blocking variable, too few agents)."""


def assign_between(
    names: Sequence[str],
    arms: Sequence[str],
    rng: np.random.Generator,
    *,
    blocks: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Randomise ``names`` to ``arms``; with ``blocks`` (name -> block key) within each block.

    Arms are dealt in a shuffled cycle that runs on from one block to the next, so every block
    and the whole sample are balanced to within one agent per arm.
    """
    if len(arms) < 2:
        raise DesignError(f"randomisation needs at least 2 arms, got {list(arms)}")
    if len(set(names)) != len(names):
        raise DesignError("agent names must be unique")
    cycle = [arms[i] for i in rng.permutation(len(arms))]
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(blocks[name] if blocks is not None else "", []).append(name)
    assigned: dict[str, str] = {}
    dealt = 0
    for key in sorted(groups):
        members = groups[key]
        for index in rng.permutation(len(members)):
            assigned[members[int(index)]] = cycle[dealt % len(cycle)]
            dealt += 1
    return {name: assigned[name] for name in names}


def block_keys(
    demographics: Mapping[str, Mapping[str, str]], block_on: Sequence[str]
) -> dict[str, str]:
    """Each agent's block: its values of the ``block_on`` demographics, joined.

    >>> block_keys({"Ada": {"sex": "female", "age": "30-44"}}, ["sex"])
    {'Ada': 'female'}
    """
    keys = {}
    for name, values in demographics.items():
        missing = [v for v in block_on if v not in values]
        if missing:
            known = sorted(values)
            raise DesignError(
                f"cannot block on {missing}: agent {name!r} has no such demographic; known: {known}"
            )
        keys[name] = " / ".join(str(values[v]) for v in block_on)
    return keys


def counterbalanced_orders(
    names: Sequence[str], arms: Sequence[str], rng: np.random.Generator
) -> dict[str, tuple[str, ...]]:
    """Every agent gets every arm; the orders rotate, so each arm comes first equally often.

    With two arms half of the agents (chosen at random) answer under ``arms[0]`` first.
    """
    if len(arms) < 2:
        raise DesignError(f"a within design needs at least 2 arms, got {list(arms)}")
    rotations = [
        tuple(arms[(start + i) % len(arms)] for i in range(len(arms))) for start in range(len(arms))
    ]
    shuffled = [names[int(i)] for i in rng.permutation(len(names))]
    orders = {name: rotations[index % len(rotations)] for index, name in enumerate(shuffled)}
    return {name: orders[name] for name in names}


async def measure_within(
    agent: Agent,
    order: Sequence[str],
    expose: Callable[[Agent, str], Awaitable[None]],
    measure: Callable[[Agent, str], Awaitable[T]],
) -> dict[str, T]:
    """Expose and measure a copy of ``agent`` under each arm of ``order``.

    Each arm starts from the same snapshot (``Agent.get_state()``), so memories added by one
    condition never reach the next; ``agent`` itself is left exactly as it was.
    """
    snapshot = agent.get_state()
    results: dict[str, T] = {}
    for arm in order:
        subject = Agent.from_state(snapshot)
        await expose(subject, arm)
        results[arm] = await measure(subject, arm)
    return results


@dataclass
class WorldBranches:
    """The two branches of a world experiment, forked from one town at ``forked_at``."""

    control: Simulation
    treated: Simulation
    forked_at: datetime

    def close(self) -> None:
        self.control.close()
        self.treated.close()


def fork_world(base: Simulation, intervene: Callable[[Simulation], None]) -> WorldBranches:
    """Fork ``base`` twice and let ``intervene`` schedule the intervention in one branch only.

    Both forks are taken before anything is scheduled, so the control branch cannot see it.
    """
    control, treated = base.fork(), base.fork()
    intervene(treated)
    return WorldBranches(control=control, treated=treated, forked_at=base.now)


async def run_branches(branches: WorldBranches, hours: float) -> None:
    """Run both branches for ``hours`` of game time, side by side."""
    await asyncio.gather(branches.control.run(hours=hours), branches.treated.run(hours=hours))
