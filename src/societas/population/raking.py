"""Raking: weighting records so that their weighted margins match known population shares.

Raking (iterative proportional fitting on the margins) adjusts one weight per record so that, for
every target variable at once, the weighted share of each category equals its target share. One
pass visits every variable ``v`` and multiplies the weight of each record in category ``c`` by

    target[v][c] * sum(w) / sum(w of records in c)

Passes repeat until no weighted share is further than ``tolerance`` from its target. Records are
never split or invented, so the joint structure inside the records (who is old *and* married) is
kept; only how much each record counts changes.

Options: starting ``base_weights``; weight trimming (``trim=(low, high)``, as multiples of the
mean weight, applied after every pass, so raking goes on within the caps); targets that do not
sum to 1 are renormalised and reported; a target category with no records is an error, or, with
``empty_categories="drop"``, dropped and the variable's other targets renormalised (reported).

The report gives, per variable and category, the target share, the unweighted share of the
records and the achieved weighted share, with Kish's design effect
``deff = n * sum(w**2) / sum(w)**2`` and effective sample size ``n_eff = sum(w)**2 / sum(w**2)``.

Examples
--------
>>> import pandas as pd
>>> records = pd.DataFrame({"sex": ["F", "F", "F", "M"], "old": ["y", "n", "n", "n"]})
>>> result = rake(records, {"sex": {"F": 0.5, "M": 0.5}, "old": {"y": 0.25, "n": 0.75}})
>>> [round(float(w), 3) for w in result.weights]
[1.0, 0.5, 0.5, 2.0]
>>> round(result.report.effective_sample_size, 2)
2.91
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from societas.population.microdata import (
    MicrodataError,
    data_path,
    read_csv_rows,
    to_float,
    where,
)

US_MARGINALS = "us_adult_marginals.csv"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Targets = Mapping[str, Mapping[str, float]]
EmptyPolicy = Literal["error", "drop"]
RENORMALISE_SLACK = 1e-9
TRIM_ROUNDS = 100
TRIM_SLACK = 1e-9
REPORT_COLUMNS = ["variable", "category", "target", "unweighted", "achieved", "records"]


class RakingError(ValueError):
    """Raking cannot start: unknown variables, uncovered categories, impossible targets."""


class RakingWarning(UserWarning):
    """Raking stopped before every margin was within tolerance (see the report)."""


# --- marginals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marginals:
    """Target shares per variable and category, with where each variable's figures come from.

    ``shares`` are kept as given (they may not sum to 1; :func:`rake` renormalises and reports).
    """

    shares: dict[str, dict[str, float]]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        return list(self.shares)

    def select(self, variables: Iterable[str]) -> Marginals:
        """Only ``variables`` (an error names any that is missing)."""
        names = list(variables)
        missing = [name for name in names if name not in self.shares]
        if missing:
            raise RakingError(f"no marginals for {missing}; known variables: {self.variables}")
        return Marginals(
            {name: dict(self.shares[name]) for name in names},
            {name: self.sources[name] for name in names if name in self.sources},
        )

    def merged(self, merges: Mapping[str, Mapping[str, Sequence[str]]]) -> Marginals:
        """Combine categories: ``{variable: {new category: [categories it replaces]}}``.

        Used when records cannot tell categories apart (e.g. GSS degrees code "some college, no
        degree" as high school): the combined target is the sum of its parts.

        >>> m = Marginals({"edu": {"hs": 0.3, "college": 0.2, "ba": 0.5}})
        >>> m.merged({"edu": {"hs_college": ["hs", "college"]}}).shares
        {'edu': {'ba': 0.5, 'hs_college': 0.5}}
        """
        shares = {v: dict(c) for v, c in self.shares.items()}
        for variable, groups in merges.items():
            if variable not in shares:
                continue
            for group, parts in groups.items():
                missing = [part for part in parts if part not in shares[variable]]
                if missing:
                    raise RakingError(
                        f"cannot merge {missing} of {variable!r} into {group!r}: no such "
                        f"categories; known: {list(shares[variable])}"
                    )
                shares[variable][group] = sum(shares[variable].pop(part) for part in parts)
        return Marginals(shares, dict(self.sources))

    def get_state(self) -> dict[str, Any]:
        return {
            "shares": {v: dict(c) for v, c in self.shares.items()},
            "sources": dict(self.sources),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Marginals:
        return cls(
            {
                str(v): {str(c): float(s) for c, s in cats.items()}
                for v, cats in state["shares"].items()
            },
            {str(k): str(v) for k, v in state.get("sources", {}).items()},
        )


def load_marginals(path: str | Path | None = None) -> Marginals:
    """Read a marginals CSV (columns ``variable, category, share``; ``source`` optional).

    The shipped US adult marginals when ``path`` is None. Shares must be non-negative numbers;
    they may be counts or rounded figures (renormalised when raking). Errors name file, line and
    column.
    """
    target = Path(path) if path is not None else data_path(US_MARGINALS)
    source = str(path) if path is not None else f"societas/population/data/{US_MARGINALS}"
    header, rows = read_csv_rows(target)
    needed = ["variable", "category", "share"]
    missing = [name for name in needed if name not in header]
    if missing:
        raise MicrodataError(f"{where(source, 1)}: missing column(s) {missing}")
    if not rows:
        raise MicrodataError(f"{source}: no marginals below the header")
    position = {name: header.index(name) for name in header}
    shares: dict[str, dict[str, float]] = {}
    sources: dict[str, str] = {}
    for line, cells in rows:
        variable, category = cells[position["variable"]], cells[position["category"]]
        for name, cell in (("variable", variable), ("category", category)):
            if not cell:
                raise MicrodataError(f"{where(source, line, name)}: empty")
        share = to_float(cells[position["share"]], where(source, line, "share"))
        if share < 0:
            raise MicrodataError(f"{where(source, line, 'share')}: {share} is negative")
        if category in shares.get(variable, {}):
            raise MicrodataError(
                f"{where(source, line, 'category')}: {variable}/{category} is listed twice"
            )
        shares.setdefault(variable, {})[category] = share
        if "source" in position and cells[position["source"]]:
            sources.setdefault(variable, cells[position["source"]])
    return Marginals(shares, sources)


def as_marginals(targets: Targets | Marginals) -> Marginals:
    if isinstance(targets, Marginals):
        return targets
    return Marginals(
        {str(v): {str(c): float(s) for c, s in cats.items()} for v, cats in targets.items()}
    )


# --- the report ---------------------------------------------------------------------------------


def kish_design_effect(weights: npt.ArrayLike) -> float:
    """Kish's design effect of unequal weights: ``n * sum(w**2) / sum(w)**2`` (1 when equal)."""
    w = np.asarray(weights, dtype=np.float64)
    return float(len(w) * np.sum(w**2) / np.sum(w) ** 2)


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size: ``sum(w)**2 / sum(w**2)`` (= n / design effect)."""
    w = np.asarray(weights, dtype=np.float64)
    return float(np.sum(w) ** 2 / np.sum(w**2))


@dataclass(frozen=True)
class RakingReport:
    """What raking did: per-category shares, convergence, and the cost of the weights.

    ``table`` has one row per variable and category: ``target`` (renormalised target share),
    ``unweighted`` (share of records), ``achieved`` (weighted share), ``records`` (count).
    ``renormalised`` maps a variable to the sum its targets had when that was not 1; ``dropped``
    lists ``(variable, category)`` targets dropped for having no records. ``trimmed`` counts
    weights sitting at a trimming cap.
    """

    table: pd.DataFrame
    iterations: int
    converged: bool
    max_error: float
    n: int
    design_effect: float
    effective_sample_size: float
    weight_ratio: float
    trimmed: int = 0
    renormalised: dict[str, float] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def get_state(self) -> dict[str, Any]:
        return {
            "table": self.table.to_dict(orient="records"),
            "iterations": self.iterations,
            "converged": self.converged,
            "max_error": self.max_error,
            "n": self.n,
            "design_effect": self.design_effect,
            "effective_sample_size": self.effective_sample_size,
            "weight_ratio": self.weight_ratio,
            "trimmed": self.trimmed,
            "renormalised": dict(self.renormalised),
            "dropped": [list(pair) for pair in self.dropped],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RakingReport:
        return cls(
            table=pd.DataFrame(list(state["table"]), columns=REPORT_COLUMNS),
            iterations=int(state["iterations"]),
            converged=bool(state["converged"]),
            max_error=float(state["max_error"]),
            n=int(state["n"]),
            design_effect=float(state["design_effect"]),
            effective_sample_size=float(state["effective_sample_size"]),
            weight_ratio=float(state["weight_ratio"]),
            trimmed=int(state.get("trimmed", 0)),
            renormalised={str(k): float(v) for k, v in state.get("renormalised", {}).items()},
            dropped=[(str(v), str(c)) for v, c in state.get("dropped", [])],
        )

    def summary(self) -> str:
        """A few lines for a terminal: convergence, weights, and the worst-fitting margins."""
        status = "converged" if self.converged else "NOT converged"
        lines = [
            f"raking {status} after {self.iterations} pass(es); max |achieved - target| = "
            f"{self.max_error:.2e}",
            f"n = {self.n}, design effect = {self.design_effect:.2f}, effective n = "
            f"{self.effective_sample_size:.0f}, max/min weight = {self.weight_ratio:.1f}",
        ]
        lines += [
            f"targets of {v} summed to {s:.4f}; renormalised" for v, s in self.renormalised.items()
        ]
        lines += [f"dropped target {v}/{c}: no records" for v, c in self.dropped]
        return "\n".join(lines)


@dataclass(frozen=True)
class RakingResult:
    """Raked weights (mean 1, aligned with the records' rows) and the report."""

    weights: FloatArray
    report: RakingReport


# --- raking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Margin:
    """One variable ready for raking: record codes and target shares by code."""

    name: str
    categories: list[str]
    codes: IntArray
    targets: FloatArray


def rake(
    mapped: pd.DataFrame,
    targets: Targets | Marginals,
    *,
    variables: Sequence[str] | None = None,
    base_weights: npt.ArrayLike | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 500,
    trim: tuple[float | None, float | None] | None = None,
    empty_categories: EmptyPolicy = "error",
) -> RakingResult:
    """Rake record weights to the target shares of several variables at once.

    ``mapped`` holds one column of category labels per target variable (see
    :func:`societas.population.microdata.apply_mapping`); ``variables`` defaults to every
    variable that has both a column and targets. ``trim=(low, high)`` bounds each weight to
    ``[low, high] * mean weight`` (either may be None). Weights come back with mean 1.
    A result that misses ``tolerance`` after ``max_iterations`` passes is returned with
    ``report.converged`` False and a :class:`RakingWarning`.
    """
    marginals = as_marginals(targets)
    check_settings(tolerance, max_iterations, trim)
    names = pick_variables(mapped, marginals, variables)
    weights = start_weights(base_weights, len(mapped))
    renormalised: dict[str, float] = {}
    dropped: list[tuple[str, str]] = []
    margins = [
        prepare_margin(
            mapped[name],
            name,
            marginals.shares[name],
            weights,
            empty_categories,
            renormalised,
            dropped,
        )
        for name in names
    ]
    weights, iterations, error, clipped = iterate(weights, margins, tolerance, max_iterations, trim)
    weights = weights * (len(weights) / weights.sum())
    converged = error <= tolerance
    if not converged:
        warnings.warn(
            f"raking stopped after {iterations} passes with a margin {error:.2e} off target "
            f"(tolerance {tolerance:.0e}); targets may conflict with each other or with trim caps",
            RakingWarning,
            stacklevel=2,
        )
    report = build_report(margins, weights, iterations, converged, error, clipped)
    report = replace(report, renormalised=renormalised, dropped=dropped)
    return RakingResult(weights, report)


def check_settings(
    tolerance: float, max_iterations: int, trim: tuple[float | None, float | None] | None
) -> None:
    if not tolerance > 0:
        raise RakingError(f"tolerance must be positive, got {tolerance}")
    if max_iterations < 1:
        raise RakingError(f"max_iterations must be at least 1, got {max_iterations}")
    if trim is not None:
        low, high = trim
        if low is not None and not 0 <= low <= 1:
            raise RakingError(f"lower trim must be in [0, 1] (a multiple of the mean), got {low}")
        if high is not None and high < 1:
            raise RakingError(f"upper trim must be at least 1 (a multiple of the mean), got {high}")


def pick_variables(
    mapped: pd.DataFrame, marginals: Marginals, variables: Sequence[str] | None
) -> list[str]:
    if variables is None:
        names = [name for name in marginals.variables if name in mapped.columns]
        if not names:
            raise RakingError(
                f"no variable has both records and targets (records: {list(mapped.columns)}; "
                f"targets: {marginals.variables})"
            )
        return names
    names = list(variables)
    for name in names:
        if name not in mapped.columns:
            raise RakingError(f"variable {name!r} is not a column of the mapped records")
        if name not in marginals.shares:
            raise RakingError(f"variable {name!r} has no targets; known: {marginals.variables}")
    if not names:
        raise RakingError("no variables to rake on")
    return names


def start_weights(base_weights: npt.ArrayLike | None, n: int) -> FloatArray:
    if n == 0:
        raise RakingError("no records to rake")
    if base_weights is None:
        return np.ones(n, dtype=np.float64)
    weights = np.asarray(base_weights, dtype=np.float64).copy()
    if weights.shape != (n,):
        raise RakingError(f"base_weights has shape {weights.shape}; expected ({n},)")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise RakingError("base_weights must be finite, non-negative and not all zero")
    scaled: FloatArray = weights * (n / weights.sum())
    return scaled


def prepare_margin(
    column: pd.Series,
    name: str,
    shares: Mapping[str, float],
    weights: FloatArray,
    empty: EmptyPolicy,
    renormalised: dict[str, float],
    dropped: list[tuple[str, str]],
) -> _Margin:
    """Codes and normalised targets of one variable, checking records against targets."""
    values = column.astype(str)
    uncovered = sorted(set(values.unique()) - set(shares))
    if uncovered:
        counts = {v: int((values == v).sum()) for v in uncovered}
        raise RakingError(
            f"variable {name!r}: record categories {counts} have no target; targets are "
            f"{list(shares)} (fix the mapping or add targets)"
        )
    categories = list(shares)
    codes = pd.Categorical(values, categories=categories).codes.astype(np.int64)
    present = np.bincount(codes, weights=weights, minlength=len(categories)) > 0
    target = np.array([shares[c] for c in categories], dtype=np.float64)
    for index, category in enumerate(categories):
        if target[index] > 0 and not present[index]:
            if empty == "error":
                raise RakingError(
                    f"variable {name!r}: target category {category!r} (share {target[index]:g}) "
                    "has no records; map records to it, or pass empty_categories='drop'"
                )
            dropped.append((name, category))
            target[index] = 0.0
    total = float(target.sum())
    if total <= 0:
        raise RakingError(f"variable {name!r}: no positive target share is left")
    if abs(total - 1.0) > RENORMALISE_SLACK:
        renormalised[name] = total
    return _Margin(name, categories, codes, target / total)


def iterate(
    weights: FloatArray,
    margins: Sequence[_Margin],
    tolerance: float,
    max_iterations: int,
    trim: tuple[float | None, float | None] | None,
) -> tuple[FloatArray, int, float, int]:
    """Raking passes until every margin is within tolerance.

    Returns the weights, the number of passes, the largest margin error and how many weights the
    last pass's trimming clipped.
    """
    error = math.inf
    clipped = 0
    passes = 0
    while passes < max_iterations and error > tolerance:
        passes += 1
        for margin in margins:
            weights = adjust(weights, margin)
        if trim is not None:
            weights, clipped = apply_trim(weights, trim)
        error = max_margin_error(weights, margins)
    return weights, passes, error, clipped


def adjust(weights: FloatArray, margin: _Margin) -> FloatArray:
    """One raking step: scale each category's weights to its target share of the total."""
    totals = np.bincount(margin.codes, weights=weights, minlength=len(margin.categories))
    wanted = margin.targets * weights.sum()
    factors = np.divide(wanted, totals, out=np.ones_like(totals), where=totals > 0)
    adjusted: FloatArray = weights * factors[margin.codes]
    return adjusted


def apply_trim(
    weights: FloatArray, trim: tuple[float | None, float | None]
) -> tuple[FloatArray, int]:
    """Clip weights to ``[low, high]`` times their mean; also returns how many were clipped.

    Clipping moves the mean, so it repeats until every weight is within the bounds of the mean
    it ends with.
    """
    low, high = trim
    clipped = np.zeros(len(weights), dtype=bool)
    for _ in range(TRIM_ROUNDS):
        mean = weights.mean()
        lower = low * mean if low is not None else -np.inf
        upper = high * mean if high is not None else np.inf
        outside = (weights < lower * (1 - TRIM_SLACK)) | (weights > upper * (1 + TRIM_SLACK))
        if not outside.any():
            break
        clipped |= outside
        weights = np.clip(weights, lower, upper)
    return weights, int(clipped.sum())


def weighted_shares(codes: IntArray, weights: FloatArray, size: int) -> FloatArray:
    totals: FloatArray = np.bincount(codes, weights=weights, minlength=size).astype(np.float64)
    shares: FloatArray = totals / weights.sum()
    return shares


def max_margin_error(weights: FloatArray, margins: Sequence[_Margin]) -> float:
    return max(
        float(np.max(np.abs(weighted_shares(m.codes, weights, len(m.categories)) - m.targets)))
        for m in margins
    )


def build_report(
    margins: Sequence[_Margin],
    weights: FloatArray,
    iterations: int,
    converged: bool,
    error: float,
    trimmed: int,
) -> RakingReport:
    """The report of raked (or any) weights against the margins' targets."""
    rows: list[dict[str, Any]] = []
    ones = np.ones(len(weights), dtype=np.float64)
    for margin in margins:
        size = len(margin.categories)
        unweighted = weighted_shares(margin.codes, ones, size)
        achieved = weighted_shares(margin.codes, weights, size)
        counts = np.bincount(margin.codes, minlength=size)
        for index, category in enumerate(margin.categories):
            rows.append(
                {
                    "variable": margin.name,
                    "category": category,
                    "target": float(margin.targets[index]),
                    "unweighted": float(unweighted[index]),
                    "achieved": float(achieved[index]),
                    "records": int(counts[index]),
                }
            )
    positive = weights[weights > 0]
    return RakingReport(
        table=pd.DataFrame(rows, columns=REPORT_COLUMNS),
        iterations=iterations,
        converged=converged,
        max_error=float(error),
        n=len(weights),
        design_effect=kish_design_effect(weights),
        effective_sample_size=effective_sample_size(weights),
        weight_ratio=float(positive.max() / positive.min()),
        trimmed=trimmed,
    )
