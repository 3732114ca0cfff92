"""Files of a believability evaluation: tables (CSV, JSON) and one self-contained HTML report.

:func:`write_evaluation` writes, into a folder, ``items.csv`` (every graded answer),
``by_agent.csv``, ``by_category.csv``, ``controls.csv`` (the real run against its negative controls,
when they ran), ``believability.json`` (all of it) and ``report.html``; or,
given a file name, only that file (``.json``, ``.csv`` with the items, or ``.html``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societas.evaluation.believability.control_stats import control_table
from societas.evaluation.believability.facts import EvaluationError
from societas.evaluation.believability.interviews import Evaluation
from societas.evaluation.believability.plan_sense import plan_sense_json
from societas.evaluation.believability.stats import (
    Interval,
    ScoreTable,
    Summary,
    by_agent,
    by_category,
    items_frame,
    summarise,
)
from societas.experiments.report import STYLE, esc, forest_svg, number
from societas.experiments.report import Interval as ForestRow

SINGLE_FILES = (".json", ".csv", ".html")


def evaluation_tables(
    evaluation: Evaluation, seed: int = 0
) -> tuple[Summary, dict[str, pd.DataFrame]]:
    """The run's summary and its tables: ``items``, ``by_agent``, ``by_category``."""
    try:
        table = ScoreTable.from_items(evaluation.items)
    except ValueError as error:  # every answer failed: nothing to report
        raise EvaluationError(f"{evaluation.run_dir}: {error}") from error
    summary = summarise(table, np.random.default_rng(seed))
    tables = {
        "items": items_frame(evaluation.items),
        "by_agent": by_agent(table),
        "by_category": by_category(summary, table),
    }
    controls = control_table(evaluation, seed)
    if not controls.empty:
        tables["controls"] = controls
    return summary, tables


def write_evaluation(evaluation: Evaluation, out: str | Path, *, seed: int = 0) -> list[Path]:
    """Write the evaluation's files to the folder ``out`` (or the one file ``out``)."""
    target = Path(out)
    summary, tables = evaluation_tables(evaluation, seed)
    document = evaluation_document(evaluation, summary, tables)
    page = evaluation_html(evaluation, summary, tables)
    if target.suffix in SINGLE_FILES:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".json":
            target.write_text(json.dumps(document, indent=2, allow_nan=False), "utf-8")
        elif target.suffix == ".csv":
            tables["items"].to_csv(target, index=False)
        else:
            target.write_text(page, "utf-8")
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        frame.to_csv(target / f"{name}.csv", index=False)
        written.append(target / f"{name}.csv")
    (target / "believability.json").write_text(
        json.dumps(document, indent=2, allow_nan=False), "utf-8"
    )
    (target / "report.html").write_text(page, "utf-8")
    return [*written, target / "believability.json", target / "report.html"]


def interval_json(interval: Interval) -> dict[str, float | None]:
    return {
        "estimate": _finite(interval.estimate),
        "low": _finite(interval.low),
        "high": _finite(interval.high),
    }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "agents": summary.agents,
        "answers": summary.items,
        "categories": {c: interval_json(i) for c, i in summary.categories.items()},
        "overall": interval_json(summary.overall),
        "hallucination_rate": interval_json(summary.hallucination),
    }


def evaluation_document(
    evaluation: Evaluation, summary: Summary, tables: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """Everything as one JSON-ready dict (NaN written as null)."""
    agents = tables["by_agent"].astype(object).where(tables["by_agent"].notna(), None)
    return {
        "run_dir": evaluation.run_dir,
        "scenario": evaluation.scenario,
        "model": evaluation.model,
        "judge_model": evaluation.judge_model,
        "architecture": evaluation.architecture,
        "game_time": evaluation.game_time,
        "plan_sense": plan_sense_json(evaluation.run_dir),  # beside plan recall (``plans``)
        "summary": summary_json(summary),
        "by_agent": agents.to_dict(orient="records"),
        "items": [item.model_dump(mode="json") for item in evaluation.items],
        "controls": _controls_json(evaluation, tables),
        "judge": None if evaluation.judge is None else evaluation.judge.model_dump(mode="json"),
    }


def _controls_json(evaluation: Evaluation, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The control comparison rows, who answered for whom, and every control answer."""
    frame = tables.get("controls", pd.DataFrame())
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return {
        "comparison": rows,
        "shuffled_donors": evaluation.control_donors,
        "items": {
            name: [item.model_dump(mode="json") for item in items]
            for name, items in evaluation.controls.items()
        },
    }


# --------------------------------------------------------------------------- HTML


def page(title: str, body: list[str]) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{STYLE}"
        "td.text{text-align:left;max-width:28em}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def html_table(frame: pd.DataFrame, text_columns: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            if column in text_columns:
                cells.append(f"<td class='text'>{esc(value)}</td>")
            elif isinstance(value, float):
                cells.append(f"<td>{number(value)}</td>")
            else:
                cells.append(f"<td>{esc(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def forest_rows(intervals: dict[str, Interval]) -> list[ForestRow]:
    return [
        ForestRow(label.replace("_", " "), i.estimate, i.low, i.high)
        for label, i in intervals.items()
        if math.isfinite(i.estimate)
    ]


def evaluation_html(
    evaluation: Evaluation, summary: Summary, tables: dict[str, pd.DataFrame]
) -> str:
    switches = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in evaluation.architecture.items())
    rows = {**summary.categories, "overall": summary.overall}
    items = tables["items"][
        ["agent", "category", "question", "answer", "method", "score", "hallucinated", "reason"]
    ]
    body = [
        f"<h1>Believability: {esc(evaluation.scenario)}</h1>",
        f"<p>Run <code>{esc(evaluation.run_dir)}</code> at {esc(evaluation.game_time)}; "
        f"architecture: {esc(switches)}; answers by {esc(evaluation.model)}, judged by "
        f"{esc(evaluation.judge_model)}.</p>",
        f"<p>{summary.agents} agents, {summary.items} graded answers. Overall score "
        f"<b>{number(summary.overall.estimate)}</b> [{number(summary.overall.low)}, "
        f"{number(summary.overall.high)}]; hallucination rate "
        f"<b>{number(summary.hallucination.estimate)}</b>.</p>",
        "<p class='note'>Scores are in [0, 1]; intervals are 95% cluster-bootstrap intervals "
        "over agents. Overall is the mean of the category means.</p>",
        *_judge_html(evaluation),
        *_controls_html(tables),
        "<h2>By category</h2>",
        forest_svg(forest_rows(rows), None),
        html_table(tables["by_category"]),
        f"<p>Beside plan recall: {esc(plan_sense_json(evaluation.run_dir)['note'])}.</p>",
        "<h2>By agent</h2>",
        html_table(tables["by_agent"]),
        "<h2>Answers</h2>",
        html_table(items, ("question", "answer", "reason")),
    ]
    return page(f"Believability: {evaluation.scenario}", body)


def _judge_html(evaluation: Evaluation) -> list[str]:
    report = evaluation.judge
    if report is None:
        return ["<p class='note'>The judge was not calibrated.</p>"]
    text = f"Judge {report.model}: {report.chosen}."
    if report.calibration is not None:
        text += f" Calibration on the shipped graded examples: {report.calibration.summary()}."
    caveats = [f"<p class='note'><b>Caveat:</b> {esc(c)}.</p>" for c in report.caveats]
    return [f"<p>{esc(text)}</p>", *caveats]


def _controls_html(tables: dict[str, pd.DataFrame]) -> list[str]:
    frame = tables.get("controls")
    if frame is None:
        return [
            "<h2>Negative controls</h2>",
            "<p class='note'>Not run: without them the score has nothing to be compared with.</p>",
        ]
    return [
        "<h2>What the score means: negative controls</h2>",
        "<p>The same questions, graded the same way, answered by stand-ins that cannot know the "
        "run: <b>shuffled</b> (each agent's persona with another agent's memories, notes and "
        "plan) and <b>no memory</b> (the persona alone). The real run's score means as much as "
        "its gap above them. Intervals: 95% bootstrap over the questions within each category, "
        "paired between the real run and each control.</p>",
        html_table(frame),
    ]
