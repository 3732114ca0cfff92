"""Analysis numbers on hand-made responses, and the human-target comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest

from societas.experiments.analysis import agent_means, analyze, target_comparison
from societas.experiments.spec import EXAMPLE, experiment_from_text

LIKERT = EXAMPLE.replace(
    'type: choice, question: "Which program?", options: [A, B]',
    "type: likert, question: Agree",
)


def frame(values: Mapping[str, Sequence[float]], **extra: Sequence[str]) -> pd.DataFrame:
    rows = []
    for arm, answers in values.items():
        for index, value in enumerate(answers):
            rows.append({"agent": f"{arm}{index}", "arm": arm, "outcome": "pick", "value": value})
    data = pd.DataFrame(rows)
    for name, column in extra.items():
        data[name] = list(column)
    return data


def pick(table: pd.DataFrame, section: str, estimand: str, group: str | None = None) -> pd.Series:
    rows = table[(table["section"] == section) & (table["estimand"] == estimand)]
    if group is not None:
        rows = rows[rows["group"] == group]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_means_differences_and_effect_sizes() -> None:
    spec = experiment_from_text(LIKERT)
    data = frame({"gain": [1, 2, 3, 4], "loss": [3, 4, 5, 6]})
    table = analyze(data, spec, np.random.default_rng(0))
    assert pick(table, "arm", "mean", "gain")["estimate"] == pytest.approx(2.5)
    assert pick(table, "arm", "mean", "loss")["estimate"] == pytest.approx(4.5)
    diff = pick(table, "effect", "mean difference", "loss - gain")
    assert diff["estimate"] == pytest.approx(2.0)
    # Welch t with s = 1.29 in both arms: se = sqrt(2 * 1.6667 / 4) = 0.9129, df = 6
    assert diff["se"] == pytest.approx(0.912871, rel=1e-5)
    assert diff["ci_low"] == pytest.approx(2 - 2.446912 * 0.912871, rel=1e-5)
    d = pick(table, "effect", "Cohen's d")
    assert d["estimate"] == pytest.approx(1.549193, rel=1e-5)
    assert d["ci_low"] < d["estimate"] < d["ci_high"]
    assert "bootstrap" in d["method"]


def test_binary_choice_gives_proportions_and_an_odds_ratio() -> None:
    spec = experiment_from_text(EXAMPLE)
    data = frame({"gain": [1, 1, 1, 0, 1, 1, 0, 1], "loss": [0, 0, 1, 0, 0, 1, 0, 0]})
    table = analyze(data, spec, np.random.default_rng(0))
    assert pick(table, "arm", "proportion", "gain")["estimate"] == pytest.approx(0.75)
    assert pick(table, "effect", "difference in proportions")["estimate"] == pytest.approx(-0.5)
    odds = pick(table, "effect", "odds ratio")
    assert odds["estimate"] == pytest.approx((2 * 2) / (6 * 6))  # (2/6) / (6/2)
    assert odds["ci_low"] < odds["ci_high"] and "bootstrap" in odds["method"]


def test_replicates_are_averaged_per_agent() -> None:
    data = pd.DataFrame(
        {
            "agent": ["a", "a", "b", "b"],
            "arm": ["x", "x", "y", "y"],
            "outcome": ["o"] * 4,
            "replicate": [0, 1, 0, 1],
            "value": [1.0, 3.0, 4.0, 4.0],
            "sex": ["F", "F", "M", "M"],
        }
    )
    means = agent_means(data)
    assert means["value"].tolist() == [2.0, 4.0]
    assert "sex" in means.columns and "replicate" not in means.columns


def test_subgroup_effects_by_demographic() -> None:
    spec = experiment_from_text(
        LIKERT.replace("design: between", "design: {type: between, block_on: [sex]}")
    )
    values = {"gain": [1, 2, 3, 4, 1, 2], "loss": [3, 4, 5, 6, 1, 2]}
    sexes = ["F", "F", "F", "M", "M", "M"] * 2
    table = analyze(frame(values, sex=sexes), spec, np.random.default_rng(0))
    female = pick(table, "subgroup", "mean difference", "sex=F")
    male = pick(table, "subgroup", "mean difference", "sex=M")
    assert female["estimate"] == pytest.approx(4 - 2)
    assert male["estimate"] == pytest.approx((6 + 1 + 2) / 3 - (4 + 1 + 2) / 3)


def test_within_design_is_paired() -> None:
    spec = experiment_from_text(LIKERT.replace("design: between", "design: within"))
    rows = []
    for index, (control, treated) in enumerate([(1, 2), (2, 4), (3, 4), (4, 7)]):
        for arm, value in (("gain", control), ("loss", treated)):
            rows.append({"agent": f"p{index}", "arm": arm, "outcome": "pick", "value": value})
    table = analyze(pd.DataFrame(rows), spec, np.random.default_rng(0))
    paired = pick(table, "paired", "paired mean difference")
    assert paired["estimate"] == pytest.approx(1.75)
    differences = np.array([1, 2, 1, 3])
    assert paired["se"] == pytest.approx(differences.std(ddof=1) / 2)
    assert pick(table, "paired", "d_z")["estimate"] == pytest.approx(1.75 / differences.std(ddof=1))


def test_world_design_uses_cluster_robust_errors() -> None:
    text = (
        LIKERT.replace("population: {marginals: {n: 40}}", "population: {scenario: town}")
        .replace("design: between", "design: {type: world, hours: 1}")
        .replace('{vignette: "Program A saves 200 of 600 people."}', "{}")
    )
    text = text.replace("  gain: {}\n", "").replace(
        '{vignette: "Under program A, 400 of 600 people die."}',
        "{intervention: {kind: announcement, data: {text: Masks please}}}",
    )
    spec = experiment_from_text(text)
    rows = []
    for arm, shift in (("gain", 0), ("loss", 1)):
        for index, value in enumerate([1, 2, 2, 3, 3, 4]):
            rows.append(
                {
                    "agent": f"a{index}",
                    "arm": arm,
                    "outcome": "pick",
                    "value": value + shift,
                    "cluster": f"house{index // 2}",
                }
            )
    table = analyze(pd.DataFrame(rows), spec, np.random.default_rng(0))
    clustered = pick(table, "cluster", "mean difference")
    assert clustered["estimate"] == pytest.approx(1.0)
    assert "3 clusters" in clustered["method"] and clustered["df"] == 2


def test_target_comparison() -> None:
    spec = experiment_from_text(
        EXAMPLE + "human_target: {effect: -0.5, type: diff, ci: [-0.6, -0.4], source: T&K 1981}\n"
    )
    data = frame({"gain": [1, 1, 1, 0, 1, 1, 0, 1], "loss": [0, 0, 1, 0, 0, 1, 0, 0]})
    table = analyze(data, spec, np.random.default_rng(0))
    comparison = target_comparison(table, spec)
    row = comparison.iloc[0]
    assert row["estimand"] == "difference in proportions"
    assert row["simulated"] == pytest.approx(-0.5) and row["human"] == -0.5
    assert bool(row["same_sign"]) and bool(row["ci_overlap"])
