"""Experiment statistics against scipy / statsmodels and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from societas.experiments.arm_tables import arm_summary, compare_arms, subgroup_effects
from societas.experiments.clustered import cluster_bootstrap_difference, cluster_robust_difference
from societas.experiments.stats import (
    TIDY_COLUMNS,
    BootstrapMethod,
    StatsError,
    bootstrap_ci,
    cohens_d,
    effect_size,
    hedges_correction,
    hedges_g,
    mean_difference,
    odds_ratio,
    paired_analysis,
    paired_difference,
    proportion_difference,
    t_interval,
    tidy,
    wilson_interval,
)

RNG = np.random.default_rng(2024)
A = RNG.normal(5.0, 2.0, 25)
B = RNG.normal(4.0, 1.5, 31)


@pytest.mark.parametrize(("x", "n"), [(8, 10), (0, 12), (12, 12), (37, 150)])
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_wilson_matches_statsmodels(x: int, n: int, level: float) -> None:
    low, high = proportion_confint(x, n, alpha=1 - level, method="wilson")
    est = wilson_interval(x, n, level)
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert est.estimate == x / n


def test_t_interval_matches_scipy() -> None:
    est = t_interval(A, 0.95)
    low, high = sps.t.interval(0.95, len(A) - 1, loc=A.mean(), scale=sps.sem(A))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high))
    assert est.se == pytest.approx(sps.sem(A)) and est.df == len(A) - 1


@pytest.mark.parametrize("equal_var", [False, True])
def test_mean_difference_matches_scipy_ttest(equal_var: bool) -> None:
    est = mean_difference(A, B, 0.95, equal_var=equal_var)
    ref = sps.ttest_ind(A, B, equal_var=equal_var)
    ci = ref.confidence_interval(0.95)
    assert est.estimate == pytest.approx(A.mean() - B.mean())
    assert (est.ci_low, est.ci_high) == pytest.approx((ci.low, ci.high))
    assert est.p_value == pytest.approx(ref.pvalue)
    assert est.df == pytest.approx(ref.df)


def test_newcombe_difference_matches_statsmodels() -> None:
    est = proportion_difference(30, 80, 18, 75, 0.95)
    low, high = confint_proportions_2indep(30, 80, 18, 75, method="newcomb", compare="diff")
    assert est.estimate == pytest.approx(30 / 80 - 18 / 75)
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-10)


def test_cohens_d_and_hedges_g_by_hand() -> None:
    a, b = np.array([2.0, 4.0, 6.0, 8.0]), np.array([1.0, 2.0, 3.0])
    # means 5 and 2; variances 20/3 and 1; pooled var = (3*20/3 + 2*1) / 5 = 4.4
    d = 3 / math.sqrt(4.4)
    assert cohens_d(a, b) == pytest.approx(d)
    # exact J(5) = Gamma(2.5) / (sqrt(2.5) Gamma(2)) = 0.75 sqrt(pi) / sqrt(2.5)
    assert hedges_g(a, b) == pytest.approx(0.75 * math.sqrt(math.pi) / math.sqrt(2.5) * d)
    for df in (10, 40, 200):
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=5e-4)


def test_odds_ratio_matches_statsmodels() -> None:
    table = Table2x2(np.array([[30, 50], [18, 57]]))
    est = odds_ratio(30, 80, 18, 75, 0.95)
    assert est.estimate == pytest.approx(table.oddsratio)
    assert (est.ci_low, est.ci_high) == pytest.approx(table.oddsratio_confint(alpha=0.05))
    assert est.se == pytest.approx(table.log_oddsratio_se)
    assert est.method == "log-OR Wald"


def test_odds_ratio_with_an_empty_cell_adds_half_to_every_cell() -> None:
    est = odds_ratio(0, 20, 6, 22, 0.95)
    a, b, c, d = 0.5, 20.5, 6.5, 16.5
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert est.estimate == pytest.approx(a * d / (b * c))
    assert est.ci_high == pytest.approx(
        math.exp(math.log(a * d / (b * c)) + 1.959963984540054 * se)
    )
    assert "0.5 added" in est.method


def test_paired_analysis_matches_ttest_rel() -> None:
    before = RNG.normal(3, 1, 40)
    after = before + RNG.normal(0.4, 0.8, 40)
    est = paired_difference(after, before)
    ref = sps.ttest_rel(after, before)
    ci = ref.confidence_interval(0.95)
    assert (est.ci_low, est.ci_high) == pytest.approx((ci.low, ci.high))
    assert est.p_value == pytest.approx(ref.pvalue)
    diff = after - before
    table = paired_analysis(after, before)
    assert list(table.columns) == TIDY_COLUMNS
    d_z = table.set_index("estimand").loc["d_z", "estimate"]
    assert d_z == pytest.approx(diff.mean() / diff.std(ddof=1))
    with pytest.raises(StatsError, match="equal lengths"):
        paired_difference([1, 2, 3], [1, 2])


def clustered_data(seed: int, clusters: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 12, clusters)
    groups = np.repeat(np.arange(clusters), sizes)
    treated = np.repeat(rng.integers(0, 2, clusters), sizes).astype(float)
    treated[:2] = [0, 1]  # both arms present
    shock = rng.normal(0, 1, clusters)[groups]
    outcome = 1 + 0.5 * treated + shock + rng.normal(0, 1, len(groups))
    return outcome, treated, groups


def test_cluster_robust_se_matches_statsmodels() -> None:
    y, t, g = clustered_data(1)
    est = cluster_robust_difference(y, t, g, 0.95)
    fit = sm.OLS(y, sm.add_constant(t)).fit(cov_type="cluster", cov_kwds={"groups": g}, use_t=True)
    assert est.estimate == pytest.approx(fit.params[1])
    assert est.se == pytest.approx(fit.bse[1], rel=1e-10)
    assert (est.ci_low, est.ci_high) == pytest.approx(tuple(fit.conf_int(alpha=0.05)[1]))
    assert est.p_value == pytest.approx(fit.pvalues[1])
    naive = mean_difference(y[t == 1], y[t == 0])
    assert est.se > naive.se  # the shared cluster shocks widen the interval


def test_cluster_bootstrap_is_seeded_and_near_the_sandwich() -> None:
    y, t, g = clustered_data(2, clusters=60)
    first = cluster_bootstrap_difference(y, t, g, np.random.default_rng(5), n_resamples=800)
    again = cluster_bootstrap_difference(y, t, g, np.random.default_rng(5), n_resamples=800)
    assert first == again
    sandwich = cluster_robust_difference(y, t, g)
    assert first.se == pytest.approx(sandwich.se, rel=0.25)
    assert first.ci_low < first.estimate < first.ci_high


def test_bootstrap_is_reproducible_and_bca_agrees_with_scipy() -> None:
    first = effect_size(A, B, np.random.default_rng(9), kind="g", n_resamples=3000)
    again = effect_size(A, B, np.random.default_rng(9), kind="g", n_resamples=3000)
    assert first == again
    assert first.estimate == pytest.approx(hedges_g(A, B))
    ref = sps.bootstrap(
        (A, B),
        lambda a, b: cohens_d(a, b),
        vectorized=False,
        method="BCa",
        n_resamples=3000,
        rng=np.random.default_rng(1),
    ).confidence_interval
    ours = bootstrap_ci(cohens_d, [A, B], np.random.default_rng(2), n_resamples=3000, method="bca")
    assert ours.ci_low == pytest.approx(ref.low, abs=0.06)
    assert ours.ci_high == pytest.approx(ref.high, abs=0.06)
    percentile = bootstrap_ci(
        cohens_d, [A, B], np.random.default_rng(2), n_resamples=3000, method="percentile"
    )
    assert percentile.ci_low != ours.ci_low


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_interval_covers_the_true_effect(method: BootstrapMethod) -> None:
    rng = np.random.default_rng(77)
    true_d = 0.5
    covered = 0
    runs = 150
    for _ in range(runs):
        a = rng.normal(true_d, 1.0, 40)
        b = rng.normal(0.0, 1.0, 40)
        est = bootstrap_ci(cohens_d, [a, b], rng, n_resamples=400, method=method)
        covered += est.ci_low <= true_d <= est.ci_high
    assert 0.88 <= covered / runs <= 0.99


def test_frame_helpers_give_tidy_tables() -> None:
    frame = pd.DataFrame(
        {
            "arm": ["control"] * 6 + ["treated"] * 6,
            "y": [1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1],
            "score": [2.0, 3, 4, 3, 2, 4, 5, 6, 4, 5, 6, 7],
            "sex": ["F", "M"] * 6,
        }
    )
    summary = arm_summary(frame, "arm", "y", kind="proportion").set_index("group")
    assert summary.loc["treated", "estimate"] == pytest.approx(5 / 6)
    assert summary.loc["treated", "method"] == "Wilson score"
    props = compare_arms(frame, "arm", "y", control="control", kind="proportion")
    assert props["estimand"].tolist() == ["difference in proportions", "odds ratio"]
    assert props["group"].unique().tolist() == ["treated - control"]
    means = compare_arms(
        frame, "arm", "score", control="control", rng=np.random.default_rng(0), n_resamples=500
    )
    assert means["estimand"].tolist() == ["mean difference", "Cohen's d", "Hedges' g"]
    assert means["ci_low"].notna().all()
    subgroups = subgroup_effects(
        frame, "arm", "score", "sex", treatment="treated", control="control"
    )
    female = frame[frame["sex"] == "F"]
    expected = mean_difference(
        female.loc[female["arm"] == "treated", "score"],
        female.loc[female["arm"] == "control", "score"],
    )
    row = subgroups.set_index("group").loc["sex=F"]
    assert row["estimate"] == pytest.approx(expected.estimate)
    assert row["ci_low"] == pytest.approx(expected.ci_low)
    assert list(tidy([expected]).columns) == TIDY_COLUMNS


def test_thin_subgroups_are_marked_not_estimable() -> None:
    frame = pd.DataFrame(
        {"arm": ["t", "c", "t", "c", "c"], "y": [1.0, 2, 3, 4, 5], "g": ["a", "a", "b", "b", "b"]}
    )
    table = subgroup_effects(frame, "arm", "y", "g", treatment="t", control="c")
    assert table["estimate"].isna().all()
    assert table["method"].str.startswith("not estimable").all()


def test_bad_input_is_named() -> None:
    with pytest.raises(StatsError, match="confidence level"):
        wilson_interval(3, 10, level=95)
    with pytest.raises(StatsError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(StatsError, match="at least 2 values"):
        t_interval([1.0])
    with pytest.raises(StatsError, match="0/1 outcomes"):
        arm_summary(pd.DataFrame({"arm": ["a", "a"], "y": [0.5, 1]}), "arm", "y", kind="proportion")
    with pytest.raises(StatsError, match="control arm 'x' not found"):
        compare_arms(pd.DataFrame({"arm": ["a", "b"], "y": [1.0, 2.0]}), "arm", "y", control="x")
    with pytest.raises(StatsError, match="at least 2 clusters"):
        cluster_robust_difference([1.0, 2.0], [0, 1], ["g", "g"])
