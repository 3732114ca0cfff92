"""Designs: seeded balanced randomisation, blocking, counterbalanced twins restored from
snapshots, and world forks that keep the intervention in one branch."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from societas.agents.agent import Agent
from societas.agents.persona import Persona
from societas.engine.config import SimulationConfig
from societas.engine.simulation import Simulation
from societas.experiments.designs import (
    DesignError,
    assign_between,
    block_keys,
    counterbalanced_orders,
    fork_world,
    measure_within,
    run_branches,
)
from societas.llm.fake import SchemaFiller, ScriptedLLM
from societas.memory.records import MemoryKind
from societas.scenarios.scenario import load_scenario

NAMES = [f"Agent {i:02d}" for i in range(30)]
NOW = datetime(2026, 3, 2, 12, 0)


def test_randomisation_is_reproducible_from_the_seed() -> None:
    first = assign_between(NAMES, ["a", "b", "c"], np.random.default_rng(5))
    again = assign_between(NAMES, ["a", "b", "c"], np.random.default_rng(5))
    other = assign_between(NAMES, ["a", "b", "c"], np.random.default_rng(6))
    assert first == again
    assert first != other


def test_randomisation_is_balanced() -> None:
    for seed in range(5):
        counts = Counter(
            assign_between(NAMES[:31], ["a", "b"], np.random.default_rng(seed)).values()
        )
        assert abs(counts["a"] - counts["b"]) <= 1


def test_blocking_balances_every_block() -> None:
    rng = random.Random(0)
    blocks = {name: rng.choice(["north", "south", "east"]) for name in NAMES}
    arms = assign_between(NAMES, ["t", "c"], np.random.default_rng(1), blocks=blocks)
    for block in set(blocks.values()):
        counts = Counter(arms[n] for n in NAMES if blocks[n] == block)
        assert abs(counts["t"] - counts["c"]) <= 1, block
    overall = Counter(arms.values())
    assert abs(overall["t"] - overall["c"]) <= 1


def test_block_keys_refuse_unknown_demographics() -> None:
    demographics = {"Ada": {"sex": "female", "age_group": "30-44"}}
    assert block_keys(demographics, ["sex", "age_group"]) == {"Ada": "female / 30-44"}
    with pytest.raises(DesignError, match="cannot block on \\['income'\\]"):
        block_keys(demographics, ["income"])


def test_counterbalancing_puts_each_arm_first_for_half() -> None:
    orders = counterbalanced_orders(NAMES, ["control", "treated"], np.random.default_rng(2))
    firsts = Counter(order[0] for order in orders.values())
    assert firsts == {"control": 15, "treated": 15}
    assert all(sorted(order) == ["control", "treated"] for order in orders.values())
    again = counterbalanced_orders(NAMES, ["control", "treated"], np.random.default_rng(2))
    assert orders == again


def remembering_llm() -> ScriptedLLM:
    return ScriptedLLM(lambda call: {"ratings": []})


async def agent_with(texts: list[str]) -> Agent:
    agent = Agent(persona=Persona(name="Ada Quist", age=40), home="")
    llm = remembering_llm()
    if texts:
        await agent.remember(llm, texts, MemoryKind.OBSERVATION, NOW, known=[4] * len(texts))
    agent.outbox.clear()
    return agent


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdefgh ", min_size=1, max_size=30).filter(str.strip), max_size=6),
    st.sampled_from([("control", "treated"), ("treated", "control")]),
)
def test_within_subjects_restore_the_snapshot(texts: list[str], order: tuple[str, str]) -> None:
    async def scenario() -> None:
        agent = await agent_with(texts)
        snapshot = agent.get_state()
        llm = remembering_llm()
        seen: dict[str, list[str]] = {}

        async def expose(subject: Agent, arm: str) -> None:
            assert subject.get_state() == snapshot  # every condition starts from the snapshot
            if arm == "treated":
                await subject.remember(
                    llm, ["a persuasive message"], MemoryKind.OBSERVATION, NOW, known=[7]
                )

        async def measure(subject: Agent, arm: str) -> int:
            seen[arm] = [subject.memory.by_id(i).text for i in range(len(subject.memory))]
            return len(subject.memory)

        counts = await measure_within(agent, order, expose, measure)
        assert counts["treated"] == counts["control"] + 1
        assert "a persuasive message" not in seen["control"]
        assert agent.get_state() == snapshot  # the original agent is untouched

    asyncio.run(scenario())


async def test_world_fork_keeps_the_intervention_in_one_branch() -> None:
    llm = ScriptedLLM(SchemaFiller(random.Random(0)).responder)
    base = await Simulation.start(load_scenario("duo"), None, llm, SimulationConfig())
    text = "Masks are required at the cafe from today."

    def intervene(sim: Simulation) -> None:
        sim.schedule_intervention(sim.now, "announcement", {"text": text})

    branches = fork_world(base, intervene)
    await run_branches(branches, 0.5)

    def remembers(sim: Simulation) -> list[bool]:
        return [
            any(text in agent.memory.by_id(i).text for i in range(len(agent.memory)))
            for agent in sim.agents.values()
        ]

    assert all(remembers(branches.treated))
    assert not any(remembers(branches.control))
    assert not any(remembers(base))
    assert branches.control.now == branches.treated.now > branches.forked_at
