"""Economy and speed of a town simulation, beside the original Generative Agents' figures.

Runs the default town (or any scenario) with N of its agents for H game hours on a model, with a
fresh response cache, then runs the same work again from the warm cache. The first run gives the
cost (calls and tokens per agent per game hour) and the wall time; the replay, which makes no model
call, gives the engine's own time, so ``share_outside_model`` = replay wall / first wall, measured
in one process.

    .venv/bin/python benchmarks/town.py --agents 5 --hours 16            # the 5-agent town day
    .venv/bin/python benchmarks/town.py --model smollm2-135m --hours 1   # a quick look

With ``--compare-affinity`` the first run is made twice more on fresh caches, with the embedded
server's slot affinity off (llama.cpp picks slots by prompt similarity) and on (slots handed out
by agent, ``societas.llm.slots``), one after the other in this process; ``reuse_by_affinity``
gives both runs' prompt reuse and wall time.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from societas.agents.agent import Agent
from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.embedded import EmbeddedBackend
from societas.llm.meter import reuse_share
from societas.llm.registry import open_llm
from societas.measurement.audit import audit_store
from societas.measurement.end_of_run import ask_end_of_run
from societas.measurement.model_usage import backend_cost_by_hour
from societas.measurement.run_summary import summarise_run
from societas.measurement.town_summary import summarise_town
from societas.scenarios.scenario import Scenario, load_scenario
from societas.world.news_keywords import detect_news

# Park et al. 2023, reference implementation: 25 agents, ~10 game hours, 13,705 requests and
# 6.6 M tokens (the reference repository's issue #156).
ORIGINAL = {"calls_per_agent_hour": 55, "tokens_per_agent_hour": 26_000}
TARGET = {"calls_per_agent_hour": 4, "tokens_per_agent_hour": 2_000, "town_day_wall_s": 1800}


async def simulate(
    scenario: Scenario,
    model: str,
    hours: float,
    seed: int,
    work: Path,
    tag: str,
    cache: Path,
    *,
    slot_affinity: bool | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    async with open_llm(model, cache_path=cache) as llm:
        if slot_affinity is not None and isinstance(llm.chat_backend, EmbeddedBackend):
            llm.chat_backend.slot_affinity = slot_affinity
        opened = time.perf_counter()
        sim = await Simulation.start(
            scenario, work / tag, llm, SimulationConfig(seed=seed), meter=llm.meter
        )
        await sim.run(hours=hours)
        sim.close("finished")
        snapshot = llm.meter.snapshot()
    wall = time.perf_counter() - opened
    with RunStore.open(work / tag, readonly=True) as store:
        summary = summarise_run(store, scenario.measurement_info())
        # The first hour carries the day's plans and the rating of every initial memory, so the
        # later hours show what a longer run costs per hour.
        hourly = [
            cost.model_dump()
            for cost in backend_cost_by_hour(
                (s.event for s in store.iter_events(kinds=["llm_call"])),
                start=scenario.start_time,
            )
        ]
        audit = audit_store(store, scenario)
    return {
        "wall_s": round(wall, 2),
        "model_load_s": round(opened - started, 2),
        "meter": json.loads(snapshot.model_dump_json()),
        "summary": json.loads(summary.model_dump_json()),
        "hourly": hourly,
        "audit": json.loads(audit.model_dump_json()),
    }


def prompt_reuse(meter_total: dict[str, Any]) -> dict[str, Any]:
    """Prompt tokens sent and the share the server reused (read before, not read again)."""
    prompt, reused = int(meter_total["prompt_tokens"]), int(meter_total["reused_prompt_tokens"])
    share = reuse_share(reused, prompt)
    return {
        "prompt_tokens": prompt,
        "reused_prompt_tokens": reused,
        "prompt_reuse_share": None if share is None else round(share, 4),
    }


def reuse_by_affinity(
    scenario: Scenario, model: str, hours: float, seed: int, work: Path
) -> dict[str, Any]:
    """The same run with slot affinity off, then on, each on a fresh cache and a fresh model."""
    figures: dict[str, Any] = {}
    for tag, on in (("affinity_off", False), ("affinity_on", True)):
        cache = work / f"{tag}-cache.sqlite"
        run = asyncio.run(
            simulate(scenario, model, hours, seed, work, tag, cache, slot_affinity=on)
        )
        figures[tag] = {"wall_s": run["wall_s"], **prompt_reuse(run["meter"]["total"])}
    off, on_ = figures["affinity_off"], figures["affinity_on"]
    if off["prompt_reuse_share"] is not None and on_["prompt_reuse_share"] is not None:
        figures["reuse_share_points"] = round(
            on_["prompt_reuse_share"] - off["prompt_reuse_share"], 4
        )
    figures["wall_ratio"] = round(on_["wall_s"] / max(off["wall_s"], 1e-9), 3)
    return figures


def after_first_hour(
    hourly: list[dict[str, int]], agents: int, hours: float
) -> dict[str, float | None]:
    """Calls and tokens per agent-hour once the day is planned (game hours after the first)."""
    later = [h for h in hourly if h["hour"] >= 1]
    span = agents * (hours - 1)
    if span <= 0:
        return {"calls_per_agent_hour_after_first": None, "tokens_per_agent_hour_after_first": None}
    return {
        "calls_per_agent_hour_after_first": round(sum(h["calls"] for h in later) / span, 3),
        "tokens_per_agent_hour_after_first": round(sum(h["tokens"] for h in later) / span, 1),
    }


def storyline_agents(scenario: Scenario, count: int) -> list[str]:
    """``count`` agents chosen so that every storyline (news item) is in, in scenario order.

    A storyline needs someone who knows it and someone it matters to who does not yet: first the
    first initial knower of each item (Rosa; Lena), then agents who know several items at the start
    (Tomas, who bridges the two storylines), then agents with a stake in an item who do not know it
    (named in its description, or whose persona mentions its first keyword group: Harold, the rival
    candidate; Mei, the clerk who takes the papers), then the rest. With 5 agents of the default
    town: Rosa, Lena, Tomas, Harold, Mei. A second party knower (Daniel) adds less than the council
    storyline's listeners: the party still spreads from Lena and Tomas.
    """
    names = scenario.agent_names()
    order: list[str] = []

    def take(candidates: list[str]) -> None:
        order.extend(name for name in candidates if name not in order)

    take([news.initial_knowers[0] for news in scenario.news if news.initial_knowers])
    take([n for n in names if sum(n in news.initial_knowers for news in scenario.news) > 1])
    for news in scenario.news:
        take(
            [
                spec.name
                for spec in scenario.agents
                if spec.name not in news.initial_knowers
                and (
                    spec.name in news.description
                    or detect_news(
                        " ".join([spec.situation, *scenario.initial_memories(spec.name)]),
                        news.keywords[:1],
                    )
                )
            ]
        )
    take(names)
    return order[:count]


async def graded_figures(scenario: Scenario, model: str, run_dir: Path, cache: Path) -> Any:
    """Ask the end-of-run questions of the run in ``run_dir``; its graded figures, as JSON."""
    with RunStore.open(run_dir, readonly=True) as store:
        checkpoint = store.latest_checkpoint()
    assert checkpoint is not None
    agents = {name: Agent.from_state(a) for name, a in checkpoint.state["agents"].items()}
    async with open_llm(model, cache_path=cache) as llm:
        answers = await ask_end_of_run(scenario, agents, llm, checkpoint.time)
    with RunStore.open(run_dir, readonly=True) as store:
        summary = summarise_town(store, scenario, answers)
    stated = summary.stated_network
    return {
        "news": {
            figure.news_id: {
                "knows_graded": f"{len(figure.knows)}/{figure.agents}",
                "question_failed": len(figure.failed),
                "denied": len(figure.denied),
                "keyword_spread": f"{len(figure.keyword_knowers)}/{figure.agents}",
                "hallucinated": f"{len(figure.hallucinated)}/{len(figure.never_heard)}",
                "answers": figure.answers,
            }
            for figure in summary.graded_news
        },
        "stated_network": None
        if stated is None
        else {
            "density": round(stated.density, 4),
            "answered": f"{stated.answered}/{stated.agents}",
            "ties_in_known_network": f"{stated.in_known_network}/{stated.edges}",
        },
        "summary_lines": summary.news_lines() + summary.network_lines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="town")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--hours", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    parser.add_argument(
        "--compare-affinity",
        action="store_true",
        help="also run with slot affinity off and on, side by side (two more runs)",
    )
    args = parser.parse_args()

    base = load_scenario(args.scenario)
    scenario = base.with_agents(storyline_agents(base, args.agents))
    agents = len(scenario.agents)
    work = args.keep or Path(tempfile.mkdtemp(prefix="societas-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "llm-cache.sqlite"
    first = asyncio.run(simulate(scenario, args.model, args.hours, args.seed, work, "first", cache))
    replay = asyncio.run(
        simulate(scenario, args.model, args.hours, args.seed, work, "replay", cache)
    )
    graded = asyncio.run(graded_figures(scenario, args.model, work / "first", cache))

    # Backend calls and tokens as the meter counted them (a call answered from the cache within
    # the first run costs nothing and is not counted).
    total = first["meter"]["total"]
    embeds = first["meter"]["purposes"].get("embed", {}).get("calls", 0)
    agent_hours = agents * args.hours
    calls = total["calls"] - embeds  # model calls; embedding requests are reported apart
    tokens = total["prompt_tokens"] + total["completion_tokens"]
    replay_calls = replay["meter"]["total"]["calls"]
    result = {
        "benchmark": "town",
        "scenario": scenario.name,
        "model": args.model,
        "agents": agents,
        "game_hours": args.hours,
        "cpu_count": os.cpu_count(),
        "wall_s": first["wall_s"],
        "model_load_s": first["model_load_s"],
        "calls": calls,
        "embedding_requests": embeds,
        "tokens": tokens,
        "prompt_tokens": total["prompt_tokens"],
        "completion_tokens": total["completion_tokens"],
        **prompt_reuse(total),
        "model_time_s": round(total["wall_s"], 2),
        "calls_per_agent_hour": round(calls / agent_hours, 3),
        "tokens_per_agent_hour": round(tokens / agent_hours, 1),
        "by_game_hour": first["hourly"],
        **after_first_hour(first["hourly"], agents, args.hours),
        "by_purpose": {
            purpose: {"calls": t["calls"], "tokens": t["prompt_tokens"] + t["completion_tokens"]}
            for purpose, t in first["meter"]["purposes"].items()
        },
        "replay_wall_s": replay["wall_s"],
        "replay_backend_calls": replay_calls,
        "audit": first["audit"],  # coherence findings over what each check looked at
        "share_outside_model": round(replay["wall_s"] / max(first["wall_s"], 1e-9), 4),
        "news_final_share": {n["news_id"]: n["final_share"] for n in first["summary"]["news"]},
        "network_density_end": first["summary"]["network"]["end"],
        "agent_names": scenario.agent_names(),
        "graded": graded,
        "original": ORIGINAL,
        "target": TARGET,
        "calls_ratio_vs_original": round(calls / agent_hours / ORIGINAL["calls_per_agent_hour"], 4),
        "tokens_ratio_vs_original": round(
            tokens / agent_hours / ORIGINAL["tokens_per_agent_hour"], 4
        ),
        "runs": str(work),
    }
    if args.compare_affinity:
        result["reuse_by_affinity"] = reuse_by_affinity(
            scenario, args.model, args.hours, args.seed, work
        )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
