"""What a new run store records about its run before the first step (its metadata)."""

from __future__ import annotations

from typing import Any

from societas.engine.config import SimulationConfig
from societas.prompts import prompt_versions
from societas.scenarios.scenario import Scenario
from societas.world.state import World


def run_meta(
    scenario: Scenario, world: World, config: SimulationConfig, extra: dict[str, Any]
) -> dict[str, Any]:
    """The scenario, seed, config, clock, agents, map and prompt versions of a run starting in
    ``world``, with the caller's ``extra`` entries (how it was started)."""
    return {
        "scenario": scenario.name,
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "start_time": world.clock.now.isoformat(),
        "minutes_per_step": world.clock.minutes_per_step,
        "agents": [
            {
                "name": spec.persona.name,
                "persona": spec.persona.model_dump(mode="json"),
                "home": spec.home,
            }
            for spec in scenario.agent_specs()
        ],
        "map": world.map_export(),
        "prompts": prompt_versions(),
        "status": "running",
        **extra,
    }
