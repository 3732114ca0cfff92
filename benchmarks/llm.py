"""Speed of the embedded models: prompt and generation rates, a typical call, batching, cache hits.

Prints one JSON document. For each model (``--models``; default smollm2-135m and
qwen2.5-coder-1.5b where installed):

- ``load_s``: starting the server (weights verified from their record, model loaded);
- ``prompt_tokens_per_s``: reading a ~700-token prompt that shares nothing with earlier ones;
- ``generation_tokens_per_s``: writing free text after a short prompt;
- ``structured_call``: a typical agent call (~700-token prompt: a stable persona part first, a
  changing part last; a small JSON answer), cold, then warm (same persona, new situation) so the
  reused prefix shows in ``cached_prompt_tokens`` and latency;
- ``concurrency``: four different structured calls one after another, then four others at once,
  in the same run; ``speedup`` is sequential over concurrent wall time and
  ``throughput_speedup`` the ratio of completion tokens per second (the answers' lengths differ);
- ``cache_hit_ms``: a repeated request answered by the client's response cache.

Usage::

    .venv/bin/python benchmarks/llm.py --models smollm2-135m qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from societas.llm.cache import ResponseCache
from societas.llm.catalog import CATALOG, get_entry
from societas.llm.client import LLM
from societas.llm.embedded import EmbeddedBackend, machine_threads
from societas.llm.fake import HashEmbedder
from societas.llm.types import Completion, Message, SamplingParams
from societas.llm.weights import weights_status

DEFAULT_MODELS = ("smollm2-135m", "qwen2.5-coder-1.5b")
WORDS = [
    "bakery",
    "bread",
    "morning",
    "market",
    "square",
    "river",
    "bridge",
    "mayor",
    "festival",
    "garden",
    "library",
    "school",
    "coffee",
    "neighbour",
    "rumour",
    "election",
    "harvest",
    "rain",
    "letter",
    "friend",
    "sister",
    "painter",
    "café",
    "workshop",
    "music",
    "evening",
    "walk",
    "lantern",
    "apples",
    "wheat",
    "flour",
    "oven",
    "customer",
    "delivery",
    "train",
    "station",
    "clock",
]


class Step(BaseModel):
    at: str = Field(max_length=5, description="HH:MM")
    act: str = Field(max_length=40)


class DayPlan(BaseModel):
    """The kind of compact answer agents give: a few short steps."""

    steps: list[Step] = Field(max_length=3)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _filler(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _persona(rng: random.Random, words: int) -> str:
    memories = "\n".join(f"- {_filler(rng, 12)}." for _ in range(words // 12))
    return (
        f"You are agent {rng.randrange(10**6)}, a baker in a small town. "
        "Stay in character. Answer with JSON only.\nWhat you remember:\n" + memories
    )


def _structured_messages(rng: random.Random, persona: str, situation_words: int) -> list[Message]:
    situation = f"It is 07:00. You see: {_filler(rng, situation_words)}. Plan the next hours."
    return [Message(role="system", content=persona), Message(role="user", content=situation)]


def _summary(completion: Completion, seconds: float) -> dict[str, Any]:
    usage = completion.usage
    return {
        "latency_s": round(seconds, 3),
        "prompt_tokens": usage.prompt_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "completion_tokens": usage.completion_tokens,
    }


async def _timed_chat(
    backend: EmbeddedBackend, messages: list[Message], params: SamplingParams
) -> tuple[Completion, float]:
    started = time.perf_counter()
    completion = await backend.chat(messages, params, DayPlan.model_json_schema())
    return completion, time.perf_counter() - started


async def _prompt_rate(backend: EmbeddedBackend, rng: random.Random) -> float:
    started = time.perf_counter()
    done = await backend.complete(_filler(rng, 520), SamplingParams(max_tokens=1))
    elapsed = time.perf_counter() - started
    return (done.usage.prompt_tokens - done.usage.cached_prompt_tokens) / elapsed


async def _generation_rate(backend: EmbeddedBackend) -> float:
    params = SamplingParams(temperature=0.8, max_tokens=64, seed=1)
    started = time.perf_counter()
    done = await backend.complete("Once upon a time, in a small town by a river,", params)
    return done.usage.completion_tokens / (time.perf_counter() - started)


async def _structured(backend: EmbeddedBackend, rng: random.Random) -> dict[str, Any]:
    params = SamplingParams(temperature=0.7, max_tokens=120)
    persona = _persona(rng, 420)
    cold = await _timed_chat(backend, _structured_messages(rng, persona, 100), params)
    warm = await _timed_chat(backend, _structured_messages(rng, persona, 100), params)
    DayPlan.model_validate_json(cold[0].text)
    return {"cold": _summary(*cold), "warm": _summary(*warm), "answer": cold[0].text}


async def _concurrency(backend: EmbeddedBackend, rng: random.Random) -> dict[str, Any]:
    params = SamplingParams(temperature=0.7, max_tokens=80)

    def batch() -> list[list[Message]]:
        return [_structured_messages(rng, _persona(rng, 180), 40) for _ in range(4)]

    sequential_started = time.perf_counter()
    sequential = [await _timed_chat(backend, messages, params) for messages in batch()]
    sequential_s = time.perf_counter() - sequential_started
    concurrent_started = time.perf_counter()
    concurrent = await asyncio.gather(*(_timed_chat(backend, m, params) for m in batch()))
    concurrent_s = time.perf_counter() - concurrent_started

    def tokens(results: list[tuple[Completion, float]]) -> int:
        return sum(c.usage.completion_tokens for c, _ in results)

    return {
        "calls": 4,
        "sequential_s": round(sequential_s, 2),
        "concurrent_s": round(concurrent_s, 2),
        "speedup": round(sequential_s / concurrent_s, 2),
        "sequential_completion_tokens": tokens(sequential),
        "concurrent_completion_tokens": tokens(list(concurrent)),
        # The two batches write answers of different lengths: compare tokens per second too.
        "throughput_speedup": round(
            (tokens(list(concurrent)) / concurrent_s) / (tokens(sequential) / sequential_s), 2
        ),
    }


async def _cache_hit_ms(backend: EmbeddedBackend, rng: random.Random) -> float:
    with tempfile.TemporaryDirectory() as directory:
        cache = ResponseCache(Path(directory) / "cache.sqlite")
        llm = LLM(backend, HashEmbedder(), cache=cache)
        messages = _structured_messages(rng, _persona(rng, 60), 20)
        params = SamplingParams(temperature=0.7, max_tokens=80)
        await llm.generate(messages, DayPlan, purpose="bench", params=params)
        started = time.perf_counter()
        await llm.generate(messages, DayPlan, purpose="bench", params=params)
        hit_ms = (time.perf_counter() - started) * 1000
        cache.close()
    return hit_ms


async def bench_model(name: str, *, threads: int | None, seed: int) -> dict[str, Any]:
    """All figures for one catalog model."""
    rng = random.Random(seed)
    backend = EmbeddedBackend.for_entry(get_entry(name))
    if threads:
        backend.threads = threads
    try:
        started = time.perf_counter()
        await backend.start()
        load_s = time.perf_counter() - started
        await backend.complete("Hello", SamplingParams(max_tokens=2))  # first-call setup
        _log(f"{name}: loaded in {load_s:.1f} s; measuring rates")
        result: dict[str, Any] = {
            "model_id": backend.model_id,
            "threads": backend.threads,
            "parallel": backend.parallel,
            "load_s": round(load_s, 2),
            "prompt_tokens_per_s": round(await _prompt_rate(backend, rng), 1),
            "generation_tokens_per_s": round(await _generation_rate(backend), 2),
        }
        _log(f"{name}: typical structured call")
        result["structured_call"] = await _structured(backend, rng)
        _log(f"{name}: 4 sequential vs 4 concurrent calls")
        result["concurrency"] = await _concurrency(backend, rng)
        result["cache_hit_ms"] = round(await _cache_hit_ms(backend, rng), 2)
        return result
    finally:
        await backend.aclose()


def _installed_defaults() -> list[str]:
    return [name for name in DEFAULT_MODELS if weights_status(CATALOG[name]).installed]


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", choices=sorted(CATALOG), default=None)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cores": machine_threads(), "models": {}}
    for name in args.models or _installed_defaults():
        report["models"][name] = await bench_model(name, threads=args.threads, seed=args.seed)
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
