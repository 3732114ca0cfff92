"""What the town panel shows: news diffusion, the conversation network and model usage.

Each figure reads the events of one kind up to the step being viewed (the ``(kind, step)``
index) and hands them to the measurement package, the same functions the run summary and the
benchmarks call; this module only shapes their results for the browser.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from societas.engine.events import Event
from societas.measurement.model_usage import RecordedCallTotals, call_totals, calls_by_purpose
from societas.measurement.network_density import conversation_counts
from societas.measurement.news_spread import heard_news_diffusion, heard_news_ids
from societas.viewer.store import RunMeta, parse_json
from societas.viewer.timeline import time_at_step

MAX_NEWS_ITEMS = 24
MAX_EDGES = 3000
MAX_PURPOSES = 50

# The panel counts in steps: events are placed on a step axis (step n at minute n after this
# origin), so a malformed or missing time in the store cannot reorder them.
_STEP_AXIS = datetime(2000, 1, 1)


def _events(conn: sqlite3.Connection, kind: str, step: int) -> list[Event]:
    """The events of ``kind`` up to ``step``, in recorded order, with times on the step axis."""
    rows = conn.execute(
        "SELECT step, agent, data FROM events WHERE kind = ? AND step <= ? ORDER BY id",
        (kind, step),
    )
    events = []
    for at, agent, text in rows:
        data = parse_json(text, {})
        events.append(
            Event.model_construct(
                step=int(at),
                time=_STEP_AXIS + timedelta(minutes=int(at)),
                kind=kind,
                agent=None if agent is None else str(agent),
                data=data if isinstance(data, dict) else {},
            )
        )
    return events


def _step_of(time: datetime) -> int:
    return int((time - _STEP_AXIS).total_seconds() // 60)


def diffusion(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """For each news item, how many distinct agents had heard it by each step.

    Points are ``[step, count]`` where the count changes; items are ordered by first appearance.
    Every ``news_heard`` event counts (the panel shows what the engine traced, whoever told).
    """
    heard = _events(conn, "news_heard", step)
    labels = _news_labels(conn, step)
    items = []
    for news_id in heard_news_ids(heard)[:MAX_NEWS_ITEMS]:
        spread = heard_news_diffusion(
            heard, news_id, agents=meta.agent_names, start=_STEP_AXIS, from_knowers_only=False
        )
        points = [[_step_of(point.time), point.count] for point in spread.series if point.count]
        items.append(
            {
                "news_id": news_id,
                "label": labels.get(news_id, ""),
                "points": points,
                "heard": spread.final_count,
            }
        )
    return {"population": len(meta.agents), "step": step, "items": items}


def _news_labels(conn: sqlite3.Connection, step: int) -> dict[str, str]:
    """Descriptions of interventions that name a news item (the news a scenario seeds)."""
    rows = conn.execute(
        "SELECT json_extract(data, '$.news_id'), json_extract(data, '$.description') "
        "FROM events WHERE kind = 'intervention' AND step <= ? "
        "AND json_extract(data, '$.news_id') IS NOT NULL ORDER BY step, id LIMIT 500",
        (step,),
    )
    return {str(news): str(text or "") for news, text in rows}


def network(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """Who talked with whom up to ``step``: nodes are agents, edges weigh conversations."""
    counts = conversation_counts(_events(conn, "conversation", step), agents=meta.agent_index)
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


def usage(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """Model calls and tokens up to ``step``: totals, per purpose, and per agent-hour.

    Unlike the run summary's ``total``, these totals include the embedding requests.
    """
    calls = _events(conn, "llm_call", step)
    hours = _elapsed_hours(conn, meta, step)
    agent_hours = hours * len(meta.agents)
    by_purpose = calls_by_purpose(calls)
    # Most calls first; ties in reverse name order, the order the panel has always shown.
    ranked = sorted(by_purpose.items(), key=lambda item: (item[1].calls, item[0]), reverse=True)
    purposes = [
        {"purpose": purpose, **_panel_figures(totals)} for purpose, totals in ranked[:MAX_PURPOSES]
    ]
    everything = call_totals(calls)
    totals: dict[str, Any] = {
        key: value
        for key, value in _panel_figures(everything).items()
        if key not in ("reuse_share", "latency_s")
    }
    totals["tokens"] = everything.total_tokens
    totals["reuse_share"] = everything.reuse_share
    per_agent_hour = {
        "calls": round(everything.calls / agent_hours, 3) if agent_hours else None,
        "tokens": round(everything.total_tokens / agent_hours, 1) if agent_hours else None,
    }
    return {
        "step": step,
        "game_hours": round(hours, 3),
        "agent_hours": round(agent_hours, 3),
        "totals": totals,
        "per_agent_hour": per_agent_hour,
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


def _elapsed_hours(conn: sqlite3.Connection, meta: RunMeta, step: int) -> float:
    """Game hours from the start of step 0 to the end of ``step``."""
    first, last = time_at_step(conn, meta, 0), time_at_step(conn, meta, step)
    step_minutes = meta.minutes_per_step
    if first is None or last is None:
        return (step + 1) * step_minutes / 60.0
    return max(0.0, (last - first).total_seconds() / 3600.0) + step_minutes / 60.0
