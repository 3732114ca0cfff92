"""Drawing N agents from weighted records, and how close the sample's margins come to the targets.

Two designs, both seeded by a ``numpy.random.Generator``:

- with replacement: ``n`` independent draws, record ``i`` drawn with probability
  ``w_i / sum(w)`` each time (a record can appear more than once);
- without replacement: systematic probability-proportional-to-size sampling. Record ``i`` is
  included with probability ``pi_i = n * w_i / sum(w)`` exactly (records whose ``pi_i`` would
  exceed 1 are taken with certainty and the rest rescaled), so the sample's expected margins are
  the weighted margins. Records are laid out in a random order, or, with ``sort_by``, sorted by
  those columns in serpentine order (random within ties): this implicit stratification keeps the
  sample's margins of the sort columns close to the weighted ones (on the shipped data, n = 200,
  the mean largest margin error drops from about 0.064 to 0.035).

:func:`sample_report` compares, per variable and category, the target share, the weighted share
in the records (``population``) and the share in the sample.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> picks = sample_indices([1.0, 1.0, 2.0, 4.0], 2, rng)
>>> len(picks), len(set(picks.tolist()))
(2, 2)
>>> inclusion_probabilities([1.0, 1.0, 2.0, 4.0], 2).tolist()
[0.25, 0.25, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from societas.population.raking import Marginals, Targets, as_marginals

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SAMPLE_COLUMNS = ["variable", "category", "target", "population", "sample", "count"]


class SamplingError(ValueError):
    """The sample cannot be drawn as asked (bad weights, too few records)."""


def checked_weights(weights: npt.ArrayLike) -> FloatArray:
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise SamplingError("weights must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise SamplingError("weights must be finite, non-negative and not all zero")
    return values


def inclusion_probabilities(weights: npt.ArrayLike, n: int) -> FloatArray:
    """``pi_i`` proportional to weight with ``sum(pi) = n`` and every ``pi_i <= 1``.

    Records whose share would pass 1 are set to 1 (certainty) and the remaining size is spread
    over the others in proportion to weight, repeatedly until none passes 1.
    """
    values = checked_weights(weights)
    positive = int(np.sum(values > 0))
    if not 0 <= n <= positive:
        raise SamplingError(
            f"cannot draw {n} distinct records: only {positive} have a positive weight"
        )
    probabilities = np.zeros_like(values)
    certain = np.zeros(len(values), dtype=bool)
    while True:
        remaining = n - int(certain.sum())
        free = ~certain
        total = values[free].sum()
        probabilities[free] = remaining * values[free] / total if total > 0 else 0.0
        probabilities[certain] = 1.0
        over = free & (probabilities >= 1.0)
        if not over.any():
            return probabilities
        certain |= over


def sample_indices(
    weights: npt.ArrayLike,
    n: int,
    rng: np.random.Generator,
    *,
    replace: bool = False,
    sort_by: pd.DataFrame | None = None,
) -> IntArray:
    """Positions of ``n`` records drawn by weight (see the module's two designs).

    ``sort_by`` (one row per record; used without replacement only) gives the columns of the
    implicit stratification.
    """
    if n < 0:
        raise SamplingError(f"sample size must be non-negative, got {n}")
    values = checked_weights(weights)
    if replace:
        return rng.choice(len(values), size=n, replace=True, p=values / values.sum()).astype(
            np.int64
        )
    if sort_by is not None and len(sort_by) != len(values):
        raise SamplingError(f"sort_by has {len(sort_by)} rows for {len(values)} weights")
    return systematic_pps(inclusion_probabilities(values, n), rng, sort_by)


def serpentine_order(keys: pd.DataFrame, rng: np.random.Generator) -> IntArray:
    """Record positions sorted by ``keys``' columns, in serpentine order, random within ties.

    Serpentine: each column's direction flips with the position of the record's group in the
    columns before it, so neighbouring groups stay similar across every boundary.
    """
    prefix = np.zeros(len(keys), dtype=np.int64)
    adjusted: list[IntArray] = []
    for name in keys.columns:
        codes, uniques = pd.factorize(keys[name].astype(str), sort=True)
        size = len(uniques)
        flipped = np.where(prefix % 2 == 1, size - 1 - codes, codes).astype(np.int64)
        adjusted.append(flipped)
        prefix = prefix * size + flipped
    tiebreak = rng.permutation(len(keys))
    return np.lexsort([tiebreak, *reversed(adjusted)]).astype(np.int64)


def systematic_pps(
    probabilities: FloatArray, rng: np.random.Generator, sort_by: pd.DataFrame | None = None
) -> IntArray:
    """Systematic sampling with inclusion probabilities ``probabilities``.

    Certainty records are taken outright; the others are laid end to end (lengths ``pi_i``) in a
    random or ``sort_by`` order, and those hit by the points ``u, u + 1, ...`` (``u`` uniform on
    [0, 1)) are taken.
    """
    certain = np.flatnonzero(probabilities >= 1.0)
    if sort_by is None:
        layout = rng.permutation(len(probabilities)).astype(np.int64)
    else:
        layout = serpentine_order(sort_by, rng)
    inside = probabilities[layout]
    order = layout[(inside > 0) & (inside < 1.0)]
    wanted = round(float(probabilities.sum())) - len(certain)
    ends = np.cumsum(probabilities[order])
    start = rng.uniform()
    hits = np.floor(ends - start) - np.floor(np.concatenate(([0.0], ends[:-1])) - start)
    chosen = exact_size(order, hits > 0, probabilities[order], wanted)
    picked = np.concatenate((certain, chosen)).astype(np.int64)
    return picked[rng.permutation(len(picked))]


def exact_size(
    order: IntArray, hit: npt.NDArray[np.bool_], probabilities: FloatArray, wanted: int
) -> IntArray:
    """The hit records, trimmed or topped up to ``wanted``.

    Floating-point rounding of the running sum can, on a point falling exactly on a boundary,
    add or lose one hit; the size must stay exact, so the largest missed ``pi`` fills a gap and an
    extra hit at the end is dropped.
    """
    chosen = order[hit]
    if len(chosen) > wanted:
        return chosen[:wanted]
    if len(chosen) < wanted:
        missed = np.flatnonzero(~hit)
        fill = missed[np.argsort(-probabilities[missed], kind="stable")[: wanted - len(chosen)]]
        return np.concatenate((chosen, order[fill]))
    return chosen


@dataclass(frozen=True)
class SampleReport:
    """Margins of a drawn sample: target vs weighted records (``population``) vs sample.

    ``max_error`` is the largest ``|sample - target|`` over all categories (NaN without targets);
    ``distinct`` counts different records in the sample.
    """

    table: pd.DataFrame
    n: int
    replace: bool
    distinct: int
    max_error: float

    def get_state(self) -> dict[str, Any]:
        return {
            "table": self.table.to_dict(orient="records"),
            "n": self.n,
            "replace": self.replace,
            "distinct": self.distinct,
            "max_error": self.max_error,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SampleReport:
        return cls(
            table=pd.DataFrame(list(state["table"]), columns=SAMPLE_COLUMNS),
            n=int(state["n"]),
            replace=bool(state["replace"]),
            distinct=int(state["distinct"]),
            max_error=float(state["max_error"]),
        )

    def summary(self) -> str:
        design = "with" if self.replace else "without"
        return (
            f"sample of {self.n} ({self.distinct} distinct records, drawn {design} replacement); "
            f"max |sample - target| = {self.max_error:.3f}"
        )


def sample_report(
    mapped: pd.DataFrame,
    indices: Sequence[int] | IntArray,
    weights: npt.ArrayLike,
    targets: Targets | Marginals | None = None,
    *,
    variables: Sequence[str] | None = None,
    replace: bool = False,
) -> SampleReport:
    """Compare a sample's margins with the targets and the weighted records."""
    marginals = as_marginals(targets) if targets is not None else None
    values = checked_weights(weights)
    picks = np.asarray(indices, dtype=np.int64)
    names = list(variables) if variables is not None else report_variables(mapped, marginals)
    rows: list[dict[str, Any]] = []
    for name in names:
        rows += margin_rows(name, mapped[name].astype(str), picks, values, marginals)
    table = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    gaps = (table["sample"] - table["target"]).abs().dropna()
    return SampleReport(
        table=table,
        n=len(picks),
        replace=replace,
        distinct=len(np.unique(picks)),
        max_error=float(gaps.max()) if len(gaps) else float("nan"),
    )


def report_variables(mapped: pd.DataFrame, marginals: Marginals | None) -> list[str]:
    if marginals is None:
        return [str(name) for name in mapped.columns]
    return [name for name in marginals.variables if name in mapped.columns]


def margin_rows(
    name: str,
    column: pd.Series,
    picks: IntArray,
    weights: FloatArray,
    marginals: Marginals | None,
) -> list[dict[str, Any]]:
    targets = normalised(marginals.shares.get(name, {})) if marginals is not None else {}
    categories = list(dict.fromkeys([*targets, *sorted(column.unique())]))
    codes = pd.Categorical(column, categories=categories).codes
    population = np.bincount(codes, weights=weights, minlength=len(categories)) / weights.sum()
    counts = (
        np.bincount(codes[picks], minlength=len(categories))
        if len(picks)
        else np.zeros(len(categories), dtype=np.int64)
    )
    shares = counts / max(len(picks), 1)
    return [
        {
            "variable": name,
            "category": category,
            "target": targets.get(category, float("nan")),
            "population": float(population[index]),
            "sample": float(shares[index]),
            "count": int(counts[index]),
        }
        for index, category in enumerate(categories)
    ]


def normalised(shares: Mapping[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {category: share / total for category, share in shares.items()} if total > 0 else {}
