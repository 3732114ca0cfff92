"""Weighted sampling: reproducible with a seed, right inclusion rates, and the sample's report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from societas.population.sampling import (
    SampleReport,
    SamplingError,
    inclusion_probabilities,
    sample_indices,
    sample_report,
    serpentine_order,
)

WEIGHTS = np.array([1.0, 1.0, 2.0, 4.0, 0.5, 3.0])


def test_same_seed_same_sample_and_different_seed_differs() -> None:
    weights = np.random.default_rng(0).random(500) + 0.1
    for replace in (False, True):
        first = sample_indices(weights, 50, np.random.default_rng(42), replace=replace)
        again = sample_indices(weights, 50, np.random.default_rng(42), replace=replace)
        other = sample_indices(weights, 50, np.random.default_rng(43), replace=replace)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)


def test_inclusion_probabilities_are_proportional_and_capped() -> None:
    pi = inclusion_probabilities(WEIGHTS, 3)
    assert pi.sum() == pytest.approx(3)
    assert pi[3] == 1.0  # 3 * 4 / 11.5 > 1: taken with certainty
    rest = np.delete(np.arange(6), 3)
    assert pi[rest] / WEIGHTS[rest] == pytest.approx(np.full(5, pi[0] / WEIGHTS[0]))


def test_without_replacement_hits_the_inclusion_probabilities() -> None:
    rng = np.random.default_rng(1)
    hits = np.zeros(len(WEIGHTS))
    draws = 6000
    for _ in range(draws):
        picks = sample_indices(WEIGHTS, 3, rng)
        assert len(set(picks.tolist())) == 3
        hits[picks] += 1
    expected = inclusion_probabilities(WEIGHTS, 3)
    assert hits / draws == pytest.approx(expected, abs=0.02)


def test_with_replacement_draws_in_proportion_to_weight() -> None:
    picks = sample_indices(WEIGHTS, 20000, np.random.default_rng(2), replace=True)
    shares = np.bincount(picks, minlength=len(WEIGHTS)) / len(picks)
    assert shares == pytest.approx(WEIGHTS / WEIGHTS.sum(), abs=0.01)


def test_sorted_sampling_keeps_inclusion_rates_and_tightens_margins() -> None:
    rng = np.random.default_rng(3)
    n_records = 600
    keys = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n_records, p=[0.5, 0.3, 0.2])})
    weights = rng.random(n_records) + 0.2
    target = pd.Series(weights).groupby(keys["g"]).sum() / weights.sum()
    random_gap: list[float] = []
    sorted_gap: list[float] = []
    hits = np.zeros(n_records)
    for seed in range(300):
        plain = sample_indices(weights, 40, np.random.default_rng(seed))
        strat = sample_indices(weights, 40, np.random.default_rng(seed), sort_by=keys)
        hits[strat] += 1
        for picks, gaps in ((plain, random_gap), (strat, sorted_gap)):
            share = (
                keys["g"]
                .iloc[picks]
                .value_counts(normalize=True)
                .reindex(target.index, fill_value=0)
            )
            gaps.append(float((share - target).abs().max()))
    assert np.mean(sorted_gap) < 0.5 * np.mean(random_gap)
    assert max(sorted_gap) <= 1 / 40 + 1e-9  # implicit strata are hit within one draw
    expected = inclusion_probabilities(weights, 40)
    bins = np.array_split(np.argsort(expected), 5)  # records binned by inclusion probability
    rates = [hits[b].mean() / 300 for b in bins]
    assert rates == pytest.approx([expected[b].mean() for b in bins], abs=0.005)


def test_serpentine_order_sorts_groups_and_flips_inner_direction() -> None:
    keys = pd.DataFrame({"outer": ["a", "a", "b", "b"], "inner": ["x", "y", "x", "y"]})
    order = serpentine_order(keys, np.random.default_rng(0))
    assert keys.iloc[order].apply(tuple, axis=1).tolist() == [
        ("a", "x"),
        ("a", "y"),
        ("b", "y"),
        ("b", "x"),
    ]


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(SamplingError, match="only 2 have a positive weight"):
        sample_indices([1.0, 0.0, 2.0], 3, np.random.default_rng(0))
    with pytest.raises(SamplingError, match="non-negative"):
        sample_indices([1.0, -1.0], 1, np.random.default_rng(0))
    with pytest.raises(SamplingError, match="sort_by has 1 rows"):
        sample_indices([1.0, 1.0], 1, np.random.default_rng(0), sort_by=pd.DataFrame({"g": ["a"]}))


def test_sample_report_compares_target_population_and_sample() -> None:
    mapped = pd.DataFrame({"sex": ["F", "F", "M", "M"]})
    weights = np.array([1.0, 1.0, 3.0, 3.0])
    report = sample_report(mapped, [0, 2, 3, 3], weights, {"sex": {"F": 30, "M": 70}}, replace=True)
    table = report.table.set_index("category")
    assert table.loc["F", "target"] == pytest.approx(0.3)
    assert table.loc["F", "population"] == pytest.approx(0.25)
    assert table.loc["F", "sample"] == pytest.approx(0.25)
    assert table.loc["M", "count"] == 3
    assert report.distinct == 3 and report.n == 4
    assert report.max_error == pytest.approx(0.05)
    copy = SampleReport.from_state(report.get_state())
    assert copy.table.equals(report.table) and copy.max_error == report.max_error
    assert "3 distinct records" in copy.summary()
