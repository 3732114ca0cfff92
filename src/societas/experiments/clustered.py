"""Treatment effects when outcomes are correlated within clusters (a town, a conversation group).

Agents who talked to each other do not answer independently, so a difference in means needs a
standard error that treats each cluster as one unit of information:
:func:`cluster_robust_difference` (CR1 sandwich, ``t`` with ``G - 1`` degrees of freedom) or
:func:`cluster_bootstrap_difference` (whole clusters resampled). Both return an
:class:`~societas.experiments.stats.Estimate`.

Examples
--------
>>> y = [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 6.0]
>>> treated = [0, 1, 0, 1, 0, 1, 0, 1]
>>> towns = ["a", "a", "b", "b", "c", "c", "d", "d"]
>>> est = cluster_robust_difference(y, treated, towns)
>>> est.estimate, est.df
(1.25, 3)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from societas.experiments.stats import (
    NAN,
    Estimate,
    FloatArray,
    StatsError,
    check_level,
    t_value,
)


def cluster_robust_difference(
    outcome: npt.ArrayLike,
    treated: npt.ArrayLike,
    clusters: npt.ArrayLike,
    level: float = 0.95,
) -> Estimate:
    """Treated - control difference in means with a CR1 cluster-robust standard error.

    OLS of ``y = b0 + b1 T`` (``X = [1, T]``, ``K = 2``); the sandwich
    ``V = c (X'X)^-1 (sum_g X_g' u_g u_g' X_g) (X'X)^-1`` with residuals ``u`` and the small-sample
    factor ``c = G/(G-1) * (N-1)/(N-K)`` over ``G`` clusters; ``se = sqrt(V[1,1])``; the
    interval and p-value use ``t_{G-1}``. Use when agents interacted, so outcomes within a
    cluster (a town, a conversation group) are not independent.
    """
    y = np.asarray(outcome, dtype=np.float64).ravel()
    t = np.asarray(treated, dtype=np.float64).ravel()
    groups = np.asarray(clusters).ravel()
    check_clustered(y, t, groups)
    design = np.column_stack([np.ones_like(t), t])
    bread = np.linalg.inv(design.T @ design)
    beta = bread @ design.T @ y
    residuals = y - design @ beta
    codes = pd.factorize(groups)[0]
    n_clusters = int(codes.max()) + 1
    scores = np.zeros((n_clusters, 2))
    np.add.at(scores, codes, design * residuals[:, None])
    meat = scores.T @ scores
    n = len(y)
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - 2)
    covariance = factor * bread @ meat @ bread
    se = math.sqrt(float(covariance[1, 1]))
    df = n_clusters - 1
    half = t_value(level, df) * se
    effect = float(beta[1])
    return Estimate(
        "mean difference",
        effect,
        effect - half,
        effect + half,
        level,
        f"OLS, CR1 cluster-robust SE ({n_clusters} clusters)",
        n,
        se=se,
        df=df,
        p_value=2 * float(stats.t.sf(abs(effect) / se, df)) if se > 0 else NAN,
    )


def check_clustered(y: FloatArray, treated: FloatArray, groups: npt.NDArray[np.generic]) -> None:
    if not len(y) == len(treated) == len(groups):
        raise StatsError(
            f"outcome, treated and clusters need equal lengths, got {len(y)}, {len(treated)}, "
            f"{len(groups)}"
        )
    if np.any(np.isnan(y)) or np.any(np.isnan(treated)):
        raise StatsError("outcome and treated must not hold missing values")
    if not np.all((treated == 0) | (treated == 1)) or len(np.unique(treated)) < 2:
        raise StatsError("treated must be 0/1 with both values present")
    if len(pd.unique(groups)) < 2:
        raise StatsError("cluster-robust errors need at least 2 clusters")
    if len(y) < 3:
        raise StatsError(f"a clustered difference needs at least 3 observations, got {len(y)}")


def cluster_bootstrap_difference(
    outcome: npt.ArrayLike,
    treated: npt.ArrayLike,
    clusters: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
) -> Estimate:
    """Treated - control difference in means with a cluster (block) bootstrap percentile interval.

    Each resample draws ``G`` clusters with replacement and keeps all their observations;
    resamples lacking an arm are skipped. ``se`` is the SD of the resampled differences.
    """
    check_level(level)
    y = np.asarray(outcome, dtype=np.float64).ravel()
    t = np.asarray(treated, dtype=np.float64).ravel()
    groups = np.asarray(clusters).ravel()
    check_clustered(y, t, groups)
    codes, uniques = pd.factorize(groups)
    members = [np.flatnonzero(codes == g) for g in range(len(uniques))]
    differences = []
    for _ in range(n_resamples):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        arm = t[rows]
        if 0 < arm.sum() < len(arm):
            differences.append(y[rows][arm == 1].mean() - y[rows][arm == 0].mean())
    if len(differences) < n_resamples // 2:
        raise StatsError("too few cluster resamples held both arms; clusters mix too little")
    boot = np.array(differences)
    alpha = 1 - level
    low, high = np.quantile(boot, (alpha / 2, 1 - alpha / 2))
    effect = float(y[t == 1].mean() - y[t == 0].mean())
    return Estimate(
        "mean difference",
        effect,
        float(low),
        float(high),
        level,
        f"cluster bootstrap percentile ({len(uniques)} clusters, B={len(boot)})",
        len(y),
        se=float(boot.std(ddof=1)),
    )
