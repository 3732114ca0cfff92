"""A real model server behind a proxy that breaks 30% of its answers (timeouts, 503s, resets, cut
and garbled bodies, malformed, truncated and schema-violating JSON): a town run and an experiment
still complete, every retry and repair is counted, and nothing the proxy invented is recorded or
cached as the model's answer."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.experiments.runner import run_experiment
from societas.experiments.spec import EXAMPLE, experiment_from_text
from societas.llm.cache import ResponseCache
from societas.llm.catalog import get_entry
from societas.llm.client import LLM
from societas.llm.embedded import THREADS_VARIABLE, EmbeddedBackend
from societas.llm.fake import HashEmbedder
from societas.llm.jsonrepair import JSONExtractionError, loads_lenient
from societas.llm.meter import CallRecord, RequestTotals
from societas.llm.registry import open_chat_backend
from societas.llm.types import LLMUnavailableError, Message
from societas.llm.weights import ensure_weights
from societas.scenarios.scenario import load_scenario
from support.faultproxy import FAULT_KINDS, MARKER, FaultProxy

pytestmark = pytest.mark.model

# The client's limit per attempt; a "delay" fault holds a request longer. A slow legitimate answer
# also times out, and its retries join the one request the proxy keeps open upstream.
TIMEOUT_S = 5.0
TRANSIENT = ("delay", "http_503", "reset", "truncated_body", "malformed_body")
BAD_ANSWERS = ("malformed_answer", "truncated_answer", "schema_answer")


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedBackend]:
    """The embedded smollm2-135m llama.cpp server, reached over its loopback HTTP endpoint."""
    entry = get_entry("smollm2-135m")
    # One thread unless told otherwise: on a busy machine two stall each other.
    threads = int(os.environ.get(THREADS_VARIABLE) or 1)
    backend = EmbeddedBackend(
        lambda: ensure_weights(entry),
        model_id=entry.model_id,
        parallel=2,
        ctx_per_slot=entry.ctx_per_slot,
        threads=threads,
    )
    asyncio.run(backend.start())
    yield backend
    asyncio.run(backend.aclose())


def resilient_llm(proxy: FaultProxy, cache: Path) -> LLM:
    """``openai:`` through the proxy, with enough retries to ride out a 30% fault rate."""
    chat = open_chat_backend("openai:smollm2-135m", base_url=proxy.base_url)
    return LLM(
        chat,
        HashEmbedder(),
        cache=ResponseCache(cache),
        max_concurrency=2,
        timeout_s=TIMEOUT_S,
        max_retries=40,
        retry_base_s=0.05,
        retry_max_s=0.2,
        output_retries=3,
    )


def canonical(text: str) -> str | None:
    try:
        return json.dumps(loads_lenient(text), sort_keys=True)
    except (JSONExtractionError, ValueError):
        return None


def cached_answers(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [text for (text,) in conn.execute("SELECT text FROM responses")]
    finally:
        conn.close()


def call_events(run_dir: Path) -> list[dict[str, Any]]:
    with RunStore.open(run_dir, readonly=True) as store:
        return [s.event.data for s in store.iter_events(kinds=["llm_call"])]


def other_events_text(run_dir: Path) -> str:
    with RunStore.open(run_dir, readonly=True) as store:
        return json.dumps([s.event.data for s in store.iter_events() if s.event.kind != "llm_call"])


class Pick(BaseModel):
    colour: Literal["red", "green", "blue"]


async def ask_colours(llm: LLM, count: int) -> None:
    """Small distinct structured questions: cheap requests that give the faults many chances."""
    await asyncio.gather(
        *(
            llm.generate(
                [Message(role="user", content=f"Item {i}: pick a colour for a {thing}.")],
                Pick,
                purpose="pick",
            )
            for i, thing in enumerate(["door", "cup", "car", "kite", "boat", "hat"][:count])
        )
    )


async def test_a_town_and_an_experiment_complete_through_a_faulty_server(
    server: EmbeddedBackend, tmp_path: Path
) -> None:
    cache = tmp_path / "llm-cache.sqlite"
    # The first requests fail once in every way; after them 30% fail, however many the run makes.
    proxy = FaultProxy(
        server.http_base_url,
        api_key=server.api_key,
        rate=0.3,
        seed=3,
        delay_s=TIMEOUT_S + 1,
        sure_faults=len(FAULT_KINDS),
    )
    with proxy:
        llm = resilient_llm(proxy, cache)
        # Embedding requests are hashed locally and never reach the proxy: count model requests.
        model_records: list[CallRecord] = []
        llm.meter.subscribe(lambda r: model_records.append(r) if r.kind != "embed" else None)
        try:
            await ask_colours(llm, 6)
            before_town = proxy.requests
            sim = await Simulation.start(
                load_scenario("duo"), tmp_path / "run", llm, meter=llm.meter
            )
            await sim.run(hours=1)
            sim.close("finished")
            town_requests = proxy.requests - before_town
            spec = experiment_from_text(EXAMPLE)
            result = await run_experiment(spec, llm, tmp_path / "experiment", n=2)
            total = RequestTotals()
            for record in model_records:
                total = total.plus(RequestTotals.of(record))
        finally:
            await llm.aclose()
            assert llm.cache is not None
            llm.cache.close()
    print(f"proxy: {proxy.requests} requests, faults {dict(proxy.faults)}; meter {total}")

    # Both finished, and the faults really happened, of every kind.
    assert len(result.responses) == 2 and set(result.responses["answer"]) <= {"A", "B"}
    assert set(proxy.faults) == set(FAULT_KINDS)
    # Every request the proxy saw is an attempt the client counted (a backend call or a retry).
    # Attempts that never reached it (a connection that
    # failed first) were retried too: the retries cover them and every transient fault.
    attempts = total.calls + total.retries
    assert proxy.requests <= attempts
    assert total.retries >= sum(proxy.faults[k] for k in TRANSIENT) + attempts - proxy.requests
    assert total.invalid_answers >= sum(proxy.faults[k] for k in BAD_ANSWERS)
    assert total.errors == 0
    # ... and the run store has the same account of the town's calls.
    calls = call_events(tmp_path / "run")
    assert sum(c["backend_calls"] + c["retries"] for c in calls) >= town_requests
    assert sum(c["retries"] for c in calls) >= 1
    assert all(c["error"] is None for c in calls)
    # Nothing the proxy made up was taken for the model's word.
    assert MARKER not in other_events_text(tmp_path / "run")
    assert MARKER not in (tmp_path / "experiment" / "responses.jsonl").read_text()
    clean = {canonical(text) for text in proxy.clean_answers}
    stored = cached_answers(cache)
    assert stored and all(canonical(text) in clean for text in stored)


async def test_a_call_that_fails_for_good_is_an_error_and_is_not_cached(
    server: EmbeddedBackend, tmp_path: Path
) -> None:
    kinds = ("http_503", "reset", "malformed_body")  # answered by the proxy alone
    with FaultProxy(server.http_base_url, api_key=server.api_key, rate=1.0, kinds=kinds) as proxy:
        llm = resilient_llm(proxy, tmp_path / "llm-cache.sqlite")
        try:
            with pytest.raises(LLMUnavailableError, match="unavailable after 41 attempts"):
                await ask_colours(llm, 1)
        finally:
            await llm.aclose()
            assert llm.cache is not None
            llm.cache.close()
    totals = llm.meter.snapshot().total
    assert (totals.requests, totals.errors, totals.retries) == (1, 1, 40)
    assert proxy.requests == 41
    assert cached_answers(tmp_path / "llm-cache.sqlite") == []
