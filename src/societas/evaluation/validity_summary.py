"""The suite's summary: every aggregate with its denominator, so nothing drops out unseen.

:func:`summarize` turns per-item :class:`~.validity_metrics.ItemScore` rows into a
:class:`SuiteSummary`. Every figure is stored as ``k`` of ``N`` (or "over k of N items"):

- **sign agreement** over all replicated effects; a zero or undefined simulated effect is a miss;
- **nulls**: how many null controls the equivalence test shows ``equivalent``, how many show an
  ``effect`` and how many stay ``unresolved`` (a constant responder is unresolved, never
  "retained"), with the median achieved power;
- **correlations** (Pearson and Spearman) of simulated against human d over every item with an
  effective d (a simulated 0 counts as 0), with 95% percentile intervals from a bootstrap that
  resamples *paradigms* (the four anchoring items move together; they are one cluster);
- **median magnitude ratio** (signed) and **median dispersion ratio**, each over the k items
  where it is defined out of N;
- **level error**: mean absolute simulated-minus-human arm level, over items with human levels;
- **saturated** items and **attrition** (agents without a usable answer, of agents asked).

Examples
--------
>>> from societas.evaluation.validity_metrics import SimulatedEffect, score_item
>>> flat = SimulatedEffect(d=0.0, low=float("nan"), high=float("nan"), raw_difference=0.0)
>>> s = summarize([score_item("a", "effect", human=1.75, human_ci=None, effect=flat)])
>>> s.sign_agreement_k, s.sign_agreement_n
(0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from societas.evaluation.validity_metrics import ItemScore

BOOTSTRAP_RESAMPLES = 2000
NAN = float("nan")


@dataclass(frozen=True)
class SuiteSummary:
    """Across experiments (effects: replicated effects only; nulls: null controls only)."""

    condition: str
    items: int
    effects: int
    nulls: int
    sign_agreement_k: int
    sign_agreement_n: int
    nulls_equivalent: int
    nulls_effect: int
    nulls_unresolved: int
    median_null_power: float
    pearson: float
    pearson_low: float
    pearson_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    correlation_k: int
    paradigms: int
    median_magnitude_ratio: float
    magnitude_k: int
    median_dispersion_ratio: float
    dispersion_k: int
    mean_level_error: float
    level_k: int
    mean_modal_share: float
    saturated: int
    failed: int
    asked: int
    first_option: int = 0
    order_answers: int = 0
    first_option_expected: float = NAN
    stimulus_shown: int = 0
    stimulus_answers: int = 0
    mean_tvd: float = NAN
    mean_tvd_uniform: float = NAN
    mean_tvd_majority: float = NAN
    tvd_k: int = 0

    @property
    def sign_agreement(self) -> float:
        return fraction(self.sign_agreement_k, self.sign_agreement_n)

    @property
    def first_option_p(self) -> float:
        """Two-sided binomial p of the first-option count against chance's share (an order
        effect when small)."""
        if not self.order_answers or not math.isfinite(self.first_option_expected):
            return NAN
        test = scipy_stats.binomtest(
            self.first_option, self.order_answers, self.first_option_expected
        )
        return float(test.pvalue)

    @property
    def nulls_equivalent_share(self) -> float:
        return fraction(self.nulls_equivalent, self.nulls)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "sign_agreement": self.sign_agreement,
            "nulls_equivalent_share": self.nulls_equivalent_share,
            "first_option_p": self.first_option_p,
        }

    def lines(self) -> list[str]:
        """The summary as plain text, every figure with its denominator."""
        power = f"median power {figure(self.median_null_power)}"
        return [
            f"sign agreement {self.sign_agreement_k}/{self.sign_agreement_n} effects "
            f"({figure(self.sign_agreement)}; a zero or undefined effect is a miss)",
            f"nulls: {self.nulls_equivalent}/{self.nulls} equivalent to 0, {self.nulls_effect} "
            f"show an effect, {self.nulls_unresolved} unresolved ({power})",
            f"Pearson r {figure(self.pearson)} [{figure(self.pearson_low)}, "
            f"{figure(self.pearson_high)}], Spearman r {figure(self.spearman)} "
            f"[{figure(self.spearman_low)}, {figure(self.spearman_high)}] over "
            f"{self.correlation_k}/{self.items} items in {self.paradigms} paradigms",
            f"median signed magnitude ratio {figure(self.median_magnitude_ratio)} "
            f"(over {self.magnitude_k}/{self.effects} effects), median SD ratio "
            f"{figure(self.median_dispersion_ratio)} (over {self.dispersion_k}/{self.items})",
            f"mean |level error| {figure(self.mean_level_error)} (over {self.level_k}/"
            f"{self.items}), saturated {self.saturated}/{self.items}, modal share "
            f"{figure(self.mean_modal_share)}, failed answers {self.failed}/{self.asked} agents",
            f"answer shares vs people (binary items with human shares, {self.tvd_k}/{self.items}):"
            f" mean TVD {figure(self.mean_tvd)}; uniform answerer {figure(self.mean_tvd_uniform)},"
            f" majority answerer {figure(self.mean_tvd_majority)} (lower is closer)",
            f"option order: first option shown taken {self.first_option}/{self.order_answers} "
            f"(chance {figure(self.first_option_expected)}, binomial p "
            f"{figure(self.first_option_p)}); stimulus in the prompt "
            f"{self.stimulus_shown}/{self.stimulus_answers} answers of stimulus arms",
        ]


def summarize(
    scores: Sequence[ItemScore],
    condition: str = "full",
    *,
    rng: np.random.Generator | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> SuiteSummary:
    """Score the suite (see the module docstring); ``rng`` seeds the bootstrap."""
    rng = rng if rng is not None else np.random.default_rng(0)
    effects = [s for s in scores if s.kind == "effect"]
    nulls = [s for s in scores if s.kind == "null"]
    signs = [s.sign_agrees for s in effects if s.sign_agrees is not None]
    paired = [s for s in scores if math.isfinite(s.effective_d)]
    correlation = cluster_correlations(paired, rng, resamples)
    ratios = [s.magnitude_ratio for s in effects if math.isfinite(s.magnitude_ratio)]
    spreads = [s.dispersion_ratio for s in scores if math.isfinite(s.dispersion_ratio)]
    levels = [s.level_error for s in scores if math.isfinite(s.level_error)]
    with_shares = [s for s in scores if math.isfinite(s.tvd)]
    return SuiteSummary(
        condition=condition,
        items=len(scores),
        effects=len(effects),
        nulls=len(nulls),
        sign_agreement_k=sum(signs),
        sign_agreement_n=len(signs),
        nulls_equivalent=sum(s.null_verdict == "equivalent" for s in nulls),
        nulls_effect=sum(s.null_verdict == "effect" for s in nulls),
        nulls_unresolved=sum(s.null_verdict == "unresolved" for s in nulls),
        median_null_power=median([s.equivalence_power for s in nulls]),
        pearson=correlation[0][0],
        pearson_low=correlation[0][1],
        pearson_high=correlation[0][2],
        spearman=correlation[1][0],
        spearman_low=correlation[1][1],
        spearman_high=correlation[1][2],
        correlation_k=len(paired),
        paradigms=len({s.paradigm for s in paired}),
        median_magnitude_ratio=median(ratios),
        magnitude_k=len(ratios),
        median_dispersion_ratio=median(spreads),
        dispersion_k=len(spreads),
        mean_level_error=mean(levels),
        level_k=len(levels),
        mean_modal_share=mean([s.modal_share for s in scores]),
        saturated=sum(s.saturated for s in scores),
        failed=sum(s.failed for s in scores),
        asked=sum(s.asked for s in scores),
        first_option=sum(s.first_option for s in scores),
        order_answers=sum(s.order_answers for s in scores),
        first_option_expected=weighted_chance(scores),
        stimulus_shown=sum(s.stimulus_shown for s in scores),
        stimulus_answers=sum(s.stimulus_answers for s in scores),
        mean_tvd=mean([s.tvd for s in with_shares]),
        mean_tvd_uniform=mean([s.tvd_uniform for s in with_shares]),
        mean_tvd_majority=mean([s.tvd_majority for s in with_shares]),
        tvd_k=len(with_shares),
    )


def weighted_chance(scores: Sequence[ItemScore]) -> float:
    """Chance's share of first-option answers, over all recorded choice answers."""
    total = sum(s.order_answers for s in scores)
    if not total:
        return NAN
    return sum(s.first_option_expected * s.order_answers for s in scores if s.order_answers) / total


Interval = tuple[float, float, float]


def cluster_correlations(
    scores: Sequence[ItemScore], rng: np.random.Generator, resamples: int
) -> tuple[Interval, Interval]:
    """Pearson and Spearman r with 95% percentile intervals over resampled paradigms."""
    sim = np.array([s.effective_d for s in scores], np.float64)
    human = np.array([s.human_d for s in scores], np.float64)
    point = correlations(sim, human)
    groups = sorted({s.paradigm for s in scores})
    members = {g: [i for i, s in enumerate(scores) if s.paradigm == g] for g in groups}
    draws: list[tuple[float, float]] = []
    if len(groups) >= 3:
        for _ in range(resamples):
            picked = rng.integers(0, len(groups), len(groups))
            rows = [i for g in picked for i in members[groups[g]]]
            draws.append(correlations(sim[rows], human[rows]))
    bounds = []
    for which in (0, 1):
        finite = [d[which] for d in draws if math.isfinite(d[which])]
        if len(finite) < resamples / 2:  # most resamples without variation: no interval
            bounds.append((NAN, NAN))
        else:
            low, high = np.percentile(finite, [2.5, 97.5])
            bounds.append((float(low), float(high)))
    return (point[0], *bounds[0]), (point[1], *bounds[1])


def correlations(
    sim: Sequence[float] | npt.NDArray[np.float64], human: Sequence[float] | npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Pearson and Spearman r (NaN with fewer than 3 pairs or no variation)."""
    x, y = np.asarray(sim, np.float64), np.asarray(human, np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN, NAN
    return float(scipy_stats.pearsonr(x, y)[0]), float(scipy_stats.spearmanr(x, y)[0])


def fraction(k: int, n: int) -> float:
    return k / n if n else NAN


def median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else NAN


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else NAN


def figure(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.2f}"
