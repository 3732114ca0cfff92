"""Analysis of an experiment's responses: arm estimates, effects, subgroups, validity.

Responses have one row per answer (columns ``agent, arm, outcome, replicate, value`` plus
``cluster`` and demographic columns). Replicates are first averaged per agent, arm and outcome,
so the unit of analysis is the agent. :func:`analyze` returns one tidy frame (the columns of
:data:`societas.experiments.stats.TIDY_COLUMNS` plus ``outcome`` and ``section``) with:

- ``arm``: per arm, the mean (t interval) or, for a choice, the share choosing the success
  option (Wilson interval);
- ``effect``: each treatment arm against the control: the difference, Cohen's d and Hedges' g
  with bootstrap intervals (means), or the difference in proportions and the odds ratio with a
  bootstrap interval (choices);
- ``paired``: within designs, the paired difference and d_z over agents;
- ``cluster``: world designs, the difference with a cluster-robust (CR1) standard error, the
  clusters being households (agents who share a home) or, failing that, the agents;
- ``subgroup``: the difference within each value of each subgroup demographic.

:func:`target_comparison` sets the simulated effect beside the human one of ``human_target``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from societas.experiments import arm_tables, stats
from societas.experiments.clustered import cluster_robust_difference
from societas.experiments.spec import (
    ChoiceOutcome,
    ExperimentSpec,
    WithinDesign,
    WorldDesign,
)
from societas.experiments.stats import BootstrapMethod, Estimate, OutcomeKind, StatsError

ANALYSIS_COLUMNS = ["outcome", "section", *stats.TIDY_COLUMNS]
RESPONSE_KEYS = ["agent", "arm", "outcome"]
BOOTSTRAP_RESAMPLES = 1000
NAN = float("nan")


def agent_means(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per agent, arm and outcome: the mean over replicates, with the agent's columns."""
    extra = [c for c in responses.columns if c not in (*RESPONSE_KEYS, "value")]
    keep = [c for c in extra if responses.groupby(RESPONSE_KEYS)[c].nunique().max() <= 1]
    grouped = responses.groupby(RESPONSE_KEYS, sort=True)
    means = grouped["value"].mean().rename("value")
    firsts = grouped[keep].first() if keep else None
    frame = means.to_frame() if firsts is None else pd.concat([means, firsts], axis=1)
    return frame.reset_index()


def outcome_kind(spec: ExperimentSpec, outcome_id: str, values: pd.Series) -> OutcomeKind:
    """Choices with 0/1 values per agent are proportions; everything else is a mean."""
    is_choice = isinstance(spec.outcome(outcome_id), ChoiceOutcome)
    binary = bool(values.isin([0.0, 1.0]).all())
    return "proportion" if is_choice and binary else "mean"


def analyze(
    responses: pd.DataFrame, spec: ExperimentSpec, rng: np.random.Generator
) -> pd.DataFrame:
    """Every estimate of every outcome (see the module docstring), as one tidy frame."""
    frames = []
    data = agent_means(responses)
    for outcome in spec.outcomes:
        part = data[data["outcome"] == outcome.id]
        if part.empty:
            continue
        kind = outcome_kind(spec, outcome.id, part["value"])
        for section, table in sections(part, spec, kind, rng):
            if not table.empty:
                frames.append(table.assign(outcome=outcome.id, section=section))
    if not frames:
        return pd.DataFrame(columns=ANALYSIS_COLUMNS)
    return pd.concat(frames, ignore_index=True)[ANALYSIS_COLUMNS]


def sections(
    part: pd.DataFrame, spec: ExperimentSpec, kind: OutcomeKind, rng: np.random.Generator
) -> list[tuple[str, pd.DataFrame]]:
    result = [("arm", guarded(lambda: arm_tables.arm_summary(part, "arm", "value", kind=kind)))]
    result.append(("effect", effects(part, spec, kind, rng)))
    if isinstance(spec.design, WithinDesign | WorldDesign):
        result.append(("paired", paired(part, spec)))
    if isinstance(spec.design, WorldDesign):
        result.append(("cluster", clustered(part, spec)))
    result.append(("subgroup", subgroups(part, spec, kind)))
    return result


def guarded(build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Estimators refuse data they cannot use (a single answer, no variance); skip those."""
    try:
        return build()
    except StatsError:
        return stats.tidy([])


def effects(
    part: pd.DataFrame, spec: ExperimentSpec, kind: OutcomeKind, rng: np.random.Generator
) -> pd.DataFrame:
    """Each treatment arm against the control arm."""
    control = part.loc[part["arm"] == spec.control_arm, "value"].to_numpy(dtype=np.float64)
    estimates: list[Estimate] = []
    for arm in spec.treatment_arms:
        treated = part.loc[part["arm"] == arm, "value"].to_numpy(dtype=np.float64)
        label = f"{arm} - {spec.control_arm}"
        found = two_arm(treated, control, kind, rng)
        estimates += [e.with_group(label) for e in found]
    return stats.tidy(estimates)


def two_arm(
    treated: npt.NDArray[np.float64],
    control: npt.NDArray[np.float64],
    kind: OutcomeKind,
    rng: np.random.Generator,
) -> list[Estimate]:
    if kind == "proportion":
        return proportion_effects(treated, control, rng)
    found = [attempt(lambda: stats.mean_difference(treated, control))]
    found.append(effect_size(treated, control, rng, "d", "Cohen's d"))
    found.append(effect_size(treated, control, rng, "g", "Hedges' g"))
    return [e for e in found if e is not None]


def effect_size(
    treated: npt.NDArray[np.float64],
    control: npt.NDArray[np.float64],
    rng: np.random.Generator,
    effect: Literal["d", "g"],
    name: str,
) -> Estimate | None:
    """A bootstrap BCa interval, else a percentile one, else the point value alone."""
    methods: tuple[BootstrapMethod, ...] = ("bca", "percentile")
    for method in methods:
        found = attempt(
            partial(
                stats.effect_size,
                treated,
                control,
                rng,
                kind=effect,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method=method,
            )
        )
        if found is not None and math.isfinite(found.ci_low):
            return found
    point = stats.cohens_d if effect == "d" else stats.hedges_g
    value = attempt_value(lambda: point(treated, control))
    if value is None:
        return None
    return Estimate(name, value, NAN, NAN, 0.95, "point estimate", len(treated) + len(control))


def proportion_effects(
    treated: npt.NDArray[np.float64],
    control: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> list[Estimate]:
    """Difference in proportions (Newcombe) and the odds ratio with a bootstrap interval."""
    if len(treated) == 0 or len(control) == 0:
        return []
    counts = (int(treated.sum()), len(treated), int(control.sum()), len(control))
    found = [attempt(lambda: stats.proportion_difference(*counts))]
    wald = attempt(lambda: stats.odds_ratio(*counts))
    boot = attempt(
        lambda: stats.bootstrap_ci(
            smoothed_odds_ratio,
            [treated, control],
            rng,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
        )
    )
    if boot is not None and wald is not None:
        found.append(
            Estimate(
                "odds ratio",
                wald.estimate,
                boot.ci_low,
                boot.ci_high,
                boot.level,
                f"odds ratio, {boot.method}",
                boot.n,
                se=wald.se,
            )
        )
    elif wald is not None:
        found.append(wald)
    return [e for e in found if e is not None]


def smoothed_odds_ratio(
    treated: npt.NDArray[np.float64], control: npt.NDArray[np.float64]
) -> float:
    """Odds ratio with 0.5 added to every cell (finite when a resample has an empty cell)."""
    a, c = treated.sum() + 0.5, control.sum() + 0.5
    b, d = len(treated) - treated.sum() + 0.5, len(control) - control.sum() + 0.5
    return float(a * d / (b * c))


def paired(part: pd.DataFrame, spec: ExperimentSpec) -> pd.DataFrame:
    """Within-agent differences: every agent answered under both arms."""
    wide = part.pivot_table(index="agent", columns="arm", values="value", aggfunc="mean")
    estimates: list[Estimate] = []
    for arm in spec.treatment_arms:
        if arm not in wide.columns or spec.control_arm not in wide.columns:
            continue
        label = f"{arm} - {spec.control_arm}"
        first, second = wide[arm].to_numpy(), wide[spec.control_arm].to_numpy()
        for build in (stats.paired_difference, stats.paired_effect_size):
            found = attempt(partial(build, first, second))
            if found is not None:
                estimates.append(found.with_group(label))
    return stats.tidy(estimates)


def clustered(part: pd.DataFrame, spec: ExperimentSpec) -> pd.DataFrame:
    """Treated - control with CR1 errors over clusters (households, else agents)."""
    clusters = part["cluster"] if "cluster" in part.columns else part["agent"]
    if clusters.nunique() < 2:
        clusters = part["agent"]
    estimates: list[Estimate] = []
    for arm in spec.treatment_arms:
        rows = part["arm"].isin([arm, spec.control_arm])
        treated = (part.loc[rows, "arm"] == arm).astype(float).to_numpy()
        outcome = part.loc[rows, "value"].to_numpy(dtype=np.float64)
        found = attempt(
            partial(cluster_robust_difference, outcome, treated, clusters[rows].to_numpy())
        )
        if found is not None:
            estimates.append(found.with_group(f"{arm} - {spec.control_arm}"))
    return stats.tidy(estimates)


def subgroups(part: pd.DataFrame, spec: ExperimentSpec, kind: OutcomeKind) -> pd.DataFrame:
    """The effect within each value of each subgroup demographic present in the data."""
    frames = []
    for column in spec.subgroup_columns:
        if column not in part.columns:
            continue
        for arm in spec.treatment_arms:
            table = guarded(
                partial(
                    arm_tables.subgroup_effects,
                    part,
                    "arm",
                    "value",
                    column,
                    treatment=arm,
                    control=spec.control_arm,
                    kind=kind,
                )
            )
            frames.append(table)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else stats.tidy([])


def attempt(build: Callable[[], Estimate]) -> Estimate | None:
    try:
        return build()
    except (StatsError, ZeroDivisionError, FloatingPointError):
        return None


def attempt_value(build: Callable[[], float]) -> float | None:
    try:
        return build()
    except (StatsError, ZeroDivisionError):
        return None


# --- validity against a human benchmark ---------------------------------------------------------

TARGET_ESTIMANDS = {
    "d": ("Cohen's d", "d_z"),
    "or": ("odds ratio",),
    "diff": ("mean difference", "difference in proportions", "paired mean difference"),
}


def target_comparison(analysis: pd.DataFrame, spec: ExperimentSpec) -> pd.DataFrame:
    """The simulated effect beside ``human_target`` (empty when the file gives none).

    Columns: ``outcome, contrast, estimand, simulated, sim_low, sim_high, human, human_low,
    human_high, same_sign, ci_overlap, source``.
    """
    columns = [
        "outcome",
        "contrast",
        "estimand",
        "simulated",
        "sim_low",
        "sim_high",
        "human",
        "human_low",
        "human_high",
        "same_sign",
        "ci_overlap",
        "source",
    ]
    target = spec.human_target
    if target is None or analysis.empty:
        return pd.DataFrame(columns=columns)
    outcome = target.outcome or spec.outcomes[0].id
    arm = target.arm or spec.treatment_arms[0]
    contrast = f"{arm} - {spec.control_arm}"
    rows = analysis[
        (analysis["outcome"] == outcome)
        & (analysis["group"] == contrast)
        & (analysis["section"].isin(["effect", "paired"]))
        & (analysis["estimand"].isin(TARGET_ESTIMANDS[target.type]))
    ]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    row = rows.iloc[-1] if isinstance(spec.design, WithinDesign) else rows.iloc[0]
    human_low, human_high = target.ci if target.ci is not None else (NAN, NAN)
    null = 1.0 if target.type == "or" else 0.0
    same_sign = bool(np.sign(row["estimate"] - null) == np.sign(target.effect - null))
    overlap = bool(row["ci_low"] <= human_high and human_low <= row["ci_high"])
    record = [
        outcome,
        contrast,
        row["estimand"],
        row["estimate"],
        row["ci_low"],
        row["ci_high"],
        target.effect,
        human_low,
        human_high,
        same_sign,
        overlap,
        target.source,
    ]
    return pd.DataFrame([record], columns=columns)
