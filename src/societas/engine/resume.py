"""Taking up a run in one process where it stopped (see :mod:`societas.engine.run_directory`)."""

from __future__ import annotations

from pathlib import Path

from societas.engine.run_directory import has_checkpoint, restart_meta
from societas.engine.simulation import Simulation
from societas.llm.meter import Meter
from societas.llm.types import LanguageModel
from societas.scenarios.scenario import Scenario


async def resume_simulation(
    run_dir: Path, llm: LanguageModel, scenario: Scenario, *, meter: Meter | None = None
) -> Simulation:
    """The run in ``run_dir`` from its last checkpoint, or started again from the beginning
    when it was stopped before its first one (its metadata says how it was started)."""
    if has_checkpoint(run_dir):
        return Simulation.resume(run_dir, llm, scenario, meter=meter)
    config, meta = restart_meta(run_dir)
    return await Simulation.start(scenario, run_dir, llm, config, meter=meter, meta=meta)
