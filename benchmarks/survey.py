"""Survey throughput: one Likert item put to a population sampled from the shipped marginals.

A population of ``--population`` personas (default 1,000) is sampled from the shipped microdata
raked to the US adult marginals; ``--n`` of them answer one 5-point Likert item through the
experiment instruments (recall, then one schema-constrained call each), all asked at once, on an
embedded model with a fresh response cache. The same survey is then asked again, answered from
the cache. Prints one JSON object: responses per second (model and cache replay), tokens per
response, the concurrency settings, and the time the whole population would take.

    .venv/bin/python benchmarks/survey.py --model smollm2-135m --n 40
    .venv/bin/python benchmarks/survey.py --model qwen2.5-coder-1.5b --n 1000 --parallel 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from societas.agents.agent import Agent
from societas.experiments.instruments import Measurement, measure
from societas.experiments.spec import LikertOutcome
from societas.llm.embedded import default_threads
from societas.llm.registry import open_llm
from societas.llm.types import LanguageModel, LLMError
from societas.population import Population

QUESTION = "How much do you trust the people in your neighbourhood?"
NOW = datetime(2026, 3, 2, 12, 0)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def population_agents(size: int, seed: int) -> list[Agent]:
    """``size`` agents sampled from the shipped microdata and marginals, with their memories."""
    population = Population.from_marginals(size, np.random.default_rng(seed))
    agents = []
    for persona in population:
        agent = Agent(persona=persona, home="")
        agents.append(agent)
    return agents


async def ask_all(
    llm: LanguageModel, agents: list[Agent], outcome: LikertOutcome
) -> list[Measurement | BaseException]:
    """Every agent's answer, all asked at once (as the experiment survey does); an answer the
    model failed to give is kept as its error, so one bad answer does not stop the count."""
    return await asyncio.gather(
        *(measure(llm, agent, outcome, NOW) for agent in agents), return_exceptions=True
    )


def _value(answer: Measurement | BaseException) -> float | None:
    if isinstance(answer, BaseException):
        if not isinstance(answer, LLMError):
            raise answer
        return None
    return answer.value


async def ask(
    model: str, agents: list[Agent], cache: Path, parallel: int | None, concurrency: int | None
) -> dict[str, Any]:
    """The survey twice on one model: first answered by the model, then from the cache."""
    outcome = LikertOutcome(id="trust", type="likert", question=QUESTION)
    opened = time.perf_counter()
    async with open_llm(
        model, cache_path=cache, parallel=parallel, max_concurrency=concurrency
    ) as llm:
        loaded = time.perf_counter()  # the model itself starts with the first call
        _log(f"{model}: opened in {loaded - opened:.1f} s; asking {len(agents)} agents")
        first = await ask_all(llm, agents, outcome)
        answered = time.perf_counter()
        _log(f"{model}: {len(agents)} answers in {answered - loaded:.1f} s; replaying")
        usage = llm.meter.snapshot()
        values = [_value(answer) for answer in first]
        # Failed answers are not cached: replaying them would ask the model again.
        answered_agents = [a for a, value in zip(agents, values, strict=True) if value is not None]
        replay = await ask_all(llm, answered_agents, outcome)
        replayed = time.perf_counter()
        after = llm.meter.snapshot()
    same = [_value(answer) for answer in replay] == [v for v in values if v is not None]
    model_s = answered - loaded
    replay_s = replayed - answered
    n = len(agents)
    failed = n - len(answered_agents)
    purpose = usage.purposes.get("survey", usage.total)
    return {
        "open_s": round(loaded - opened, 2),
        "wall_s": round(model_s, 2),
        "responses_per_s": round((n - failed) / model_s, 3),
        "prompt_tokens_per_response": round(purpose.prompt_tokens / n, 1),
        "completion_tokens_per_response": round(purpose.completion_tokens / n, 1),
        "cached_prompt_tokens_per_response": round(purpose.cached_prompt_tokens / n, 1),
        "model_calls": usage.total.calls,
        "replay_wall_s": round(replay_s, 3),
        "replay_responses_per_s": round(len(answered_agents) / max(replay_s, 1e-9), 1),
        "replay_backend_calls": after.total.calls - usage.total.calls,
        "replay_same_answers": same,
        "failed": failed,
        "answers": {str(value): count for value, count in sorted(Counter(values).items(), key=str)},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--population", type=int, default=1000, help="personas sampled")
    parser.add_argument("--n", type=int, default=1000, help="how many of them are asked")
    parser.add_argument("--parallel", type=int, default=None, help="server slots")
    parser.add_argument("--concurrency", type=int, default=None, help="calls in flight")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.n <= args.population:
        parser.error("--n must be between 1 and --population")
    sampled = time.perf_counter()
    agents = population_agents(args.population, args.seed)[: args.n]
    sample_s = time.perf_counter() - sampled
    with tempfile.TemporaryDirectory(prefix="societas-survey-") as work:
        figures = asyncio.run(
            ask(args.model, agents, Path(work) / "cache.sqlite", args.parallel, args.concurrency)
        )
    return {
        "benchmark": "survey",
        "model": args.model,
        "population": args.population,
        "n": args.n,
        "question": QUESTION,
        "settings": {
            "parallel": args.parallel or "model default",
            "max_concurrency": args.concurrency or "server slots",
            "threads": default_threads(),
        },
        "sample_s": round(sample_s, 2),
        **figures,
        "population_wall_s_estimate": round(args.population / figures["responses_per_s"], 1),
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=2)
    sys.stdout.write("\n")
