"""Running experiments with a scripted model: files, designs end to end, resume, report, CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.experiments.runner import ExperimentRunError, run_experiment
from societas.experiments.spec import EXAMPLE, experiment_from_text
from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM

GAIN = "Program A saves 200 of 600 people."
WORLD = """\
name: masks
seed: 4
population: {scenario: duo}
arms: [{id: quiet}, {id: rule}]
stimulus:
  rule:
    intervention:
      kind: announcement
      data: {text: "Masks are required at the cafe from today."}
outcomes:
  - {id: mask, type: likert, question: How likely are you to wear a mask at the cafe}
design: {type: world, fork_at: "+00:30", hours: 0.5}
"""
WITHIN = """\
name: nudge
seed: 2
population: {marginals: {n: 10}}
arms: [{id: none}, {id: message}]
stimulus:
  message: {vignette: "A friend urged me to join the garden cleanup on Saturday."}
outcomes:
  - {id: join, type: likert, question: How willing are you to join the garden cleanup, points: 7}
  - {id: why, type: open, question: What would make you join, rubric: Names a concrete reason}
design: within
"""


def framing_responder(call: ScriptedCall) -> object:
    """Gain framing makes agents pick the sure program; anything else the gamble."""
    return {"answer": "A" if GAIN in call.prompt_text else "B", "why": "framing"}


def scripted(responder: object = None) -> ScriptedLLM:
    if responder is None:
        return ScriptedLLM(SchemaFiller(random.Random(0), {"answer": "I like it"}).responder)
    return ScriptedLLM(responder)  # type: ignore[arg-type]


async def test_between_run_writes_every_file(tmp_path: Path) -> None:
    spec = experiment_from_text(EXAMPLE)
    seen: list[tuple[int, int]] = []
    result = await run_experiment(
        spec, scripted(framing_responder), tmp_path, n=12, progress=lambda d, t: seen.append((d, t))
    )
    for name in ("experiment.yaml", "responses.jsonl", "responses.csv", "analysis.csv",
                 "population.json", "usage.json", "report.html"):  # fmt: skip
        assert (tmp_path / name).exists(), name
    responses = pd.read_csv(tmp_path / "responses.csv")
    assert len(responses) == 12 and responses["agent"].nunique() == 12
    by_arm = responses.groupby("arm")["value"].mean().to_dict()
    assert by_arm == {"gain": 1.0, "loss": 0.0}  # answers follow each arm's vignette
    assert responses.groupby("arm").size().to_dict() == {"gain": 6, "loss": 6}
    assert seen[-1] == (12, 12)
    effect = result.analysis.query(
        "section == 'effect' and estimand == 'difference in proportions'"
    )
    assert effect["estimate"].iloc[0] == pytest.approx(-1.0)
    population = json.loads((tmp_path / "population.json").read_text())
    assert len(population["personas"]) == 12 and population["sample"]["table"]
    assert (tmp_path / "experiment.yaml").read_text() == EXAMPLE
    assert result.notes == [] or "pyarrow" in result.notes[0]


async def test_rerun_of_the_same_folder_makes_no_model_calls(tmp_path: Path) -> None:
    spec = experiment_from_text(EXAMPLE)
    first = scripted(framing_responder)
    await run_experiment(spec, first, tmp_path, n=8)
    assert len(first.calls) == 8
    again = scripted(framing_responder)
    result = await run_experiment(spec, again, tmp_path, n=8)
    assert again.calls == []
    assert len(result.responses) == 8


async def test_an_interrupted_run_measures_only_the_missing_agents(tmp_path: Path) -> None:
    spec = experiment_from_text(EXAMPLE)
    await run_experiment(spec, scripted(framing_responder), tmp_path, n=8)
    log = tmp_path / "responses.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])  # killed while writing line 6
    again = scripted(framing_responder)
    result = await run_experiment(spec, again, tmp_path, n=8)
    assert len(again.calls) == 3
    assert sorted(result.responses["agent"]) == sorted(json.loads(x)["unit"] for x in lines)
    third = scripted(framing_responder)
    await run_experiment(spec, third, tmp_path, n=8)
    assert third.calls == []


async def test_an_answer_the_model_cannot_give_is_missing_and_the_rest_go_on(
    tmp_path: Path,
) -> None:
    spec = experiment_from_text(EXAMPLE)
    stubborn: list[str] = []

    def responder(call: ScriptedCall) -> object:
        if not stubborn or stubborn[0] in call.prompt_text:  # the first agent asked never complies
            if not stubborn:
                stubborn.append(call.prompt_text.split("You are ", 1)[1].split(".")[0])
            return {"answer": "C", "why": "neither"}
        return framing_responder(call)

    result = await run_experiment(spec, scripted(responder), tmp_path, n=8)
    responses = pd.read_csv(tmp_path / "responses.csv")
    failed = responses[responses["value"].isna()]
    assert len(responses) == 8 and len(failed) == 1
    assert failed["agent"].iloc[0] == stubborn[0]
    assert "invalid" in failed["error"].iloc[0] and responses["error"].notna().sum() == 1
    assert any("1 of 8 answers are missing" in note for note in result.notes)
    assert json.loads((tmp_path / "usage.json").read_text())["missing_answers"] == 1
    counts = result.analysis.query("section == 'arm'")["n"].sum()
    assert counts == 7  # the analysis uses the seven answers there are
    again = scripted(responder)
    await run_experiment(spec, again, tmp_path, n=8)
    assert again.calls == []  # a missing answer is recorded, not asked again on resume


async def test_another_experiment_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    await run_experiment(experiment_from_text(EXAMPLE), scripted(framing_responder), tmp_path, n=4)
    other = experiment_from_text(EXAMPLE.replace("seed: 7", "seed: 8"))
    with pytest.raises(ExperimentRunError, match="different experiment"):
        await run_experiment(other, scripted(framing_responder), tmp_path, n=4)


async def test_within_run_is_counterbalanced_and_never_leaks(tmp_path: Path) -> None:
    llm = scripted()
    result = await run_experiment(experiment_from_text(WITHIN), llm, tmp_path)
    rows = result.responses
    assert len(rows) == 10 * 2 * 2  # agents x arms x outcomes
    firsts = rows[(rows["position"] == 0) & (rows["outcome"] == "join")]["arm"].value_counts()
    assert firsts.to_dict() == {"none": 5, "message": 5}
    grades = [c for c in llm.calls if c.purpose == "grade"]
    assert len(grades) == 20 and all("Names a concrete reason" in c.prompt_text for c in grades)
    surveys = [c for c in llm.calls if c.purpose == "survey"]
    with_message = [c for c in surveys if "garden cleanup on Saturday" in c.prompt_text]
    assert len(with_message) == 20  # both questions, under the message arm only (10 agents)
    assert set(rows.query("outcome == 'why'")["value"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    paired = result.analysis.query("section == 'paired'")
    assert set(paired["estimand"]) <= {"paired mean difference", "d_z"}


async def test_world_run_keeps_the_control_branch_clean(tmp_path: Path) -> None:
    llm = scripted()
    result = await run_experiment(experiment_from_text(WORLD), llm, tmp_path)
    rows = result.responses
    assert sorted(rows["arm"].value_counts().to_dict().items()) == [("quiet", 2), ("rule", 2)]
    assert set(rows["cluster"]) == {"Vance Flat", "Bell House"}
    surveys = [c for c in llm.calls if c.purpose == "survey"]
    treated = [c for c in surveys if "Masks are required" in c.prompt_text]
    assert len(treated) == 2  # each agent of the intervention branch recalls it; no one else
    again = scripted()
    await run_experiment(experiment_from_text(WORLD), again, tmp_path)
    assert again.calls == []


async def test_report_has_the_plots_and_the_cli_rebuilds_it(tmp_path: Path) -> None:
    text = EXAMPLE + "human_target: {effect: -0.5, type: diff, ci: [-0.6, -0.4], source: T&K}\n"
    await run_experiment(experiment_from_text(text), scripted(framing_responder), tmp_path, n=10)
    report = tmp_path / "report.html"
    page = report.read_text()
    assert page.count("<svg") >= 4  # arms, effects, answers, benchmark, margins
    for kind in ("forest", "distribution", "margins"):
        assert f"class='{kind}'" in page
    assert "Human benchmark" in page and "T&amp;K" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page
    report.unlink()
    outcome = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    assert report.read_text() == page


def test_cli_reports_a_bad_file_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace("design: between", "design: sideways"))
    outcome = CliRunner().invoke(app, ["experiment", str(bad)])
    assert outcome.exit_code == 2
    assert "bad.yaml:12" in outcome.output and "unknown design 'sideways'" in outcome.output
