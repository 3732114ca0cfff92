"""What the town panel shows: news diffusion, the conversation network and model usage.

Each figure reads the events it needs up to the step being viewed (the ``(kind, step)`` index)
and hands them to the measurement package with the arguments the run summary passes (the
scenario copy's agents, news items and start), so that at the run's last step the panel shows
the summary's figures; this module only shapes their results for the browser.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from societas.engine.events import Event
from societas.engine.run_schema import LAST_STEP_KEY, LAST_TIME_KEY
from societas.measurement.model_usage import RecordedCallTotals, model_usage
from societas.measurement.network_density import conversation_counts
from societas.measurement.news_spread import DiffusionMethod, news_diffusion
from societas.viewer.run_scenario import RunScenario
from societas.viewer.store import RunMeta, parse_json, parse_time
from societas.viewer.timeline import time_at_step

MAX_NEWS_ITEMS = 24
MAX_EDGES = 3000
MAX_PURPOSES = 50

# The panel counts in steps: events are placed on a step axis (step n at minute n after this
# origin), so a malformed or missing time in the store cannot reorder them. Diffusion counts
# follow the recorded order, never the times, so they are the summary's on either axis.
_STEP_AXIS = datetime(2000, 1, 1)
# What each diffusion method reads (the summary's keyword spread reads these two kinds).
_SPREAD_KINDS = ("conversation", "utterance")
_HEARD_KINDS = ("news_heard",)


def _events(conn: sqlite3.Connection, kinds: Sequence[str], step: int) -> list[Event]:
    """The events of ``kinds`` up to ``step``, in recorded order, with times on the step axis."""
    marks = ", ".join("?" for _ in kinds)
    rows = conn.execute(
        f"SELECT step, kind, agent, data FROM events WHERE kind IN ({marks}) AND step <= ? "
        "ORDER BY id",
        (*kinds, step),
    )
    events = []
    for at, kind, agent, text in rows:
        data = parse_json(text, {})
        events.append(
            Event.model_construct(
                step=int(at),
                time=_STEP_AXIS + timedelta(minutes=int(at)),
                kind=str(kind),
                agent=None if agent is None else str(agent),
                data=data if isinstance(data, dict) else {},
            )
        )
    return events


def _step_of(time: datetime) -> int:
    return int((time - _STEP_AXIS).total_seconds() // 60)


def diffusion(
    conn: sqlite3.Connection, meta: RunMeta, step: int, scenario: RunScenario
) -> dict[str, Any]:
    """For each of the scenario's news items, how many agents knew it by each step.

    The run summary's figure: the initial knowers from the start, then a listener only when the
    speaker knew the item by then. An item the summary grades shows its keyword spread; any
    other its diffusion by the engine's ``news_heard`` events (keywords when the run has none).
    Points are ``[step, count]`` where the count changes (step 0 holds the initial knowers).
    A run without a usable scenario copy gets no items and ``unavailable`` says why.
    """
    info = scenario.info
    if info is None:
        return {
            "population": len(meta.agents),
            "step": step,
            "items": [],
            "unavailable": scenario.problem,
        }
    # The summary's "auto" looks at the whole run, so the method must not change with the step.
    plain: DiffusionMethod = "news_heard" if _has_events(conn, "news_heard") else "keywords"
    loaded: dict[str, list[Event]] = {}
    items = []
    for item in info.news[:MAX_NEWS_ITEMS]:
        method: DiffusionMethod = "keywords" if item.id in scenario.graded else plain
        if method not in loaded:
            kinds = _SPREAD_KINDS if method == "keywords" else _HEARD_KINDS
            loaded[method] = _events(conn, kinds, step)
        spread = news_diffusion(
            loaded[method], item, agents=info.agents, start=_STEP_AXIS, method=method
        )
        items.append(
            {
                "news_id": item.id,
                "label": scenario.descriptions.get(item.id, item.id),
                "method": spread.method,
                "initial": spread.initial_count,
                "points": [[_step_of(p.time), p.count] for p in spread.series if p.count],
                "heard": spread.final_count,
            }
        )
    return {"population": len(info.agents), "step": step, "items": items, "unavailable": None}


def _has_events(conn: sqlite3.Connection, kind: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM events WHERE kind = ? LIMIT 1", (kind,)).fetchone() is not None
    )


def network(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """Who talked with whom up to ``step``: nodes are agents, edges weigh conversations."""
    counts = conversation_counts(_events(conn, ("conversation",), step), agents=meta.agent_index)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_EDGES]
    degree: dict[str, int] = defaultdict(int)
    talks: dict[str, int] = defaultdict(int)
    for (one, other), weight in ranked:
        degree[one] += 1
        degree[other] += 1
        talks[one] += weight
        talks[other] += weight
    nodes = [
        {"name": name, "degree": degree[name], "conversations": talks[name]}
        for name in meta.agent_names
    ]
    edges = [[one, other, weight] for (one, other), weight in ranked]
    return {"step": step, "nodes": nodes, "edges": edges}


def usage(
    conn: sqlite3.Connection, meta: RunMeta, step: int, scenario: RunScenario
) -> dict[str, Any]:
    """Model calls and tokens up to ``step``: totals, per purpose, and per agent-hour.

    The run summary's figures (:func:`~societas.measurement.model_usage.model_usage` over its
    agents and its hours since the scenario's start): the totals and per-agent-hour rates count
    language-model calls, and the embedding requests are counted apart (``embedding_requests``)
    though they keep their own row among the purposes.
    """
    info = scenario.info
    agents = len(info.agents) if info is not None else len(meta.agents)
    start = info.start if info is not None else time_at_step(conn, meta, 0)
    hours = _elapsed_hours(conn, meta, step, start)
    figures = model_usage(_events(conn, ("llm_call",), step), agents=agents, hours=hours)
    # Most calls first; ties in reverse name order, the order the panel has always shown.
    ranked = sorted(
        figures.by_purpose.items(), key=lambda item: (item[1].calls, item[0]), reverse=True
    )
    purposes = [
        {"purpose": purpose, **_panel_figures(totals)} for purpose, totals in ranked[:MAX_PURPOSES]
    ]
    total = figures.total
    totals: dict[str, Any] = {
        key: value
        for key, value in _panel_figures(total).items()
        if key not in ("reuse_share", "latency_s")
    }
    totals["tokens"] = total.total_tokens
    totals["reuse_share"] = total.reuse_share
    totals["embedding_requests"] = figures.embeddings.calls
    return {
        "step": step,
        "game_hours": round(hours, 3),
        "agent_hours": round(hours * agents, 3),
        "totals": totals,
        "per_agent_hour": {
            "calls": figures.calls_per_agent_hour,
            "tokens": figures.tokens_per_agent_hour,
        },
        "purposes": purposes,
    }


def _panel_figures(totals: RecordedCallTotals) -> dict[str, Any]:
    """The figures of one purpose as the panel names them."""
    return {
        "calls": totals.calls,
        "prompt_tokens": totals.prompt_tokens,
        "reused_prompt_tokens": totals.reused_prompt_tokens,
        "reuse_share": totals.reuse_share,
        "completion_tokens": totals.completion_tokens,
        "cached": totals.cache_hits,
        "errors": totals.errors,
        "latency_s": totals.latency_s,
    }


def _elapsed_hours(
    conn: sqlite3.Connection, meta: RunMeta, step: int, start: datetime | None
) -> float:
    """Game hours from ``start`` to the time of ``step``, as the summary counts a run's hours
    (to the time of its last committed step, which the store keeps)."""
    committed = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (LAST_STEP_KEY, LAST_TIME_KEY)
        ).fetchall()
    )
    last_step = parse_json(committed.get(LAST_STEP_KEY))
    now = time_at_step(conn, meta, step)
    if isinstance(last_step, int) and step >= last_step:
        now = parse_time(parse_json(committed.get(LAST_TIME_KEY))) or now
    if start is None or now is None:
        return step * meta.minutes_per_step / 60.0
    return max(0.0, (now - start.replace(tzinfo=None)).total_seconds() / 3600.0)
