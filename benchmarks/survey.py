"""Survey throughput: one Likert item put to a population sampled from the shipped marginals.

A population of ``--population`` personas (default 1,000) is sampled from the shipped microdata
raked to the US adult marginals; ``--n`` of them answer one 5-point Likert item through the
experiment instruments (recall, then one schema-constrained call each), all asked at once, on an
embedded model with a fresh response cache. The same survey is then asked again, answered from
the cache. Prints one JSON object: responses per second (model and cache replay), tokens per
response and the share of prompt tokens the server reused, the concurrency settings, and the time
the whole population would take.

With ``--arrangements none,arm`` (the default) the survey is asked once per arrangement of the
calls, each on a freshly started model with its own fresh cache, one after the other in this
process: ``none`` leaves every slot choice to llama.cpp (the idle slot whose cached prompt is most
similar); ``arm`` and ``respondent`` hand out slots by affinity key (``societas.llm.slots``): the
idle slot that last answered the respondent's arm (the instrument's prefix), or the respondent.
``vs_none`` gives each arrangement's throughput and reuse against ``none``, side by side.

    .venv/bin/python benchmarks/survey.py --model smollm2-135m --n 40
    .venv/bin/python benchmarks/survey.py --model qwen2.5-coder-1.5b --n 200 --arrangements none,arm
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
from societas.llm.affinity import affinity_scope
from societas.llm.embedded import EmbeddedBackend, default_threads
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


ARRANGEMENTS = ("none", "arm", "respondent")
ARM = "arm-0"  # the benchmark's survey has one arm


async def ask_all(
    llm: LanguageModel, agents: list[Agent], outcome: LikertOutcome, arrangement: str = "none"
) -> list[Measurement | BaseException]:
    """Every agent's answer, all asked at once (as the experiment survey does); an answer the
    model failed to give is kept as its error, so one bad answer does not stop the count.
    ``arrangement`` names the affinity key of each respondent's calls (see the module doc)."""

    async def one(agent: Agent) -> Measurement:
        key = {"none": None, "arm": ARM, "respondent": agent.name}[arrangement]
        with affinity_scope(key):
            return await measure(llm, agent, outcome, NOW)

    return await asyncio.gather(*(one(agent) for agent in agents), return_exceptions=True)


def _value(answer: Measurement | BaseException) -> float | None:
    if isinstance(answer, BaseException):
        if not isinstance(answer, LLMError):
            raise answer
        return None
    return answer.value


async def ask(
    model: str,
    agents: list[Agent],
    cache: Path,
    parallel: int | None,
    concurrency: int | None,
    arrangement: str = "none",
) -> dict[str, Any]:
    """The survey twice on one model: first answered by the model, then from the cache."""
    outcome = LikertOutcome(id="trust", type="likert", question=QUESTION)
    opened = time.perf_counter()
    async with open_llm(
        model, cache_path=cache, parallel=parallel, max_concurrency=concurrency
    ) as llm:
        if isinstance(llm.chat_backend, EmbeddedBackend):  # slots by key, or llama.cpp's choice
            llm.chat_backend.slot_affinity = arrangement != "none"
        loaded = time.perf_counter()  # the model itself starts with the first call
        _log(f"{model}: opened in {loaded - opened:.1f} s; asking {len(agents)} agents")
        first = await ask_all(llm, agents, outcome, arrangement)
        answered = time.perf_counter()
        _log(f"{model}: {len(agents)} answers in {answered - loaded:.1f} s; replaying")
        usage = llm.meter.snapshot()
        values = [_value(answer) for answer in first]
        # Failed answers are not cached: replaying them would ask the model again.
        answered_agents = [a for a, value in zip(agents, values, strict=True) if value is not None]
        replay = await ask_all(llm, answered_agents, outcome, arrangement)
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
        "reused_prompt_tokens_per_response": round(purpose.reused_prompt_tokens / n, 1),
        "prompt_reuse_share": _share(purpose.reuse_share),
        "model_calls": usage.total.calls,
        "replay_wall_s": round(replay_s, 3),
        "replay_responses_per_s": round(len(answered_agents) / max(replay_s, 1e-9), 1),
        "replay_backend_calls": after.total.calls - usage.total.calls,
        "replay_same_answers": same,
        "failed": failed,
        "answers": {str(value): count for value, count in sorted(Counter(values).items(), key=str)},
    }


def _share(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def compared(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each arrangement's throughput and reuse share against ``none`` (ratios, same model)."""
    base = runs.get("none")
    if base is None:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for name, figures in runs.items():
        if name == "none":
            continue
        base_reuse, reuse = base["prompt_reuse_share"], figures["prompt_reuse_share"]
        out[name] = {
            "throughput_ratio": round(figures["responses_per_s"] / base["responses_per_s"], 3)
            if base["responses_per_s"]
            else None,
            "reuse_share_points": None
            if base_reuse is None or reuse is None
            else round(reuse - base_reuse, 4),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--population", type=int, default=1000, help="personas sampled")
    parser.add_argument("--n", type=int, default=1000, help="how many of them are asked")
    parser.add_argument("--parallel", type=int, default=None, help="server slots")
    parser.add_argument("--concurrency", type=int, default=None, help="calls in flight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--arrangements",
        default="none,arm",
        help=f"comma-separated, asked in turn on fresh models: {', '.join(ARRANGEMENTS)}",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.n <= args.population:
        parser.error("--n must be between 1 and --population")
    arrangements = [a.strip() for a in args.arrangements.split(",") if a.strip()]
    unknown = sorted(set(arrangements) - set(ARRANGEMENTS)) or (
        ["(none given)"] * (not arrangements)
    )
    if unknown:
        parser.error(f"--arrangements: unknown {', '.join(unknown)}; use {', '.join(ARRANGEMENTS)}")
    sampled = time.perf_counter()
    agents = population_agents(args.population, args.seed)[: args.n]
    sample_s = time.perf_counter() - sampled
    runs: dict[str, dict[str, Any]] = {}
    for arrangement in arrangements:  # each on a fresh model and a fresh cache
        with tempfile.TemporaryDirectory(prefix="societas-survey-") as work:
            cache = Path(work) / "cache.sqlite"
            runs[arrangement] = asyncio.run(
                ask(args.model, agents, cache, args.parallel, args.concurrency, arrangement)
            )
    figures = runs[arrangements[-1]]
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
        "arrangement": arrangements[-1],
        **figures,
        "population_wall_s_estimate": round(args.population / figures["responses_per_s"], 1),
        "arrangements": runs,
        "vs_none": compared(runs),
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=2)
    sys.stdout.write("\n")
