"""``societas experiment --ray``: an experiment's independent units on a pool of Ray workers.

The driver does what is cheap and decides everything random: it builds the population and
assigns the arms with the file's seed, exactly as a local run does. The workers do what costs
model calls: each measures one agent under its arms (between and within designs), or runs one
branch of a forked town and surveys it (world designs; the town is run to the fork on a worker
too). Each finished unit is appended to ``responses.jsonl`` as it arrives, so a killed run resumes
like a local one, and the tables are written from the log sorted by unit: for the same seed and
response cache, ``responses.csv`` is byte for byte the one a local run writes.

Example::

    with ray_session("auto"):
        async with ModelPool(SpecModel("qwen2.5-coder-1.5b")) as pool:
            result = await run_experiment_on_ray(spec, pool, "out/x")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from societas.agents.persona import Persona
from societas.distributed.model_workers import MapOutcome, ModelPool, ModelSource
from societas.engine.simulation import Simulation
from societas.experiments.runner import (
    ExperimentResult,
    Progress,
    ResponseLog,
    assign_orders,
    build_population,
    claim_folder,
    households,
    intervention_for,
    measure_persona,
    population_record,
    scenario_population,
    survey_agent,
    world_at_fork,
    world_scenario,
    write_json,
    write_results,
)
from societas.experiments.spec import ExperimentSpec, WorldDesign
from societas.llm.meter import CallRecord, Meter
from societas.llm.types import LanguageModel
from societas.population import Population
from societas.scenarios.scenario import Scenario

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class SurveyUnit:
    """One agent of a between or within design and the arms it answers under, in order."""

    spec: ExperimentSpec
    persona: Persona
    memories: tuple[str, ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class WorldStart:
    """The town of a world design, to be run to its fork time."""

    spec: ExperimentSpec
    scenario: Scenario


@dataclass(frozen=True)
class WorldBranch:
    """One branch of a forked town: run it, then survey the agents not yet answered."""

    spec: ExperimentSpec
    scenario: Scenario
    state: dict[str, Any]
    arm: str
    treated: bool
    agents: tuple[str, ...]


async def measure_unit(llm: LanguageModel, unit: SurveyUnit) -> Rows:
    """A worker's job for one agent (see :func:`~societas.experiments.runner.measure_persona`)."""
    return await measure_persona(unit.spec, llm, unit.persona, unit.memories, unit.order)


async def town_at_fork(llm: LanguageModel, start: WorldStart) -> dict[str, Any]:
    """A worker's job: the town's state at the fork."""
    base = await world_at_fork(start.spec, llm, start.scenario)
    try:
        return base.get_state()
    finally:
        base.close()


async def run_branch(llm: LanguageModel, branch: WorldBranch) -> dict[str, Rows]:
    """A worker's job: one branch run for the design's hours, then its agents' answers by unit."""
    spec = branch.spec
    assert isinstance(spec.design, WorldDesign)
    sim = Simulation.from_state(branch.scenario, branch.state, llm, None)
    try:
        if branch.treated:
            intervention_for(spec)(sim)
        await sim.run(hours=spec.design.hours)
        homes = households(branch.scenario)
        answers = await asyncio.gather(
            *(survey_agent(spec, llm, branch.arm, sim, sim.agents[n], homes) for n in branch.agents)
        )
        return {f"{branch.arm}/{n}": rows for n, rows in zip(branch.agents, answers, strict=True)}
    finally:
        sim.close()


async def run_experiment_on_ray(
    spec: ExperimentSpec,
    pool: ModelPool,
    out_dir: str | Path,
    *,
    n: int | None = None,
    progress: Progress | None = None,
    personas: Callable[[Population], Population] | None = None,
) -> ExperimentResult:
    """:func:`~societas.experiments.runner.run_experiment` with the units on ``pool``'s workers.

    The options mean what they mean there. One pool serves any number of experiments (the
    replicates of one, for example), so each worker loads its model once.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with claim_folder(out, spec):  # one process writes the folder at a time
        job = _Job(spec, pool, ResponseLog(out / "responses.jsonl"), progress)
        if isinstance(spec.design, WorldDesign):
            await _world(job, out, n)
        else:
            rng = np.random.default_rng(spec.seed)
            population = await _population(spec, pool.source, rng, n)
            if personas is not None:
                population = personas(population)
            write_json(out / "population.json", population_record(population))
            await _survey(job, population, rng)
        return write_results(spec, out, job.log, job.meter.snapshot().model_dump(mode="json"))


@dataclass
class _Job:
    spec: ExperimentSpec
    pool: ModelPool
    log: ResponseLog
    progress: Progress | None
    total: int = 0
    finished: int = 0
    meter: Meter = field(default_factory=Meter)

    def tick(self, count: int = 1) -> None:
        self.finished += count
        if self.progress is not None:
            self.progress(self.finished, self.total)

    def record(self, unit: str, rows: Rows) -> None:
        self.log.append(unit, rows)
        self.tick()

    def add_usage(self, records: Sequence[CallRecord]) -> None:
        for record in records:
            self.meter.record(record)

    async def map(
        self, fn: Any, items: Sequence[Any], on_result: Callable[[int, Any], None] | None = None
    ) -> MapOutcome[Any]:
        outcome = await self.pool.map(fn, items, on_result)
        self.add_usage(outcome.records)
        return outcome


async def _population(
    spec: ExperimentSpec, model: ModelSource, rng: np.random.Generator, n: int | None
) -> Population:
    if spec.population.twins is None:
        return await build_population(spec, None, rng, n)
    async with model.open() as llm:  # building twins asks the model, here in the driver
        return await build_population(spec, llm, rng, n)


async def _survey(job: _Job, population: Population, rng: np.random.Generator) -> None:
    orders = assign_orders(job.spec, population, rng)
    job.total = len(population)
    units = []
    for persona in population:
        if job.log.done(persona.name):
            job.tick()
            continue
        memories = tuple(population.initial_memories(persona.name))
        units.append(SurveyUnit(job.spec, persona, memories, orders[persona.name]))
    await job.map(
        measure_unit, units, lambda index, rows: job.record(units[index].persona.name, rows)
    )


async def _world(job: _Job, out: Path, n: int | None) -> None:
    spec = job.spec
    scenario = world_scenario(spec, n)
    write_json(out / "population.json", population_record(scenario_population(scenario)))
    names = scenario.agent_names()
    arms = ((spec.control_arm, False), (spec.treatment_arms[0], True))
    job.total = len(arms) * len(names)
    branches = []
    for arm, treated in arms:
        todo = tuple(name for name in sorted(names) if not job.log.done(f"{arm}/{name}"))
        job.tick(len(names) - len(todo))
        if todo:
            branches.append((arm, treated, todo))
    if not branches:
        return
    state = (await job.map(town_at_fork, [WorldStart(spec, scenario)])).results[0]
    items = [WorldBranch(spec, scenario, state, *branch) for branch in branches]

    def record(index: int, by_unit: dict[str, Rows]) -> None:
        for unit in sorted(by_unit):
            job.record(unit, by_unit[unit])

    await job.map(run_branch, items, record)
