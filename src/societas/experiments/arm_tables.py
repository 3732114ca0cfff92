"""Frame-level statistics of an experiment: one tidy table per question asked of the data.

Each helper takes a DataFrame of responses (one row per respondent, an arm column and an outcome
column) and returns a frame with the columns of :data:`~societas.experiments.stats.TIDY_COLUMNS`:
:func:`arm_summary` (each arm's mean or proportion), :func:`compare_arms` (every arm against the
control, with effect sizes) and :func:`subgroup_effects` (the effect within each value of a
demographic column). The estimators themselves live in :mod:`societas.experiments.stats`.

Examples
--------
>>> import pandas as pd
>>> data = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 4, "y": [1, 2, 3, 4, 3, 4, 5, 6]})
>>> table = compare_arms(data, "arm", "y", control="a")
>>> table[["group", "estimand", "estimate"]].round(3).values.tolist()
[['b - a', 'mean difference', 2.0], ['b - a', "Cohen's d", 1.549], ['b - a', "Hedges' g", 1.346]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from societas.experiments.stats import (
    NAN,
    Estimate,
    FloatArray,
    OutcomeKind,
    StatsError,
    binary_counts,
    cohens_d,
    effect_size,
    hedges_g,
    mean_difference,
    odds_ratio,
    proportion_difference,
    t_interval,
    tidy,
    wilson_interval,
)


def arm_summary(
    frame: pd.DataFrame,
    arm: str,
    outcome: str,
    *,
    kind: OutcomeKind = "mean",
    level: float = 0.95,
) -> pd.DataFrame:
    """Per arm: the mean (t interval) or proportion (Wilson interval) of ``outcome``."""
    estimates = []
    for name, values in grouped(frame, arm, outcome):
        if kind == "proportion":
            estimates.append(wilson_interval(*binary_counts(values, str(name)), level))
        else:
            estimates.append(t_interval(values, level))
        estimates[-1] = estimates[-1].with_group(str(name))
    return tidy(estimates)


def grouped(frame: pd.DataFrame, column: str, outcome: str) -> list[tuple[object, FloatArray]]:
    for name in (column, outcome):
        if name not in frame.columns:
            raise StatsError(f"no column {name!r}; the frame has {list(frame.columns)}")
    return [
        (name, group[outcome].to_numpy(dtype=np.float64))
        for name, group in frame.groupby(column, sort=True)
    ]


def compare_arms(
    frame: pd.DataFrame,
    arm: str,
    outcome: str,
    *,
    control: object,
    kind: OutcomeKind = "mean",
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    n_resamples: int = 2000,
) -> pd.DataFrame:
    """Every arm against ``control``: the difference with its interval, plus effect sizes.

    Means: Welch difference, Cohen's d and Hedges' g (bootstrap BCa intervals when ``rng`` is
    given, point values only otherwise). Proportions: Newcombe difference and the odds ratio.
    """
    arms = dict(grouped(frame, arm, outcome))
    if control not in arms:
        raise StatsError(f"control arm {control!r} not found; arms: {list(arms)}")
    estimates: list[Estimate] = []
    for name, values in arms.items():
        if name == control:
            continue
        label = f"{name} - {control}"
        estimates += [
            e.with_group(label)
            for e in two_arm_estimates(values, arms[control], kind, level, rng, n_resamples)
        ]
    return tidy(estimates)


def two_arm_estimates(
    treated: FloatArray,
    control: FloatArray,
    kind: OutcomeKind,
    level: float,
    rng: np.random.Generator | None,
    n_resamples: int,
) -> list[Estimate]:
    if kind == "proportion":
        counts = (*binary_counts(treated, "treated arm"), *binary_counts(control, "control arm"))
        return [proportion_difference(*counts, level), odds_ratio(*counts, level)]
    estimates = [mean_difference(treated, control, level)]
    for effect in ("d", "g"):
        if rng is not None:
            estimates.append(
                effect_size(
                    treated, control, rng, kind=effect, level=level, n_resamples=n_resamples
                )
            )
        else:
            value = cohens_d(treated, control) if effect == "d" else hedges_g(treated, control)
            name = "Cohen's d" if effect == "d" else "Hedges' g"
            estimates.append(
                Estimate(
                    name, value, NAN, NAN, level, "point estimate", len(treated) + len(control)
                )
            )
    return estimates


def subgroup_effects(
    frame: pd.DataFrame,
    arm: str,
    outcome: str,
    by: str,
    *,
    treatment: object,
    control: object,
    kind: OutcomeKind = "mean",
    level: float = 0.95,
) -> pd.DataFrame:
    """The treatment - control difference within each value of the demographic column ``by``.

    One row per subgroup (``group`` is ``"by=value"``): Welch difference for means, Newcombe for
    proportions. A subgroup lacking enough observations in an arm gets a NaN row saying so.
    """
    if by not in frame.columns:
        raise StatsError(f"no column {by!r}; the frame has {list(frame.columns)}")
    estimates = []
    for value, part in frame.groupby(by, sort=True):
        label = f"{by}={value}"
        treated = part.loc[part[arm] == treatment, outcome].to_numpy(dtype=np.float64)
        untreated = part.loc[part[arm] == control, outcome].to_numpy(dtype=np.float64)
        estimates.append(subgroup_estimate(treated, untreated, kind, level).with_group(label))
    return tidy(estimates)


def subgroup_estimate(
    treated: FloatArray, control: FloatArray, kind: OutcomeKind, level: float
) -> Estimate:
    try:
        if kind == "proportion":
            return proportion_difference(
                *binary_counts(treated, "treated arm"),
                *binary_counts(control, "control arm"),
                level,
            )
        return mean_difference(treated, control, level)
    except StatsError as error:
        estimand = "difference in proportions" if kind == "proportion" else "mean difference"
        return Estimate(
            estimand, NAN, NAN, NAN, level, f"not estimable: {error}", len(treated) + len(control)
        )
