"""Experiments SIGKILLed at random moments and run again: the same answers as an uninterrupted
experiment, each unit measured once in the end.

An experiment resumes by running the same command into the same folder: finished units are
in ``responses.jsonl`` and are not asked again (a world design re-simulates its unrecorded town
and forks, then surveys only the units missing). A kill is aimed at a phase (``start-up``:
no unit yet, which for a world design includes simulating and forking the town; ``units``: after
a random number of units; ``results``: all units in, tables and report being written) and the
phase it landed in is read from the folder afterwards.

Compared with the uninterrupted experiment: ``responses.jsonl`` (every unit once, with the
same rows), ``responses.csv``, ``analysis.csv`` and ``population.json``. ``usage.json`` and the
report are left out: they count the model calls of the last process only.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societas.testing.cli_process import CliProcesses, kill_group

EXPERIMENT_PHASES = ("start-up", "units", "results")
COMPARED_FILES = ("responses.csv", "analysis.csv", "population.json")
POLL_S = 0.001
PROCESS_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ExperimentReference:
    """The uninterrupted experiment: its folder, units and how long it took."""

    out: Path
    units: int
    seconds: float


@dataclass
class ExperimentTrial:
    """One experiment killed ``len(phases)`` times and run again to its end."""

    trial: int
    phases: list[str] = field(default_factory=list)
    outlived: int = 0
    refusals: list[str] = field(default_factory=list)
    duplicated_units: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.refusals and not self.differences


def record_experiment(
    cli: CliProcesses, args: Sequence[str], out: Path, env: Mapping[str, str] | None = None
) -> ExperimentReference:
    """Run ``societas experiment ARGS --out OUT`` uninterrupted, timed."""
    log = out.with_name(out.name + ".log")
    started = time.perf_counter()
    command = ["experiment", *args, "--out", str(out)]
    code = cli.run(command, log=log, env=env, timeout_s=PROCESS_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"the uninterrupted experiment failed; see {log}")
    return ExperimentReference(out, len(_units(out)), time.perf_counter() - started)


def run_experiment_trial(
    cli: CliProcesses,
    args: Sequence[str],
    reference: ExperimentReference,
    out: Path,
    rng: random.Random,
    *,
    kills: int,
    trial: int = 0,
    env: Mapping[str, str] | None = None,
) -> ExperimentTrial:
    """Kill the experiment ``kills`` times at random moments, run it again to its end, and
    compare its files with the reference's."""
    result = ExperimentTrial(trial)
    log = out.with_name(out.name + ".log")
    command = ["experiment", *args, "--out", str(out)]
    planned = sorted(
        (rng.choice(EXPERIMENT_PHASES) for _ in range(kills)), key=EXPERIMENT_PHASES.index
    )
    for aimed in planned:
        process = cli.start(command, log=log, env=env)
        if _kill_when(process, out, aimed, reference, rng):
            result.phases.append(_phase_of(out, reference))
        elif process.exitcode != 0:
            result.refusals.append(f"exit {process.exitcode}; see {log}")
            return result
        else:
            result.outlived += 1
    code = cli.run(command, log=log, env=env, timeout_s=PROCESS_TIMEOUT_S)
    if code != 0:
        result.refusals.append(f"exit {code}; see {log}")
        return result
    lines = _unit_lines(out)
    result.duplicated_units = sum(n - 1 for n in Counter(unit for unit, _ in lines).values())
    if dict(lines) != dict(_unit_lines(reference.out)):
        result.differences.append("responses.jsonl holds other units or other answers")
    for name in COMPARED_FILES:
        if (out / name).read_bytes() != (reference.out / name).read_bytes():
            result.differences.append(f"{name} differs")
    return result


def summarise_experiments(results: Sequence[ExperimentTrial]) -> dict[str, Any]:
    phases = [phase for result in results for phase in result.phases]
    return {
        "trials": len(results),
        "kills": len(phases),
        "kills_per_phase": {phase: phases.count(phase) for phase in EXPERIMENT_PHASES},
        "processes_that_ended_before_their_kill": sum(r.outlived for r in results),
        "identical_results": f"{sum(r.identical for r in results)}/{len(results)}",
        "refusals": sum(len(r.refusals) for r in results),
        "duplicated_units": sum(r.duplicated_units for r in results),
        "failures": [
            {"trial": r.trial, "refusals": r.refusals, "differences": r.differences}
            for r in results
            if not r.identical
        ],
    }


def _kill_when(
    process: Any, out: Path, aimed: str, reference: ExperimentReference, rng: random.Random
) -> bool:
    deadline = time.perf_counter() + PROCESS_TIMEOUT_S
    if aimed == "start-up":
        delay = rng.uniform(0.0, reference.seconds * 0.8)
    else:
        wanted = reference.units if aimed == "results" else rng.randint(1, reference.units)
        while process.is_alive() and time.perf_counter() < deadline:
            if len(_units(out)) >= wanted:
                break
            time.sleep(POLL_S)
        # Units may all finish at once (a world design surveys both branches together).
        delay = rng.uniform(0.0, reference.seconds / max(1, reference.units) / 4)
    fire = time.perf_counter() + delay
    while process.is_alive() and time.perf_counter() < fire:
        time.sleep(POLL_S)
    if not process.is_alive():
        process.join()
        return False
    kill_group(process)
    process.join()
    return True


def _phase_of(out: Path, reference: ExperimentReference) -> str:
    units = len(_units(out))
    if units == 0:
        return "start-up"
    return "results" if units >= reference.units else "units"


def _unit_lines(out: Path) -> list[tuple[str, str]]:
    path = out / "responses.jsonl"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text("utf-8").split("\n")[:-1]:  # a cut-short last line is not in
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        lines.append((str(entry["unit"]), json.dumps(entry["rows"], sort_keys=True)))
    return lines


def _units(out: Path) -> set[str]:
    return {unit for unit, _ in _unit_lines(out)}
