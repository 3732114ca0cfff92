"""Believability scores: per-agent and per-category tables, bootstrap intervals, comparisons.

A run's score is the mean over the five categories of the category means (each category counts
the same, as in the paper's five questions per category). Answers of one agent are not
independent, so intervals come from a cluster bootstrap that resamples agents with all their
answers; comparisons of two architectures resample the same agents in both (the conditions run
the same scenario, so the agents are paired). With few agents the intervals are wide, as they
should be; with one agent they collapse to the estimate.

Examples
--------
>>> import numpy as np
>>> items = [("Ada", "memory", 1.0, False), ("Ada", "plans", 0.5, False),
...          ("Bo", "memory", 0.0, True), ("Bo", "plans", 0.5, False)]
>>> scores = ScoreTable.from_rows(items)
>>> summary = summarise(scores, np.random.default_rng(0), n_resamples=200)
>>> round(summary.overall.estimate, 3), summary.hallucination.estimate
(0.5, 0.25)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from societas.evaluation.believability.interviews import GradedItem
from societas.evaluation.believability.questions import CATEGORIES

FloatArray = npt.NDArray[np.float64]
N_RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class ScoreTable:
    """Per-agent sums: ``sums[a, c]`` and ``counts[a, c]`` of scores per category,
    ``flagged[a]`` hallucinations and ``graded[a]`` graded answers."""

    agents: tuple[str, ...]
    categories: tuple[str, ...]
    sums: FloatArray
    counts: FloatArray
    flagged: FloatArray
    graded: FloatArray

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[str, str, float | None, bool]],
        categories: Sequence[str] = CATEGORIES,
    ) -> ScoreTable:
        """From ``(agent, category, score or None, hallucinated)`` rows; None is left out."""
        graded = [r for r in rows if r[2] is not None]
        agents = tuple(sorted({r[0] for r in graded}))
        if not agents:
            raise ValueError("no graded answers to summarise")
        a_index = {a: i for i, a in enumerate(agents)}
        c_index = {c: i for i, c in enumerate(categories)}
        shape = (len(agents), len(categories))
        sums, counts = np.zeros(shape), np.zeros(shape)
        flagged, total = np.zeros(len(agents)), np.zeros(len(agents))
        for agent, category, score, hallucinated in graded:
            if category not in c_index:
                raise ValueError(f"unknown category {category!r}")
            a, c = a_index[agent], c_index[category]
            sums[a, c] += float(score or 0.0)
            counts[a, c] += 1
            flagged[a] += bool(hallucinated)
            total[a] += 1
        return cls(agents, tuple(categories), sums, counts, flagged, total)

    @classmethod
    def from_items(cls, items: Iterable[GradedItem]) -> ScoreTable:
        return cls.from_rows((i.agent, i.category, i.score, i.hallucinated) for i in items)

    def subset(self, agents: Sequence[str]) -> ScoreTable:
        """The rows of ``agents`` in that order (for pairing two conditions)."""
        rows = [self.agents.index(a) for a in agents]
        return ScoreTable(
            tuple(agents),
            self.categories,
            self.sums[rows],
            self.counts[rows],
            self.flagged[rows],
            self.graded[rows],
        )


def _category_means(sums: FloatArray, counts: FloatArray) -> FloatArray:
    """Means over the agent axis (second to last), NaN where a category has no answer."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums.sum(axis=-2) / counts.sum(axis=-2), dtype=np.float64)


def _overall(means: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nanmean(means, axis=-1), dtype=np.float64)


@dataclass(frozen=True)
class Summary:
    """One run's scores: per category, overall, hallucination rate (each with its interval)."""

    agents: int
    items: int
    categories: dict[str, Interval]
    overall: Interval
    hallucination: Interval


def _interval(estimate: float, draws: FloatArray, level: float) -> Interval:
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(estimate) or finite.size == 0:
        return Interval(estimate, float("nan"), float("nan"))
    alpha = 1 - level
    low, high = np.quantile(finite, (alpha / 2, 1 - alpha / 2))
    return Interval(float(estimate), float(low), float(high))


def _draws(n_agents: int, rng: np.random.Generator, n_resamples: int) -> npt.NDArray[np.intp]:
    return rng.integers(0, n_agents, size=(n_resamples, n_agents))


def summarise(
    table: ScoreTable,
    rng: np.random.Generator,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> Summary:
    """Category means, overall score and hallucination rate with cluster-bootstrap intervals."""
    picks = _draws(len(table.agents), rng, n_resamples)
    means = _category_means(table.sums, table.counts)
    boot_means = _category_means(table.sums[picks], table.counts[picks])
    rate = table.flagged.sum() / table.graded.sum()
    boot_rate = table.flagged[picks].sum(axis=1) / table.graded[picks].sum(axis=1)
    return Summary(
        agents=len(table.agents),
        items=int(table.graded.sum()),
        categories={
            c: _interval(float(means[i]), boot_means[:, i], level)
            for i, c in enumerate(table.categories)
        },
        overall=_interval(float(_overall(means)), _overall(boot_means), level),
        hallucination=_interval(float(rate), boot_rate, level),
    )


@dataclass(frozen=True)
class Comparison:
    """``first`` minus ``second`` on the agents both have, per category and overall."""

    agents: int
    categories: dict[str, Interval]
    overall: Interval
    hallucination: Interval

    @property
    def first_better(self) -> bool:
        """Whether the overall difference is positive with its interval above zero."""
        return self.overall.low > 0


def compare(
    first: ScoreTable,
    second: ScoreTable,
    rng: np.random.Generator,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> Comparison:
    """Paired cluster bootstrap of the difference between two conditions' scores."""
    shared = [a for a in first.agents if a in second.agents]
    if not shared:
        raise ValueError("the two conditions have no agent in common")
    one, two = first.subset(shared), second.subset(shared)
    picks = _draws(len(shared), rng, n_resamples)
    diff = _category_means(one.sums, one.counts) - _category_means(two.sums, two.counts)
    boot = _category_means(one.sums[picks], one.counts[picks]) - _category_means(
        two.sums[picks], two.counts[picks]
    )
    overall = _overall(_category_means(one.sums, one.counts)) - _overall(
        _category_means(two.sums, two.counts)
    )
    boot_overall = _overall(_category_means(one.sums[picks], one.counts[picks])) - _overall(
        _category_means(two.sums[picks], two.counts[picks])
    )
    rate_one = one.flagged.sum() / one.graded.sum()
    rate_two = two.flagged.sum() / two.graded.sum()
    boot_rates = one.flagged[picks].sum(axis=1) / one.graded[picks].sum(axis=1) - two.flagged[
        picks
    ].sum(axis=1) / two.graded[picks].sum(axis=1)
    return Comparison(
        agents=len(shared),
        categories={
            c: _interval(float(diff[i]), boot[:, i], level) for i, c in enumerate(one.categories)
        },
        overall=_interval(float(overall), boot_overall, level),
        hallucination=_interval(float(rate_one - rate_two), boot_rates, level),
    )


# --------------------------------------------------------------------------- tables


def items_frame(items: Sequence[GradedItem]) -> pd.DataFrame:
    """One row per graded item (``expected`` as JSON text)."""
    rows = [item.model_dump(mode="json") for item in items]
    frame = pd.DataFrame(
        rows,
        columns=[
            "agent",
            "category",
            "question_id",
            "question",
            "answer",
            "expected",
            "method",
            "grader",
            "score",
            "hallucinated",
            "reason",
        ],
    )
    frame["expected"] = [json.dumps(item.expected, sort_keys=True) for item in items]
    return frame


def by_agent(table: ScoreTable) -> pd.DataFrame:
    """Per agent: mean score per category, overall (mean of categories), hallucinations."""
    with np.errstate(invalid="ignore", divide="ignore"):
        means = table.sums / table.counts
    frame = pd.DataFrame(means, columns=list(table.categories))
    frame.insert(0, "agent", list(table.agents))
    frame["overall"] = _overall(means)
    frame["answers"] = table.graded.astype(int)
    frame["hallucinations"] = table.flagged.astype(int)
    return frame


def by_category(summary: Summary, table: ScoreTable) -> pd.DataFrame:
    """Per category (and ``overall``): mean, interval, number of answers."""
    rows = [
        {
            "category": c,
            "mean": summary.categories[c].estimate,
            "low": summary.categories[c].low,
            "high": summary.categories[c].high,
            "answers": int(table.counts[:, i].sum()),
        }
        for i, c in enumerate(table.categories)
    ]
    rows.append(
        {
            "category": "overall",
            "mean": summary.overall.estimate,
            "low": summary.overall.low,
            "high": summary.overall.high,
            "answers": summary.items,
        }
    )
    rows.append(
        {
            "category": "hallucination rate",
            "mean": summary.hallucination.estimate,
            "low": summary.hallucination.low,
            "high": summary.hallucination.high,
            "answers": summary.items,
        }
    )
    return pd.DataFrame(rows)
