"""Prompt reuse: shown on every call and in every total, and arranged by affinity keys.

The scripted backend reports as reused the words its prompt shares, from the start, with the
prompt it received just before (as a server with one warm slot would).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from societas.agents.agent import Agent
from societas.engine.config import SimulationConfig
from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.affinity import AffinityRouter, affinity_scope, current_affinity
from societas.llm.cache import ResponseCache
from societas.llm.catalog import get_entry
from societas.llm.client import LLM
from societas.llm.embedded import EmbeddedBackend
from societas.llm.fake import HashEmbedder, ScriptedBackend, fake_backends
from societas.llm.meter import CallRecord
from societas.llm.slots import SlotScheduler
from societas.llm.types import Message, SamplingParams
from societas.measurement.end_of_run import ask_end_of_run, question_count
from societas.measurement.model_usage import model_usage
from societas.scenarios.scenario import load_scenario

PERSONA = "You are Ada Lind, a baker in a small town who likes early mornings. " * 4


class Mood(BaseModel):
    mood: str


def _ask(question: str) -> list[Message]:
    return [Message(role="system", content=PERSONA), Message(role="user", content=question)]


def _llm(backend: ScriptedBackend) -> LLM:
    return LLM(backend, HashEmbedder(), cache=ResponseCache(":memory:"))


# --- shown ----------------------------------------------------------------------------------------


async def test_reused_prompt_tokens_reach_the_record_the_event_and_the_totals() -> None:
    backend = ScriptedBackend(responder=lambda request: '{"mood": "calm"}')
    llm = _llm(backend)
    records: list[CallRecord] = []
    llm.meter.subscribe(records.append)
    await llm.generate(_ask("How are you this morning?"), Mood, purpose="react")
    await llm.generate(_ask("How are you this evening?"), Mood, purpose="react")
    await llm.generate(_ask("How are you this evening?"), Mood, purpose="react")  # response cache
    first, second, third = (record.event_data() for record in records)
    assert first["reused_prompt_tokens"] == 0
    # Everything but the last word ("evening?" for "morning?") was read before.
    assert second["reused_prompt_tokens"] == second["prompt_tokens"] - 1 > len(PERSONA.split())
    # A response-cache hit sends nothing: no prompt, nothing reused, and it says so.
    assert (third["cached"], third["prompt_tokens"], third["reused_prompt_tokens"]) == (True, 0, 0)
    totals = llm.meter.snapshot().purposes["react"]
    assert totals.reused_prompt_tokens == second["reused_prompt_tokens"]
    assert totals.reuse_share == pytest.approx(
        second["reused_prompt_tokens"] / (first["prompt_tokens"] + second["prompt_tokens"])
    )


def test_run_totals_and_the_summary_text_carry_the_reuse_share() -> None:
    def call(purpose: str, prompt: int, reused: int, cached: bool = False) -> Event:
        data = {"purpose": purpose, "prompt_tokens": prompt, "reused_prompt_tokens": reused}
        data |= {"completion_tokens": 5, "cached": cached}
        return Event(step=0, time=datetime(2026, 1, 1), kind="llm_call", agent="Ada", data=data)

    events = [call("plan", 400, 0), call("react", 300, 240), call("react", 0, 0, cached=True)]
    events.append(Event(step=0, time=datetime(2026, 1, 1), kind="llm_call", data={"purpose": "x"}))
    usage = model_usage(events, agents=1, hours=1.0)
    assert (usage.total.prompt_tokens, usage.total.reused_prompt_tokens) == (700, 240)
    assert usage.total.reuse_share == pytest.approx(240 / 700, abs=1e-4)
    assert usage.by_purpose["react"].reuse_share == pytest.approx(0.8)
    assert usage.by_purpose["x"].reuse_share is None  # no prompt sent: no share, not 0%


def test_old_meter_states_load_their_cached_prompt_tokens_as_reused() -> None:
    from societas.llm.meter import Meter

    old = {"purposes": {"plan": {"requests": 1, "prompt_tokens": 10, "cached_prompt_tokens": 4}}}
    assert Meter.from_state(old).snapshot().total.reused_prompt_tokens == 4


async def test_a_run_records_reused_tokens_in_its_events_and_summary(tmp_path: Path) -> None:
    chat, embedder = fake_backends("reuse")
    llm = LLM(chat, embedder, cache=ResponseCache(":memory:"))
    scenario = load_scenario("duo")
    config = SimulationConfig(seed=0)
    sim = await Simulation.start(scenario, tmp_path / "run", llm, config, meter=llm.meter)
    await sim.run(hours=0.5)
    sim.close("finished")
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        calls = [s.event.data for s in store.iter_events(kinds=["llm_call"])]
        usage = model_usage((s.event for s in store.iter_events()), agents=2, hours=0.5)
    sent = [c for c in calls if c["prompt_tokens"]]
    assert sent and all("reused_prompt_tokens" in c for c in calls)
    assert any(c["reused_prompt_tokens"] > 0 for c in sent)
    assert usage.total.reused_prompt_tokens == sum(
        c["reused_prompt_tokens"] for c in calls if c["purpose"] != "embed"
    )


# --- arranged -------------------------------------------------------------------------------------


def test_a_key_keeps_its_place_and_keys_spread_evenly() -> None:
    router = AffinityRouter(places=4)
    keys = [f"agent {i}" for i in range(10)]
    first = [router.place_of(key) for key in keys]
    again = [router.place_of(key) for key in reversed(keys)]
    assert again == list(reversed(first))
    counts = Counter(first)
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) - min(counts.values()) <= 1
    assert router.keys_per_place() == [counts[place] for place in range(4)]
    with pytest.raises(ValueError):
        AffinityRouter(places=0)


async def test_the_affinity_key_reaches_the_backend_and_not_the_cache_key() -> None:
    backend = ScriptedBackend(responder=lambda request: '{"mood": "calm"}')
    llm = _llm(backend)
    await llm.generate(_ask("Hello?"), Mood, purpose="react", affinity="Ada")
    with affinity_scope("Bo"):
        await llm.chat_text(_ask("Hi?"), purpose="talk")
        await llm.chat_text(_ask("Hey?"), purpose="talk", affinity="Cy")  # its own key wins
    await llm.chat_text(_ask("Yo?"), purpose="talk")
    assert [r.affinity for r in backend.requests] == ["Ada", "Bo", "Cy", None]
    # The same question under another key is the same request: answered from the cache.
    await llm.generate(_ask("Hello?"), Mood, purpose="react", affinity="Bo")
    assert backend.calls == 4
    assert current_affinity() is None


async def test_slots_go_to_the_key_they_last_answered_else_the_least_recently_used() -> None:
    slots = SlotScheduler(3)
    taken = []
    for key in ("Ada", "Bo", "Cy", "Ada", "Di", "Bo", None):
        slot = await slots.acquire(key)
        taken.append(slot)
        slots.release(slot, key)
    # Ada's prefix is in slot 0; Di evicts the least recently used (Bo's slot 1), so Bo then
    # takes the least recently used again (Cy's slot 2), and a call without a key slot 0.
    assert taken == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError):
        SlotScheduler(0)


async def test_a_call_waits_for_an_idle_slot_rather_than_queue_at_a_busy_one() -> None:
    slots = SlotScheduler(2)
    first, second = await slots.acquire("Ada"), await slots.acquire("Bo")
    waiting = asyncio.create_task(slots.acquire("Ada"))
    await asyncio.sleep(0)
    assert not waiting.done() and slots.choose("Ada") is None
    slots.release(second, "Bo")  # Bo's slot frees first: Ada takes it, not her busy own
    assert await asyncio.wait_for(waiting, 1) == second
    slots.release(first, "Ada")
    assert slots.busy == [False, True]


def test_the_embedded_server_leaves_slots_to_llama_cpp_unless_asked() -> None:
    def no_weights() -> Path:
        raise AssertionError("routing must not load the model")

    assert not EmbeddedBackend(no_weights, model_id="m").slot_affinity
    assert (
        EmbeddedBackend(no_weights, model_id="m", parallel=3, slot_affinity=True).slots.slots == 3
    )


async def test_every_agent_turn_calls_the_model_under_that_agents_key(tmp_path: Path) -> None:
    chat, embedder = fake_backends("keys")
    llm = LLM(chat, embedder, cache=ResponseCache(":memory:"))
    scenario = load_scenario("duo")
    sim = await Simulation.start(scenario, tmp_path / "run", llm, SimulationConfig(seed=0))
    await sim.run(hours=0.5)
    sim.close("finished")
    keys = Counter(request.affinity for request in chat.requests)
    assert set(keys) - {None} <= set(scenario.agent_names())
    assert sum(count for key, count in keys.items() if key is not None) > 0


async def test_interviews_count_every_question_for_the_progress_bar() -> None:
    chat, embedder = fake_backends("interviews")
    llm = LLM(chat, embedder, cache=ResponseCache(":memory:"))
    scenario = load_scenario("town")
    sim_agents = {
        spec.persona.name: Agent(persona=spec.persona, home=spec.home)
        for spec in scenario.agent_specs()[:3]
    }
    ticks: list[int] = []
    answers = await ask_end_of_run(
        scenario, sim_agents, llm, scenario.start_time, on_answer=lambda: ticks.append(1)
    )
    assert len(ticks) == question_count(scenario, 3) > 0
    assert len(answers.news) + len(answers.acquaintances) == len(ticks)
    assert {r.affinity for r in chat.requests} <= set(sim_agents)


# --- the real embedded model ---------------------------------------------------------------------


@pytest.mark.model
async def test_the_embedded_model_reports_the_prefix_it_reused() -> None:
    """Two calls of one agent with a long shared prefix, the second sent to the slot that
    answered the first: it reads only what changed, and the meter and the call's event say how
    much it reused."""
    backend = EmbeddedBackend.for_entry(get_entry("smollm2-135m"), parallel=2)
    backend.slot_affinity = True  # pinned requests (id_slot) must work on the real server
    llm = LLM(backend, HashEmbedder(), cache=ResponseCache(":memory:"))
    records: list[CallRecord] = []
    llm.meter.subscribe(records.append)
    params = SamplingParams(max_tokens=4, temperature=0.0)
    try:
        for question in ("What time is it?", "Where are you going?"):
            await llm.chat_text(_ask(question), purpose="react", params=params, affinity="Ada")
    finally:
        await asyncio.wait_for(llm.aclose(), 60)
    first, second = (record.event_data() for record in records)
    assert first["prompt_tokens"] > 50
    assert second["reused_prompt_tokens"] >= len(PERSONA.split())
    assert second["reused_prompt_tokens"] < second["prompt_tokens"]
    assert llm.meter.snapshot().total.reused_prompt_tokens == (
        first["reused_prompt_tokens"] + second["reused_prompt_tokens"]
    )
