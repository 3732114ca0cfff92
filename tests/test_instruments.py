"""Survey instruments: option order, printed ranges, the stimulus in the prompt, answer modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from societas.evaluation.validity_metrics import score_spec, simulated_effect
from societas.evaluation.validity_summary import summarize
from societas.experiments.answer_modes import draw_from_quantiles, respondent_rng
from societas.experiments.runner import ExperimentRunError, run_experiment
from societas.experiments.spec import experiment_from_text
from societas.llm.fake import ScriptedCall, ScriptedLLM

VIGNETTE = "I read that program A saves 200 of 600 people."
SPEC = """\
name: framing
seed: 3
population: {marginals: {n: 40}}
arms: [{id: plain}, {id: told}]
stimulus:
  told: {vignette: "I read that program A saves 200 of 600 people."}
outcomes:
  - {id: pick, type: choice, question: "Which program?", options: [Program A, Program B],
     success: Program A}
  - {id: guess, type: numeric, question: "How many people live in your town?", min: 0,
     max: 1000000}
design: between
human_target: {effect: 0.5, type: d, source: a test, outcome: pick, arm: told,
               arm_values: {plain: 0.4, told: 0.6}}
"""


def first_listed(call: ScriptedCall) -> object:
    """Always the option listed first, a typical order bias; 1000 for numbers."""
    if call.schema is None:  # token probabilities over the option letters
        return {"A": 0.8, "B": 0.2}
    schema = call.schema.model_json_schema()
    answer = schema["properties"].get("answer", {})
    if "enum" in answer:
        listed = call.messages[-1].content.split("Options:\n")[1].splitlines()
        return {"answer": listed[0].removeprefix("- ").strip(), "why": "x"}
    if "A" in schema["properties"]:
        return {"A": 70, "B": 30, "why": "x"}
    if "low" in schema["properties"]:
        return {"low": 100, "typical": 1000, "high": 5000, "why": "x"}
    return {"answer": 1000, "why": "x"}


async def test_option_order_is_random_recorded_and_order_bias_shows(tmp_path: Path) -> None:
    spec = experiment_from_text(SPEC)
    result = await run_experiment(spec, ScriptedLLM(first_listed), tmp_path / "a", n=40)
    picks = result.responses[result.responses["outcome"] == "pick"]
    orders = {tuple(json.loads(s)) for s in picks["shown"]}
    assert orders == {("Program A", "Program B"), ("Program B", "Program A")}
    assert (picks["shown_position"] == 0).all()  # the responder always took the first shown
    score = score_spec(spec, simulated_effect(result.responses, spec), "full")
    assert score.first_option == score.order_answers == 40 and score.first_option_expected == 0.5
    assert summarize([score]).first_option_p < 1e-6  # the order effect is flagged
    again = await run_experiment(spec, ScriptedLLM(first_listed), tmp_path / "b", n=40)
    assert list(again.responses["shown"].dropna()) == list(picks["shown"])  # seeded


async def test_numeric_range_and_stimulus_placement(tmp_path: Path) -> None:
    llm = ScriptedLLM(first_listed)
    await run_experiment(experiment_from_text(SPEC), llm, tmp_path, n=10)
    numeric = [c for c in llm.calls if "How many people" in c.prompt_text]
    assert numeric and not any("1000000" in c.prompt_text for c in numeric)
    told = [c for c in llm.calls if c.purpose == "survey" and VIGNETTE in c.messages[-1].content]
    assert told, "the stimulus must reach the prompt of the arm's questions"
    for call in told:
        user = call.messages[-1].content
        # most shared first: stimulus, then the persona, then the question and its options
        assert user.index(VIGNETTE) < user.index("You are") < user.index("Question:")
        assert user.count(VIGNETTE) == 1  # not repeated among the recalled memories
    shown = pd.read_csv(tmp_path / "responses.csv")
    assert shown.loc[shown["arm"] == "told", "stimulus_shown"].all()
    assert not shown.loc[shown["arm"] == "plain", "stimulus_shown"].any()
    ranged = SPEC.replace("max: 1000000}", "max: 1000000, show_range: true}")
    llm = ScriptedLLM(first_listed)
    await run_experiment(experiment_from_text(ranged), llm, tmp_path / "r", n=4)
    assert any("Scale: 0 to 1000000" in c.prompt_text for c in llm.calls)


async def test_stated_mode_draws_from_the_stated_chances(tmp_path: Path) -> None:
    spec = experiment_from_text(SPEC.replace("n: 40", "n: 200"))
    result = await run_experiment(
        spec, ScriptedLLM(first_listed), tmp_path, n=200, answer_mode="stated"
    )
    picks = result.responses[result.responses["outcome"] == "pick"]
    stated = [json.loads(s) for s in picks["probabilities"]]
    # "A" is the first letter shown, so its 70% goes to whichever option was listed first
    assert all(sorted(s.values()) == pytest.approx([0.3, 0.7]) for s in stated)
    first = (picks["shown_position"] == 0).mean()
    assert 0.6 < first < 0.8  # drawn, not always the most likely option
    guesses = result.responses.loc[result.responses["outcome"] == "guess", "value"]
    assert guesses.nunique() > 20 and guesses.min() >= 0  # numbers are drawn, not the typical one
    assert set(result.responses["mode"]) == {"stated"}
    with pytest.raises(ExperimentRunError, match="answer mode"):
        await run_experiment(spec, ScriptedLLM(first_listed), tmp_path, n=200, answer_mode="mode")


async def test_token_mode_draws_from_the_models_probabilities(tmp_path: Path) -> None:
    llm = ScriptedLLM(first_listed)
    spec = experiment_from_text(SPEC.replace("n: 40", "n: 200"))
    result = await run_experiment(spec, llm, tmp_path, n=200, answer_mode="token")
    picks = result.responses[result.responses["outcome"] == "pick"]
    assert 0.7 < (picks["shown_position"] == 0).mean() < 0.9  # drawn from 0.8 / 0.2
    recorded = [sorted(json.loads(p).values()) for p in picks["probabilities"]]
    assert all(r == pytest.approx([0.2, 0.8]) for r in recorded)
    letters = [c for c in llm.calls if c.schema is None]
    assert letters and all("Reply with the letter only" in c.prompt_text for c in letters)
    numbers = [c for c in llm.calls if c.purpose == "survey" and c.schema is not None]
    # numbers are sampled from the model's distribution with each respondent's own seed
    assert all(c.params is not None and c.params.temperature == 1.0 for c in numbers)
    assert len({c.params.seed for c in numbers if c.params is not None}) == len(numbers)
    greedy = ScriptedLLM(first_listed)
    await run_experiment(experiment_from_text(SPEC), greedy, tmp_path / "m", n=4)
    assert all(
        c.params and c.params.temperature == 0.0 for c in greedy.calls if c.purpose == "survey"
    )


def test_quantile_draws_follow_the_stated_range() -> None:
    rng = np.random.default_rng(0)
    draws = [draw_from_quantiles(float(rng.uniform()), 10, 20, 60) for _ in range(4000)]
    assert np.percentile(draws, [10, 50, 90]) == pytest.approx([10, 20, 60], abs=1.5)
    a, b = respondent_rng(1, "Ada", "q", 0), respondent_rng(1, "Ada", "q", 0)
    assert a.integers(0, 1000) == b.integers(0, 1000)
