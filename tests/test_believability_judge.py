"""The believability judge: its shipped calibration set, fitness verdicts and the choice of judge
(scripted judges; no simulation)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from societas.evaluation.believability.judge_calibration import (
    CalibrationError,
    calibrate_judge,
    load_calibration,
)
from societas.evaluation.believability.judge_choice import choose_judge, judge_candidates
from societas.evaluation.believability.questions import JUDGED_CATEGORIES
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.llm.types import LanguageModel

SHIPPED = load_calibration()
REFERENCE = {e.answer: e.score for e in SHIPPED.examples}


def judge_of(score: Callable[[str], int]) -> ScriptedLLM:
    """A scripted judge scoring the answer it is shown with ``score(answer)``."""

    def respond(call: ScriptedCall) -> object:
        answer = call.prompt_text.rsplit("Answer: ", 1)[1].strip()
        return {"score": score(answer), "why": "scripted"}

    return ScriptedLLM(respond)


def faithful() -> ScriptedLLM:
    return judge_of(lambda answer: REFERENCE[answer])


def lenient() -> ScriptedLLM:
    """The judge of the issue: everything is believable."""
    return judge_of(lambda answer: 5)


def test_the_shipped_set_grades_good_bad_and_absurd_answers_in_every_judged_category() -> None:
    for category in JUDGED_CATEGORIES:
        grades = {e.grade for e in SHIPPED.examples if e.category == category}
        assert grades == {"good", "bad", "absurd"}, category
    ids = [e.id for e in SHIPPED.examples]
    assert len(ids) == len(set(ids))
    for example in SHIPPED.examples:
        expected = {"good": {4, 5}, "bad": {2}, "absurd": {1}}[example.grade]
        assert example.score in expected, example.id
    burning = [e for e in SHIPPED.examples if e.answer == "I would check if the coffee is cold."]
    assert burning and burning[0].grade == "absurd"


def test_a_bad_calibration_file_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(
        "version: 1\ncharacter: Ada\nexamples:\n  - {id: x, category: plans, grade: great,"
        " score: 5, rubric: plans, question: q, answer: a}\n"
    )
    with pytest.raises(CalibrationError, match=r"cal\.yaml: examples\.0\.grade"):
        load_calibration(path)
    path.write_text(
        "version: 1\ncharacter: Ada\nexamples:\n  - {id: x, category: plans, grade: good,"
        " score: 5, rubric: astrology, question: q, answer: a}\n"
    )
    with pytest.raises(CalibrationError, match=r"examples\.0\.rubric: unknown rubric"):
        load_calibration(path)


async def test_a_faithful_judge_is_fit_and_agrees() -> None:
    calibration = await calibrate_judge(faithful(), SHIPPED, judge_name="faithful")
    n = len(SHIPPED.examples)
    assert calibration.fit
    assert calibration.spearman == pytest.approx(1.0)
    assert (calibration.within_one, calibration.exact, calibration.graded) == (n, n, n)
    assert calibration.absurd_mean == 0.0 and calibration.absurd_over_two == 0
    assert f"within one point {n}/{n}" in calibration.summary()


async def test_a_judge_that_passes_absurd_answers_is_unfit() -> None:
    calibration = await calibrate_judge(lenient(), SHIPPED)
    assert not calibration.fit
    assert calibration.absurd_mean == 1.0
    assert calibration.absurd_over_two == calibration.absurd > 0
    assert "UNFIT" in calibration.summary()
    # One absurd answer let through ("check if the coffee is cold", 5/5) is enough.
    slip = await calibrate_judge(
        judge_of(lambda a: 5 if "coffee is cold" in a else REFERENCE[a]), SHIPPED
    )
    assert not slip.fit and slip.absurd_over_two == 1
    assert slip.absurd_mean == pytest.approx(4 / 4 / slip.absurd)


async def test_a_judge_that_scores_everything_one_is_unfit_too() -> None:
    calibration = await calibrate_judge(judge_of(lambda a: 1), SHIPPED)
    assert calibration.absurd_over_two == 0
    assert calibration.spearman is None and not calibration.fit


async def test_failed_grades_count_against_the_judge() -> None:
    def respond(call: ScriptedCall) -> object:
        answer = call.prompt_text.rsplit("Answer: ", 1)[1].strip()
        return "not json" if "helicopter" in answer else {"score": REFERENCE[answer], "why": "ok"}

    calibration = await calibrate_judge(ScriptedLLM(respond), SHIPPED)
    assert calibration.graded == len(SHIPPED.examples) - 1
    assert calibration.within_one == len(SHIPPED.examples) - 1
    assert not calibration.fit  # the absurd answer it failed to grade counts as let through


def test_candidates_are_other_installed_models() -> None:
    installed = ["qwen2.5-coder-1.5b", "smollm2-135m"]
    assert judge_candidates("qwen2.5-coder-1.5b", installed) == ["smollm2-135m"]
    assert judge_candidates("openai:big", installed) == installed
    assert judge_candidates("fake:x", installed) == []


async def test_the_answering_model_does_not_judge_when_a_fit_other_is_installed() -> None:
    opened: list[str] = []
    judges = {"big": faithful(), "small": lenient()}

    async def opener(name: str) -> LanguageModel:
        opened.append(name)
        return judges[name]

    answering = lenient()
    judge, report = await choose_judge(
        "small", answering, opener, calibration=SHIPPED, installed=["big", "small"]
    )
    assert judge is judges["big"] and report.model == "big" and not report.self_judged
    assert report.fit and report.caveats == [] and opened == ["big"]


async def test_self_judging_is_a_caveat_and_an_unfit_judge_is_flagged() -> None:
    async def opener(name: str) -> LanguageModel:
        return lenient()

    answering = faithful()
    judge, report = await choose_judge(
        "big", answering, opener, calibration=SHIPPED, installed=["big", "small"]
    )
    # The only other model lets nonsense pass, so the answering model judges, and says so.
    assert judge is answering and report.self_judged and report.fit
    assert [c.judge for c in report.rejected] == ["small"]
    assert any("grading its own answers" in c for c in report.caveats)
    _, report = await choose_judge("big", lenient(), opener, calibration=SHIPPED, installed=["big"])
    assert report.self_judged and report.fit is False
    assert any("no other model is installed" in c for c in report.caveats)
    assert any("UNFIT" in c for c in report.caveats)
    _, explicit = await choose_judge(
        "big", faithful(), opener, explicit="big", calibration=SHIPPED, installed=["small"]
    )
    assert explicit.self_judged and explicit.chosen == "chosen explicitly"
