"""Equivalence tests for null controls: is a simulated effect *shown* to be near zero?

Non-significance is not evidence of no effect: a small sample (or a population answering all
alike, which has no usable standard error) "retains" every null. A null control is therefore
judged by two one-sided tests (TOST, Schuirmann 1987) against an equivalence margin ``+-bound``:
the effect is equivalent to zero when its 90% interval lies inside the margin (both one-sided
p below 0.05). The margin is 0.2 in d, or the human interval's farthest end when that is wider.

Verdicts:

- ``equivalent``: TOST rejects both "d <= -bound" and "d >= bound";
- ``effect``: the 95% interval excludes 0 and the effect is not equivalent (the simulation
  finds an effect people do not show);
- ``unresolved``: neither; also when the effect has no standard error (no spread).

:func:`tost_power` is the chance TOST would conclude equivalence were the true effect exactly 0,
given the standard error achieved: ``2 Phi(bound / se - z_0.95) - 1`` (floored at 0).

Examples
--------
>>> judge_null(0.02, 0.05, human_ci=(-0.04, 0.09)).verdict
'equivalent'
>>> judge_null(0.02, 0.5, human_ci=None).verdict
'unresolved'
>>> round(judge_null(0.02, 0.5, human_ci=None).power, 3)
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats as scipy_stats

MIN_BOUND = 0.2
ALPHA = 0.05
Z95 = 1.959963984540054
Verdict = Literal["equivalent", "effect", "unresolved"]


@dataclass(frozen=True)
class NullJudgement:
    """A null control's verdict, its margin, the TOST p-value and the achieved power."""

    verdict: Verdict
    bound: float
    p: float
    power: float


def equivalence_bound(human_ci: tuple[float, float] | None) -> float:
    """0.2, or the farthest end of the human interval when that is wider."""
    if human_ci is None:
        return MIN_BOUND
    return max(MIN_BOUND, abs(human_ci[0]), abs(human_ci[1]))


def tost_p(d: float, se: float, bound: float) -> float:
    """The larger of the two one-sided p-values (normal approximation)."""
    lower = scipy_stats.norm.sf((d + bound) / se)
    upper = scipy_stats.norm.cdf((d - bound) / se)
    return float(max(lower, upper))


def tost_power(se: float, bound: float, alpha: float = ALPHA) -> float:
    """Chance of concluding equivalence at a true effect of 0 with standard error ``se``."""
    if not math.isfinite(se) or se <= 0:
        return 0.0
    z = float(scipy_stats.norm.ppf(1 - alpha))
    return max(0.0, 2 * float(scipy_stats.norm.cdf(bound / se - z)) - 1)


def judge_null(d: float, se: float, human_ci: tuple[float, float] | None) -> NullJudgement:
    """The verdict on a null control whose simulated effect is ``d`` with standard error ``se``."""
    bound = equivalence_bound(human_ci)
    if not (math.isfinite(d) and math.isfinite(se)) or se <= 0:
        return NullJudgement("unresolved", bound, math.nan, 0.0)
    p = tost_p(d, se, bound)
    power = tost_power(se, bound)
    if p < ALPHA:
        return NullJudgement("equivalent", bound, p, power)
    if abs(d) > Z95 * se:
        return NullJudgement("effect", bound, p, power)
    return NullJudgement("unresolved", bound, p, power)
