"""Each way the validity scorecard used to flatter a simulation, built and shown counted against."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from societas.evaluation.effect_calibration import fit_calibration, nested_predictions
from societas.evaluation.equivalence import judge_null, tost_power
from societas.evaluation.validity import scorecard_of
from societas.evaluation.validity_metrics import (
    ItemScore,
    SimulatedEffect,
    score_item,
    score_spec,
    simulated_effect,
)
from societas.evaluation.validity_summary import summarize
from societas.experiments.spec import ExperimentSpec, experiment_from_text

NAN = float("nan")
CHOICE = """\
name: choice
population: {marginals: {n: 8}}
arms: [{id: a}, {id: b}]
outcomes:
  - {id: pick, type: choice, question: "Which?", options: ["Yes", "No"], success: "Yes"}
  - {id: y, type: likert, question: "How much?", points: 7}
design: between
human_target:
"""


def spec(target: str) -> ExperimentSpec:
    return experiment_from_text(CHOICE + target)


def answers(arm: str, values: list[float | None], outcome: str = "pick") -> list[dict[str, object]]:
    return [
        {"agent": f"{arm}{i}", "arm": arm, "outcome": outcome, "replicate": 0, "value": v}
        for i, v in enumerate(values)
    ]


def item(
    name: str, kind: str, sim: float, human: float, se: float = 0.1, raw: float | None = None
) -> ItemScore:
    low, high = (sim - 1.96 * se, sim + 1.96 * se) if math.isfinite(sim) else (NAN, NAN)
    found = SimulatedEffect(sim, low, high, sim if raw is None else raw, se=se)
    return score_item(name, kind, human=human, human_ci=None, effect=found)  # type: ignore[arg-type]


def test_a_constant_responder_misses_a_real_effect_and_stays_in_the_denominator() -> None:
    target = spec("  {effect: 1.75, type: d, source: s, outcome: pick, arm: b}")
    flat = pd.DataFrame(answers("a", [1.0] * 20) + answers("b", [1.0] * 20))
    score = score_spec(target, simulated_effect(flat, target), "full")
    assert score.sign_agrees is False and score.magnitude_ratio == 0.0 and score.saturated
    summary = summarize([score, item("other", "effect", 0.5, 0.6)])
    assert (summary.sign_agreement_k, summary.sign_agreement_n) == (1, 2)
    assert summary.correlation_k == 2  # the flat item is in (as 0), not dropped


def test_a_likert_constant_responder_has_d_zero_and_counts_in_calibration() -> None:
    target = spec("  {effect: 0.8, type: d, source: s, outcome: y, arm: b}")
    flat = pd.DataFrame(answers("a", [4.0] * 10, "y") + answers("b", [4.0] * 10, "y"))
    score = score_spec(target, simulated_effect(flat, target), "full")
    assert score.sim_d == 0.0 and score.sign_agrees is False and score.effective_d == 0.0
    others = [item(f"e{i}", "effect", 0.5 * i, 0.3 * i) for i in range(1, 5)]
    card = scorecard_of([score, *others], ["full"])
    assert "choice" in card.calibrations[0].items  # the zero effect is fitted, not skipped


def test_moving_only_on_anchoring_cannot_score_full_sign_agreement() -> None:
    anchors = [item(f"anchor{i}", "effect", 2.0, 1.5 + i / 4) for i in range(4)]
    flat = [item(f"flat{i}", "effect", NAN, 0.7, se=NAN, raw=0.0) for i in range(4)]
    summary = summarize(anchors + flat)
    assert (summary.sign_agreement_k, summary.sign_agreement_n) == (4, 8)
    assert summary.magnitude_k == 8  # flat effects count as ratio 0


def test_non_significance_no_longer_keeps_a_null() -> None:
    # d = 0.5 with 50 per arm: the old rule (interval covers 0, or |d| < 0.15) was not needed to
    # fail here, but d = 0.35 with se 0.2 covered 0 and "stayed null"; it is now unresolved.
    assert judge_null(0.35, 0.2, None).verdict == "unresolved"
    assert judge_null(0.6, 0.2, None).verdict == "effect"
    assert judge_null(0.02, 0.04, None).verdict == "equivalent"
    verdict = judge_null(0.02, 0.2, (-0.04, 0.09))
    assert verdict.bound == 0.2 and verdict.power < 0.2  # printed beside the verdict
    assert judge_null(0.0, 0.2, (-0.3, 0.25)).bound == 0.3  # the wider human interval


def test_a_constant_responder_leaves_every_null_unresolved() -> None:
    target = spec("  {effect: 0.0, type: d, source: s, outcome: y, arm: b, kind: 'null'}")
    flat = pd.DataFrame(answers("a", [4.0] * 40, "y") + answers("b", [4.0] * 40, "y"))
    score = score_spec(target, simulated_effect(flat, target), "full")
    assert score.null_verdict == "unresolved" and score.equivalence_power == 0.0
    binary = spec("  {effect: 0.0, type: d, source: s, outcome: pick, arm: b, kind: 'null'}")
    yes = pd.DataFrame(answers("a", [1.0] * 40) + answers("b", [1.0] * 40))
    saturated = score_spec(binary, simulated_effect(yes, binary), "full")
    assert saturated.null_verdict == "unresolved" and saturated.saturated
    summary = summarize([score, saturated])
    assert (summary.nulls_equivalent, summary.nulls_unresolved, summary.nulls) == (0, 2, 2)


def test_power_grows_with_precision() -> None:
    assert tost_power(0.05, 0.2) > 0.95 > tost_power(0.1, 0.2) > tost_power(0.2, 0.2) == 0.0


def test_a_wrong_sign_of_the_right_size_scores_minus_one() -> None:
    score = item("x", "effect", -0.65, 0.65)
    assert score.magnitude_ratio == pytest.approx(-1.0) and score.sign_agrees is False


def test_a_unanimous_arm_gives_a_finite_flagged_d() -> None:
    target = spec("  {effect: 0.5, type: d, source: s, outcome: pick, arm: b}")
    data = pd.DataFrame(answers("a", [0.0, 1.0] * 10) + answers("b", [1.0] * 20))
    found = simulated_effect(data, target)
    assert math.isfinite(found.d) and found.saturated and "Firth" in found.note
    # 0.5 in every cell: log((20.5 * 10.5) / (0.5 * 10.5)) = log 41
    assert found.d == pytest.approx(math.log(41) * math.sqrt(3) / math.pi)
    score = score_spec(target, found, "full")
    # its size grows with n: no magnitude ratio and no calibration point, but still a sign
    assert math.isnan(score.magnitude_ratio) and math.isnan(score.calibration_d)
    assert score.sign_agrees is True and summarize([score]).magnitude_k == 0


def test_correlation_has_an_interval_and_counts_anchoring_as_one_paradigm() -> None:
    rng = np.random.default_rng(1)
    scores = []
    for i in range(4):
        base = item(f"anchor{i}", "effect", 2.0 + i / 5, 1.2 + i / 4)
        scores.append(ItemScore(**{**base.to_dict(), "paradigm": "anchoring"}))
    pairs = [(0.2, 0.3), (0.6, 0.4), (-0.1, 0.1), (1.0, 0.8)]
    scores += [item(f"e{i}", "effect", x, y) for i, (x, y) in enumerate(pairs)]
    summary = summarize(scores, rng=rng, resamples=400)
    assert summary.paradigms == 5 and summary.correlation_k == 8
    assert summary.pearson_low < summary.pearson <= summary.pearson_high


def test_calibration_leaves_a_whole_paradigm_out_and_chooses_inside_the_fold() -> None:
    sim = np.array([2.0, 2.2, 2.4, 2.6, 0.2, 0.6, -0.1, 1.0, 0.4])
    human = np.array([1.2, 1.3, 1.5, 1.6, 0.3, 0.4, 0.1, 0.8, 0.2])
    groups = ["anchoring"] * 4 + ["a", "b", "c", "d", "e"]
    before = nested_predictions(sim, human, groups, ["origin", "intercept"])
    moved = human.copy()
    moved[:4] += 5.0  # the held-out paradigm's own targets must not change its prediction
    after = nested_predictions(sim, moved, groups, ["origin", "intercept"])
    assert after[:4] == pytest.approx(before[:4])
    fit = fit_calibration(
        list(sim), list(human), [f"i{k}" for k in range(9)], rng=np.random.default_rng(0),
        groups=groups,
    )  # fmt: skip
    assert fit.folds == 6


def test_failed_answers_are_counted_per_arm() -> None:
    target = spec("  {effect: 0.5, type: d, source: s, outcome: pick, arm: b}")
    data = pd.DataFrame(answers("a", [0.0, 1.0, None, None]) + answers("b", [1.0, 0.0, 1.0, None]))
    found = simulated_effect(data, target)
    score = score_spec(target, found, "full")
    assert score.attrition == {"a": "2/4", "b": "1/4"} and (score.failed, score.asked) == (3, 8)
    assert summarize([score]).failed == 3


def test_arm_levels_are_compared_with_people() -> None:
    target = spec(
        "  {effect: 0.5, type: d, source: s, outcome: pick, arm: b, arm_values: {a: 0.2, b: 0.5}}"
    )
    data = pd.DataFrame(answers("a", [1.0, 1.0, 0.0, 0.0]) + answers("b", [1.0] * 3 + [0.0]))
    score = score_spec(target, simulated_effect(data, target), "full")
    assert score.level_errors == pytest.approx({"a": 0.3, "b": 0.25})
    assert score.level_error == pytest.approx(0.275)
