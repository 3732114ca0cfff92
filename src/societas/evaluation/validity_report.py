"""Writing a validity scorecard: ``scorecard.json``, ``scorecard.csv``, ``scorecard.html`` and
``calibration.json`` in one folder.

The JSON holds everything (per-item scores, per-condition summaries and calibrations, run
settings); the CSV one row per experiment and condition; the HTML is self-contained (inline SVG,
drawn with the experiment report's helpers): the summary, the calibration, per experiment the
simulated and human d with their intervals, and a scatter of simulated against human d.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from societas.evaluation.effect_calibration import Calibration, save_calibrations, without_nan
from societas.evaluation.validity import Scorecard
from societas.evaluation.validity_metrics import ItemScore
from societas.evaluation.validity_summary import SuiteSummary
from societas.experiments.report import PALETTE, STYLE, Interval, esc, forest_svg, number

SCATTER = 360
MARGIN = 40


def write_scorecard(scorecard: Scorecard, out_dir: str | Path) -> list[Path]:
    """Write the four files; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": scorecard.meta,
        "summaries": [s.to_dict() for s in scorecard.summaries],
        "calibrations": [c.to_dict() for c in scorecard.calibrations],
        "items": [s.to_dict() for s in scorecard.scores],
        "notes": scorecard.notes,
    }
    paths = [out / name for name in ("scorecard.json", "scorecard.csv", "scorecard.html")]
    paths[0].write_text(json.dumps(without_nan(data), indent=2, default=str), "utf-8")
    pd.DataFrame([s.to_dict() for s in scorecard.scores]).to_csv(paths[1], index=False)
    paths[2].write_text(scorecard_html(scorecard), "utf-8")
    calibration = out / "calibration.json"
    save_calibrations(calibration, scorecard.calibrations)
    return [*paths, calibration]


# --- HTML ---------------------------------------------------------------------------------------


def scorecard_html(scorecard: Scorecard) -> str:
    body = ["<h1>Validity scorecard</h1>", meta_text(scorecard)]
    body.append("<h2>Across experiments</h2>" + summary_table(scorecard.summaries))
    if scorecard.calibrations:
        body.append("<h2>Calibration</h2>" + calibration_table(scorecard.calibrations))
    for condition in scorecard.conditions:
        scores = [s for s in scorecard.scores if s.condition == condition]
        fit = next((c for c in scorecard.calibrations if c.condition == condition), None)
        body.append(f"<h2>Experiments: {esc(condition)} persona</h2>")
        body.append(item_table(scores))
        body.append(forest_svg(forest_rows(scores), 0.0))
        body.append(scatter_svg(scores, fit))
    body += [f"<p class='note'>{esc(note)}</p>" for note in scorecard.notes]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Validity scorecard</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def meta_text(scorecard: Scorecard) -> str:
    settings = ", ".join(f"{k}: {v}" for k, v in scorecard.meta.items() if v is not None)
    return (
        f"<p>{esc(settings)}. Effects are standardized (d; binary outcomes as log odds ratio "
        "times sqrt(3)/pi); human targets are replication estimates. See docs/validity.md.</p>"
    )


def summary_table(summaries: Sequence[SuiteSummary]) -> str:
    """One row per condition; every figure with its denominator."""
    head = ["condition", "sign agreement (k/N)", "nulls equivalent / effect / unresolved (of N)",
            "median null power", "Pearson r [95% CI]", "Spearman r [95% CI]",
            "items in r (k/N, paradigms)", "median signed ratio (k/N)", "median SD ratio (k/N)",
            "mean |level error| (k/N)", "saturated (k/N)", "failed agents (k/N)",
            "mean TVD: simulated / uniform / majority (k/N)", "first option taken (chance, p)",
            "stimulus in prompt (k/N)"]  # fmt: skip
    rows = [
        [
            s.condition,
            f"{s.sign_agreement_k}/{s.sign_agreement_n}",
            f"{s.nulls_equivalent} / {s.nulls_effect} / {s.nulls_unresolved} (of {s.nulls})",
            s.median_null_power,
            f"{number(s.pearson)} [{number(s.pearson_low)}, {number(s.pearson_high)}]",
            f"{number(s.spearman)} [{number(s.spearman_low)}, {number(s.spearman_high)}]",
            f"{s.correlation_k}/{s.items}, {s.paradigms}",
            f"{number(s.median_magnitude_ratio)} ({s.magnitude_k}/{s.effects})",
            f"{number(s.median_dispersion_ratio)} ({s.dispersion_k}/{s.items})",
            f"{number(s.mean_level_error)} ({s.level_k}/{s.items})",
            f"{s.saturated}/{s.items}",
            f"{s.failed}/{s.asked}",
            f"{number(s.mean_tvd)} / {number(s.mean_tvd_uniform)} / "
            f"{number(s.mean_tvd_majority)} ({s.tvd_k}/{s.items})",
            f"{s.first_option}/{s.order_answers} ({number(s.first_option_expected)}, "
            f"p {number(s.first_option_p)})",
            f"{s.stimulus_shown}/{s.stimulus_answers}",
        ]
        for s in summaries
    ]
    return table(head, rows)


def calibration_table(calibrations: Sequence[Calibration]) -> str:
    head = ["condition", "model", "slope [95% CI]", "intercept", "leave-one-paradigm-out RMSE",
            "raw RMSE", "items (k/N)", "paradigms"]  # fmt: skip
    rows = [
        [
            c.condition,
            c.model,
            f"{number(c.slope)} [{number(c.slope_low)}, {number(c.slope_high)}]",
            c.intercept,
            c.loo_rmse,
            c.raw_rmse,
            f"{len(c.items)}/{len(c.items) + len(c.excluded)}",
            c.folds,
        ]
        for c in calibrations
    ]
    return table(head, rows)


def item_table(scores: Sequence[ItemScore]) -> str:
    head = ["experiment", "kind", "sim d [95% CI]", "human d [95% CI]", "n", "same sign",
            "sim/human", "SD ratio", "level error", "modal share", "saturated",
            "null verdict (margin, power)", "failed/asked per arm",
            "TVD (uniform, majority)", "first option taken", "note"]  # fmt: skip
    rows = [
        [
            s.id,
            s.kind,
            f"{number(s.sim_d)} [{number(s.sim_low)}, {number(s.sim_high)}]",
            f"{number(s.human_d)} [{number(s.human_low)}, {number(s.human_high)}]",
            s.n,
            yes_no(s.sign_agrees),
            s.magnitude_ratio,
            s.dispersion_ratio,
            s.level_error,
            s.modal_share,
            "yes" if s.saturated else "no",
            null_text(s),
            ", ".join(f"{arm} {v}" for arm, v in s.attrition.items()),
            f"{number(s.tvd)} ({number(s.tvd_uniform)}, {number(s.tvd_majority)})",
            f"{s.first_option}/{s.order_answers}" if s.order_answers else "–",
            s.note,
        ]
        for s in scores
    ]
    return table(head, rows)


def null_text(score: ItemScore) -> str:
    if score.null_verdict is None:
        return "–"
    return (
        f"{score.null_verdict} (±{number(score.equivalence_bound)}, "
        f"power {number(score.equivalence_power)})"
    )


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def cell(value: object) -> str:
    if isinstance(value, float):
        return number(value)
    return esc(value)


def yes_no(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def forest_rows(scores: Sequence[ItemScore]) -> list[Interval]:
    rows = []
    for s in scores:
        rows.append(Interval(f"{s.id}: human", s.human_d, s.human_low, s.human_high))
        if math.isfinite(s.sim_d):
            rows.append(Interval(f"{s.id}: simulated", s.sim_d, s.sim_low, s.sim_high))
    return rows


def scatter_svg(scores: Sequence[ItemScore], fit: Calibration | None) -> str:
    """Simulated (x) against human (y) d: the identity line dashed, the calibration solid."""
    points = [(s.effective_d, s.human_d, s) for s in scores if math.isfinite(s.effective_d)]
    if not points:
        return "<p class='note'>No simulated effect to plot.</p>"
    values = [v for x, y, _ in points for v in (x, y)] + [0.0]
    low, high = min(values) - 0.2, max(values) + 0.2
    span = high - low

    def px(value: float) -> float:
        return MARGIN + (value - low) / span * (SCATTER - 2 * MARGIN)

    def py(value: float) -> float:
        return SCATTER - MARGIN - (value - low) / span * (SCATTER - 2 * MARGIN)

    shapes = [
        f"<line x1='{px(low):.1f}' y1='{py(low):.1f}' x2='{px(high):.1f}' y2='{py(high):.1f}' "
        "stroke='#999' stroke-dasharray='4 3'/>",
        f"<text x='{SCATTER / 2}' y='{SCATTER - 8}' text-anchor='middle'>simulated d</text>",
        f"<text x='12' y='{SCATTER / 2}' transform='rotate(-90 12 {SCATTER / 2})' "
        "text-anchor='middle'>human d</text>",
    ]
    if fit is not None:
        ends = [(x, fit.intercept + fit.slope * x) for x in (low, high)]
        shapes.append(
            f"<line x1='{px(ends[0][0]):.1f}' y1='{py(ends[0][1]):.1f}' "
            f"x2='{px(ends[1][0]):.1f}' y2='{py(ends[1][1]):.1f}' stroke='{PALETTE[1]}'/>"
        )
    for x, y, s in points:
        colour = PALETTE[0] if s.kind == "effect" else PALETTE[2]
        shapes.append(
            f"<circle class='estimate' cx='{px(x):.1f}' cy='{py(y):.1f}' r='4' fill='{colour}'>"
            f"<title>{esc(s.id)}: simulated {x:.2f}, human {y:.2f}</title></circle>"
        )
    return (
        f"<svg class='scatter' xmlns='http://www.w3.org/2000/svg' width='{SCATTER}' "
        f"height='{SCATTER}' font-size='11' role='img'>" + "".join(shapes) + "</svg>"
    )
