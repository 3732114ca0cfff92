"""Experiment files: valid examples load; bad files fail naming the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.experiments.spec import (
    EXAMPLE,
    BetweenDesign,
    ChoiceOutcome,
    ExperimentError,
    experiment_from_text,
    load_experiment,
    resolve_time,
)

EXAMPLES = Path(__file__).parents[1] / "src" / "societas" / "experiments" / "examples"


def error_of(text: str) -> ExperimentError:
    with pytest.raises(ExperimentError) as caught:
        experiment_from_text(text, "study.yaml")
    return caught.value


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize("name", ["mask_policy_town", "twin_message", "vignette_framing"])
def test_shipped_examples_load(name: str) -> None:
    spec = load_experiment(EXAMPLES / f"{name}.yaml")
    assert spec.name == name
    assert len(spec.treatment_arms) == 1


def test_the_example_reads_as_written() -> None:
    spec = experiment_from_text(EXAMPLE)
    assert spec.arm_ids == ["gain", "loss"] and spec.control_arm == "gain"
    assert isinstance(spec.design, BetweenDesign)
    outcome = spec.outcomes[0]
    assert isinstance(outcome, ChoiceOutcome) and outcome.success_option == "A"


def test_unknown_arm_in_stimulus() -> None:
    text = EXAMPLE.replace("  loss: {vignette", "  lost: {vignette")
    error = error_of(text)
    assert error.field == "stimulus.lost"
    assert error.line == line_of(text, "lost:")
    assert str(error).startswith(f"study.yaml:{error.line}: stimulus.lost: unknown arm 'lost'")
    assert "did you mean 'loss'" in str(error)


def test_missing_question() -> None:
    text = EXAMPLE.replace('question: "Which program?", ', "")
    error = error_of(text)
    assert error.field == "outcomes[0].question"
    assert error.line == line_of(text, "id: pick")
    assert "missing required field 'question'" in str(error)


def test_bad_likert_points() -> None:
    text = EXAMPLE.replace(
        'type: choice, question: "Which program?", options: [A, B]',
        "type: likert, question: Agree, points: 4",
    )
    error = error_of(text)
    assert error.field == "outcomes[0].points"
    assert "5 or 7 points, got 4" in str(error)
    assert error.line == line_of(text, "points: 4")


def test_likert_labels_must_match_points() -> None:
    text = EXAMPLE.replace(
        'type: choice, question: "Which program?", options: [A, B]',
        "type: likert, question: Agree, labels: [no, yes]",
    )
    assert "needs 5 labels, got 2" in str(error_of(text))


def test_unknown_design() -> None:
    text = EXAMPLE.replace("design: between", "design: betwen")
    error = error_of(text)
    assert error.field == "design.type"
    assert error.line == line_of(text, "design:")
    assert "unknown design 'betwen' (did you mean 'between'?)" in str(error)


def test_unknown_field_and_unknown_outcome_type() -> None:
    text = EXAMPLE.replace("seed: 7", "seed: 7\ncolour: blue")
    error = error_of(text)
    assert (error.field, error.line) == ("colour", 3)
    text = EXAMPLE.replace("type: choice", "type: essay")
    assert "unknown outcome type 'essay'" in str(error_of(text))


def test_world_design_needs_interventions_and_a_scenario() -> None:
    text = EXAMPLE.replace("design: between", "design: {type: world, hours: 1}")
    message = str(error_of(text))
    assert "a world design needs intervention stimuli" in message
    assert "a world design needs 'scenario: NAME'" in message


def test_population_needs_exactly_one_source() -> None:
    text = EXAMPLE.replace("{marginals: {n: 40}}", "{marginals: {n: 40}, csv: people.csv}")
    error = error_of(text)
    assert error.field == "population" and "exactly one of" in str(error)


def test_bad_human_target() -> None:
    text = EXAMPLE + "human_target: {effect: 0.3, type: d, source: x, arm: nope, ci: [0.5, 0.1]}\n"
    message = str(error_of(text))
    assert "human_target.arm: unknown arm 'nope'" in message
    assert "human_target.ci" in message


def test_bad_intervention_time() -> None:
    text = (EXAMPLES / "mask_policy_town.yaml").read_text()
    text = text.replace('at: "+00:10"', 'at: "tomorrow"')
    error = error_of(text)
    assert error.field == "stimulus.rule.intervention.at"
    assert error.line == line_of(text, "at: ")
    assert "offset like +01:30" in str(error)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match=r"absent\.yaml: no such file"):
        load_experiment(tmp_path / "absent.yaml")


def test_offsets_and_iso_times() -> None:
    from datetime import datetime

    start = datetime(2026, 2, 13, 7, 0)
    assert resolve_time("+00:45", start) == datetime(2026, 2, 13, 7, 45)
    assert resolve_time("2026-02-13T12:00", start) == datetime(2026, 2, 13, 12, 0)
