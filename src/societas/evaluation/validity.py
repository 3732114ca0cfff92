"""The validity suite: does a simulated population behave like people, in numbers?

The suite is a set of experiment files with a ``human_target`` (the shipped ones live in
``societas/experiments/validity``: Many Labs 1 and 2 effects and null controls). Each is run
through the experiment runner (cached, resumable, agents asked concurrently) by
:func:`run_validity_item`, which returns its :class:`~.validity_metrics.ItemScore`;
:func:`run_suite` runs every item under one or more persona conditions and returns a
:class:`Scorecard` (per-item scores, the suite summary and a fitted calibration per condition),
which :mod:`.validity_report` writes as JSON, CSV and HTML.

Persona conditions (``--baselines``): ``none`` (generic respondents), ``demographics`` (survey
attributes only) and ``full`` (the persona the runner normally builds), so users see what
personas add.

Layout of an output folder: ``<condition>/<experiment>/`` holds each run (as written by
``societas experiment``); ``scorecard.json``, ``scorecard.csv``, ``scorecard.html`` and
``calibration.json`` sit at the top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from societas.evaluation.effect_calibration import Calibration, CalibrationError, fit_calibration
from societas.evaluation.validity_metrics import ItemScore, score_spec, simulated_effect
from societas.evaluation.validity_summary import SuiteSummary, summarize
from societas.experiments.runner import Progress, run_experiment
from societas.experiments.spec import ExperimentSpec, load_experiment
from societas.llm.types import LanguageModel
from societas.population import Population
from societas.population.personas import PERSONA_CONDITIONS, PersonaCondition, persona_condition
from societas.world.errors import did_you_mean

SUITE_DIR = Path(__file__).resolve().parents[1] / "experiments" / "validity"
CONCURRENT_ITEMS = 4
"""Experiments in flight at once (each already asks its agents concurrently)."""


class ValidityError(Exception):
    """A suite that cannot be run: a file without a human target, an unknown id, no files."""


@dataclass
class Scorecard:
    """Every item's score, per persona condition, with summaries and calibrations."""

    scores: list[ItemScore]
    summaries: list[SuiteSummary]
    calibrations: list[Calibration]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def conditions(self) -> list[str]:
        return [s.condition for s in self.summaries]


# --- the suite ----------------------------------------------------------------------------------


def suite_files(paths: Sequence[Path] = ()) -> list[Path]:
    """The YAML files of ``paths`` (files, or folders of them); the shipped suite if none."""
    if not paths:
        return sorted(SUITE_DIR.glob("*.yaml"))
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ValidityError(f"{path}: no experiment files (*.yaml) in this folder")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ValidityError(f"{path}: no such file or folder")
    return files


def load_suite(paths: Sequence[Path] = (), only: Sequence[str] = ()) -> list[ExperimentSpec]:
    """The suite's experiments (``only``: these experiment names), each with a human target.

    Raises :class:`ValidityError` for a file without ``human_target``, an unknown id in
    ``only`` or two experiments of one name; a malformed file raises its
    :class:`~societas.experiments.spec.ExperimentError` (file, field, line).
    """
    files = suite_files(paths)
    specs = [load_experiment(path) for path in files]
    missing = [str(f) for f, s in zip(files, specs, strict=True) if s.human_target is None]
    if missing:
        raise ValidityError(
            f"{', '.join(missing)}: no human_target, so nothing to validate against; add "
            "'human_target: {effect: D, type: d, source: ...}' (see docs/validity.md)"
        )
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidityError(f"two experiments share a name: {', '.join(repeated)}")
    unknown = [i for i in only if i not in names]
    if unknown:
        hints = "".join(did_you_mean(i, names) for i in unknown[:1])
        raise ValidityError(
            f"unknown experiment id {', '.join(map(repr, unknown))}{hints}; "
            f"the suite has: {', '.join(names)}"
        )
    return [s for s in specs if not only or s.name in only]


# --- running ------------------------------------------------------------------------------------


def persona_view(condition: PersonaCondition) -> Callable[[Population], Population]:
    """The runner hook that reduces a population's personas to ``condition``."""

    def view(population: Population) -> Population:
        if condition == "full":
            return population
        personas = [persona_condition(p, condition, i) for i, p in enumerate(population)]
        memories = {
            new.name: population.initial_memories(old.name)
            for old, new in zip(population, personas, strict=True)
        }
        return Population.from_personas(
            personas, memories=memories, origin=f"{population.origin} ({condition} persona)"
        )

    return view


async def run_validity_item(
    spec: ExperimentSpec,
    llm: LanguageModel,
    out_dir: str | Path,
    *,
    n: int | None = None,
    condition: PersonaCondition = "full",
    progress: Progress | None = None,
) -> ItemScore:
    """Run one experiment of the suite into ``out_dir`` and score it against its target.

    Everything an executor needs is in the arguments; the run resumes what ``out_dir`` holds.
    """
    result = await run_experiment(
        spec, llm, out_dir, n=n, progress=progress, personas=persona_view(condition)
    )
    return score_spec(spec, simulated_effect(result.responses, spec), condition)


ItemRunner = Callable[
    [ExperimentSpec, Path, PersonaCondition, Progress | None], Awaitable[ItemScore]
]
"""Runs one item of the suite into a folder under a persona condition and scores it."""


async def run_suite(
    specs: Sequence[ExperimentSpec],
    llm: LanguageModel,
    out_dir: str | Path,
    *,
    n: int | None = None,
    conditions: Sequence[PersonaCondition] = ("full",),
    progress: Callable[[str], Progress] | None = None,
    seed: int = 0,
) -> Scorecard:
    """Every item under every condition (``progress(label)`` gives each run's callback)."""

    async def run_item(
        spec: ExperimentSpec, folder: Path, condition: PersonaCondition, report: Progress | None
    ) -> ItemScore:
        return await run_validity_item(spec, llm, folder, n=n, condition=condition, progress=report)

    return await score_suite(
        specs, out_dir, run_item, n=n, conditions=conditions, progress=progress, seed=seed
    )


async def score_suite(
    specs: Sequence[ExperimentSpec],
    out_dir: str | Path,
    run_item: ItemRunner,
    *,
    n: int | None = None,
    conditions: Sequence[PersonaCondition] = ("full",),
    progress: Callable[[str], Progress] | None = None,
    seed: int = 0,
    at_once: int = CONCURRENT_ITEMS,
) -> Scorecard:
    """The scorecard of ``run_item`` over every item and condition, ``at_once`` items at a time,
    each in ``out_dir/CONDITION/ITEM``; ``n`` is recorded in the card."""
    for condition in conditions:
        if condition not in PERSONA_CONDITIONS:
            raise ValidityError(f"unknown persona condition {condition!r}")
    out = Path(out_dir)
    gate = asyncio.Semaphore(at_once)

    async def one(spec: ExperimentSpec, condition: PersonaCondition) -> ItemScore:
        async with gate:
            report = progress(f"{spec.name} ({condition})") if progress is not None else None
            return await run_item(spec, out / condition / spec.name, condition, report)

    jobs = [(spec, condition) for condition in conditions for spec in specs]
    scores = list(await asyncio.gather(*(one(s, c) for s, c in jobs)))
    return scorecard_of(scores, list(conditions), seed=seed, meta={"n": n})


def scorecard_of(
    scores: Sequence[ItemScore],
    conditions: Sequence[str],
    *,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> Scorecard:
    """Summaries and calibrations of per-item scores."""
    summaries, calibrations, notes = [], [], []
    for condition in conditions:
        mine = [s for s in scores if s.condition == condition]
        summaries.append(summarize(mine, condition, rng=np.random.default_rng(seed)))
        try:
            calibrations.append(
                fit_calibration(
                    [s.calibration_d for s in mine],
                    [s.human_d for s in mine],
                    [s.id for s in mine],
                    np.random.default_rng(seed),
                    condition=condition,
                    groups=[s.paradigm for s in mine],
                )
            )
        except CalibrationError as error:
            notes.append(f"{condition}: no calibration ({error})")
    return Scorecard(list(scores), summaries, calibrations, dict(meta or {}), notes)
