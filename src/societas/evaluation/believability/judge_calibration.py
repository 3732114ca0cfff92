"""How far to trust the believability judge: its grades on shipped, hand-graded examples.

``data/judge_calibration.yaml`` holds good, bad and absurd answers for every category the judge
grades, each with the score a careful person gives it. :func:`calibrate_judge` has the judge
grade them all (the same prompt, rubrics and sampling as in an evaluation, so the response cache
makes a repeat free) and reports its agreement with the reference scores: Spearman's rank
correlation, the share within one point and the share exactly right (k/N), and its mean score on
each grade.

A judge is **unfit** when it gives any absurd answer more than 2 of 5: a judge that lets
nonsense pass cannot tell a run that makes sense from one that does not (the mean score of the
absurd answers, on [0, 1], is reported beside it; a fit judge keeps it at or below 0.25); and
when its scores do not rank the answers as the references do (Spearman below 0.5, or undefined
because it gives everything one score): a judge that scores everything 1 passes the first test
and still says nothing. An example the judge fails to grade (a model error) counts against it: as
a miss in the agreement and, when the answer is absurd, as the top score.

Example::

    async with open_llm("qwen2.5-coder-1.5b") as judge:
        calibration = await calibrate_judge(judge, load_calibration())
    print(calibration.within_one, "/", calibration.examples, calibration.fit)
"""

from __future__ import annotations

import asyncio
import math
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import stats

from societas.evaluation.believability.judge import judge_answer
from societas.evaluation.believability.questions import JUDGED_CATEGORIES, RUBRICS
from societas.llm.types import LanguageModel, LLMError

CALIBRATION_FILE = "judge_calibration.yaml"
ABSURD_CEILING = 2
"""A judge that gives any absurd answer more than this (of 5) is unfit."""
MIN_SPEARMAN = 0.5
"""A judge whose scores rank the examples less like the references than this is unfit."""

Grade = Literal["good", "bad", "absurd"]


class CalibrationError(ValueError):
    """A calibration file that cannot be read (names the file and the field)."""


class CalibrationExample(BaseModel):
    """One hand-graded answer: what the judge sees and the reference ``score`` (1-5)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    category: str
    grade: Grade
    score: int = Field(ge=1, le=5)
    rubric: str
    facts: list[str] = Field(default_factory=list)
    question: str = Field(min_length=1)
    answer: str


class CalibrationSet(BaseModel):
    """The shipped examples, with the character they are all about."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    character: str
    examples: list[CalibrationExample] = Field(min_length=1)


def load_calibration(path: str | Path | None = None) -> CalibrationSet:
    """The calibration set at ``path`` (default: the one shipped with the package).

    Raises :class:`CalibrationError` naming the file and the bad field.
    """
    if path is None:
        source = resources.files("societas.evaluation.believability").joinpath(
            "data", CALIBRATION_FILE
        )
        where, text = (
            f"societas/evaluation/believability/data/{CALIBRATION_FILE}",
            source.read_text("utf-8"),
        )
    else:
        where, text = str(path), Path(path).read_text(encoding="utf-8")
    try:
        loaded = CalibrationSet.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise CalibrationError(f"{where}: not valid YAML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise CalibrationError(f"{where}: {field}: {first['msg']}") from error
    for index, example in enumerate(loaded.examples):
        if example.rubric not in RUBRICS:
            raise CalibrationError(
                f"{where}: examples.{index}.rubric: unknown rubric {example.rubric!r}; "
                f"rubrics: {', '.join(RUBRICS)}"
            )
        if example.category not in JUDGED_CATEGORIES:
            raise CalibrationError(
                f"{where}: examples.{index}.category: {example.category!r} is not graded by "
                f"the judge; categories: {', '.join(JUDGED_CATEGORIES)}"
            )
    return loaded


class CalibratedExample(BaseModel):
    """One example with the judge's score (None when the judge failed) and reason."""

    id: str
    category: str
    grade: Grade
    reference: int
    judged: int | None
    why: str


class JudgeCalibration(BaseModel):
    """The judge's agreement with the reference scores and whether it is fit to grade."""

    judge: str | None
    set_version: int
    examples: int
    graded: int
    spearman: float | None
    within_one: int
    exact: int
    mean_by_grade: dict[str, float | None]
    absurd_over_two: int
    """Absurd answers given more than 2 of 5 (failures counted); any makes the judge unfit."""
    absurd: int
    absurd_mean: float
    """Mean score of the absurd answers on [0, 1] (failures counted as the top score)."""
    fit: bool
    items: list[CalibratedExample]

    def summary(self) -> str:
        """One line for reports: agreement with k/N, absurd answers, verdict."""
        rho = "n/a" if self.spearman is None else f"{self.spearman:.2f}"
        return (
            f"Spearman {rho} over {self.graded}/{self.examples} graded examples; within one "
            f"point {self.within_one}/{self.examples}, exact {self.exact}/{self.examples}; "
            f"absurd answers scored {self.absurd_mean:.2f} on average (on [0, 1]), above 2/5 "
            f"{self.absurd_over_two}/{self.absurd}: {'fit' if self.fit else 'UNFIT'}"
        )


async def calibrate_judge(
    judge: LanguageModel, calibration: CalibrationSet, *, judge_name: str | None = None
) -> JudgeCalibration:
    """Have ``judge`` grade every example of ``calibration`` and compare with the references."""
    verdicts = await asyncio.gather(
        *(_judged(judge, calibration.character, e) for e in calibration.examples)
    )
    items = [
        CalibratedExample(
            id=e.id,
            category=e.category,
            grade=e.grade,
            reference=e.score,
            judged=score,
            why=why,
        )
        for e, (score, why) in zip(calibration.examples, verdicts, strict=True)
    ]
    graded = [i for i in items if i.judged is not None]
    absurd = [i for i in items if i.grade == "absurd"]
    # A failed grade of an absurd answer counts as letting it pass.
    absurd_scores = [5 if i.judged is None else i.judged for i in absurd]
    absurd_mean = sum(absurd_scores) / len(absurd_scores) if absurd_scores else 1.0
    rho = _spearman(graded)
    return JudgeCalibration(
        judge=judge_name,
        set_version=calibration.version,
        examples=len(items),
        graded=len(graded),
        spearman=rho,
        within_one=sum(abs(i.judged - i.reference) <= 1 for i in graded if i.judged is not None),
        exact=sum(i.judged == i.reference for i in graded),
        mean_by_grade={grade: _mean_score(items, grade) for grade in ("good", "bad", "absurd")},
        absurd_over_two=sum(score > ABSURD_CEILING for score in absurd_scores),
        absurd=len(absurd),
        absurd_mean=(absurd_mean - 1) / 4,
        fit=max(absurd_scores, default=1) <= ABSURD_CEILING
        and (rho is not None and rho >= MIN_SPEARMAN),
        items=items,
    )


async def _judged(
    judge: LanguageModel, character: str, example: CalibrationExample
) -> tuple[int | None, str]:
    try:
        verdict = await judge_answer(
            judge,
            name=character,
            category=example.category,
            question=example.question,
            answer=example.answer,
            rubric=RUBRICS[example.rubric],
            facts=example.facts,
        )
    except LLMError as error:
        return None, f"no grade: {error}"
    return verdict.score, verdict.why


def _spearman(graded: list[CalibratedExample]) -> float | None:
    judged = [float(i.judged) for i in graded if i.judged is not None]
    reference = [float(i.reference) for i in graded if i.judged is not None]
    if len(judged) < 3 or len(set(judged)) < 2 or len(set(reference)) < 2:
        return None  # a judge giving one score to everything has no rank correlation
    rho = float(stats.spearmanr(reference, judged).statistic)
    return None if math.isnan(rho) else rho


def _mean_score(items: list[CalibratedExample], grade: str) -> float | None:
    """Mean judged score of ``grade`` on [0, 1] (graded examples only)."""
    scores = [i.judged for i in items if i.grade == grade and i.judged is not None]
    return None if not scores else (sum(scores) / len(scores) - 1) / 4


class JudgeReport(BaseModel):
    """Which model judged, why, how it did on the calibration set, and what to beware of."""

    model: str | None
    self_judged: bool
    chosen: str
    calibration: JudgeCalibration | None = None
    rejected: list[JudgeCalibration] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)

    @property
    def fit(self) -> bool | None:
        return None if self.calibration is None else self.calibration.fit


def judge_caveats(calibration: JudgeCalibration | None, self_judged: bool, why: str) -> list[str]:
    """What a reader of the scores must know about the judge."""
    caveats = []
    if self_judged:
        caveats.append(f"the judge is the answering model, grading its own answers ({why})")
    if calibration is None:
        caveats.append("the judge was not calibrated: its scores have no measured agreement")
    elif not calibration.fit:
        caveats.append(
            f"the judge is UNFIT ({calibration.summary()}); its scores are flagged and should "
            "not be trusted"
        )
    return caveats
