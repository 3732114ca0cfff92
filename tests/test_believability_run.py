"""Believability evaluation of a scripted duo run: questions from the log, grading, files,
architecture switches honoured by the engine, and the ablation table."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from societas.engine.config import SimulationConfig
from societas.engine.simulation import Simulation
from societas.evaluation.believability.ablation import CONDITIONS, run_ablations
from societas.evaluation.believability.facts import EvaluationError, read_run
from societas.evaluation.believability.interviews import evaluate_run
from societas.evaluation.believability.questions import CATEGORIES, generate_questions
from societas.evaluation.believability.report import write_evaluation
from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM
from societas.llm.types import LLMUnavailableError
from societas.scenarios.scenario import load_scenario
from support.scripted import DUO_HINTS


def interviewee(call: ScriptedCall) -> str:
    """An agent that answers from its prompt: its name and whatever memories it was given."""
    prompt = call.prompt_text
    name = prompt.split("You are ", 1)[1].split(".", 1)[0]
    question = prompt.rsplit("Question: ", 1)[1]
    if question.startswith("Who is"):
        person = question.removeprefix("Who is ").rstrip("?")
        known = person.split()[0] in prompt.split("Question:")[0]
        return (
            f"{person} is my neighbour from the cafe."
            if known
            else "I don't know anyone by that name."
        )
    if "new things" in question:
        told = "book club" in prompt.split("Question:")[0]
        return "Yes, the book club at the cafe on Sunday." if told else "No, I haven't heard."
    return f"I'm {name.split()[0]}. I would rather spend time with Noah or Iris."


def responder(call: ScriptedCall) -> object:
    if call.purpose == "believability":
        return {"answer": interviewee(call)}
    if call.purpose == "judge":
        return {"score": 4, "why": "plausible"}
    return filler.responder(call)


filler = SchemaFiller(random.Random(0), DUO_HINTS)


def scripted() -> ScriptedLLM:
    return ScriptedLLM(responder)


async def duo_run(path: Path, hours: float = 3.0, **switches: bool) -> Path:
    scenario = load_scenario("duo")
    sim = await Simulation.start(
        scenario, path, scripted(), SimulationConfig(seed=1, **switches), meta={"model": "fake"}
    )
    (path / "scenario.yaml").write_text(scenario.source_text, encoding="utf-8")
    await sim.run(hours=hours)
    sim.close("finished")
    return path


async def test_questions_come_from_the_event_log(tmp_path: Path) -> None:
    run, _ = read_run(await duo_run(tmp_path / "run"))
    noah = run.agents["Noah Bell"]
    assert noah.talked_with == ["Iris Vance"]
    assert [news.knows for news in noah.news] == [True]
    assert noah.plan
    questions = generate_questions(run, max_per_category=5)
    assert generate_questions(run, max_per_category=5) == questions  # deterministic
    for agent in ("Iris Vance", "Noah Bell"):
        mine = [q for q in questions if q.agent == agent]
        assert {q.category for q in mine} == set(CATEGORIES)
        assert all(sum(q.category == c for q in mine) <= 5 for c in CATEGORIES)
    by_text = {(q.agent, q.text): q for q in questions}
    who = by_text[("Noah Bell", "Who is Iris Vance?")]
    assert who.grader == "knows_person" and who.expected["talked"]
    assert "owner of Corner Cafe" in who.expected["details"]
    stranger = next(q for q in questions if q.agent == "Noah Bell" and q.grader == "stranger")
    assert stranger.expected["person"] not in run.people  # everyone in the duo has met
    news = by_text[("Noah Bell", "What have you heard about new things starting up around here?")]
    assert news.expected["knows"] is True
    plan = next(q for q in questions if q.agent == "Noah Bell" and q.grader == "plan_at")
    assert plan.expected["activity"] in {b.activity for b in noah.plan}
    assert "today?" in plan.text
    one = generate_questions(run, max_per_category=1)
    assert len(one) == 2 * len(CATEGORIES)


async def test_evaluate_grades_every_answer_and_writes_tables(tmp_path: Path) -> None:
    run_dir = await duo_run(tmp_path / "run")
    llm = scripted()
    evaluation = await evaluate_run(run_dir, llm)
    items = evaluation.items
    assert {i.category for i in items} == set(CATEGORIES)
    assert all(i.score is not None and 0.0 <= i.score <= 1.0 for i in items)
    assert {i.method for i in items} == {"rule", "judge"}
    graded = {(i.agent, i.grader): i for i in items}
    assert graded[("Noah Bell", "stranger")].score == 1.0
    assert graded[("Noah Bell", "knows_person")].score == 1.0
    assert graded[("Noah Bell", "news")].score == 1.0
    assert graded[("Noah Bell", "pick_person")].score == 1.0  # names Iris, whom he met
    assert all(i.score == 0.75 for i in items if i.method == "judge")
    # The scripted judge gives every answer 4/5, absurd ones too: calibration finds it unfit,
    # says it grades its own answers, and flags every score it gave.
    report = evaluation.judge
    assert report is not None and report.fit is False and report.self_judged
    assert report.calibration is not None and report.calibration.absurd_over_two > 0
    assert all(i.reason.startswith("UNFIT JUDGE") for i in items if i.method == "judge")
    assert not any("UNFIT" in i.reason for i in items if i.method == "rule")
    # The interview saw the plan (planning on) and memories (memory on).
    asked = [c for c in llm.calls if c.purpose == "believability"]
    assert len(asked) == 3 * len(items)  # the run's agents and the two controls' stand-ins
    assert any("My plan today" in c.prompt_text for c in asked[: len(items)])

    # The controls answer the same questions; without memories Noah knows neither Iris nor
    # the club news, which he did hear in the run.
    assert set(evaluation.controls) == {"shuffled", "no_memory"}
    assert evaluation.control_donors == {"Iris Vance": "Noah Bell", "Noah Bell": "Iris Vance"}
    for control in evaluation.controls.values():
        assert [(i.agent, i.question_id) for i in control] == [
            (i.agent, i.question_id) for i in items
        ]
    bare = {(i.agent, i.grader): i for i in evaluation.controls["no_memory"]}
    assert bare[("Noah Bell", "knows_person")].score == 0.0
    assert bare[("Noah Bell", "news")].score == 0.0
    assert not any("My plan today" in c.prompt_text for c in asked[-len(items) :])

    files = write_evaluation(evaluation, tmp_path / "out")
    assert {f.name for f in files} == {
        "items.csv",
        "by_agent.csv",
        "by_category.csv",
        "controls.csv",
        "believability.json",
        "report.html",
    }
    controls = pd.read_csv(tmp_path / "out" / "controls.csv")
    assert list(controls["condition"]) == ["real run", "shuffled", "no_memory"]
    real, no_memory = controls["score"][0], controls["score"][2]
    assert real > no_memory
    assert controls["gap"][2] == pytest.approx(real - no_memory)
    assert (controls["low"] <= controls["score"]).all()
    assert (controls["score"] <= controls["high"]).all()
    table = pd.read_csv(tmp_path / "out" / "by_category.csv")
    assert list(table["category"]) == [*CATEGORIES, "overall", "hallucination rate"]
    assert table["mean"].between(0, 1).all()
    document = json.loads((tmp_path / "out" / "believability.json").read_text())
    assert len(document["items"]) == len(items)
    assert len(document["controls"]["items"]["shuffled"]) == len(items)
    assert document["controls"]["comparison"][1]["condition"] == "shuffled"
    assert document["judge"]["calibration"]["fit"] is False
    assert "UNFIT" in (tmp_path / "out" / "report.html").read_text()
    assert document["architecture"] == {"memory": True, "reflection": True, "planning": True}
    assert "Believability" in (tmp_path / "out" / "report.html").read_text()
    single = write_evaluation(evaluation, tmp_path / "one.json")
    assert json.loads(single[0].read_text())["summary"]["agents"] == 2


async def test_architecture_switches_change_the_run(tmp_path: Path) -> None:
    full = await duo_run(tmp_path / "full", hours=2.0)
    bare = await duo_run(
        tmp_path / "bare", hours=2.0, memory=False, reflection=False, planning=False
    )
    _, full_agents = read_run(full)
    _, bare_agents = read_run(bare)
    assert all(len(a.memory) > 0 for a in full_agents.values())
    assert all(len(a.memory) == 0 for a in bare_agents.values())  # not even initial memories
    assert all(a.plan is not None and len(a.plan.blocks) == 1 for a in bare_agents.values())
    assert all(a.commitments == [] for a in bare_agents.values())
    llm = scripted()
    await evaluate_run(bare, llm)
    prompts = [c.prompt_text for c in llm.calls if c.purpose == "believability"]
    assert prompts and not any("My plan today" in p for p in prompts)
    assert not any("book club on Sunday" in p for p in prompts)


async def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="has no scenario"):
        await evaluate_run(tmp_path, scripted())


async def test_ablation_table_compares_each_condition_with_the_full_architecture(
    tmp_path: Path,
) -> None:
    result = await run_ablations(
        load_scenario("duo"),
        tmp_path / "ablate",
        scripted(),
        hours=1.0,
        seed=1,
        max_per_category=2,
    )
    table = result.table
    assert list(table["condition"]) == [c.id for c in CONDITIONS]
    assert list(table["paper_trueskill"]) == [29.89, 26.88, 25.64, 21.21]
    for column in (*CATEGORIES, "overall", "hallucination_rate"):
        assert table[column].between(0, 1).all(), column
    assert (table["overall_low"] <= table["overall"]).all()
    assert table.loc[0, "full_minus_this"] != table.loc[0, "full_minus_this"]  # NaN for full
    assert table["full_minus_this"][1:].notna().all()
    for condition in CONDITIONS:
        assert (tmp_path / "ablate" / condition.id / "believability" / "report.html").exists()
    assert {p.name for p in result.files} == {"ablation.csv", "ablation.json", "report.html"}
    document = json.loads((tmp_path / "ablate" / "ablation.json").read_text())
    assert document["conditions"][3]["switches"] == {
        "memory": False,
        "reflection": False,
        "planning": False,
    }
    # A rerun reuses the finished runs (no simulation call) and gives the same table.
    again = scripted()
    rerun = await run_ablations(
        load_scenario("duo"), tmp_path / "ablate", again, hours=1.0, seed=1, max_per_category=2
    )
    assert not [c for c in again.calls if c.purpose not in ("believability", "judge")]
    pd.testing.assert_frame_equal(rerun.table, table)


async def test_failed_answers_are_left_ungraded_not_guessed(tmp_path: Path) -> None:
    run_dir = await duo_run(tmp_path / "run", hours=1.0)

    def broken(call: ScriptedCall) -> object:
        if call.purpose == "believability":
            raise LLMUnavailableError("server down")
        return responder(call)

    evaluation = await evaluate_run(run_dir, ScriptedLLM(broken), max_per_category=1)
    assert all(i.score is None and "server down" in i.reason for i in evaluation.items)
    with pytest.raises(EvaluationError, match="no graded answers"):
        write_evaluation(evaluation, tmp_path / "out")
