"""Validity metrics: a simulated effect as a standardized d, and how it compares to people.

One experiment of the validity suite gives one :class:`SimulatedEffect` (from its responses and
its ``human_target``) and one :class:`ItemScore`; :func:`~.validity_summary.summarize` scores the
suite. The rules are built so that a population answering everything alike cannot look good.

Definitions
-----------
- **d**: continuous outcomes (Likert, numeric, composites of ``items``; pooled ranks when the
  target says ``ranks``): Cohen's d, treatment minus control over the pooled within-arm SD. When
  every agent of both arms answers alike, d is 0 (the arms do not differ) but has no standard
  error; when the arms differ without any spread inside them, d is undefined.
  Binary outcomes (a choice coded 0/1): the log odds ratio times ``sqrt(3) / pi`` (Chinn 2000).
  Under separation (an arm answering all alike leaves a cell of the 2x2 table empty) the
  estimate is Firth's bias-reduced log odds ratio, which in a 2x2 table equals the
  Haldane-Anscombe estimate (0.5 added to every cell); the item is flagged **saturated**, since
  such a d depends on n rather than on the effect.
  ``split_by`` targets: d between agents who chose the split outcome's success option and those
  who did not, within each arm, pooled over arms with inverse-variance weights.
  Intervals are 95% normal-approximation intervals (``se`` of d from Hedges & Olkin 1985, of
  the log-OR from Woolf), so every item gets one by the same rule.
- **saturated**: some arm answered all alike (for a choice: unanimously).
- **sign agreement**: the simulated d has the human d's sign (the raw difference decides when
  d is undefined). A simulated effect of exactly 0, or none at all, is a *miss*, never left out.
- **magnitude ratio**: ``d_sim / d_human``, signed, so a wrong-sign effect scores below 0
  (undefined for human ``|d| < 0.05``; 0 when the simulated arms do not differ; undefined for a
  saturated choice item whose arms differ, whose d grows with n: it is left out of the median
  and of calibration, and the k/N of those figures shows it).
- **dispersion ratio**: simulated over human within-arm SD of the outcome: for numeric and
  Likert outcomes the pooled within-arm SD against the target's ``sd``; for binary outcomes the
  Bernoulli SD ``sqrt(mean over arms of p (1 - p))`` against the same from the human arm shares
  (``arm_values``). Below 1 means the simulated answers are more uniform than people's.
- **level error**: per arm with a human figure (``arm_values``), simulated minus human mean or
  share; the item's figure is the mean absolute error over those arms.
- **modal share**: the share of agents giving their arm's most common answer (1 = everyone
  answers alike); it needs no human figure.
- **attrition**: per arm, agents asked and agents without a usable answer (the model gave no
  valid one); failed answers are counted here, never dropped silently.
- **null verdict** (null controls only): an equivalence test, see :mod:`.equivalence`:
  ``equivalent``, ``effect`` or ``unresolved``, with the margin and the achieved power.

Examples
--------
>>> score = score_item("x", "effect", human=0.5, human_ci=None,
...                    effect=SimulatedEffect(d=-0.5, low=-1.1, high=0.1, raw_difference=-1.0))
>>> score.sign_agrees, round(score.magnitude_ratio, 2)
(False, -1.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as scipy_stats

from societas.evaluation.equivalence import judge_null
from societas.experiments.analysis import agent_means
from societas.experiments.spec import ChoiceOutcome, ExperimentSpec, HumanTarget

OR_TO_D = math.sqrt(3) / math.pi
TINY_HUMAN = 0.05
Z95 = 1.959963984540054
NAN = float("nan")
FloatArray = npt.NDArray[np.float64]
Kind = Literal["effect", "null"]
Estimate = tuple[float, float, float, float, str]
"""d, low, high, se and a note."""


class ValidityDataError(ValueError):
    """The responses cannot give the effect the human target asks for."""


@dataclass(frozen=True)
class ArmAttrition:
    """Agents of one arm asked, and those left without a usable answer."""

    arm: str
    asked: int
    failed: int


@dataclass(frozen=True)
class SimulatedEffect:
    """A simulated effect as d with its 95% interval, and the spread of the answers."""

    d: float
    low: float
    high: float
    raw_difference: float
    se: float = NAN
    n_control: int = 0
    n_treated: int = 0
    sd: float = NAN
    """Within-arm SD: pooled SD of the outcome, or the Bernoulli SD of a binary one."""
    modal_share: float = NAN
    binary: bool = False
    arm_values: tuple[tuple[str, float], ...] = ()
    """The simulated mean (or share) of each arm."""
    note: str = ""
    saturated: bool = False
    """Some arm answered all alike (a binary d is then Firth's/Haldane-Anscombe's)."""
    attrition: tuple[ArmAttrition, ...] = ()
    order: OrderCheck | None = None
    stimulus_delivered: tuple[int, int] = (0, 0)
    """Answers of arms with a vignette whose prompt held it, of all such answers."""


@dataclass(frozen=True)
class OrderCheck:
    """Choice answers that took the first option shown, of all, and the share chance gives."""

    first: int
    answers: int
    expected: float

    @property
    def share(self) -> float:
        return self.first / self.answers if self.answers else NAN


@dataclass(frozen=True)
class ItemScore:
    """One experiment's comparison with people (see the module docstring for definitions)."""

    id: str
    kind: Kind
    human_d: float
    human_low: float
    human_high: float
    sim_d: float
    sim_low: float
    sim_high: float
    sim_se: float
    raw_difference: float
    n: int
    sign_agrees: bool | None
    magnitude_ratio: float
    dispersion_ratio: float
    modal_share: float
    condition: str = "full"
    note: str = ""
    paradigm: str = ""
    """Items of one paradigm (the four anchoring questions) are not independent evidence."""
    saturated: bool = False
    null_verdict: str | None = None
    """``equivalent``, ``effect`` or ``unresolved`` (null controls only)."""
    equivalence_bound: float = NAN
    equivalence_p: float = NAN
    equivalence_power: float = NAN
    level_error: float = NAN
    """Mean absolute (simulated - human) arm mean or share, over arms with a human figure."""
    level_errors: dict[str, float] = field(default_factory=dict)
    asked: int = 0
    failed: int = 0
    attrition: dict[str, str] = field(default_factory=dict)
    """Per arm: ``"failed/asked"`` agents."""
    first_option: int = 0
    order_answers: int = 0
    first_option_expected: float = NAN
    """Choice answers taking the first option shown, of ``order_answers``, and chance's share."""
    stimulus_shown: int = 0
    stimulus_answers: int = 0
    """Answers of stimulus arms whose prompt held the stimulus, of all of them."""
    tvd: float = NAN
    """Total variation distance between simulated and human answer shares, mean over arms."""
    tvd_uniform: float = NAN
    tvd_majority: float = NAN
    """The same for a uniform answerer and for one giving every arm's human majority answer."""
    binary: bool = False

    @property
    def effective_d(self) -> float:
        """d where defined; 0 when the arms do not differ at all; else NaN."""
        if math.isfinite(self.sim_d):
            return self.sim_d
        return 0.0 if self.raw_difference == 0 else NAN

    @property
    def size_known(self) -> bool:
        """False for a saturated choice item whose arms differ: its d grows with n, so it says
        "at least this large", not how large (left out of magnitude ratios and calibration)."""
        return not (self.binary and self.saturated and self.raw_difference != 0)

    @property
    def calibration_d(self) -> float:
        return self.effective_d if self.size_known else NAN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the simulated effect -----------------------------------------------------------------------


def simulated_effect(
    responses: pd.DataFrame, spec: ExperimentSpec, target: HumanTarget | None = None
) -> SimulatedEffect:
    """The effect ``target`` (default ``spec.human_target``) describes, measured on
    ``responses`` (the runner's rows); only its outcome, arm, items, split and ranks matter."""
    target = target or spec.human_target
    if target is None:
        raise ValidityDataError(f"{spec.name}: the experiment has no human_target")
    if responses.empty:
        raise ValidityDataError(f"{spec.name}: no responses")
    scores = agent_scores(agent_means(responses), spec, target)
    lost = attrition(responses, scores, spec)
    if target.split_by is not None:
        return split_effect(scores, spec, target.split_by, lost)
    treated_arm = target.arm or spec.treatment_arms[0]
    control = scores.loc[scores["arm"] == spec.control_arm, "score"].to_numpy(np.float64)
    treated = scores.loc[scores["arm"] == treated_arm, "score"].to_numpy(np.float64)
    if len(control) == 0 or len(treated) == 0:
        # Nothing to compare: an undefined effect, a miss, with the attrition shown.
        return SimulatedEffect(
            NAN,
            NAN,
            NAN,
            NAN,
            n_control=len(control),
            n_treated=len(treated),
            note=f"an arm has no usable answers (failed: {attrition_text(lost)})",
            saturated=True,
            attrition=lost,
            stimulus_delivered=stimulus_delivery(responses, spec),
        )
    binary = is_binary(spec, target, scores["score"])
    values = {spec.control_arm: control, treated_arm: treated}
    if binary:
        effect = binary_effect(treated, control)
    else:
        shown = ranked(treated, control) if target.ranks else (treated, control)
        effect = standardized_difference(*shown)
    return SimulatedEffect(
        d=effect[0],
        low=effect[1],
        high=effect[2],
        se=effect[3],
        raw_difference=float(treated.mean() - control.mean()),
        n_control=len(control),
        n_treated=len(treated),
        sd=bernoulli_sd(list(values.values())) if binary else pooled_sd(treated, control),
        modal_share=modal_share(list(values.values())),
        binary=binary,
        arm_values=tuple((arm, float(v.mean())) for arm, v in values.items()),
        note=effect[4],
        saturated=any(len(np.unique(v)) == 1 for v in values.values()),
        attrition=lost,
        order=order_check(responses, spec, target),
        stimulus_delivered=stimulus_delivery(responses, spec),
    )


def target_rows(responses: pd.DataFrame, spec: ExperimentSpec, target: HumanTarget) -> pd.DataFrame:
    outcomes = target.items or [target.outcome or spec.outcomes[0].id]
    return responses[responses["outcome"].isin(outcomes)]


def order_check(
    responses: pd.DataFrame, spec: ExperimentSpec, target: HumanTarget
) -> OrderCheck | None:
    """How often the answer was the first option shown (None without recorded orders)."""
    if "shown_position" not in responses.columns or "shown" not in responses.columns:
        return None
    rows = target_rows(responses, spec, target).dropna(subset=["shown_position"])
    if rows.empty:
        return None
    sizes = [len(json.loads(text)) for text in rows["shown"]]
    first = int((rows["shown_position"].astype(float) == 0).sum())
    return OrderCheck(first, len(rows), float(np.mean([1 / k for k in sizes])))


def stimulus_delivery(responses: pd.DataFrame, spec: ExperimentSpec) -> tuple[int, int]:
    """Answers in arms with a vignette whose prompt held it, of all those answers."""
    arms = [a for a, s in spec.stimulus.items() if s.vignette]
    rows = responses[responses["arm"].isin(arms)]
    if rows.empty or "stimulus_shown" not in rows.columns:
        return (0, len(rows))
    return (int(rows["stimulus_shown"].fillna(False).astype(bool).sum()), len(rows))


def agent_scores(means: pd.DataFrame, spec: ExperimentSpec, target: HumanTarget) -> pd.DataFrame:
    """One row per agent: ``agent, arm, score`` (and ``split`` for a ``split_by`` target)."""
    outcomes = target.items or [target.outcome or spec.outcomes[0].id]
    part = means[means["outcome"].isin(outcomes)]
    wide = part.pivot_table(index=["agent", "arm"], columns="outcome", values="value")
    asked = set(means["outcome"])
    missing = [o for o in outcomes if o not in asked]
    if missing:
        raise ValidityDataError(f"{spec.name}: no answers to {', '.join(missing)}")
    for outcome in outcomes:  # asked, but every answer failed: counted as attrition below
        if outcome not in wide.columns:
            wide[outcome] = np.nan
    # An agent missing one item of a composite has no score (counted in the attrition).
    scores = wide[outcomes].mean(axis=1, skipna=False).rename("score").reset_index()
    if target.split_by is not None:
        split = means[means["outcome"] == target.split_by].set_index(["agent", "arm"])["value"]
        scores = scores.join(split.rename("split"), on=["agent", "arm"])
    return scores.dropna()


def attrition(
    responses: pd.DataFrame, scores: pd.DataFrame, spec: ExperimentSpec
) -> tuple[ArmAttrition, ...]:
    """Per arm: agents asked (any row) and agents without a score."""
    found = []
    for arm in spec.arm_ids:
        asked = int(responses.loc[responses["arm"] == arm, "agent"].nunique())
        scored = int(scores.loc[scores["arm"] == arm, "agent"].nunique())
        found.append(ArmAttrition(arm, asked, asked - scored))
    return tuple(found)


def attrition_text(lost: Sequence[ArmAttrition]) -> str:
    return ", ".join(f"{a.arm} {a.failed}/{a.asked}" for a in lost)


def is_binary(spec: ExperimentSpec, target: HumanTarget, scores: pd.Series) -> bool:
    """A single choice outcome whose agent values are all 0 or 1."""
    if target.items or target.ranks:
        return False
    chosen = spec.outcome(target.outcome or spec.outcomes[0].id)
    return isinstance(chosen, ChoiceOutcome) and bool(scores.isin([0.0, 1.0]).all())


def standardized_difference(treated: FloatArray, control: FloatArray) -> Estimate:
    """Cohen's d, its interval and se: ``se^2 = (n1 + n2) / (n1 n2) + d^2 / (2 (n1 + n2))``.

    No spread at all: d is 0 when the arms agree (no standard error: nothing shows the effect
    is *resolved* as 0), undefined when they differ.
    """
    n1, n2 = len(treated), len(control)
    if n1 < 2 or n2 < 2:
        return NAN, NAN, NAN, NAN, "fewer than 2 agents in an arm"
    spread = pooled_sd(treated, control)
    if spread == 0:
        if treated.mean() == control.mean():
            return 0.0, NAN, NAN, NAN, "no spread: every agent answered alike (d = 0, no se)"
        return NAN, NAN, NAN, NAN, "no spread within arms, but the arms differ: d undefined"
    d = float((treated.mean() - control.mean()) / spread)
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    return d, d - Z95 * se, d + Z95 * se, se, ""


def binary_effect(treated: FloatArray, control: FloatArray) -> Estimate:
    """The log odds ratio as d (times ``sqrt(3)/pi``), with Woolf's interval.

    With an empty cell (separation) the estimate is Firth's bias-reduced log odds ratio, which
    for a 2x2 table is the Haldane-Anscombe one (0.5 added to every cell): finite, but it
    depends on n, so the item is flagged saturated.
    """
    cells = np.array(
        [treated.sum(), len(treated) - treated.sum(), control.sum(), len(control) - control.sum()],
        dtype=np.float64,
    )
    note = ""
    if np.any(cells == 0):
        cells += 0.5
        note = "saturated: Firth (Haldane-Anscombe, +0.5 per cell) log odds ratio"
    a, b, c, d = cells
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(float(np.sum(1 / cells)))
    return (
        log_or * OR_TO_D,
        (log_or - Z95 * se) * OR_TO_D,
        (log_or + Z95 * se) * OR_TO_D,
        se * OR_TO_D,
        note,
    )


def split_effect(
    scores: pd.DataFrame,
    spec: ExperimentSpec,
    split_by: str,
    lost: tuple[ArmAttrition, ...] = (),
) -> SimulatedEffect:
    """Chose the success option minus did not, within each arm, pooled by inverse variance."""
    found: list[tuple[float, float]] = []
    groups: list[FloatArray] = []
    sizes = [0, 0]
    notes = []
    for arm in spec.arm_ids:
        part = scores[scores["arm"] == arm]
        chose = part.loc[part["split"] == 1.0, "score"].to_numpy(np.float64)
        other = part.loc[part["split"] == 0.0, "score"].to_numpy(np.float64)
        groups += [g for g in (chose, other) if len(g)]
        d, _, _, se, note = standardized_difference(chose, other)
        if math.isfinite(d) and se > 0:
            found.append((d, se))
            sizes[0] += len(other)
            sizes[1] += len(chose)
        elif len(part):
            notes.append(f"{arm}: {note or 'not estimable'}")
    raw = float(scores.loc[scores["split"] == 1.0, "score"].mean()) - float(
        scores.loc[scores["split"] == 0.0, "score"].mean()
    )
    sd = pooled_sd(*groups) if len(groups) >= 2 else NAN
    share = modal_share(groups) if groups else NAN
    # Everyone making the same choice leaves nobody to compare: that is saturation too.
    saturated = any(len(g) < 2 or len(np.unique(g)) == 1 for g in groups) or len(groups) < 4
    if not found:
        return SimulatedEffect(
            NAN,
            NAN,
            NAN,
            raw,
            sd=sd,
            modal_share=share,
            note="; ".join(notes),
            saturated=True,
            attrition=lost,
        )
    weights = np.array([1 / se**2 for _, se in found])
    d = float(np.sum(weights * np.array([d for d, _ in found])) / weights.sum())
    se = float(1 / math.sqrt(weights.sum()))
    return SimulatedEffect(
        d,
        d - Z95 * se,
        d + Z95 * se,
        raw,
        se=se,
        n_control=sizes[0],
        n_treated=sizes[1],
        sd=sd,
        modal_share=share,
        note="; ".join(notes),
        saturated=saturated,
        attrition=lost,
    )


def ranked(treated: FloatArray, control: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Both arms replaced by their ranks in the pooled sample (ties share the mean rank)."""
    ranks = scipy_stats.rankdata(np.concatenate([treated, control]))
    return ranks[: len(treated)], ranks[len(treated) :]


# --- spread -------------------------------------------------------------------------------------


def pooled_sd(*groups: FloatArray) -> float:
    """``sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1))`` over groups with two or more values."""
    used = [g for g in groups if len(g) >= 2]
    freedom = sum(len(g) - 1 for g in used)
    if freedom == 0:
        return NAN
    return math.sqrt(sum((len(g) - 1) * float(g.var(ddof=1)) for g in used) / freedom)


def bernoulli_sd(groups: Sequence[FloatArray]) -> float:
    """``sqrt(mean over groups of p (1 - p))``: the within-group SD of 0/1 answers."""
    shares = [float(g.mean()) for g in groups if len(g)]
    return shares_sd(shares)


def shares_sd(shares: Sequence[float]) -> float:
    if not shares:
        return NAN
    return math.sqrt(sum(p * (1 - p) for p in shares) / len(shares))


def modal_share(groups: Sequence[FloatArray]) -> float:
    """The share of values equal to their group's most common value, over all groups."""
    total = sum(len(g) for g in groups)
    if total == 0:
        return NAN
    top = sum(int(np.unique(g, return_counts=True)[1].max()) for g in groups if len(g))
    return top / total


def human_sd(target: HumanTarget, binary: bool) -> float:
    """The human within-arm SD: ``sd``, else from the arm shares of a binary outcome."""
    if target.sd is not None:
        return target.sd
    values = list((target.arm_values or {}).values())
    if binary and len(values) >= 2 and all(0 <= v <= 1 for v in values):
        return shares_sd(values)
    return NAN


def level_errors(
    simulated: Sequence[tuple[str, float]], human: dict[str, float] | None
) -> dict[str, float]:
    """Per arm with a human figure: simulated minus human mean or share."""
    if not human:
        return {}
    return {arm: value - human[arm] for arm, value in simulated if arm in human}


# --- scoring ------------------------------------------------------------------------------------


def score_item(
    item_id: str,
    kind: Kind,
    *,
    human: float,
    human_ci: tuple[float, float] | None,
    effect: SimulatedEffect,
    human_spread: float = NAN,
    condition: str = "full",
    paradigm: str = "",
    human_levels: dict[str, float] | None = None,
) -> ItemScore:
    """Set one simulated effect beside the human one."""
    low, high = human_ci if human_ci is not None else (NAN, NAN)
    judgement = judge_null(effect.d, effect.se, human_ci) if kind == "null" else None
    errors = level_errors(effect.arm_values, human_levels)
    asked = sum(a.asked for a in effect.attrition)
    distances = answer_distances(effect, human_levels)
    return ItemScore(
        id=item_id,
        kind=kind,
        human_d=human,
        human_low=low,
        human_high=high,
        sim_d=effect.d,
        sim_low=effect.low,
        sim_high=effect.high,
        sim_se=effect.se,
        raw_difference=effect.raw_difference,
        n=effect.n_control + effect.n_treated,
        sign_agrees=sign_agrees(effect.d, effect.raw_difference, human),
        magnitude_ratio=(
            magnitude_ratio(effect.d, human, effect.raw_difference)
            if not (effect.binary and effect.saturated and effect.raw_difference != 0)
            else NAN
        ),
        dispersion_ratio=ratio(effect.sd, human_spread),
        modal_share=effect.modal_share,
        condition=condition,
        note=effect.note,
        paradigm=paradigm or item_id,
        saturated=effect.saturated,
        null_verdict=judgement.verdict if judgement else None,
        equivalence_bound=judgement.bound if judgement else NAN,
        equivalence_p=judgement.p if judgement else NAN,
        equivalence_power=judgement.power if judgement else NAN,
        level_error=float(np.mean(np.abs(list(errors.values())))) if errors else NAN,
        level_errors=errors,
        asked=asked if effect.attrition else effect.n_control + effect.n_treated,
        failed=sum(a.failed for a in effect.attrition),
        attrition={a.arm: f"{a.failed}/{a.asked}" for a in effect.attrition},
        first_option=effect.order.first if effect.order else 0,
        order_answers=effect.order.answers if effect.order else 0,
        first_option_expected=effect.order.expected if effect.order else NAN,
        stimulus_shown=effect.stimulus_delivered[0],
        stimulus_answers=effect.stimulus_delivered[1],
        tvd=distances[0],
        tvd_uniform=distances[1],
        tvd_majority=distances[2],
        binary=effect.binary,
    )


def answer_distances(
    effect: SimulatedEffect, human: dict[str, float] | None
) -> tuple[float, float, float]:
    """Mean over arms of the total variation distance to the human answer shares of a binary
    outcome (|p_sim - p_human|), and the same for a uniform answerer (|0.5 - p|) and for one
    always giving the human majority answer (1 - max(p, 1 - p)). NaN without human shares."""
    if not effect.binary or not human:
        return NAN, NAN, NAN
    shares = [(value, human[arm]) for arm, value in effect.arm_values if arm in human]
    if not shares:
        return NAN, NAN, NAN
    sim = float(np.mean([abs(p - h) for p, h in shares]))
    uniform = float(np.mean([abs(0.5 - h) for _, h in shares]))
    majority = float(np.mean([1 - max(h, 1 - h) for _, h in shares]))
    return sim, uniform, majority


def score_spec(spec: ExperimentSpec, effect: SimulatedEffect, condition: str) -> ItemScore:
    """:func:`score_item` with the figures of ``spec.human_target``."""
    target = spec.human_target
    if target is None:
        raise ValidityDataError(f"{spec.name}: the experiment has no human_target")
    human = target.effect if target.type == "d" else to_d(target.effect, target.type)
    human_ci = target.ci
    if human_ci is not None and target.type == "or":
        human_ci = (to_d(human_ci[0], "or"), to_d(human_ci[1], "or"))
    return score_item(
        spec.name,
        target.kind,
        human=human,
        human_ci=human_ci,
        effect=effect,
        human_spread=human_sd(target, effect.binary),
        condition=condition,
        paradigm=target.paradigm or spec.name,
        human_levels=None if target.ranks or target.split_by else target.arm_values,
    )


def to_d(value: float, kind: str) -> float:
    """A target on the odds-ratio scale as d; ``diff`` targets are taken as given."""
    if kind == "or":
        if value <= 0:
            raise ValidityDataError(f"an odds ratio must be positive, got {value}")
        return math.log(value) * OR_TO_D
    return value


def sign_agrees(sim: float, raw: float, human: float) -> bool | None:
    """Whether the simulated effect points the human effect's way.

    None only when the human effect is exactly 0. A simulated effect of 0, or one that cannot
    be measured at all, is a miss (False): it does not point the human way.
    """
    if human == 0:
        return None
    simulated = sim if math.isfinite(sim) else raw
    if not math.isfinite(simulated) or simulated == 0:
        return False
    return (simulated > 0) == (human > 0)


def magnitude_ratio(sim: float, human: float, raw: float = NAN) -> float:
    """``sim / human``, signed; 0 when the arms do not differ; NaN for a human effect too small
    to divide by, or a simulated d that cannot be defined."""
    if abs(human) < TINY_HUMAN:
        return NAN
    if not math.isfinite(sim):
        return 0.0 if raw == 0 else NAN
    return sim / human


def ratio(simulated: float, human: float) -> float:
    if not (math.isfinite(simulated) and math.isfinite(human)) or human <= 0:
        return NAN
    return simulated / human
