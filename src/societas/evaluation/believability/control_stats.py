"""The real run's believability score against its negative controls.

The controls are described in :mod:`.controls`.

Scores and gaps are the mean of the category means (as the headline score) with 95% bootstrap
intervals over the questions: resampled within each category and paired between the real run and
the control (the same questions, graded the same way). The headline interval resamples agents
instead; with the two to six agents of a small run that says little about a gap, the questions
say more.

>>> import numpy as np
>>> from societas.evaluation.believability.interviews import GradedItem
>>> def item(q, score):
...     return GradedItem(agent="Ada", category="memory", question_id=q, question="?",
...         answer="", expected={}, method="rule", grader="age", score=score,
...         hallucinated=False, reason="")
>>> real = [item("m1", 1.0), item("m2", 1.0), item("m3", 0.5)]
>>> control = [item("m1", 0.0), item("m2", 0.5), item("m3", 0.5)]
>>> gap = compare_control(real, control, np.random.default_rng(0), n_resamples=200)
>>> round(gap.real.estimate, 2), round(gap.control.estimate, 2), round(gap.gap.estimate, 2)
(0.83, 0.33, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from societas.evaluation.believability.controls import CONTROLS
from societas.evaluation.believability.interviews import Evaluation, GradedItem
from societas.evaluation.believability.questions import CATEGORIES
from societas.evaluation.believability.stats import LEVEL, N_RESAMPLES, Interval


@dataclass(frozen=True)
class ControlGap:
    """The real run against one control on the ``pairs`` questions both got a grade for."""

    pairs: int
    real: Interval
    control: Interval
    gap: Interval
    control_hallucination: float

    @property
    def real_better(self) -> bool:
        """Whether the real run scores above the control, the gap's interval above zero."""
        return self.gap.low > 0


def compare_control(
    real: Sequence[GradedItem],
    control: Sequence[GradedItem],
    rng: np.random.Generator,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> ControlGap:
    """Scores of the real run and a control, and their gap, with paired item-bootstrap intervals.

    Raises ValueError when no question has a grade in both.
    """
    graded = {(i.agent, i.question_id): i.score for i in control if i.score is not None}
    pairs = [
        (CATEGORIES.index(r.category), r.score, graded[(r.agent, r.question_id)])
        for r in real
        if r.score is not None and (r.agent, r.question_id) in graded
    ]
    if not pairs:
        raise ValueError("the real run and the control have no graded question in common")
    flagged = {(i.agent, i.question_id) for i in control if i.hallucinated and i.score is not None}
    strata = sorted({c for c, _, _ in pairs})
    real_draws = np.zeros((n_resamples, len(strata)))
    control_draws = np.zeros((n_resamples, len(strata)))
    real_means, control_means = [], []
    for column, category in enumerate(strata):
        scores = np.array([(r, c) for k, r, c in pairs if k == category], dtype=np.float64)
        picks = rng.integers(0, len(scores), size=(n_resamples, len(scores)))
        real_draws[:, column] = scores[picks, 0].mean(axis=1)
        control_draws[:, column] = scores[picks, 1].mean(axis=1)
        real_means.append(float(scores[:, 0].mean()))
        control_means.append(float(scores[:, 1].mean()))
    real_boot, control_boot = real_draws.mean(axis=1), control_draws.mean(axis=1)
    real_score, control_score = float(np.mean(real_means)), float(np.mean(control_means))
    return ControlGap(
        pairs=len(pairs),
        real=_interval(real_score, real_boot, level),
        control=_interval(control_score, control_boot, level),
        gap=_interval(real_score - control_score, real_boot - control_boot, level),
        control_hallucination=len(flagged) / len(graded),
    )


def _interval(estimate: float, draws: npt.NDArray[np.float64], level: float) -> Interval:
    alpha = 1 - level
    low, high = np.quantile(draws, (alpha / 2, 1 - alpha / 2))
    return Interval(estimate, float(low), float(high))


def control_table(evaluation: Evaluation, seed: int = 0) -> pd.DataFrame:
    """One row for the real run and one per control: score with interval over ``pairs``
    questions, hallucination rate, and (controls) the gap ``real - control`` with its interval.

    Empty when the evaluation ran without controls.
    """
    if not evaluation.controls:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    real = compare_control(evaluation.items, evaluation.items, rng)
    graded = [i for i in evaluation.items if i.score is not None]
    rows = [
        _row("real run", "the run's own agents", real.pairs, real.real, None, graded),
    ]
    for name, items in evaluation.controls.items():
        try:
            gap = compare_control(evaluation.items, items, rng)
        except ValueError:
            continue
        answered = [i for i in items if i.score is not None]
        rows.append(_row(name, CONTROLS.get(name, ""), gap.pairs, gap.control, gap, answered))
    return pd.DataFrame(rows)


def _row(
    name: str,
    given: str,
    pairs: int,
    score: Interval,
    gap: ControlGap | None,
    graded: Sequence[GradedItem],
) -> dict[str, object]:
    nan = float("nan")
    return {
        "condition": name,
        "interviewee": given,
        "questions": pairs,
        "score": score.estimate,
        "low": score.low,
        "high": score.high,
        "hallucinations": sum(i.hallucinated for i in graded),
        "graded": len(graded),
        "gap": gap.gap.estimate if gap else nan,
        "gap_low": gap.gap.low if gap else nan,
        "gap_high": gap.gap.high if gap else nan,
        "real_better": gap.real_better if gap else None,
    }
