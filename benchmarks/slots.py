"""Slot choice on the embedded server: llama.cpp's own choice against slots handed out by key.

Two call patterns, each run with ``slot_affinity`` off (llama.cpp picks the idle slot whose cached
prompt is most similar) and on (``societas.llm.slots``: the idle slot that last answered the
call's affinity key), alternating, on a freshly started model each time, no response cache:

- ``turns``: ``--agents`` agents each make ``--calls`` calls one after another (as agents do in
  their turns), all agents at once; shared instructions, then the agent's persona, then a line
  that changes;
- ``burst``: the same calls all sent at once.

Prints one JSON object: per pattern and setting, wall seconds and prompt tokens sent and reused,
for every repetition, with the reuse share.

    .venv/bin/python benchmarks/slots.py --model smollm2-135m --parallel 2 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from societas.llm.affinity import affinity_scope
from societas.llm.catalog import get_entry
from societas.llm.embedded import EmbeddedBackend, default_threads
from societas.llm.types import Message, SamplingParams, Usage

INSTRUCTIONS = "Decide what you do next given what you notice. Answer in a few words. " * 8
PARAMS = SamplingParams(max_tokens=6, temperature=0.0)


def messages(agent: str, step: int) -> list[Message]:
    persona = f"You are {agent}. " + f"{agent} bakes bread and walks the dog. " * 12
    return [
        Message(role="system", content=INSTRUCTIONS),
        Message(role="user", content=f"{persona}\nNow, step {step}: what do you do?"),
    ]


async def one_call(backend: EmbeddedBackend, agent: str, step: int) -> Usage:
    with affinity_scope(agent):
        return (await backend.chat(messages(agent, step), PARAMS)).usage


async def pattern(
    model: str, parallel: int, affinity: bool, kind: str, agents: int, calls: int
) -> dict[str, Any]:
    backend = EmbeddedBackend.for_entry(get_entry(model), parallel=parallel)
    backend.slot_affinity = affinity
    names = [f"agent{i}" for i in range(agents)]
    try:
        await backend.start()
        started = time.perf_counter()
        if kind == "turns":

            async def in_turn(agent: str) -> list[Usage]:
                return [await one_call(backend, agent, step) for step in range(calls)]

            usages = [u for us in await asyncio.gather(*map(in_turn, names)) for u in us]
        else:
            jobs = [one_call(backend, agent, step) for step in range(calls) for agent in names]
            usages = list(await asyncio.gather(*jobs))
        wall = time.perf_counter() - started
    finally:
        await backend.aclose()
    sent = sum(u.prompt_tokens for u in usages)
    reused = sum(u.cached_prompt_tokens for u in usages)
    return {
        "wall_s": round(wall, 2),
        "prompt_tokens": sent,
        "reused_prompt_tokens": reused,
        "reuse_share": round(reused / sent, 4) if sent else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind in ("turns", "burst"):
        for _ in range(args.repeat):
            for setting, affinity in (("llama_cpp_choice", False), ("slots_by_key", True)):
                figures = asyncio.run(
                    pattern(args.model, args.parallel, affinity, kind, args.agents, args.calls)
                )
                results.setdefault(kind, {}).setdefault(setting, []).append(figures)
    report = {
        "benchmark": "slots",
        "model": args.model,
        "parallel": args.parallel,
        "agents": args.agents,
        "calls_per_agent": args.calls,
        "threads": default_threads(),
        "patterns": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
