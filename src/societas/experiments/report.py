"""The experiment report: one self-contained HTML file with inline SVG plots.

:func:`write_report` rebuilds ``report.html`` from the files a run saved (``experiment.yaml``,
``responses.csv``, ``analysis.csv``, ``population.json``, ``usage.json``), so
``societas report DIR`` works on any finished or interrupted run. Plots are drawn here as SVG
(no scripts, fonts or images from elsewhere): per outcome the arm estimates and the effects with
their intervals (effects, paired, clustered and subgroup rows), the distribution of answers per
arm, and the population's margins against their targets.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societas.durable import write_atomic
from societas.experiments.analysis import agent_means, target_comparison
from societas.experiments.spec import ExperimentSpec, experiment_from_text

PALETTE = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#222255"]
DIFFERENCES = ("mean difference", "difference in proportions", "paired mean difference")
WIDTH = 640
ROW = 22
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;
text-align:right}th:first-child,td:first-child{text-align:left}svg{display:block;margin:.5em 0}
.note{color:#666;font-size:.9em}
"""


class ReportError(FileNotFoundError):
    """The folder lacks a file the report needs."""


@dataclass(frozen=True)
class Interval:
    """One row of a forest plot."""

    label: str
    estimate: float
    low: float
    high: float


def write_report(out_dir: str | Path) -> Path:
    """Build ``report.html`` in ``out_dir`` from the run's saved files; returns its path."""
    out = Path(out_dir)
    spec = read_spec(out)
    responses = read_csv(out / "responses.csv")
    analysis = read_csv(out / "analysis.csv")
    population = read_json(out / "population.json")
    usage = read_json(out / "usage.json")
    body = [f"<h1>Experiment {esc(spec.name)}</h1>", overview(spec, responses)]
    for outcome in spec.outcomes:
        body.append(outcome_section(spec, outcome.id, outcome.question, responses, analysis))
    body.append(target_section(spec, analysis))
    body.append(population_section(population))
    body.append(usage_section(usage))
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(spec.name)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    path = out / "report.html"
    write_atomic(path, page)  # whole or absent, whenever the process is killed
    return path


# --- reading ------------------------------------------------------------------------------------


def read_spec(out: Path) -> ExperimentSpec:
    path = out / "experiment.yaml"
    if not path.exists():
        raise ReportError(f"{out}: no experiment.yaml; is this an experiment folder?")
    # A spec built from data is saved as JSON, which reads as YAML too.
    return experiment_from_text(path.read_text("utf-8"), str(path), base_dir=out)


def read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ReportError(f"{path}: missing; run the experiment first")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text("utf-8"))
    return data if isinstance(data, dict) else {}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: object, digits: int = 3) -> str:
    try:
        figure = float(str(value))
    except ValueError:
        return esc(value)
    return "–" if math.isnan(figure) else f"{figure:.{digits}g}"


# --- sections -----------------------------------------------------------------------------------


def overview(spec: ExperimentSpec, responses: pd.DataFrame) -> str:
    agents = responses["agent"].nunique() if "agent" in responses.columns else 0
    arms = "".join(
        f"<tr><td>{esc(a.id)}{' (control)' if a.id == spec.control_arm else ''}</td>"
        f"<td>{esc(a.description)}</td></tr>"
        for a in spec.arms
    )
    return (
        f"<p>Design <b>{esc(spec.design.type)}</b>, seed {spec.seed}, {agents} agents, "
        f"{len(responses)} answers, {spec.replicates} replicate(s) per question.</p>"
        f"<table><tr><th>arm</th><th>description</th></tr>{arms}</table>"
    )


def outcome_section(
    spec: ExperimentSpec,
    outcome_id: str,
    question: str,
    responses: pd.DataFrame,
    analysis: pd.DataFrame,
) -> str:
    parts = [f"<h2>Outcome {esc(outcome_id)}</h2><p>{esc(question)}</p>"]
    rows = analysis[analysis["outcome"] == outcome_id] if not analysis.empty else analysis
    if rows.empty:
        return parts[0] + "<p class='note'>No estimates yet.</p>"
    arms = rows[rows["section"] == "arm"]
    parts.append("<h3>Per arm</h3>" + forest_svg(intervals(arms, "group"), None))
    effects = rows[(rows["section"] != "arm") & rows["estimand"].isin(DIFFERENCES)]
    labels = effects["section"].astype(str) + ": " + effects["group"].astype(str)
    effect_rows = intervals(effects.assign(label=labels), "label")
    parts.append("<h3>Effects (differences vs control)</h3>" + forest_svg(effect_rows, 0.0))
    parts.append(estimate_table(rows[rows["section"] != "arm"]))
    values = responses[responses["outcome"] == outcome_id] if not responses.empty else responses
    if not values.empty:
        parts.append("<h3>Answers per arm</h3>" + distribution_svg(agent_means(values)))
    return "\n".join(parts)


def intervals(rows: pd.DataFrame, label: str) -> list[Interval]:
    return [
        Interval(str(r[label]), float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"]))
        for _, r in rows.iterrows()
        if math.isfinite(float(r["estimate"]))
    ]


def estimate_table(rows: pd.DataFrame) -> str:
    head = "".join(
        f"<th>{c}</th>"
        for c in ("section", "contrast", "estimand", "estimate", "95% CI", "n", "p", "method")
    )
    body = "".join(
        f"<tr><td>{esc(r['section'])}</td><td>{esc(r['group'])}</td><td>{esc(r['estimand'])}</td>"
        f"<td>{number(r['estimate'])}</td><td>[{number(r['ci_low'])}, {number(r['ci_high'])}]</td>"
        f"<td>{number(r['n'])}</td><td>{number(r['p_value'])}</td><td>{esc(r['method'])}</td></tr>"
        for _, r in rows.iterrows()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def target_section(spec: ExperimentSpec, analysis: pd.DataFrame) -> str:
    if spec.human_target is None:
        return ""
    table = target_comparison(analysis, spec) if not analysis.empty else pd.DataFrame()
    source = esc(spec.human_target.source)
    if table.empty:
        return f"<h2>Human benchmark</h2><p>{source}: no matching simulated estimate yet.</p>"
    row = table.iloc[0]
    rows = [
        Interval("simulated", row["simulated"], row["sim_low"], row["sim_high"]),
        Interval("human", row["human"], row["human_low"], row["human_high"]),
    ]
    null = 1.0 if spec.human_target.type == "or" else 0.0
    verdict = (
        f"Same direction: {'yes' if row['same_sign'] else 'no'}; "
        f"intervals overlap: {'yes' if row['ci_overlap'] else 'no'}."
    )
    return (
        f"<h2>Human benchmark</h2><p>{esc(row['estimand'])} of {esc(row['contrast'])} on "
        f"{esc(row['outcome'])}, against {source}.</p>{forest_svg(rows, null)}<p>{verdict}</p>"
    )


def population_section(population: dict[str, Any]) -> str:
    if not population:
        return ""
    summary = f"<pre>{esc(population.get('summary', ''))}</pre>"
    sample = population.get("sample") or {}
    table = pd.DataFrame(sample.get("table") or [])
    if table.empty or not {"variable", "category", "target", "sample"} <= set(table.columns):
        return f"<h2>Population</h2>{summary}"
    return f"<h2>Population</h2>{summary}<h3>Margins: sample vs target</h3>{margins_svg(table)}"


def usage_section(usage: dict[str, Any]) -> str:
    total = usage.get("total") or {}
    if not total:
        return "<h2>Model usage</h2><p class='note'>No meter (a scripted model).</p>"
    purposes = usage.get("purposes") or {}
    keys = ["requests", "calls", "cache_hits", "prompt_tokens", "completion_tokens", "wall_s"]
    head = "".join(f"<th>{k}</th>" for k in ["purpose", *keys])
    rows = [("total", total), *sorted(purposes.items())]
    body = "".join(
        f"<tr><td>{esc(name)}</td>"
        + "".join(f"<td>{number(t.get(k, 0), 6)}</td>" for k in keys)
        + "</tr>"
        for name, t in rows
    )
    return f"<h2>Model usage</h2><table><tr>{head}</tr>{body}</table>"


# --- plots --------------------------------------------------------------------------------------


def forest_svg(rows: Sequence[Interval], null: float | None) -> str:
    """Points with interval whiskers, one row each; a dashed line at ``null``."""
    if not rows:
        return "<p class='note'>Not estimable from these answers.</p>"
    finite = [v for r in rows for v in (r.estimate, r.low, r.high) if math.isfinite(v)]
    low, high = (
        min([*finite, *([null] if null is not None else [])]),
        max([*finite, *([null] if null is not None else [])]),
    )
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    left, right = 220, WIDTH - 20
    height = ROW * len(rows) + 30

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    shapes = [axis_svg(low, high, x, height - 20, left, right)]
    if null is not None:
        shapes.append(
            f"<line x1='{x(null):.1f}' x2='{x(null):.1f}' y1='0' y2='{height - 20}' "
            "stroke='#999' stroke-dasharray='4 3'/>"
        )
    for index, row in enumerate(rows):
        y = ROW * index + ROW / 2 + 2
        colour = PALETTE[index % len(PALETTE)]
        shapes.append(
            f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end'>{esc(row.label)[:40]}</text>"
        )
        if math.isfinite(row.low) and math.isfinite(row.high):
            shapes.append(
                f"<line x1='{x(row.low):.1f}' x2='{x(row.high):.1f}' y1='{y:.1f}' y2='{y:.1f}' "
                f"stroke='{colour}' stroke-width='2'>"
                f"<title>[{row.low:.3g}, {row.high:.3g}]</title></line>"
            )
        shapes.append(
            f"<circle class='estimate' cx='{x(row.estimate):.1f}' cy='{y:.1f}' r='4' "
            f"fill='{colour}'>"
            f"<title>{esc(row.label)}: {row.estimate:.3g}</title></circle>"
        )
    return svg(height, shapes, "forest")


def axis_svg(low: float, high: float, x: Any, y: float, left: float, right: float) -> str:
    ticks = np.linspace(low, high, 5)
    marks = "".join(
        f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{y}' y2='{y + 4}' stroke='#666'/>"
        f"<text x='{x(t):.1f}' y='{y + 15}' text-anchor='middle'>{t:.2g}</text>"
        for t in ticks
    )
    return f"<line x1='{left}' x2='{right}' y1='{y}' y2='{y}' stroke='#666'/>{marks}"


def distribution_svg(values: pd.DataFrame) -> str:
    """Share of agents at each answer value, bars grouped by value, one colour per arm."""
    arms = sorted(values["arm"].astype(str).unique())
    bins = answer_bins(values["value"].to_numpy(dtype=np.float64))
    shares = {
        arm: np.histogram(values.loc[values["arm"].astype(str) == arm, "value"], bins=bins[1])[0]
        for arm in arms
    }
    shares = {arm: counts / max(1, counts.sum()) for arm, counts in shares.items()}
    top = max(float(s.max()) for s in shares.values()) or 1.0
    left, base, plot_height = 40, 170, 150
    group = (WIDTH - left - 20) / len(bins[0])
    bar = group * 0.8 / len(arms)
    shapes = [f"<line x1='{left}' x2='{WIDTH - 20}' y1='{base}' y2='{base}' stroke='#666'/>"]
    for b, label in enumerate(bins[0]):
        gx = left + b * group
        shapes.append(
            f"<text x='{gx + group / 2:.1f}' y='{base + 15}' text-anchor='middle'>"
            f"{esc(label)}</text>"
        )
        for a, arm in enumerate(arms):
            share = float(shares[arm][b])
            h = share / top * plot_height
            shapes.append(
                f"<rect class='bar' x='{gx + group * 0.1 + a * bar:.1f}' y='{base - h:.1f}' "
                f"width='{bar:.1f}' height='{h:.1f}' fill='{PALETTE[a % len(PALETTE)]}'>"
                f"<title>{esc(arm)}, {esc(label)}: {share:.0%}</title></rect>"
            )
    shapes.append(legend_svg(arms, WIDTH - 150, 10))
    return svg(base + 25, shapes, "distribution")


def answer_bins(values: np.ndarray[Any, Any]) -> tuple[list[str], np.ndarray[Any, Any]]:
    """Labels and edges: one bin per whole value when there are few, else ten equal bins."""
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    whole = np.allclose(values, np.round(values))
    if whole and high - low <= 12:
        edges = np.arange(low - 0.5, high + 1.5)
        return [f"{v:g}" for v in np.arange(low, high + 1)], edges
    edges = np.linspace(low, high if high > low else low + 1, 11)
    return [f"{edges[i]:.2g}" for i in range(10)], edges


def legend_svg(names: Sequence[str], x: float, y: float) -> str:
    return "".join(
        f"<rect x='{x}' y='{y + i * 16}' width='10' height='10' "
        f"fill='{PALETTE[i % len(PALETTE)]}'/>"
        f"<text x='{x + 14}' y='{y + i * 16 + 9}'>{esc(name)}</text>"
        for i, name in enumerate(names)
    )


def margins_svg(table: pd.DataFrame) -> str:
    """Per category: the sample's share (bar) and the target share (tick)."""
    rows = table.dropna(subset=["target"]).reset_index(drop=True)
    left, right = 220, WIDTH - 60
    height = ROW * len(rows) + 40
    shapes = []
    for index, row in enumerate(rows.to_dict(orient="records")):
        y = ROW * index + 4
        sample, target = float(row["sample"]), float(row["target"])
        label = f"{row['variable']}: {row['category']}"
        shapes.append(
            f"<text x='{left - 8}' y='{y + 13}' text-anchor='end'>{esc(label)[:40]}</text>"
        )
        shapes.append(
            f"<rect class='bar' x='{left}' y='{y + 3}' width='{sample * (right - left):.1f}' "
            f"height='{ROW - 8}' fill='{PALETTE[0]}'><title>sample {sample:.0%}</title></rect>"
        )
        tx = left + target * (right - left)
        shapes.append(
            f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='{y}' y2='{y + ROW - 2}' stroke='{PALETTE[1]}' "
            f"stroke-width='3'><title>target {target:.0%}</title></line>"
        )
    shapes.append(legend_svg(["sample", "target"], right - 60, height - 36))
    return svg(height, shapes, "margins")


def svg(height: float, shapes: Sequence[str], kind: str) -> str:
    return (
        f"<svg class='{kind}' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' "
        f"height='{height:.0f}' font-size='11' role='img'>" + "".join(shapes) + "</svg>"
    )
