"""``societas validate --ray``: the validity suite with every item's agents on Ray workers.

Items run one after another, each spread over the whole pool (its agents are the independent
units), so every item's folder and ``usage.json`` are its own, and the scores, the summaries and
the calibration are those of :func:`~societas.evaluation.validity.run_suite` for the same seed
and cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from societas.distributed.experiments import run_experiment_on_ray
from societas.distributed.pool import ModelPool
from societas.evaluation.validity import (
    Scorecard,
    ValidityError,
    persona_view,
    scorecard_of,
)
from societas.evaluation.validity_metrics import ItemScore, score_spec, simulated_effect
from societas.experiments.runner import Progress
from societas.experiments.spec import ExperimentSpec
from societas.population.personas import PERSONA_CONDITIONS, PersonaCondition


async def run_validity_item_on_ray(
    spec: ExperimentSpec,
    pool: ModelPool,
    out_dir: str | Path,
    *,
    n: int | None = None,
    condition: PersonaCondition = "full",
    progress: Progress | None = None,
) -> ItemScore:
    """:func:`~societas.evaluation.validity.run_validity_item` with its agents on ``pool``."""
    result = await run_experiment_on_ray(
        spec, pool, out_dir, n=n, progress=progress, personas=persona_view(condition)
    )
    return score_spec(spec, simulated_effect(result.responses, spec), condition)


async def run_suite_on_ray(
    specs: Sequence[ExperimentSpec],
    pool: ModelPool,
    out_dir: str | Path,
    *,
    n: int | None = None,
    conditions: Sequence[PersonaCondition] = ("full",),
    progress: Callable[[str], Progress] | None = None,
    seed: int = 0,
) -> Scorecard:
    """:func:`~societas.evaluation.validity.run_suite` on ``pool`` (same folders, same card)."""
    unknown = [c for c in conditions if c not in PERSONA_CONDITIONS]
    if unknown:
        raise ValidityError(f"unknown persona condition {unknown[0]!r}")
    out = Path(out_dir)
    scores = []
    for condition in conditions:
        for spec in specs:
            label = f"{spec.name} ({condition})"
            scores.append(
                await run_validity_item_on_ray(
                    spec,
                    pool,
                    out / condition / spec.name,
                    n=n,
                    condition=condition,
                    progress=progress(label) if progress is not None else None,
                )
            )
    return scorecard_of(scores, list(conditions), seed=seed, meta={"n": n})
