"""End to end on the real tiny model: the end-of-run questions of the duo, graded."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.agents.agent import Agent
from societas.engine.runstore import RunStore
from societas.measurement.end_of_run import ask_end_of_run
from societas.measurement.town_summary import summarise_town
from societas.memory.records import MemoryKind
from societas.scenarios.scenario import load_scenario

pytestmark = pytest.mark.model


async def test_real_model_answers_are_graded_into_k_of_n_figures(tmp_path: Path) -> None:
    from societas.llm.registry import open_llm

    duo = load_scenario("duo")
    async with open_llm("smollm2-135m", use_cache=False) as llm:
        agents = {}
        for spec in duo.agents:
            agent = Agent(persona=spec.persona, home=spec.home, relationships=spec.relationships)
            memories = duo.initial_memories(spec.name)
            # Known importances: the test is about the questions, not about rating memories.
            await agent.remember(
                llm, memories, MemoryKind.OBSERVATION, duo.start_time, known=[5] * len(memories)
            )
            agents[spec.name] = agent
        answers = await ask_end_of_run(duo, agents, llm, duo.start_time)
    # Every agent was asked the news question and the network question once; failures are kept.
    assert sorted(a.agent for a in answers.news) == duo.agent_names()
    assert sorted(a.agent for a in answers.acquaintances) == duo.agent_names()
    for row in answers.acquaintances:
        assert row.people is not None or row.error
        assert all(p.name in duo.agent_names() and p.name != row.agent for p in row.people or [])
    with RunStore.create(tmp_path / "run", {}) as store:
        store.commit_step(0, duo.start_time, [])
        summary = summarise_town(store, duo, answers)
    (figure,) = summary.graded_news
    assert set(figure.grades) == set(duo.agent_names())
    assert len(figure.knows) + len(figure.failed) + len(figure.denied) <= 2
    assert figure.keyword_knowers == ["Iris Vance"]  # nobody spoke: only the initial knower
    assert set(figure.hallucinated) <= {"Noah Bell"}
    text = summary.describe()
    assert f"knows (graded answers) {len(figure.knows)}/2" in text
    assert "keyword spread 1/2 (1 at start)" in text
    assert "Stated network" in text
