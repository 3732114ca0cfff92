"""Running an experiment end to end: population, design, survey, files, analysis, report.

:func:`run_experiment` writes into ``out_dir``:

- ``experiment.yaml``: the experiment as run (a rerun of another experiment there is refused);
- ``population.json``: the personas and, for raked populations, the margins vs the targets;
- ``responses.jsonl``: one line per measured unit (an agent, or an agent in one world branch),
  appended as soon as its answers are in, so a killed run resumes where it stopped;
- ``responses.csv`` (and ``responses.parquet`` when pyarrow is installed), ``analysis.csv``,
  ``usage.json`` (the model meter) and ``report.html``.

Example (it needs a model, so it is not run as a test)::

    spec = load_experiment("vignette_framing.yaml")
    async with open_llm("smollm2-135m") as llm:
        result = await run_experiment(spec, llm, "out/framing", n=8)
    print(result.analysis.query("section == 'effect'"))
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societas.agents.agent import Agent
from societas.agents.persona import Persona
from societas.durable import (
    PARTIAL_SUFFIX,
    FolderBusyError,
    WriterLock,
    append_line,
    complete_lines,
    replace_atomic,
    write_atomic,
)
from societas.engine.config import SimulationConfig
from societas.engine.simulation import Simulation
from societas.experiments.analysis import analyze
from societas.experiments.answer_modes import AnswerMode
from societas.experiments.designs import (
    assign_between,
    block_keys,
    counterbalanced_orders,
    fork_world,
    measure_within,
    run_branches,
)
from societas.experiments.instruments import Measurement, measure_all
from societas.experiments.report import write_report
from societas.experiments.spec import (
    BetweenDesign,
    ExperimentSpec,
    WithinDesign,
    WorldDesign,
    resolve_time,
)
from societas.failpoints import kill_point
from societas.llm.meter import Meter
from societas.llm.types import LanguageModel
from societas.memory.records import MemoryKind
from societas.population import Population
from societas.scenarios.scenario import Scenario, load_scenario

SURVEY_TIME = datetime(2026, 3, 2, 18, 0)
BACKGROUND_IMPORTANCE = 5
VIGNETTE_IMPORTANCE = 7
Progress = Callable[[int, int], None]
Answers = list[tuple[str, int, Measurement]]


class ExperimentRunError(RuntimeError):
    """The output folder or the population does not fit the experiment."""


@dataclass
class ExperimentResult:
    """What a run produced (everything is also in ``out_dir``)."""

    spec: ExperimentSpec
    out_dir: Path
    responses: pd.DataFrame
    analysis: pd.DataFrame
    usage: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"


class ResponseLog:
    """``responses.jsonl``: one line per finished unit; reopening it skips finished units.

    Each line is appended in one write and flushed to disk before the unit counts as done. A
    line cut short by a killed run is ignored (that unit is measured again) and dropped from
    the file, which is replaced whole (never rewritten in place: a kill meanwhile would lose
    the finished units). A unit found twice keeps its first answers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.units: dict[str, list[dict[str, Any]]] = {}
        if not path.exists():
            return
        lines, cut = complete_lines(path.read_text("utf-8"))
        kept = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                cut = True
                continue
            unit = str(entry["unit"])
            if unit in self.units:
                cut = True
                continue
            self.units[unit] = list(entry["rows"])
            kept.append(line)
        if cut:
            # Without the cut line, so the next append starts on a line of its own.
            write_atomic(path, "".join(f"{line}\n" for line in kept))

    def done(self, unit: str) -> bool:
        return unit in self.units

    def append(self, unit: str, rows: list[dict[str, Any]]) -> None:
        self.units[unit] = rows
        append_line(self.path, json.dumps({"unit": unit, "rows": rows}))
        kill_point("unit")  # a crash point for reliability tests (unset: no-op)

    def rows(self) -> list[dict[str, Any]]:
        return [row for unit in sorted(self.units) for row in self.units[unit]]


@dataclass
class _Run:
    """The state shared by one run's units."""

    spec: ExperimentSpec
    llm: LanguageModel
    log: ResponseLog
    total: int
    progress: Progress | None
    finished: int = 0

    def record(self, unit: str, rows: list[dict[str, Any]]) -> None:
        self.log.append(unit, rows)
        self.tick()

    def tick(self) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.total)


async def run_experiment(
    spec: ExperimentSpec,
    llm: LanguageModel,
    out_dir: str | Path,
    *,
    n: int | None = None,
    progress: Progress | None = None,
    personas: Callable[[Population], Population] | None = None,
    answer_mode: AnswerMode | None = None,
) -> ExperimentResult:
    """Run ``spec`` with ``llm`` into ``out_dir`` (resuming what a previous run there left).

    ``n`` limits the population (the sample size of ``marginals``, else the first ``n`` agents);
    ``progress(done, total)`` is called as each unit finishes; ``personas`` rewrites the
    population of a survey design before it is asked (e.g. strips personas to a condition);
    ``answer_mode`` overrides the file's ``answer_mode``.
    """
    if answer_mode is not None and answer_mode != spec.answer_mode:
        spec = with_answer_mode(spec, answer_mode)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with claim_folder(out, spec):
        claim_answer_mode(out, spec.answer_mode)
        log = ResponseLog(out / "responses.jsonl")
        rng = np.random.default_rng(spec.seed)
        if isinstance(spec.design, WorldDesign):
            await run_world(spec, llm, log, out, n, progress)
        else:
            population = await build_population(spec, llm, rng, n)
            if personas is not None:
                population = personas(population)
            write_json(out / "population.json", population_record(population))
            run = _Run(spec, llm, log, len(population), progress)
            await run_population(run, population, rng)
        return finish(spec, llm, out, log)


def claim_folder(out: Path, spec: ExperimentSpec) -> WriterLock:
    """Write ``experiment.yaml``; refuse a folder that holds another experiment's answers, or
    that another process is still writing. Returns the folder's lock, held until released."""
    try:
        lock = WriterLock(out).acquire()
    except FolderBusyError as error:
        raise ExperimentRunError(str(error)) from None
    try:
        copy = out / "experiment.yaml"
        text = spec.source_text or json.dumps(spec.model_dump(mode="json"), indent=2)
        if copy.exists() and (out / "responses.jsonl").exists():
            if copy.read_text("utf-8") != text:
                raise ExperimentRunError(
                    f"{out} holds responses of a different experiment; use another --out folder"
                )
            return lock
        write_atomic(copy, text)
    except BaseException:
        lock.release()
        raise
    return lock


def with_answer_mode(spec: ExperimentSpec, mode: AnswerMode) -> ExperimentSpec:
    """``spec`` answered in ``mode`` (its file text, path and everything else kept)."""
    changed = spec.model_copy(update={"answer_mode": mode})
    changed._source_text = spec.source_text  # private attributes are not part of the copy update
    changed._base_dir = spec._base_dir
    return changed


def claim_answer_mode(out: Path, mode: str) -> None:
    """Record the answer mode; refuse a folder whose answers were produced in another mode."""
    marker = out / "answer_mode.txt"
    if marker.exists() and (out / "responses.jsonl").exists():
        held = marker.read_text("utf-8").strip()
        if held != mode:
            raise ExperimentRunError(
                f"{out} holds answers in answer mode {held!r}, not {mode!r}; use another --out"
            )
        return
    write_atomic(marker, mode + "\n")


# --- populations --------------------------------------------------------------------------------


async def build_population(
    spec: ExperimentSpec, llm: LanguageModel | None, rng: np.random.Generator, n: int | None
) -> Population:
    """The agents of a survey design, from the file's population source.

    Only twin populations ask the model (``llm`` may be None for the others).
    """
    source = spec.population
    if source.marginals is not None:
        return Population.from_marginals(n or source.marginals.n, rng)
    if source.csv is not None:
        population = Population.from_csv(spec.resolve(source.csv), rng)
    elif source.twins is not None:
        if llm is None:
            raise ExperimentRunError("a population of twins needs a model to build it")
        population = await Population.from_twins(spec.resolve(source.twins), llm=llm)
    else:
        population = scenario_population(open_scenario(spec))
    return first(population, n)


def open_scenario(spec: ExperimentSpec) -> Scenario:
    """A scenario file next to the experiment, else a built-in scenario name."""
    name = spec.population.scenario or ""
    path = spec.resolve(name)
    return load_scenario(path if path.is_file() else name)


def scenario_population(scenario: Scenario) -> Population:
    personas = [a.persona for a in scenario.agent_specs()]
    memories = {p.name: scenario.initial_memories(p.name) for p in personas}
    return Population.from_personas(personas, memories=memories, origin=f"scenario {scenario.name}")


def first(population: Population, n: int | None) -> Population:
    if n is None or n >= len(population):
        return population
    personas = population.personas[:n]
    return Population.from_personas(
        personas,
        memories={p.name: population.initial_memories(p.name) for p in personas},
        origin=f"{population.origin} (first {n})",
    )


def population_record(population: Population) -> dict[str, Any]:
    return {"summary": population.summary(), **population.get_state()}


async def make_agent(llm: LanguageModel, persona: Persona, memories: Sequence[str]) -> Agent:
    """An agent holding its initial memories (given importance, so no rating calls)."""
    agent = Agent(persona=persona, home="")
    if memories:
        await agent.remember(
            llm,
            list(memories),
            MemoryKind.OBSERVATION,
            SURVEY_TIME - timedelta(days=1),
            known=[BACKGROUND_IMPORTANCE] * len(memories),
        )
    agent.outbox.clear()
    return agent


def vignette_of(spec: ExperimentSpec, arm: str) -> str:
    """The arm's vignette ("" for none): placed first in the prompt of the arm's questions."""
    stimulus = spec.stimulus.get(arm)
    return stimulus.vignette if stimulus is not None and stimulus.vignette else ""


async def expose(spec: ExperimentSpec, llm: LanguageModel, agent: Agent, arm: str) -> None:
    """Give the agent its arm's vignette as a fresh memory (a control arm gets nothing)."""
    stimulus = spec.stimulus.get(arm)
    if stimulus is None or stimulus.vignette is None:
        return
    await agent.remember(
        llm,
        [stimulus.vignette],
        MemoryKind.OBSERVATION,
        SURVEY_TIME - timedelta(minutes=5),
        known=[VIGNETTE_IMPORTANCE],
    )


# --- survey designs -----------------------------------------------------------------------------


async def run_population(run: _Run, population: Population, rng: np.random.Generator) -> None:
    """Between or within design over a population (agents measured concurrently)."""
    orders = assign_orders(run.spec, population, rng)
    pending = []
    for persona in population:
        if run.log.done(persona.name):
            run.tick()
            continue
        pending.append(
            measure_agent(
                run, persona, population.initial_memories(persona.name), orders[persona.name]
            )
        )
    await asyncio.gather(*pending)


def assign_orders(
    spec: ExperimentSpec, population: Population, rng: np.random.Generator
) -> dict[str, tuple[str, ...]]:
    """The arms each agent answers under, in order (one arm in a between design)."""
    names = [p.name for p in population]
    demographics = {p.name: dict(p.demographics) for p in population}
    if isinstance(spec.design, BetweenDesign):
        blocks = block_keys(demographics, spec.design.block_on) if spec.design.block_on else None
        arms = assign_between(names, spec.arm_ids, rng, blocks=blocks)
        return {name: (arm,) for name, arm in arms.items()}
    return counterbalanced_orders(names, spec.arm_ids, rng)


async def measure_agent(
    run: _Run, persona: Persona, memories: Sequence[str], order: tuple[str, ...]
) -> None:
    run.record(persona.name, await measure_persona(run.spec, run.llm, persona, memories, order))


async def measure_persona(
    spec: ExperimentSpec,
    llm: LanguageModel,
    persona: Persona,
    memories: Sequence[str],
    order: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The answer rows of one agent under the arms of ``order``."""
    agent = await make_agent(llm, persona, memories)

    async def give(subject: Agent, arm: str) -> None:
        await expose(spec, llm, subject, arm)

    async def ask(subject: Agent, arm: str) -> Answers:
        return await measure_all(
            llm,
            subject,
            spec.outcomes_for(arm),
            SURVEY_TIME,
            memories=spec.memories,
            replicates=spec.replicates,
            mode=spec.answer_mode,
            stimulus=vignette_of(spec, arm),
            seed=spec.seed,
        )

    if isinstance(spec.design, WithinDesign):
        by_arm = await measure_within(agent, order, give, ask)
    else:
        await give(agent, order[0])
        by_arm = {order[0]: await ask(agent, order[0])}
    rows = []
    for position, arm in enumerate(order):
        rows += answer_rows(persona, arm, by_arm[arm], position=position, cluster=persona.name)
    return rows


def answer_rows(
    persona: Persona, arm: str, answers: Answers, *, position: int, cluster: str
) -> list[dict[str, Any]]:
    rows = []
    for outcome, replicate, m in answers:
        row = {
            "agent": persona.name,
            "arm": arm,
            "outcome": outcome,
            "replicate": replicate,
            "position": position,
            "value": None if m.error else m.value,
            "answer": m.answer,
            "reason": m.reason,
            "cluster": cluster,
            "demographics": dict(persona.demographics),
        }
        if m.error:  # only failed rows carry the column, so clean runs' tables stay as they were
            row["error"] = m.error
        row.update(instrument_fields(m))
        rows.append(row)
    return rows


def instrument_fields(m: Measurement) -> dict[str, Any]:
    """How the question was put: answer mode, option order and the position of the answer in
    it, the probabilities behind a drawn answer, whether the stimulus was in the prompt."""
    fields: dict[str, Any] = {"mode": m.mode, "stimulus_shown": m.stimulus_shown}
    if m.shown:
        fields["shown"] = json.dumps(list(m.shown))
        fields["shown_position"] = m.shown.index(m.answer) if m.answer in m.shown else None
    if m.stated is not None:
        fields["probabilities"] = json.dumps(m.stated)
    return fields


# --- world design -------------------------------------------------------------------------------


async def run_world(
    spec: ExperimentSpec,
    llm: LanguageModel,
    log: ResponseLog,
    out: Path,
    n: int | None,
    progress: Progress | None,
) -> None:
    """Fork the town, intervene in one branch, run both, then survey everyone in each."""
    assert isinstance(spec.design, WorldDesign)
    scenario = world_scenario(spec, n)
    write_json(out / "population.json", population_record(scenario_population(scenario)))
    names = scenario.agent_names()
    units = [(arm, name) for arm in (spec.control_arm, spec.treatment_arms[0]) for name in names]
    run = _Run(spec, llm, log, len(units), progress)
    if all(log.done(f"{arm}/{name}") for arm, name in units):
        for _ in units:
            run.tick()
        return
    base = await world_at_fork(spec, llm, scenario)
    branches = fork_world(base, intervention_for(spec))
    base.close()
    try:
        await run_branches(branches, spec.design.hours)
        for arm, sim in (
            (spec.control_arm, branches.control),
            (spec.treatment_arms[0], branches.treated),
        ):
            await survey_branch(run, arm, sim, scenario)
    finally:
        branches.close()


def world_scenario(spec: ExperimentSpec, n: int | None) -> Scenario:
    """The town of a world design (its first ``n`` agents when ``n`` is given)."""
    scenario = open_scenario(spec)
    if n is not None and n < len(scenario.agent_names()):
        scenario = scenario.with_agents(scenario.agent_names()[:n])
    return scenario


async def world_at_fork(spec: ExperimentSpec, llm: LanguageModel, scenario: Scenario) -> Simulation:
    """The town started from the file's seed and run to the design's fork time (unrecorded)."""
    assert isinstance(spec.design, WorldDesign)
    base = await Simulation.start(scenario, None, llm, SimulationConfig(seed=spec.seed))
    fork_time = resolve_time(spec.design.fork_at, base.now)
    if fork_time > base.now:
        await base.run(until=fork_time)
    return base


def intervention_for(spec: ExperimentSpec) -> Callable[[Simulation], None]:
    """Schedules the treatment arm's intervention in a branch (never before the branch's now)."""
    intervention = spec.stimulus[spec.treatment_arms[0]].intervention
    assert intervention is not None

    def intervene(sim: Simulation) -> None:
        moment = max(resolve_time(intervention.at, sim.now), sim.now)
        sim.schedule_intervention(moment, intervention.kind, dict(intervention.data))

    return intervene


async def survey_branch(run: _Run, arm: str, sim: Simulation, scenario: Scenario) -> None:
    homes = households(scenario)

    async def one(agent: Agent) -> None:
        unit = f"{arm}/{agent.name}"
        if run.log.done(unit):
            run.tick()
            return
        run.record(unit, await survey_agent(run.spec, run.llm, arm, sim, agent, homes))

    await asyncio.gather(*(one(sim.agents[name]) for name in sorted(sim.agents)))


async def survey_agent(
    spec: ExperimentSpec,
    llm: LanguageModel,
    arm: str,
    sim: Simulation,
    agent: Agent,
    homes: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The answer rows of one agent of a world branch, clustered by household."""
    answers = await measure_all(
        llm,
        agent,
        spec.outcomes_for(arm),
        sim.now,
        memories=spec.memories,
        replicates=spec.replicates,
        mode=spec.answer_mode,
        seed=spec.seed,
    )
    return answer_rows(agent.persona, arm, answers, position=0, cluster=homes[agent.name])


def households(scenario: Scenario) -> dict[str, str]:
    """Each agent's household (see :func:`household`)."""
    return {a.persona.name: household(a.home) for a in scenario.agent_specs()}


def household(home: str) -> str:
    """Agents whose homes are in one building share a household: ``"Okafor Flat:bedroom"``."""
    return home.split(":", 1)[0]


# --- files --------------------------------------------------------------------------------------


def finish(
    spec: ExperimentSpec, llm: LanguageModel, out: Path, log: ResponseLog
) -> ExperimentResult:
    return write_results(spec, out, log, usage_of(llm))


def write_results(
    spec: ExperimentSpec, out: Path, log: ResponseLog, usage: dict[str, Any]
) -> ExperimentResult:
    """The response tables, the analysis, ``usage.json`` and the report, from the log."""
    notes = []
    responses = responses_frame(log.rows())
    # Each table is written beside its name and renamed: a kill leaves it whole or absent.
    _write_table(out / "responses.csv", lambda path: responses.to_csv(path, index=False))
    if importlib.util.find_spec("pyarrow") is not None:
        _write_table(
            out / "responses.parquet", lambda path: responses.to_parquet(path, index=False)
        )
    else:
        notes.append("pyarrow is not installed: responses saved as CSV only")
    answered = responses.dropna(subset=["value"])
    if missing := len(responses) - len(answered):
        notes.append(
            f"{missing} of {len(responses)} answers are missing (no valid model answer; "
            "see the 'error' column of responses.csv) and are left out of the analysis"
        )
        usage = {**usage, "missing_answers": missing}
    analysis = analyze(answered, spec, np.random.default_rng(spec.seed))
    _write_table(out / "analysis.csv", lambda path: analysis.to_csv(path, index=False))
    write_json(out / "usage.json", usage)
    write_report(out)
    return ExperimentResult(spec, out, responses, analysis, usage, notes)


def responses_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows with their demographics spread into columns (those not clashing with the others)."""
    base = [{k: v for k, v in row.items() if k != "demographics"} for row in rows]
    columns = list(dict.fromkeys(k for row in base for k in row))
    frame = pd.DataFrame(base, columns=columns or ["agent", "arm", "outcome", "value"])
    demographics = pd.DataFrame([row.get("demographics") or {} for row in rows], index=frame.index)
    extra = [c for c in demographics.columns if c not in frame.columns]
    return pd.concat([frame, demographics[extra]], axis=1)


def usage_of(llm: LanguageModel) -> dict[str, Any]:
    """The model meter's totals, per purpose; an unmetered model (a test double) gives {}."""
    meter = getattr(llm, "meter", None)
    if isinstance(meter, Meter):
        snapshot: dict[str, Any] = meter.snapshot().model_dump(mode="json")
        return snapshot
    return {}


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str))


def _write_table(path: Path, write: Callable[[Path], object]) -> None:
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    write(partial)
    replace_atomic(partial, path)
