"""What the town panel shows: news diffusion, the conversation network and model usage.

Each figure is one aggregate query over a single event kind (the ``(kind, step)`` index), limited
to the steps up to the one being viewed.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from societas.viewer.store import RunMeta
from societas.viewer.timeline import time_at_step

MAX_NEWS_ITEMS = 24
MAX_EDGES = 3000
MAX_PURPOSES = 50


def diffusion(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """For each news item, how many distinct agents had heard it by each step.

    Points are ``[step, count]`` where the count changes; items are ordered by first appearance.
    """
    first_heard = conn.execute(
        "SELECT json_extract(data, '$.news_id') AS news, agent, MIN(step) AS first "
        "FROM events WHERE kind = 'news_heard' AND step <= ? AND agent IS NOT NULL "
        "GROUP BY news, agent ORDER BY first",
        (step,),
    )
    per_news: dict[str, dict[int, int]] = {}
    for news, _agent, first in first_heard:
        if news is None:
            continue
        counts = per_news.setdefault(str(news), defaultdict(int))
        counts[int(first)] += 1
    labels = _news_labels(conn, step)
    items = []
    for news_id, counts in list(per_news.items())[:MAX_NEWS_ITEMS]:
        total, points = 0, []
        for at in sorted(counts):
            total += counts[at]
            points.append([at, total])
        items.append(
            {"news_id": news_id, "label": labels.get(news_id, ""), "points": points, "heard": total}
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
    rows = conn.execute(
        "SELECT a.value AS one, b.value AS other, COUNT(*) AS weight FROM events "
        "JOIN json_each(events.data, '$.participants') AS a "
        "JOIN json_each(events.data, '$.participants') AS b "
        "WHERE events.kind = 'conversation' AND events.step <= ? AND a.value < b.value "
        "GROUP BY one, other ORDER BY weight DESC LIMIT ?",
        (step, MAX_EDGES),
    )
    known = meta.agent_index
    edges = [[one, other, weight] for one, other, weight in rows if one in known and other in known]
    degree: dict[str, int] = defaultdict(int)
    talks: dict[str, int] = defaultdict(int)
    for one, other, weight in edges:
        degree[one] += 1
        degree[other] += 1
        talks[one] += weight
        talks[other] += weight
    nodes = [
        {"name": name, "degree": degree[name], "conversations": talks[name]}
        for name in meta.agent_names
    ]
    return {"step": step, "nodes": nodes, "edges": edges}


def usage(conn: sqlite3.Connection, meta: RunMeta, step: int) -> dict[str, Any]:
    """Model calls and tokens up to ``step``: totals, per purpose, and per agent-hour."""
    rows = conn.execute(
        "SELECT COALESCE(json_extract(data, '$.purpose'), '?') AS purpose, COUNT(*), "
        "SUM(COALESCE(json_extract(data, '$.prompt_tokens'), 0)), "
        "SUM(COALESCE(json_extract(data, '$.reused_prompt_tokens'), 0)), "
        "SUM(COALESCE(json_extract(data, '$.completion_tokens'), 0)), "
        "SUM(CASE WHEN json_extract(data, '$.cached') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN json_extract(data, '$.error') IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(COALESCE(json_extract(data, '$.latency_s'), 0)) "
        "FROM events WHERE kind = 'llm_call' AND step <= ? GROUP BY purpose "
        "ORDER BY COUNT(*) DESC LIMIT ?",
        (step, MAX_PURPOSES),
    )
    purposes = [
        {
            "purpose": str(purpose),
            "calls": calls,
            "prompt_tokens": int(prompt or 0),
            "reused_prompt_tokens": int(reused or 0),
            "reuse_share": _share(int(reused or 0), int(prompt or 0)),
            "completion_tokens": int(completion or 0),
            "cached": cached,
            "errors": errors,
            "latency_s": round(float(latency or 0.0), 3),
        }
        for purpose, calls, prompt, reused, completion, cached, errors, latency in rows
    ]
    totals = {
        key: sum(p[key] for p in purposes)
        for key in (
            "calls",
            "prompt_tokens",
            "reused_prompt_tokens",
            "completion_tokens",
            "cached",
            "errors",
        )
    }
    totals["tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
    totals["reuse_share"] = _share(totals["reused_prompt_tokens"], totals["prompt_tokens"])
    hours = _elapsed_hours(conn, meta, step)
    agent_hours = hours * len(meta.agents)
    per_agent_hour = {
        "calls": round(totals["calls"] / agent_hours, 3) if agent_hours else None,
        "tokens": round(totals["tokens"] / agent_hours, 1) if agent_hours else None,
    }
    return {
        "step": step,
        "game_hours": round(hours, 3),
        "agent_hours": round(agent_hours, 3),
        "totals": totals,
        "per_agent_hour": per_agent_hour,
        "purposes": purposes,
    }


def _share(reused: int, prompt: int) -> float | None:
    """Reused prompt tokens over prompt tokens sent, rounded; None when no prompt was sent."""
    return round(reused / prompt, 4) if prompt > 0 else None


def _elapsed_hours(conn: sqlite3.Connection, meta: RunMeta, step: int) -> float:
    """Game hours from the start of step 0 to the end of ``step``."""
    first, last = time_at_step(conn, meta, 0), time_at_step(conn, meta, step)
    step_minutes = meta.minutes_per_step
    if first is None or last is None:
        return (step + 1) * step_minutes / 60.0
    return max(0.0, (last - first).total_seconds() / 3600.0) + step_minutes / 60.0
