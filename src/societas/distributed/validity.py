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
from societas.distributed.model_workers import ModelPool
from societas.evaluation.validity import Scorecard, persona_view, score_suite
from societas.evaluation.validity_metrics import ItemScore, score_spec, simulated_effect
from societas.experiments.runner import Progress
from societas.experiments.spec import ExperimentSpec
from societas.population.personas import PersonaCondition


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

    async def run_item(
        spec: ExperimentSpec, folder: Path, condition: PersonaCondition, report: Progress | None
    ) -> ItemScore:
        return await run_validity_item_on_ray(
            spec, pool, folder, n=n, condition=condition, progress=report
        )

    # One item at a time: each already spreads its agents over the whole pool.
    return await score_suite(
        specs,
        out_dir,
        run_item,
        n=n,
        conditions=conditions,
        progress=progress,
        seed=seed,
        at_once=1,
    )
