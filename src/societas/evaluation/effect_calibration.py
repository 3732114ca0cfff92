"""Calibration: how the model's effect sizes map to people's, learned from the validity suite.

Simulated populations tend to get the direction right and the size wrong (usually too large).
:func:`fit_calibration` learns a linear map ``human_d ~ intercept + slope * simulated_d`` by least
squares over the suite's experiments, either through the origin (pure shrinkage) or with an
intercept; ``model="auto"`` keeps the one with the lower cross-validated error. It reports:

- the slope with a bootstrap 95% interval (experiments resampled with replacement);
- the leave-one-paradigm-out cross-validated error (still called ``loo_*``): each paradigm's
  experiments (``groups``; by default each experiment is its own) predicted from a fit on the
  other paradigms; RMSE and MAE against the human d, next to the uncalibrated error
  (``sim - human``). With ``model="auto"`` the origin-or-intercept choice is made *inside* each
  fold, on the training paradigms only, so the reported error is not tuned on itself.

:meth:`Calibration.predict` turns the simulated d of a new experiment into a calibrated d with a
prediction interval ``estimate +- t * sqrt(loo_rmse^2 + slope^2 * se^2)``: the out-of-sample
spread of the suite (which includes the fit's own uncertainty) plus the new experiment's
sampling error, with ``t`` the Student quantile on the suite's residual degrees of freedom.

Examples
--------
>>> import numpy as np
>>> sim, human = [0.4, 1.0, 2.0, 3.0, 0.1], [0.2, 0.5, 1.1, 1.4, 0.0]
>>> fit = fit_calibration(sim, human, ["a", "b", "c", "d", "e"], np.random.default_rng(0),
...                       model="origin")
>>> round(fit.slope, 2), fit.loo_rmse < fit.raw_rmse
(0.49, True)
>>> round(fit.predict(2.0, se=0.2).estimate, 2)
0.99
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

Model = Literal["origin", "intercept"]
FloatArray = npt.NDArray[np.float64]
BOOTSTRAP_RESAMPLES = 2000
LEVEL = 0.95
FORMAT = 1


class CalibrationError(ValueError):
    """Too few experiments to calibrate, or a calibration file that cannot be read."""


@dataclass(frozen=True)
class CalibratedEstimate:
    """A calibrated d with its prediction interval, and the simulated d it came from."""

    simulated: float
    simulated_se: float
    estimate: float
    low: float
    high: float
    level: float = LEVEL


@dataclass(frozen=True)
class Calibration:
    """A fitted map from simulated to human d, with its cross-validated error."""

    model: Model
    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    items: list[str]
    loo_rmse: float
    loo_mae: float
    raw_rmse: float
    raw_mae: float
    loo_predictions: list[float] = field(default_factory=list)
    condition: str = "full"
    alternative: dict[str, float] = field(default_factory=dict)
    """The LOO RMSE of the other model, for the record."""
    folds: int = 0
    """Paradigms left out one at a time (the cross-validation folds)."""
    excluded: list[str] = field(default_factory=list)
    """Experiments without a simulated effect, left out of the fit (k/N: items of items+these)."""

    @property
    def residual_df(self) -> int:
        return max(1, (self.folds or len(self.items)) - (1 if self.model == "origin" else 2))

    def predict(
        self, simulated_d: float, se: float = 0.0, level: float = LEVEL
    ) -> CalibratedEstimate:
        """The calibrated d of a new experiment whose simulated d is ``simulated_d`` (se ``se``)."""
        if not math.isfinite(simulated_d):
            raise CalibrationError("the simulated effect is not a number")
        estimate = self.intercept + self.slope * simulated_d
        spread = math.sqrt(self.loo_rmse**2 + (self.slope * (se if math.isfinite(se) else 0)) ** 2)
        half = float(scipy_stats.t.ppf(0.5 + level / 2, self.residual_df)) * spread
        return CalibratedEstimate(
            simulated_d, se, estimate, estimate - half, estimate + half, level
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        fields: dict[str, Any] = {
            k: math.nan if v is None else v for k, v in data.items() if k != "format"
        }
        try:
            return cls(**fields)
        except TypeError as error:
            raise CalibrationError(f"not a calibration: {error}") from None


def fit_line(sim: FloatArray, human: FloatArray, model: Model) -> tuple[float, float]:
    """Least-squares ``(intercept, slope)``; through the origin the intercept is 0."""
    if model == "origin":
        denominator = float(sim @ sim)
        if denominator == 0:
            raise CalibrationError("every simulated effect is 0: no slope to fit")
        return 0.0, float(sim @ human) / denominator
    if np.ptp(sim) == 0:
        raise CalibrationError("the simulated effects do not vary: no slope to fit")
    slope, intercept = np.polyfit(sim, human, 1)
    return float(intercept), float(slope)


def loo_predictions(
    sim: FloatArray, human: FloatArray, model: Model, groups: Sequence[str] | None = None
) -> FloatArray:
    """Each experiment predicted by a line fitted on all other groups (default: experiments)."""
    labels = np.array(groups if groups is not None else [str(i) for i in range(len(sim))])
    predictions = np.empty(len(sim))
    for group in dict.fromkeys(labels.tolist()):
        out = labels == group
        intercept, slope = fit_line(sim[~out], human[~out], model)
        predictions[out] = intercept + slope * sim[out]
    return predictions


def choose_model(
    sim: FloatArray, human: FloatArray, groups: Sequence[str], candidates: Sequence[Model]
) -> tuple[Model, dict[Model, float]]:
    """The candidate with the lowest leave-one-group-out RMSE (and every candidate's RMSE)."""
    errors: dict[Model, float] = {}
    for model in candidates:
        try:
            errors[model] = rmse(loo_predictions(sim, human, model, groups) - human)
        except CalibrationError:
            continue  # this model cannot be fitted on some fold
    if not errors:
        raise CalibrationError("no calibration model can be fitted on every fold")
    return min(errors, key=lambda m: errors[m]), errors


def nested_predictions(
    sim: FloatArray, human: FloatArray, groups: Sequence[str], candidates: Sequence[Model]
) -> FloatArray:
    """Leave-one-group-out predictions with the model chosen inside each fold."""
    labels = np.array(groups)
    predictions = np.empty(len(sim))
    for group in dict.fromkeys(labels.tolist()):
        out = labels == group
        train = [str(g) for g in labels[~out]]
        model: Model = candidates[0]
        if len(candidates) > 1 and len(set(train)) >= 4:
            model = choose_model(sim[~out], human[~out], train, candidates)[0]
        intercept, slope = fit_line(sim[~out], human[~out], model)
        predictions[out] = intercept + slope * sim[out]
    return predictions


def bootstrap_slope(
    sim: FloatArray, human: FloatArray, model: Model, rng: np.random.Generator, resamples: int
) -> tuple[float, float]:
    """Percentile 95% interval of the slope over experiments resampled with replacement."""
    slopes = []
    for _ in range(resamples):
        pick = rng.integers(0, len(sim), len(sim))
        try:
            slopes.append(fit_line(sim[pick], human[pick], model)[1])
        except CalibrationError:
            continue  # a resample without variation has no slope
    if not slopes:
        return math.nan, math.nan
    low, high = np.percentile(slopes, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(low), float(high)


def fit_calibration(
    simulated: Sequence[float],
    human: Sequence[float],
    items: Sequence[str],
    rng: np.random.Generator,
    *,
    model: Model | Literal["auto"] = "auto",
    resamples: int = BOOTSTRAP_RESAMPLES,
    condition: str = "full",
    groups: Sequence[str] | None = None,
) -> Calibration:
    """Fit the map on experiments with a finite simulated d (see the module docstring);
    ``groups`` names each experiment's paradigm (the cross-validation folds)."""
    labels = list(groups) if groups is not None else list(items)
    rows = list(zip(simulated, human, items, labels, strict=True))
    pairs = [row for row in rows if math.isfinite(row[0])]
    excluded = [row[2] for row in rows if not math.isfinite(row[0])]
    minimum = 4 if model == "intercept" else 3
    folds = len({p[3] for p in pairs})
    if folds < minimum:
        raise CalibrationError(
            f"calibration needs at least {minimum} paradigms with a simulated effect, "
            f"got {folds} ({len(pairs)} of {len(rows)} experiments)"
        )
    sim = np.array([p[0] for p in pairs], np.float64)
    target = np.array([p[1] for p in pairs], np.float64)
    names = [p[2] for p in pairs]
    paradigms = [p[3] for p in pairs]
    candidates: list[Model] = ["origin", "intercept"] if model == "auto" else [model]
    if model == "auto" and folds < 4:
        candidates = ["origin"]
    chosen, errors = choose_model(sim, target, paradigms, candidates)
    intercept, slope = fit_line(sim, target, chosen)
    predictions = nested_predictions(sim, target, paradigms, candidates)
    slope_low, slope_high = bootstrap_slope(sim, target, chosen, rng, resamples)
    return Calibration(
        model=chosen,
        slope=slope,
        intercept=intercept,
        slope_low=slope_low,
        slope_high=slope_high,
        items=names,
        loo_rmse=rmse(predictions - target),
        loo_mae=float(np.mean(np.abs(predictions - target))),
        raw_rmse=rmse(sim - target),
        raw_mae=float(np.mean(np.abs(sim - target))),
        loo_predictions=[float(p) for p in predictions],
        condition=condition,
        alternative={m: e for m, e in errors.items() if m != chosen},
        folds=folds,
        excluded=excluded,
    )


def rmse(errors: FloatArray) -> float:
    return float(np.sqrt(np.mean(errors**2)))


# --- files --------------------------------------------------------------------------------------


def save_calibrations(path: Path, calibrations: Sequence[Calibration]) -> None:
    """Write ``calibration.json``: one fitted calibration per persona condition."""
    data = {"format": FORMAT, "calibrations": [c.to_dict() for c in calibrations]}
    path.write_text(json.dumps(without_nan(data), indent=2), "utf-8")


def without_nan(value: Any) -> Any:
    """``value`` with NaN floats as None (strict JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(v) for v in value]
    return value


def load_calibration(path: str | Path, condition: str | None = None) -> Calibration:
    """A calibration from ``calibration.json`` (a file, or the scorecard folder holding it).

    ``condition`` picks one persona condition; by default ``full``, else the only one.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "calibration.json"
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{file}: no such file; run 'societas validate' first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CalibrationError(f"{file}: not a calibration file ({error})") from None
    entries = data.get("calibrations") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CalibrationError(f"{file}: holds no calibration (too few experiments?)")
    found = {str(e.get("condition")): e for e in entries if isinstance(e, dict)}
    wanted = condition or ("full" if "full" in found or len(found) != 1 else next(iter(found)))
    if wanted not in found:
        raise CalibrationError(
            f"{file}: no calibration for condition {wanted!r}; it has {', '.join(sorted(found))}"
        )
    return Calibration.from_dict(found[wanted])
