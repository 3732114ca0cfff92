"""Statistics of survey experiments: estimates with confidence intervals, in a tidy format.

Every estimator returns an :class:`Estimate` (one number with its interval, standard error,
p-value where one is defined, and the method's name); :func:`tidy` stacks estimates into a
DataFrame with the columns of ``TIDY_COLUMNS``. This module holds the estimators of one group, of
two independent groups, of paired values and the bootstrap; :mod:`societas.experiments.clustered`
those for outcomes correlated within clusters, and :mod:`societas.experiments.arm_tables` the
frame-level helpers (:func:`~societas.experiments.arm_tables.arm_summary`,
:func:`~societas.experiments.arm_tables.compare_arms`,
:func:`~societas.experiments.arm_tables.subgroup_effects`) built on them.
Notation: ``z`` is the standard normal quantile ``Phi^-1(1 - alpha/2)`` of the confidence
``level = 1 - alpha``; ``t_df`` the Student t quantile; ``s`` a sample standard deviation
(``n - 1`` denominator).

Examples
--------
>>> est = wilson_interval(8, 10)
>>> round(est.estimate, 2), round(est.ci_low, 3), round(est.ci_high, 3)
(0.8, 0.49, 0.943)
>>> round(mean_difference([3, 4, 5, 6], [1, 2, 3, 4]).estimate, 3)
2.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

FloatArray = npt.NDArray[np.float64]
Statistic = Callable[..., float]
BootstrapMethod = Literal["percentile", "bca"]
OutcomeKind = Literal["mean", "proportion"]
NAN = float("nan")
TIDY_COLUMNS = [
    "group",
    "estimand",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "level",
    "n",
    "df",
    "p_value",
    "method",
]


class StatsError(ValueError):
    """Input an estimator cannot use (too few values, bad counts, bad confidence level)."""


@dataclass(frozen=True)
class Estimate:
    """One estimate with its confidence interval (``se``, ``df``, ``p_value`` NaN when undefined).

    ``group`` says what it is about (an arm, ``"b - a"``, a subgroup); ``n`` the observations
    used (both arms for a comparison).
    """

    estimand: str
    estimate: float
    ci_low: float
    ci_high: float
    level: float
    method: str
    n: int
    group: str = ""
    se: float = NAN
    df: float = NAN
    p_value: float = NAN

    def with_group(self, group: str) -> Estimate:
        return Estimate(**{**asdict(self), "group": group})


def tidy(estimates: Iterable[Estimate]) -> pd.DataFrame:
    """Estimates as rows of a DataFrame with the columns ``TIDY_COLUMNS``."""
    return pd.DataFrame([asdict(e) for e in estimates], columns=TIDY_COLUMNS)


# --- helpers ------------------------------------------------------------------------------------


def z_value(level: float) -> float:
    """``Phi^-1(1 - alpha/2)`` for confidence ``level``."""
    check_level(level)
    return float(stats.norm.ppf(0.5 + level / 2))


def t_value(level: float, df: float) -> float:
    check_level(level)
    return float(stats.t.ppf(0.5 + level / 2, df))


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise StatsError(f"confidence level must be between 0 and 1, got {level}")


def as_values(values: npt.ArrayLike, what: str, minimum: int = 2) -> FloatArray:
    """A 1-D float array without NaN, with at least ``minimum`` values."""
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if len(array) < minimum:
        raise StatsError(f"{what}: needs at least {minimum} values, got {len(array)}")
    return array


def check_counts(successes: int, n: int, what: str = "proportion") -> None:
    if n <= 0 or not 0 <= successes <= n:
        raise StatsError(f"{what}: need 0 <= successes <= n and n > 0, got {successes}/{n}")


def binary_counts(values: npt.ArrayLike, what: str) -> tuple[int, int]:
    """Successes and n of 0/1 (or boolean) outcomes."""
    array = as_values(values, what, minimum=1)
    if not np.all((array == 0) | (array == 1)):
        raise StatsError(f"{what}: a proportion needs 0/1 outcomes")
    return int(array.sum()), len(array)


# --- one group ----------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Estimate:
    """Proportion ``p = x / n`` with the Wilson score interval.

    ``(p + z^2/(2n) +- z * sqrt(p(1-p)/n + z^2/(4n^2))) / (1 + z^2/n)``; ``se = sqrt(p(1-p)/n)``.
    """
    check_counts(successes, n)
    z = z_value(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Estimate(
        "proportion",
        p,
        max(0.0, centre - half),
        min(1.0, centre + half),
        level,
        "Wilson score",
        n,
        se=math.sqrt(p * (1 - p) / n),
    )


def t_interval(values: npt.ArrayLike, level: float = 0.95) -> Estimate:
    """Mean with the t interval ``mean +- t_{n-1} * s / sqrt(n)``."""
    data = as_values(values, "mean")
    n = len(data)
    se = float(data.std(ddof=1) / math.sqrt(n))
    half = t_value(level, n - 1) * se
    mean = float(data.mean())
    return Estimate("mean", mean, mean - half, mean + half, level, "t", n, se=se, df=n - 1)


# --- two groups ---------------------------------------------------------------------------------


def proportion_difference(
    successes_1: int, n_1: int, successes_2: int, n_2: int, level: float = 0.95
) -> Estimate:
    """``p1 - p2`` with Newcombe's hybrid score interval (from the two Wilson intervals).

    With Wilson limits ``(l1, u1)``, ``(l2, u2)`` and ``d = p1 - p2``:
    ``[d - sqrt((p1-l1)^2 + (u2-p2)^2), d + sqrt((u1-p1)^2 + (p2-l2)^2)]``.
    ``se`` is the unpooled Wald ``sqrt(p1 q1/n1 + p2 q2/n2)``; the p-value is the pooled
    two-proportion z-test's.
    """
    first = wilson_interval(successes_1, n_1, level)
    second = wilson_interval(successes_2, n_2, level)
    p1, p2 = first.estimate, second.estimate
    d = p1 - p2
    low = d - math.hypot(p1 - first.ci_low, second.ci_high - p2)
    high = d + math.hypot(first.ci_high - p1, p2 - second.ci_low)
    pooled = (successes_1 + successes_2) / (n_1 + n_2)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_1 + 1 / n_2))
    p_value = 2 * float(stats.norm.sf(abs(d) / pooled_se)) if pooled_se > 0 else NAN
    return Estimate(
        "difference in proportions",
        d,
        low,
        high,
        level,
        "Newcombe hybrid score",
        n_1 + n_2,
        se=math.sqrt(p1 * (1 - p1) / n_1 + p2 * (1 - p2) / n_2),
        p_value=p_value,
    )


def mean_difference(
    first: npt.ArrayLike, second: npt.ArrayLike, level: float = 0.95, *, equal_var: bool = False
) -> Estimate:
    """``mean1 - mean2`` with a t interval: Welch's by default, pooled with ``equal_var``.

    Welch: ``se = sqrt(s1^2/n1 + s2^2/n2)``, ``df = se^4 / ((s1^2/n1)^2/(n1-1) +
    (s2^2/n2)^2/(n2-1))``. Pooled: ``se = s_p sqrt(1/n1 + 1/n2)``, ``df = n1 + n2 - 2``.
    """
    a, b = as_values(first, "first group"), as_values(second, "second group")
    n1, n2 = len(a), len(b)
    v1, v2 = a.var(ddof=1) / n1, b.var(ddof=1) / n2
    if equal_var:
        se = pooled_sd(a, b) * math.sqrt(1 / n1 + 1 / n2)
        df: float = n1 + n2 - 2
        method = "pooled t"
    else:
        se = math.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if v1 + v2 > 0 else n1 + n2 - 2
        method = "Welch t"
    d = float(a.mean() - b.mean())
    half = t_value(level, df) * se
    p_value = 2 * float(stats.t.sf(abs(d) / se, df)) if se > 0 else NAN
    return Estimate(
        "mean difference",
        d,
        d - half,
        d + half,
        level,
        method,
        n1 + n2,
        se=se,
        df=df,
        p_value=p_value,
    )


def pooled_sd(first: FloatArray, second: FloatArray) -> float:
    """``s_p = sqrt(((n1-1) s1^2 + (n2-1) s2^2) / (n1 + n2 - 2))``."""
    n1, n2 = len(first), len(second)
    return math.sqrt(((n1 - 1) * first.var(ddof=1) + (n2 - 1) * second.var(ddof=1)) / (n1 + n2 - 2))


def cohens_d(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Cohen's d: ``(mean1 - mean2) / s_p`` with the pooled SD ``s_p``."""
    a, b = as_values(first, "first group"), as_values(second, "second group")
    spread = pooled_sd(a, b)
    if spread == 0:
        raise StatsError("Cohen's d is undefined when both groups have zero variance")
    return float((a.mean() - b.mean()) / spread)


def hedges_correction(df: float) -> float:
    """Exact small-sample factor ``J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))``.

    Close to ``1 - 3 / (4 df - 1)``; ``df = n1 + n2 - 2``.
    """
    return float(
        np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    )


def hedges_g(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Hedges' g: ``J(n1 + n2 - 2) * d``, Cohen's d corrected for small-sample bias."""
    a, b = as_values(first, "first group"), as_values(second, "second group")
    return hedges_correction(len(a) + len(b) - 2) * cohens_d(a, b)


def effect_size(
    first: npt.ArrayLike,
    second: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    kind: Literal["d", "g"] = "d",
    level: float = 0.95,
    n_resamples: int = 2000,
    method: BootstrapMethod = "bca",
) -> Estimate:
    """Cohen's d or Hedges' g with a bootstrap interval (groups resampled separately)."""
    statistic: Statistic = cohens_d if kind == "d" else hedges_g
    a, b = as_values(first, "first group"), as_values(second, "second group")
    estimate = bootstrap_ci(
        statistic, [a, b], rng, level=level, n_resamples=n_resamples, method=method
    )
    name = "Cohen's d" if kind == "d" else "Hedges' g"
    return Estimate(
        name,
        estimate.estimate,
        estimate.ci_low,
        estimate.ci_high,
        level,
        estimate.method,
        len(a) + len(b),
        se=estimate.se,
    )


def odds_ratio(
    successes_1: int, n_1: int, successes_2: int, n_2: int, level: float = 0.95
) -> Estimate:
    """Odds ratio of group 1 vs group 2 with the Wald interval of log(OR).

    Cells ``a = x1, b = n1 - x1, c = x2, d = n2 - x2``; when any cell is 0, 0.5 is added to every
    cell (Haldane-Anscombe). ``OR = a d / (b c)``, ``se(log OR) = sqrt(1/a + 1/b + 1/c + 1/d)``,
    interval ``exp(log OR +- z se)``; ``se`` is reported on the log scale.
    """
    check_counts(successes_1, n_1, "odds ratio, group 1")
    check_counts(successes_2, n_2, "odds ratio, group 2")
    cells = np.array(
        [successes_1, n_1 - successes_1, successes_2, n_2 - successes_2], dtype=np.float64
    )
    method = "log-OR Wald"
    if np.any(cells == 0):
        cells += 0.5
        method += ", 0.5 added to cells"
    a, b, c, d = cells
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(float(np.sum(1 / cells)))
    z = z_value(level)
    return Estimate(
        "odds ratio",
        math.exp(log_or),
        math.exp(log_or - z * se),
        math.exp(log_or + z * se),
        level,
        method,
        n_1 + n_2,
        se=se,
        p_value=2 * float(stats.norm.sf(abs(log_or) / se)),
    )


# --- paired (within-subject) --------------------------------------------------------------------


def paired_difference(first: npt.ArrayLike, second: npt.ArrayLike, level: float = 0.95) -> Estimate:
    """Mean of ``d_i = first_i - second_i``, paired t interval ``mean(d) +- t_{n-1} s_d/sqrt(n)``.

    Pairs with a missing value on either side are dropped.
    """
    a, b = paired_values(first, second)
    result = t_interval(a - b, level)
    p_value = (
        2 * float(stats.t.sf(abs(result.estimate) / result.se, result.df)) if result.se > 0 else NAN
    )
    return Estimate(
        "paired mean difference",
        result.estimate,
        result.ci_low,
        result.ci_high,
        level,
        "paired t",
        result.n,
        se=result.se,
        df=result.df,
        p_value=p_value,
    )


def paired_values(first: npt.ArrayLike, second: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise StatsError(f"paired data need equal lengths, got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 2:
        raise StatsError(f"paired data need at least 2 complete pairs, got {int(keep.sum())}")
    return a[keep], b[keep]


def paired_effect_size(
    first: npt.ArrayLike, second: npt.ArrayLike, level: float = 0.95
) -> Estimate:
    """``d_z = mean(d) / s_d`` with the normal interval ``d_z +- z sqrt(1/n + d_z^2 / (2n))``."""
    a, b = paired_values(first, second)
    diff = a - b
    spread = float(diff.std(ddof=1))
    if spread == 0:
        raise StatsError("d_z is undefined when every paired difference is the same")
    n = len(diff)
    dz = float(diff.mean()) / spread
    se = math.sqrt(1 / n + dz * dz / (2 * n))
    z = z_value(level)
    return Estimate("d_z", dz, dz - z * se, dz + z * se, level, "normal approximation", n, se=se)


def paired_analysis(
    first: npt.ArrayLike, second: npt.ArrayLike, level: float = 0.95
) -> pd.DataFrame:
    """Within-subject comparison (twins answering both conditions): mean difference and d_z."""
    return tidy([paired_difference(first, second, level), paired_effect_size(first, second, level)])


# --- bootstrap ----------------------------------------------------------------------------------


def bootstrap_ci(
    statistic: Statistic,
    samples: Sequence[npt.ArrayLike],
    rng: np.random.Generator,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    method: BootstrapMethod = "bca",
) -> Estimate:
    """Bootstrap interval of ``statistic(*samples)``, each sample resampled on its own.

    Percentile: the ``alpha/2`` and ``1 - alpha/2`` quantiles of the ``B`` resampled statistics.
    BCa (Efron): quantiles at ``Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))`` for
    ``z_q = Phi^-1(alpha/2), Phi^-1(1 - alpha/2)``, with bias correction
    ``z0 = Phi^-1(share of resampled statistics below the estimate)`` and acceleration
    ``a = sum_j sum_i U_ji^3 / n_j^3 / (6 (sum_j sum_i U_ji^2 / n_j^2)^1.5)``, where
    ``U_ji = (n_j - 1)(mean_i theta_(j,i) - theta_(j,i))`` are the jackknife influence values of
    deleting value ``i`` of sample ``j``. ``se`` is the SD of the resampled statistics.
    """
    check_level(level)
    if n_resamples < 100:
        raise StatsError(f"n_resamples must be at least 100, got {n_resamples}")
    data = [as_values(s, f"sample {i + 1}") for i, s in enumerate(samples)]
    estimate = float(statistic(*data))
    resampled = np.array(
        [
            statistic(*(s[rng.integers(0, len(s), len(s))] for s in data))
            for _ in range(n_resamples)
        ],
        dtype=np.float64,
    )
    resampled = resampled[np.isfinite(resampled)]
    alpha = 1 - level
    if method == "percentile":
        quantiles = (alpha / 2, 1 - alpha / 2)
    else:
        quantiles = bca_quantiles(statistic, data, estimate, resampled, alpha)
    low, high = np.quantile(resampled, quantiles)
    return Estimate(
        "bootstrap",
        estimate,
        float(low),
        float(high),
        level,
        f"bootstrap {method} (B={n_resamples})",
        sum(len(s) for s in data),
        se=float(resampled.std(ddof=1)),
    )


def bca_quantiles(
    statistic: Statistic,
    data: Sequence[FloatArray],
    estimate: float,
    resampled: FloatArray,
    alpha: float,
) -> tuple[float, float]:
    below = float(np.mean(resampled < estimate))
    if below in (0.0, 1.0):
        raise StatsError("BCa is undefined: every resampled statistic falls on one side")
    z0 = float(stats.norm.ppf(below))
    a = acceleration(statistic, data)
    bounds = []
    for q in (alpha / 2, 1 - alpha / 2):
        zq = float(stats.norm.ppf(q))
        bounds.append(float(stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))))
    return bounds[0], bounds[1]


def acceleration(statistic: Statistic, data: Sequence[FloatArray]) -> float:
    """The BCa acceleration from jackknife values, over all samples (see :func:`bootstrap_ci`)."""
    numerator = 0.0
    denominator = 0.0
    for j, sample in enumerate(data):
        n = len(sample)
        leave_out = np.array(
            [
                statistic(*(np.delete(s, i) if k == j else s for k, s in enumerate(data)))
                for i in range(n)
            ],
            dtype=np.float64,
        )
        influence = (n - 1) * (leave_out.mean() - leave_out)
        numerator += float(np.sum(influence**3)) / n**3
        denominator += float(np.sum(influence**2)) / n**2
    return numerator / (6 * denominator**1.5) if denominator > 0 else 0.0
