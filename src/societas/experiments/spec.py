"""Experiment files: what to ask whom, under which conditions, and how to assign them.

An experiment is a YAML file validated by :class:`ExperimentSpec`; unknown fields are refused
and every problem names the file, the field and the line::

    framing.yaml:14: outcomes[0].points: a Likert scale has 5 or 7 points, got 4

Example file::

    name: framing
    seed: 7
    population: {marginals: {n: 40}}
    arms:
      - {id: gain, description: Lives saved}
      - {id: loss, description: Lives lost}
    stimulus:
      gain: {vignette: "Program A saves 200 of 600 people."}
      loss: {vignette: "Under program A, 400 of 600 people die."}
    outcomes:
      - {id: pick, type: choice, question: "Which program?", options: [A, B]}
    design: between

``stimulus`` maps arm ids to what the arm's agents get; an arm without one is a pure control.
A vignette is both remembered and placed first in the prompt of the arm's questions.
``answer_mode`` (``mode``, ``token`` or ``stated``; see :mod:`.answer_modes`) says how answers
are produced; a numeric outcome prints its range only with ``show_range: true``.

Examples
--------
>>> spec = experiment_from_text(EXAMPLE, "framing.yaml")
>>> spec.control_arm, [o.id for o in spec.outcomes]
('gain', ['pick'])
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from societas.experiments.answer_modes import AnswerMode
from societas.world.errors import FieldPath, Issue, ScenarioError, did_you_mean, format_path
from societas.world.yaml_reader import read_yaml

OFFSET = re.compile(r"^\+(\d{1,3}):([0-5]\d)$")
OUTCOME_TYPES = ("likert", "choice", "numeric", "open")
DESIGN_TYPES = ("between", "within", "world")
INTERVENTION_KINDS = ("announcement", "rule", "message", "object_state")
DEFAULT_LABELS = {
    5: ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"],
    7: [
        "Strongly disagree",
        "Disagree",
        "Somewhat disagree",
        "Neutral",
        "Somewhat agree",
        "Agree",
        "Strongly agree",
    ],
}
EXAMPLE = """\
name: framing
seed: 7
population: {marginals: {n: 40}}
arms:
  - {id: gain, description: Lives saved}
  - {id: loss, description: Lives lost}
stimulus:
  gain: {vignette: "Program A saves 200 of 600 people."}
  loss: {vignette: "Under program A, 400 of 600 people die."}
outcomes:
  - {id: pick, type: choice, question: "Which program?", options: [A, B]}
design: between
"""

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]


class ExperimentError(Exception):
    """An experiment file is malformed; ``issues`` lists every problem (field path and line).

    Not a ``ValueError`` on purpose: pydantic lets it through cross-reference validators
    unchanged, so the loader can add the line of each field path.
    """

    def __init__(self, issues: list[Issue] | tuple[Issue, ...], source: str | None = None) -> None:
        self.issues = tuple(issues)
        self.source = source
        super().__init__("\n".join(issue.render(source) for issue in self.issues))

    @property
    def line(self) -> int | None:
        return self.issues[0].line if self.issues else None

    @property
    def field(self) -> str:
        return format_path(self.issues[0].path) if self.issues else ""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- population ---------------------------------------------------------------------------------


class MarginalsSource(_Spec):
    """``n`` personas sampled from the shipped GSS records raked to the US adult marginals."""

    n: int = Field(ge=2, le=10_000)


class PopulationSpec(_Spec):
    """Exactly one source of agents."""

    marginals: MarginalsSource | None = None
    csv: str | None = None
    twins: str | None = None
    scenario: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PopulationSpec:
        given = [k for k in ("marginals", "csv", "twins", "scenario") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of marginals, csv, twins, scenario"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("marginals", "csv", "twins", "scenario") if getattr(self, k))


# --- arms and stimuli ---------------------------------------------------------------------------


class ArmSpec(_Spec):
    id: Identifier
    description: str = Field(default="", max_length=400)


class InterventionSpec(_Spec):
    """A world intervention; ``at`` is ``+HH:MM`` after the fork or an ISO game time."""

    kind: Literal["announcement", "rule", "message", "object_state"]
    data: dict[str, Any]
    at: str = "+00:00"

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        if OFFSET.match(value):
            return value
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"'at' must be an offset like +01:30 or an ISO time, got {value!r}"
            ) from None
        return value

    def time_after(self, fork: datetime) -> datetime:
        """The game time the intervention happens, for a world forked at ``fork``."""
        return resolve_time(self.at, fork)


class StimulusSpec(_Spec):
    """What an arm's agents get: a vignette (a memory) or a world intervention."""

    vignette: Text | None = None
    intervention: InterventionSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StimulusSpec:
        if (self.vignette is None) == (self.intervention is None):
            raise ValueError("a stimulus is either a vignette or an intervention")
        return self


# --- outcomes -----------------------------------------------------------------------------------


class ArmWording(_Spec):
    """How one arm words an outcome (question-wording experiments): the question and, for a
    choice, the options and the success option. Unset fields keep the outcome's own."""

    question: Text | None = None
    options: list[Annotated[str, Field(min_length=1, max_length=120)]] | None = Field(
        default=None, min_length=2, max_length=8
    )
    success: str | list[str] | None = None


class _Outcome(_Spec):
    id: Identifier
    question: Text
    by_arm: dict[str, ArmWording] = Field(default_factory=dict)


class LikertOutcome(_Outcome):
    """A 5- or 7-point rating; ``labels`` name every point, lowest first."""

    type: Literal["likert"]
    points: int = 5
    labels: list[str] | None = None

    @field_validator("points")
    @classmethod
    def _points(cls, value: int) -> int:
        if value not in (5, 7):
            raise ValueError(f"a Likert scale has 5 or 7 points, got {value}")
        return value

    @property
    def scale_labels(self) -> list[str]:
        return list(self.labels) if self.labels is not None else DEFAULT_LABELS[self.points]


class ChoiceOutcome(_Outcome):
    """One of ``options``; ``success`` (default the first option; or a list of options) is
    coded 1, others 0."""

    type: Literal["choice"]
    options: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        min_length=2, max_length=8
    )
    success: str | list[str] | None = None

    @property
    def success_option(self) -> str:
        return self.success_options[0]

    @property
    def success_options(self) -> list[str]:
        """The options coded 1."""
        if self.success is None:
            return [self.options[0]]
        return [self.success] if isinstance(self.success, str) else list(self.success)


class NumericOutcome(_Outcome):
    """A whole number from ``min`` to ``max``; the range is printed in the question only with
    ``show_range: true`` (when the original instrument printed one: otherwise it is an anchor)."""

    type: Literal["numeric"]
    min: int
    max: int
    show_range: bool = False


class OpenOutcome(_Outcome):
    """A free answer, graded 1-5 against ``rubric`` by a judge call (purpose ``grade``)."""

    type: Literal["open"]
    rubric: Text


Outcome = Annotated[
    LikertOutcome | ChoiceOutcome | NumericOutcome | OpenOutcome, Field(discriminator="type")
]


# --- designs ------------------------------------------------------------------------------------


class BetweenDesign(_Spec):
    """Each agent gets one arm, randomised within blocks of ``block_on`` demographics."""

    type: Literal["between"]
    block_on: list[str] = Field(default_factory=list, max_length=4)


class WithinDesign(_Spec):
    """Each agent answers under every arm, restored in between; the order is counterbalanced."""

    type: Literal["within"]


class WorldDesign(_Spec):
    """The town runs to ``fork_at``, forks; the intervention happens in one branch only; both
    branches run ``hours`` more; then everyone is surveyed."""

    type: Literal["world"]
    fork_at: str = "+00:00"
    hours: float = Field(default=1.0, gt=0, le=24 * 7)

    @field_validator("fork_at")
    @classmethod
    def _offset(cls, value: str) -> str:
        return InterventionSpec._time(value)


Design = Annotated[BetweenDesign | WithinDesign | WorldDesign, Field(discriminator="type")]


class HumanTarget(_Spec):
    """A published human effect to compare with (``type``: d, or = odds ratio, diff).

    ``effect`` is treatment (``arm``) minus control on ``outcome``. For the validity suite:
    ``kind`` says whether it is a replicated ``effect`` or a ``null`` control; ``arm_values``
    the human mean or share per arm; ``sd`` the human SD of the outcome within arms; ``items``
    outcome ids averaged per agent into one score; ``split_by`` a choice outcome whose answer
    splits agents (the effect is then: chose its success option minus did not, within arms);
    ``ranks`` computes the simulated d on pooled ranks (for skewed estimates); ``paradigm``
    groups items that are not independent evidence (the four anchoring questions share one
    paradigm): correlations resample paradigms and calibration leaves one paradigm out at a
    time (default: the experiment's own name).
    """

    effect: float
    type: Literal["d", "or", "diff"]
    ci: tuple[float, float] | None = None
    source: str = Field(min_length=1, max_length=600)
    outcome: str | None = None
    arm: str | None = None
    kind: Literal["effect", "null"] = "effect"
    arm_values: dict[str, float] | None = None
    sd: float | None = Field(default=None, gt=0)
    items: list[str] | None = Field(default=None, min_length=2, max_length=10)
    split_by: str | None = None
    ranks: bool = False
    paradigm: Identifier | None = None


# --- the experiment -----------------------------------------------------------------------------


class ExperimentSpec(_Spec):
    """A whole experiment file (see the module docstring)."""

    name: Identifier
    seed: int = 0
    population: PopulationSpec
    arms: list[ArmSpec] = Field(min_length=2, max_length=8)
    control: str | None = None
    stimulus: dict[str, StimulusSpec] = Field(default_factory=dict)
    outcomes: list[Outcome] = Field(min_length=1, max_length=10)
    design: Design
    subgroups: list[str] = Field(default_factory=list, max_length=6)
    replicates: int = Field(
        default=1, ge=1, le=20, description="answer samples per question (sample_index)"
    )
    memories: int = Field(default=4, ge=0, le=12, description="memories recalled per question")
    answer_mode: AnswerMode = Field(
        default="mode", description="mode, token or stated (see experiments.answer_modes)"
    )
    human_target: HumanTarget | None = None

    _source_text: str = PrivateAttr(default="")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("design", mode="before")
    @classmethod
    def _design_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if isinstance(value, dict) and value.get("type") not in DESIGN_TYPES:
            hint = did_you_mean(str(value.get("type")), DESIGN_TYPES)
            raise ExperimentError(
                [
                    Issue(
                        ("design", "type"),
                        f"unknown design {value.get('type')!r}{hint}; "
                        f"designs: {', '.join(DESIGN_TYPES)}",
                    )
                ]
            )
        return value

    @field_validator("outcomes", mode="before")
    @classmethod
    def _outcome_types(cls, value: Any) -> Any:
        for index, item in enumerate(value if isinstance(value, list) else []):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind not in OUTCOME_TYPES:
                hint = did_you_mean(str(kind), OUTCOME_TYPES)
                raise ExperimentError(
                    [
                        Issue(
                            ("outcomes", index, "type"),
                            f"unknown outcome type {kind!r}{hint}; "
                            f"types: {', '.join(OUTCOME_TYPES)}",
                        )
                    ]
                )
        return value

    @model_validator(mode="after")
    def _references(self) -> ExperimentSpec:
        issues = (
            self._arm_issues()
            + self._outcome_issues()
            + self._design_issues()
            + self._target_issues()
        )
        if issues:
            raise ExperimentError(issues)
        return self

    def _arm_issues(self) -> list[Issue]:
        ids = self.arm_ids
        issues = [
            Issue(("arms", i, "id"), f"duplicate arm id {arm.id!r}")
            for i, arm in enumerate(self.arms)
            if ids.index(arm.id) != i
        ]
        issues += [
            Issue(("stimulus", key), f"unknown arm {key!r}{did_you_mean(key, ids)}")
            for key in self.stimulus
            if key not in ids
        ]
        if self.control is not None and self.control not in ids:
            hint = did_you_mean(self.control, ids)
            issues.append(Issue(("control",), f"unknown arm {self.control!r}{hint}"))
        outcome_ids = [o.id for o in self.outcomes]
        issues += [
            Issue(("outcomes", i, "id"), f"duplicate outcome id {o.id!r}")
            for i, o in enumerate(self.outcomes)
            if outcome_ids.index(o.id) != i
        ]
        return issues

    def _outcome_issues(self) -> list[Issue]:
        issues = []
        for index, item in enumerate(self.outcomes):
            path: FieldPath = ("outcomes", index)
            if isinstance(item, LikertOutcome) and item.labels is not None:
                if len(item.labels) != item.points:
                    message = f"needs {item.points} labels, got {len(item.labels)}"
                    issues.append(Issue((*path, "labels"), message))
            elif isinstance(item, ChoiceOutcome):
                if len(set(item.options)) != len(item.options):
                    issues.append(Issue((*path, "options"), "options must be distinct"))
                for success in item.success_options:
                    if success not in item.options:
                        hint = did_you_mean(success, item.options)
                        message = f"not an option: {success!r}{hint}"
                        issues.append(Issue((*path, "success"), message))
            elif isinstance(item, NumericOutcome) and item.min >= item.max:
                issues.append(Issue((*path, "max"), f"max must exceed min ({item.min})"))
            issues += self._wording_issues(item, path)
        return issues

    def _wording_issues(self, item: _Outcome, path: FieldPath) -> list[Issue]:
        issues = []
        for arm, wording in item.by_arm.items():
            where: FieldPath = (*path, "by_arm", arm)
            if arm not in self.arm_ids:
                hint = did_you_mean(arm, self.arm_ids)
                issues.append(Issue(where, f"unknown arm {arm!r}{hint}"))
            if not isinstance(item, ChoiceOutcome):
                if wording.options is not None or wording.success is not None:
                    issues.append(Issue(where, "options and success belong to choice outcomes"))
                continue
            options = wording.options or item.options
            if len(set(options)) != len(options):
                issues.append(Issue((*where, "options"), "options must be distinct"))
            success = wording.success or (item.success if wording.options is None else None)
            for chosen in [success] if isinstance(success, str) else success or []:
                if chosen not in options:
                    hint = did_you_mean(chosen, options)
                    issues.append(Issue((*where, "success"), f"not an option: {chosen!r}{hint}"))
        return issues

    def _design_issues(self) -> list[Issue]:
        design = self.design
        world = isinstance(design, WorldDesign)
        issues = []
        for key, stimulus in self.stimulus.items():
            if world and stimulus.intervention is None:
                issues.append(Issue(("stimulus", key), "a world design needs intervention stimuli"))
            if not world and stimulus.intervention is not None:
                issues.append(
                    Issue(("stimulus", key), f"a {design.type} design takes vignettes only")
                )
        if world and len(self.arms) == 2:
            treated = self.treatment_arms[0]
            if treated not in self.stimulus:
                issues.append(Issue(("stimulus",), f"the treated arm {treated!r} needs a stimulus"))
            if self.control_arm in self.stimulus:
                message = "the control arm of a world design gets no intervention"
                issues.append(Issue(("stimulus", self.control_arm), message))
        if world and self.population.scenario is None:
            issues.append(Issue(("population",), "a world design needs 'scenario: NAME'"))
        if isinstance(design, WithinDesign | WorldDesign) and len(self.arms) != 2:
            issues.append(Issue(("arms",), f"a {design.type} design has exactly 2 arms"))
        return issues

    def _target_issues(self) -> list[Issue]:
        target = self.human_target
        if target is None:
            return []
        issues = []
        if target.ci is not None and target.ci[0] > target.ci[1]:
            message = "the interval's low end exceeds its high end"
            issues.append(Issue(("human_target", "ci"), message))
        if target.outcome is not None and target.outcome not in [o.id for o in self.outcomes]:
            issues.append(Issue(("human_target", "outcome"), f"unknown outcome {target.outcome!r}"))
        if target.arm is not None and target.arm not in self.arm_ids:
            hint = did_you_mean(target.arm, self.arm_ids)
            issues.append(Issue(("human_target", "arm"), f"unknown arm {target.arm!r}{hint}"))
        outcome_ids = [o.id for o in self.outcomes]
        issues += [
            Issue(("human_target", "items"), f"unknown outcome {item!r}")
            for item in target.items or []
            if item not in outcome_ids
        ]
        issues += [
            Issue(("human_target", "arm_values"), f"unknown arm {arm!r}")
            for arm in target.arm_values or {}
            if arm not in self.arm_ids
        ]
        if target.split_by is not None and not (
            target.split_by in outcome_ids
            and isinstance(self.outcome(target.split_by), ChoiceOutcome)
        ):
            message = f"{target.split_by!r} is not a choice outcome"
            issues.append(Issue(("human_target", "split_by"), message))
        return issues

    # --- views ----------------------------------------------------------------------------------

    @property
    def arm_ids(self) -> list[str]:
        return [arm.id for arm in self.arms]

    @property
    def control_arm(self) -> str:
        """The reference arm of comparisons (``control``, else the first arm)."""
        return self.control if self.control is not None else self.arms[0].id

    @property
    def treatment_arms(self) -> list[str]:
        return [a for a in self.arm_ids if a != self.control_arm]

    @property
    def subgroup_columns(self) -> list[str]:
        """Demographics to split effects by: ``subgroups``, else the blocking variables."""
        if self.subgroups:
            return list(self.subgroups)
        return list(self.design.block_on) if isinstance(self.design, BetweenDesign) else []

    def outcomes_for(
        self, arm: str
    ) -> list[LikertOutcome | ChoiceOutcome | NumericOutcome | OpenOutcome]:
        """The outcomes as ``arm`` words them (``by_arm`` applied)."""
        worded = []
        for item in self.outcomes:
            wording = item.by_arm.get(arm)
            if wording is None:
                worded.append(item)
                continue
            update = {k: v for k, v in wording.model_dump().items() if v is not None}
            if isinstance(item, ChoiceOutcome) and "options" in update and "success" not in update:
                update["success"] = None  # the first of the arm's options
            worded.append(item.model_copy(update=update))
        return worded

    def outcome(
        self, outcome_id: str
    ) -> LikertOutcome | ChoiceOutcome | NumericOutcome | OpenOutcome:
        for item in self.outcomes:
            if item.id == outcome_id:
                return item
        raise KeyError(f"no outcome {outcome_id!r}")

    @property
    def source_text(self) -> str:
        """The file's text (a YAML dump when built from data)."""
        return self._source_text

    def resolve(self, path: str) -> Path:
        """A path of the file (csv, twins), relative to the experiment file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self._base_dir / candidate


def resolve_time(at: str, start: datetime) -> datetime:
    """``+HH:MM`` after ``start``, or the ISO time ``at``.

    >>> resolve_time("+01:30", datetime(2026, 2, 13, 7, 0))
    datetime.datetime(2026, 2, 13, 8, 30)
    """
    match = OFFSET.match(at)
    if match:
        return start + timedelta(hours=int(match.group(1)), minutes=int(match.group(2)))
    return datetime.fromisoformat(at).replace(tzinfo=None)


# --- loading ------------------------------------------------------------------------------------


def experiment_from_text(
    text: str, source: str = "<experiment>", base_dir: Path | None = None
) -> ExperimentSpec:
    """Parse and validate an experiment; every problem is an :class:`ExperimentError`."""
    try:
        data, reader = read_yaml(text, source)
    except ScenarioError as error:
        raise ExperimentError(error.issues, source) from None
    if not isinstance(data, dict):
        raise ExperimentError([Issue((), "an experiment file is a mapping of fields", 1)], source)
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as error:
        issues = issues_of(error, data)
        raise ExperimentError(located(issues, reader.line_of), source) from None
    except ExperimentError as error:
        raise ExperimentError(located(list(error.issues), reader.line_of), source) from None
    spec._source_text = text
    spec._base_dir = base_dir if base_dir is not None else Path.cwd()
    return spec


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read an experiment file (errors name the file, the field and the line)."""
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise ExperimentError([Issue((), "no such file")], str(file)) from None
    except UnicodeDecodeError:
        raise ExperimentError([Issue((), "not UTF-8 text")], str(file)) from None
    except OSError as error:  # a directory, no permission, ...
        reason = error.strerror or type(error).__name__
        raise ExperimentError([Issue((), f"cannot read the file: {reason}")], str(file)) from None
    return experiment_from_text(text, str(file), base_dir=file.resolve().parent)


def located(issues: list[Issue], line_of: Any) -> list[Issue]:
    return [i if i.line is not None else Issue(i.path, i.message, line_of(i.path)) for i in issues]


def issues_of(error: ValidationError, data: Any) -> list[Issue]:
    """Pydantic errors as issues; union tags are dropped from paths so lines can be found."""
    issues = []
    for detail in error.errors(include_url=False):
        path = _without_tags(tuple(p for p in detail["loc"] if p != "[key]"), data)
        kind = detail["type"]
        if kind == "extra_forbidden":
            message = f"unknown field {path[-1]!r}"
        elif kind == "missing":
            message = f"missing required field {path[-1]!r}"
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
        issues.append(Issue(path, message))
    return issues


def _without_tags(path: tuple[Any, ...], data: Any) -> FieldPath:
    """Drop the discriminator tags pydantic puts in the paths of tagged unions."""
    kept: list[str | int] = []
    node = data
    for part in path:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        kept.append(part)
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
    return tuple(kept)


def _has(node: dict[str, Any] | list[Any], part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)
