"""Raking: convergence to known margins, joint structure kept, report figures, edge cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import least_squares

from societas.population.microdata import (
    MicrodataError,
    apply_mapping,
    load_gss_records,
    load_mapping,
)
from societas.population.raking import (
    Marginals,
    RakingError,
    RakingReport,
    RakingWarning,
    effective_sample_size,
    kish_design_effect,
    load_marginals,
    rake,
)


def cell_frame(counts: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [key for key, count in counts.items() for _ in range(count)]
    return pd.DataFrame(rows, columns=["sex", "age"])


def test_hand_computed_example() -> None:
    records = pd.DataFrame({"sex": ["F", "F", "F", "M"], "old": ["y", "n", "n", "n"]})
    targets = {"sex": {"F": 0.5, "M": 0.5}, "old": {"y": 0.25, "n": 0.75}}
    result = rake(records, targets, tolerance=1e-12)
    # By hand: F-y = a, F-n = b, M-n = c; a + 2b = c, a = (a + 2b + c)/4, mean 1 -> 1, .5, .5, 2
    assert result.weights == pytest.approx([1.0, 0.5, 0.5, 2.0], abs=1e-9)
    assert result.report.converged
    assert result.report.effective_sample_size == pytest.approx(16 / 5.5)
    assert result.report.design_effect == pytest.approx(4 * 5.5 / 16)


def solved_cell_shares(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Raking's fixed point is the table ``p0_ij * r_i * c_j`` with the target margins.

    Solve those margin equations for ``r`` and ``c`` directly (nonlinear least squares), an
    independent route to the answer.
    """
    start = counts / counts.sum()
    k = len(rows)

    def table(x: np.ndarray) -> np.ndarray:
        cells: np.ndarray = start * np.exp(x[:k])[:, None] * np.exp(x[k:])[None, :]
        return cells

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.concatenate([table(x).sum(axis=1) - rows, table(x).sum(axis=0) - cols])

    solved = least_squares(residuals, np.zeros(k + len(cols)), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return table(solved.x)


def test_matches_the_solved_margin_equations_on_a_two_way_table() -> None:
    counts = np.array([[30, 10, 5], [20, 25, 10]], dtype=float)
    sexes, ages = ["F", "M"], ["young", "mid", "old"]
    frame = cell_frame(
        {
            (s, a): int(counts[i, j])
            for (i, s), (j, a) in itertools.product(enumerate(sexes), enumerate(ages))
        }
    )
    rows, cols = np.array([0.5, 0.5]), np.array([0.3, 0.4, 0.3])
    result = rake(
        frame,
        {"sex": dict(zip(sexes, rows, strict=True)), "age": dict(zip(ages, cols, strict=True))},
        tolerance=1e-10,
    )
    expected = solved_cell_shares(counts, rows, cols)
    shares = result.weights / result.weights.sum()
    for (i, s), (j, a) in itertools.product(enumerate(sexes), enumerate(ages)):
        cell = ((frame["sex"] == s) & (frame["age"] == a)).to_numpy()
        assert shares[cell].sum() == pytest.approx(expected[i, j], abs=1e-5)
        assert np.ptp(result.weights[cell]) < 1e-9  # records of one cell share one weight


def test_achieves_the_shipped_us_margins_on_the_gss_records() -> None:
    mapping = load_mapping()
    mapped = apply_mapping(load_gss_records(), mapping)
    targets = load_marginals().merged(mapping.target_merges())
    result = rake(mapped, targets)
    table = result.report.table
    assert result.report.converged and result.report.max_error < 1e-6
    assert (table["achieved"] - table["target"]).abs().max() < 1e-6
    assert set(table["variable"]) == {
        "age_group",
        "sex",
        "census_region",
        "education_18plus",
        "party_identification",
        "religion",
    }
    assert result.weights.mean() == pytest.approx(1.0)
    # renormalised targets are reported: religion's published shares sum to 0.98
    assert result.report.renormalised["religion"] == pytest.approx(0.98)
    female = table.query("variable == 'sex' and category == 'Female'").iloc[0]
    assert female["unweighted"] == pytest.approx(1882 / 3505)
    assert female["records"] == 1882


def test_joint_structure_survives_raking_on_margins() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    old = rng.random(n) < 0.3
    # widowhood depends strongly on age in the records
    widowed = np.where(old, rng.random(n) < 0.4, rng.random(n) < 0.03)
    female = rng.random(n) < 0.6
    frame = pd.DataFrame(
        {
            "age": np.where(old, "old", "young"),
            "widowed": np.where(widowed, "yes", "no"),
            "sex": np.where(female, "F", "M"),
        }
    )
    result = rake(frame, {"age": {"old": 0.5, "young": 0.5}, "sex": {"F": 0.5, "M": 0.5}})
    w = result.weights

    def rate(mask: np.ndarray) -> float:
        return float(np.sum(w * (widowed & mask)) / np.sum(w * mask))

    # conditional rates within age are kept (the margins moved, the relation did not)
    assert rate(old) == pytest.approx(widowed[old].mean(), abs=0.02)
    assert rate(~old) == pytest.approx(widowed[~old].mean(), abs=0.01)
    weighted_corr = np.cov(old.astype(float), widowed.astype(float), aweights=w)
    corr = weighted_corr[0, 1] / np.sqrt(weighted_corr[0, 0] * weighted_corr[1, 1])
    assert corr > 0.4


def test_kish_figures() -> None:
    weights = np.array([1.0, 1.0, 2.0, 4.0])
    assert kish_design_effect(weights) == pytest.approx(4 * 22 / 64)
    assert effective_sample_size(weights) == pytest.approx(64 / 22)
    assert kish_design_effect(np.ones(7)) == pytest.approx(1.0)


def test_trimming_caps_weights_and_reports() -> None:
    frame = cell_frame({("F", "young"): 90, ("M", "young"): 5, ("F", "old"): 3, ("M", "old"): 2})
    targets = {"sex": {"F": 0.5, "M": 0.5}, "age": {"young": 0.5, "old": 0.5}}
    free = rake(frame, targets)
    assert free.weights.max() > 5
    with pytest.warns(RakingWarning):
        capped = rake(frame, targets, trim=(None, 5.0), max_iterations=50)
    assert capped.weights.max() <= 5.0 * capped.weights.mean() * 1.0001
    assert capped.report.trimmed > 0
    assert not capped.report.converged
    assert capped.report.design_effect < free.report.design_effect


def test_targets_not_summing_to_one_are_renormalised() -> None:
    frame = cell_frame({("F", "a"): 3, ("M", "a"): 1})
    result = rake(frame, {"sex": {"F": 60, "M": 40}})
    assert result.report.renormalised == {"sex": 100.0}
    assert result.report.table["target"].tolist() == pytest.approx([0.6, 0.4])


def test_empty_target_category_is_an_error_or_dropped() -> None:
    frame = cell_frame({("F", "a"): 3, ("M", "a"): 1})
    targets = {"sex": {"F": 0.45, "M": 0.45, "X": 0.1}}
    with pytest.raises(RakingError, match=r"category 'X'.*has no records"):
        rake(frame, targets)
    result = rake(frame, targets, empty_categories="drop")
    assert result.report.dropped == [("sex", "X")]
    assert result.report.renormalised == {"sex": pytest.approx(0.9)}
    achieved = dict(
        zip(result.report.table["category"], result.report.table["achieved"], strict=True)
    )
    assert achieved["F"] == pytest.approx(0.5) and achieved["X"] == 0


def test_record_category_without_target_is_an_error() -> None:
    frame = cell_frame({("F", "a"): 3, ("Other", "a"): 1})
    with pytest.raises(RakingError, match=r"record categories \{'Other': 1\} have no target"):
        rake(frame, {"sex": {"F": 0.5, "M": 0.5}})


def test_bad_settings_are_rejected() -> None:
    frame = cell_frame({("F", "a"): 3, ("M", "a"): 1})
    with pytest.raises(RakingError, match="not a column"):
        rake(frame, {"sex": {"F": 1.0}}, variables=["income"])
    with pytest.raises(RakingError, match="upper trim"):
        rake(frame, {"sex": {"F": 0.5, "M": 0.5}}, trim=(None, 0.5))
    with pytest.raises(RakingError, match="base_weights"):
        rake(frame, {"sex": {"F": 0.5, "M": 0.5}}, base_weights=[1, 2])


def test_base_weights_are_the_starting_point() -> None:
    frame = cell_frame({("F", "a"): 2, ("M", "a"): 2})
    result = rake(frame, {"sex": {"F": 0.5, "M": 0.5}}, base_weights=[1, 3, 1, 1])
    assert result.weights == pytest.approx([0.5, 1.5, 1.0, 1.0])


def test_report_round_trips_through_state() -> None:
    frame = cell_frame({("F", "a"): 3, ("M", "b"): 1})
    report = rake(frame, {"sex": {"F": 0.5, "M": 0.5}}).report
    copy = RakingReport.from_state(report.get_state())
    assert copy.table.equals(report.table)
    assert copy.get_state() == report.get_state()
    assert "converged" in copy.summary()


def test_marginals_file_loading_and_errors(tmp_path: Path) -> None:
    shipped = load_marginals()
    assert shipped.shares["sex"] == {"Male": 0.4915, "Female": 0.5085}
    assert "Census" in shipped.sources["sex"]
    path = tmp_path / "m.csv"
    path.write_text("variable,category,share\nsex,F,0.5\nsex,F,0.5\n", encoding="utf-8")
    with pytest.raises(
        MicrodataError, match=r"m.csv, line 3, column 'category': sex/F is listed twice"
    ):
        load_marginals(path)
    path.write_text("variable,category,share\nsex,F,-1\n", encoding="utf-8")
    with pytest.raises(MicrodataError, match=r"line 2, column 'share': -1.0 is negative"):
        load_marginals(path)
    path.write_text("variable,category,share\nsex,F,half\n", encoding="utf-8")
    with pytest.raises(MicrodataError, match=r"line 2, column 'share': 'half' is not a number"):
        load_marginals(path)


def test_merging_target_categories() -> None:
    marginals = Marginals({"edu": {"hs": 0.3, "some": 0.2, "ba": 0.5}})
    assert marginals.merged({"edu": {"hs_some": ["hs", "some"]}}).shares == {
        "edu": {"ba": 0.5, "hs_some": 0.5}
    }
    with pytest.raises(RakingError, match="no such categories"):
        marginals.merged({"edu": {"x": ["phd"]}})
    assert load_marginals().select(["sex"]).variables == ["sex"]
    with pytest.raises(RakingError, match=r"no marginals for \['race'\]"):
        load_marginals().select(["race"])
