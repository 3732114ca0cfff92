"""Validity metrics, calibration, the shipped suite and the validate/calibrate CLI (scripted)."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.evaluation.effect_calibration import (
    CalibrationError,
    fit_calibration,
    load_calibration,
    loo_predictions,
)
from societas.evaluation.validity import ValidityError, load_suite, run_suite, suite_files
from societas.evaluation.validity_metrics import (
    OR_TO_D,
    ItemScore,
    SimulatedEffect,
    bernoulli_sd,
    magnitude_ratio,
    score_item,
    sign_agrees,
    simulated_effect,
)
from societas.evaluation.validity_report import write_scorecard
from societas.evaluation.validity_summary import summarize
from societas.experiments.spec import ExperimentError, experiment_from_text, load_experiment
from societas.llm.fake import ScriptedCall, ScriptedLLM

SHIPPED = {
    "asian_disease", "forbid_allow", "anchor_distance", "anchor_chicago", "anchor_everest",
    "anchor_babies", "tv_scale", "reciprocity", "quote_attribution", "trolley",
    "jacket_calculator", "false_consensus", "flag_priming", "imagined_contact",
}  # fmt: skip
TWO_ARMS = """\
name: mini
population: {marginals: {n: 8}}
arms: [{id: a}, {id: b}]
outcomes:
  - {id: y, type: numeric, question: "How many?", min: 0, max: 10}
  - {id: z, type: numeric, question: "How many more?", min: 0, max: 10}
  - {id: pick, type: choice, question: "Which?", options: ["Yes", "No"]}
design: between
"""


def rows(
    arm: str, values: list[float], outcome: str = "y", start: int = 0
) -> list[dict[str, object]]:
    return [
        {"agent": f"{arm}{i + start}", "arm": arm, "outcome": outcome, "replicate": 0, "value": v}
        for i, v in enumerate(values)
    ]


def spec_with(target: str) -> object:
    return experiment_from_text(TWO_ARMS + "human_target:\n" + target)


def effect(d: float, low: float, high: float, raw: float = 1.0) -> SimulatedEffect:
    return SimulatedEffect(d=d, low=low, high=high, raw_difference=raw)


# --- metrics ------------------------------------------------------------------------------------


def test_continuous_effect_is_cohens_d_with_a_normal_interval() -> None:
    spec = spec_with("  {effect: 0.5, type: d, source: s, outcome: y, arm: b, sd: 2.0}")
    data = pd.DataFrame(rows("a", [1, 2, 3, 4]) + rows("b", [3, 4, 5, 6]))
    found = simulated_effect(data, spec)  # type: ignore[arg-type]
    assert found.d == pytest.approx(2 / math.sqrt(5 / 3))  # mean gap 2 over pooled SD
    se = math.sqrt(8 / 16 + found.d**2 / 16)
    assert (found.low, found.high) == pytest.approx(
        (found.d - 1.96 * se, found.d + 1.96 * se), 1e-3
    )
    assert found.sd == pytest.approx(math.sqrt(5 / 3))
    score = score_item("mini", "effect", human=0.5, human_ci=None, effect=found, human_spread=2.0)
    assert score.dispersion_ratio == pytest.approx(math.sqrt(5 / 3) / 2)
    assert score.modal_share == pytest.approx(0.25)  # every answer differs within its arm


def test_binary_effect_is_the_log_odds_ratio_as_d() -> None:
    spec = spec_with(
        "  {effect: 0.5, type: d, source: s, outcome: pick, arm: b, arm_values: {a: 0.5, b: 0.5}}"
    )
    data = pd.DataFrame(rows("a", [1, 0, 0, 0], "pick") + rows("b", [1, 1, 1, 0], "pick"))
    found = simulated_effect(data, spec)  # type: ignore[arg-type]
    assert found.binary and found.d == pytest.approx(math.log(9) * OR_TO_D)
    assert found.sd == pytest.approx(bernoulli_sd([np.array([1.0, 0, 0, 0])] * 2))
    score = score_item("m", "effect", human=1, human_ci=None, effect=found, human_spread=0.5)
    assert score.dispersion_ratio == pytest.approx(math.sqrt(0.1875) / 0.5)
    uniform = pd.DataFrame(rows("a", [0, 0, 0], "pick") + rows("b", [1, 1, 1], "pick"))
    extreme = simulated_effect(uniform, spec)  # type: ignore[arg-type]
    assert extreme.d == pytest.approx(math.log(3.5**2 / 0.25) * OR_TO_D)  # 0.5 added per cell
    assert extreme.sd == 0 and extreme.modal_share == 1.0 and extreme.saturated


def test_composites_ranks_and_splits() -> None:
    spec = spec_with("  {effect: 0.1, type: d, source: s, items: [y, z], arm: b, ranks: true}")
    data = pd.DataFrame(
        rows("a", [1, 2, 3])
        + rows("a", [1, 2, 3], "z")
        + rows("b", [4, 5, 900])
        + rows("b", [4, 5, 6], "z")
    )
    found = simulated_effect(data, spec)  # type: ignore[arg-type]
    # composite means a: 1, 2, 3; b: 4, 5, 453 -> ranks 1-3 vs 4-6, the outlier ignored
    assert found.d == pytest.approx(3.0)
    split = spec_with("  {effect: 1.0, type: d, source: s, outcome: y, split_by: pick}")
    chosen = rows("a", [1, 1, 0, 0], "pick") + rows("b", [1, 1, 0, 0], "pick")
    estimates = rows("a", [8, 6, 3, 1]) + rows("b", [9, 7, 2, 4])
    found = simulated_effect(pd.DataFrame(chosen + estimates), split)  # type: ignore[arg-type]
    assert found.d > 2 and found.raw_difference == pytest.approx(5.0)


def test_no_spread_gives_no_d_but_keeps_the_sign() -> None:
    spec = spec_with("  {effect: 0.5, type: d, source: s, outcome: y, arm: b}")
    found = simulated_effect(pd.DataFrame(rows("a", [2, 2]) + rows("b", [3, 3])), spec)  # type: ignore[arg-type]
    assert math.isnan(found.d) and "no spread" in found.note and found.saturated
    assert sign_agrees(found.d, found.raw_difference, 0.5) is True
    assert sign_agrees(found.d, found.raw_difference, -0.5) is False


def test_sign_and_magnitude_rules() -> None:
    assert sign_agrees(0.3, 0.3, 0.65) and not sign_agrees(-0.3, -0.3, 0.65)
    assert sign_agrees(0.0, 0.0, 0.5) is False  # no effect is a miss
    assert sign_agrees(0.3, 0.3, 0.0) is None
    assert magnitude_ratio(-1.3, 0.65) == pytest.approx(-2.0)  # signed
    assert math.isnan(magnitude_ratio(0.4, 0.03))  # a null's ratio means nothing


def test_summary_scores_signs_correlation_and_nulls() -> None:
    def item(name: str, kind: str, sim: float, human: float, se: float) -> ItemScore:
        found = SimulatedEffect(sim, sim - 1.96 * se, sim + 1.96 * se, sim, se=se)
        return score_item(name, kind, human=human, human_ci=None, effect=found)  # type: ignore[arg-type]

    scores = [
        item("a", "effect", 1.0, 0.5, 0.15),
        item("b", "effect", 2.0, 1.0, 0.15),
        item("c", "effect", -0.5, 0.4, 0.15),
        item("n1", "null", 0.01, 0.0, 0.05),
        item("n2", "null", 0.9, 0.0, 0.15),
    ]
    summary = summarize(scores)
    assert (summary.sign_agreement_k, summary.sign_agreement_n) == (2, 3)
    assert (summary.nulls_equivalent, summary.nulls_effect, summary.nulls_unresolved) == (1, 1, 0)
    assert summary.median_magnitude_ratio == pytest.approx(2.0)  # 2, 2, -1.25
    assert summary.magnitude_k == 3 and summary.correlation_k == 5
    x, y = [1.0, 2.0, -0.5, 0.01, 0.9], [0.5, 1.0, 0.4, 0.0, 0.0]
    assert summary.pearson == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert summary.effects == 3 and summary.nulls == 2


# --- calibration --------------------------------------------------------------------------------


def test_calibration_recovers_shrinkage_and_beats_raw_error() -> None:
    rng = np.random.default_rng(3)
    sim = np.linspace(-0.5, 3.0, 12)
    human = 0.5 * sim + rng.normal(0, 0.05, len(sim))
    fit = fit_calibration(list(sim), list(human), [f"e{i}" for i in range(12)], rng, model="origin")
    assert fit.slope == pytest.approx(0.5, abs=0.03)
    assert fit.slope_low < fit.slope < fit.slope_high
    assert fit.loo_rmse < fit.raw_rmse / 5
    names = [f"x{i}" for i in range(12)]
    line = fit_calibration(list(sim), list(0.4 + 0.5 * sim), names, rng, model="auto")
    assert line.model == "intercept" and line.intercept == pytest.approx(0.4)


def test_loo_predicts_each_item_from_the_others() -> None:
    sim, human = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0])
    predictions = loo_predictions(sim, human, "origin")
    slope_without_first = (2 * 1 + 4 * 2) / (4 + 16)
    assert predictions[0] == pytest.approx(slope_without_first * 1.0)


def test_prediction_interval_adds_cv_spread_and_the_new_error() -> None:
    rng = np.random.default_rng(0)
    fit = fit_calibration(
        [0.5, 1, 2, 3, 4], [0.3, 0.4, 1.1, 1.4, 2.1], list("abcde"), rng, model="origin"
    )
    sure, unsure = fit.predict(2.0, se=0.0), fit.predict(2.0, se=0.5)
    assert sure.estimate == pytest.approx(2 * fit.slope)
    assert sure.high - sure.low > 2 * 1.96 * fit.loo_rmse  # t quantile on 4 df exceeds z
    assert unsure.high - unsure.low > sure.high - sure.low
    with pytest.raises(CalibrationError, match="at least 3"):
        fit_calibration([1.0, float("nan")], [1.0, 1.0], ["a", "b"], rng)


# --- the shipped suite and its files ------------------------------------------------------------


def test_every_shipped_file_loads_with_a_target_and_a_source() -> None:
    specs = load_suite()
    names = {s.name for s in specs}
    assert names >= SHIPPED and len([n for n in names if n.startswith("ml2_")]) >= 3
    for spec in specs:
        target = spec.human_target
        assert target is not None and target.type == "d" and len(target.source) > 30, spec.name
    kinds = {s.name: s.human_target.kind for s in specs if s.human_target}
    assert kinds["flag_priming"] == kinds["ml1_currency_priming"] == "null"
    # not nulls in the human data: a weak effect and a significant reversal
    assert kinds["imagined_contact"] == kinds["ml2_choosing_rejecting"] == "effect"
    assert kinds["trolley"] == "effect"
    assert "Zaval" in next(s.human_target.source for s in specs if s.name == "ml2_heat_priming")  # type: ignore[union-attr]
    assert len(suite_files()) == len(specs)


def test_arm_wording_changes_the_question_and_the_coding() -> None:
    spec = load_suite(only=["tv_scale"])[0]
    low, high = spec.outcomes_for("low_scale")[0], spec.outcomes_for("high_scale")[0]
    assert low.success_options == ["More than 2.5 hours"]  # type: ignore[union-attr]
    assert len(high.success_options) == 5 and "Up to 2.5 hours" not in high.success_options  # type: ignore[union-attr]
    with pytest.raises(ExperimentError, match=r"by_arm.*not an option"):
        experiment_from_text(
            TWO_ARMS.replace('["Yes", "No"]', '["Yes", "No"], by_arm: {b: {success: Maybe}}')
        )


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(TWO_ARMS)
    with pytest.raises(ValidityError, match=r"plain.yaml: no human_target"):
        load_suite([plain])
    with pytest.raises(ValidityError, match=r"unknown experiment id 'trolly'.*trolley"):
        load_suite(only=["trolly"])
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(plain)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "no human_target" in result.output
    result = runner.invoke(
        app, ["validate", "--only", "asian_disease,nope"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "unknown experiment id 'nope'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["calibrate", str(tmp_path), "-c", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "calibration.json: no such file" in result.output


# --- a scripted run of the suite, written and read back -----------------------------------------


def leaning(call: ScriptedCall) -> object:
    """Random answers seeded by the prompt; treated vignettes push numbers and choices up."""
    rng = random.Random(hashlib.sha256(call.prompt_text.encode()).hexdigest())
    answer = call.schema.model_json_schema()["properties"]["answer"]  # type: ignore[union-attr]
    if "enum" in answer:
        return {"answer": rng.choice(answer["enum"]), "why": "x"}
    low, high = answer["minimum"], answer["maximum"]
    push = 2 if "Jefferson" in call.prompt_text else 0
    return {"answer": min(high, rng.randint(low, high - 2) + push), "why": "x"}


async def test_scripted_suite_writes_a_scorecard_and_calibrates(tmp_path: Path) -> None:
    specs = load_suite(only=["quote_attribution", "trolley", "ml2_heat_priming"])
    card = await run_suite(specs, ScriptedLLM(leaning), tmp_path, n=16, conditions=["none", "full"])
    assert card.conditions == ["none", "full"] and len(card.scores) == 6
    assert (tmp_path / "none" / "trolley" / "responses.csv").exists()
    names = {p.name for p in write_scorecard(card, tmp_path)}
    assert names == {"scorecard.json", "scorecard.csv", "scorecard.html", "calibration.json"}
    data = json.loads((tmp_path / "scorecard.json").read_text())  # strict JSON: no NaN
    assert {s["condition"] for s in data["summaries"]} == {"none", "full"}
    quote = next(s for s in card.scores if s.id == "quote_attribution" and s.condition == "full")
    assert quote.sim_d > 0 and quote.sign_agrees and math.isfinite(quote.dispersion_ratio)
    assert "<svg class='scatter'" in (tmp_path / "scorecard.html").read_text()
    fit = load_calibration(tmp_path)
    assert fit.condition == "full" and len(fit.items) == 3
    assert load_calibration(tmp_path / "calibration.json", "none").condition == "none"
    # a new experiment's effect, calibrated through the CLI
    result = CliRunner().invoke(
        app, ["calibrate", str(tmp_path / "full" / "quote_attribution"), "-c", str(tmp_path)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "full" / "quote_attribution" / "calibrated.json").read_text())
    calibrated = record["calibrated"]
    assert calibrated["low"] < calibrated["estimate"] < calibrated["high"]
    assert calibrated["estimate"] == pytest.approx(fit.intercept + fit.slope * quote.sim_d)
    assert load_experiment(tmp_path / "full" / "trolley" / "experiment.yaml").name == "trolley"
