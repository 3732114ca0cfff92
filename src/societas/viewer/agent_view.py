"""What the agent panel shows: persona, plan, memories, conversations, relationships.

Every query reads the agent's own events through the ``(agent, step)`` index, or one kind through
``(kind, step)``, and never looks past the step being viewed (a replay shows no future).
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from typing import Any

from societas.viewer.store import AgentInfo, RunMeta, parse_json, parse_time
from societas.viewer.timeline import time_at_step

MINUTES_PER_DAY = 24 * 60
CONVERSATION_WINDOW_MINUTES = 180
MAX_UTTERANCES_PER_CONVERSATION = 200


def _scalar(value: Any) -> str | int | None:
    """An id as SQLite can bind it; anything else (lists, objects) becomes None."""
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    event_id, step, moment, data = row
    payload = parse_json(data, {})
    return {
        "id": event_id,
        "step": step,
        "time": moment,
        "data": payload if isinstance(payload, dict) else {},
    }


def _latest(
    conn: sqlite3.Connection, meta: RunMeta, name: str, kind: str, step: int
) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT id, step, time, data FROM events WHERE agent = ? AND step <= ? "
        f"AND {meta.agent_kind_term} = ? ORDER BY step DESC, id DESC LIMIT 1",
        (name, step, kind),
    ).fetchone()
    return _event(row) if row else None


def minute_of_day(value: Any) -> int | None:
    """Minutes after midnight of a plan time: ``"HH:MM"`` or an ISO datetime; None if neither.

    >>> minute_of_day("07:30"), minute_of_day("2024-02-13T14:05:00"), minute_of_day("soon")
    (450, 845, None)
    """
    if not isinstance(value, str):
        return None
    for form in ("%H:%M", "%H:%M:%S"):
        try:
            moment = datetime.strptime(value.strip(), form)
        except ValueError:
            continue
        return moment.hour * 60 + moment.minute
    parsed = parse_time(value)
    return None if parsed is None else parsed.hour * 60 + parsed.minute


def current_block(blocks: list[Any], now: datetime) -> int | None:
    """Index of the plan block that contains ``now`` (a block may run past midnight)."""
    minute = now.hour * 60 + now.minute
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        begin, finish = minute_of_day(block.get("start")), minute_of_day(block.get("end"))
        if begin is None or finish is None:
            continue
        if finish <= begin:
            finish += MINUTES_PER_DAY
        if begin <= minute < finish or begin <= minute + MINUTES_PER_DAY < finish:
            return index
    return None


def _plan(
    conn: sqlite3.Connection, meta: RunMeta, name: str, step: int, now: datetime | None
) -> dict[str, Any]:
    event = _latest(conn, meta, name, "plan", step)
    if event is None:
        return {"date": None, "blocks": [], "reason": "", "current": None, "step": None}
    data = event["data"]
    blocks = [b for b in data.get("blocks") or [] if isinstance(b, dict)]
    same_day = now is not None and str(data.get("date") or "")[:10] in ("", now.date().isoformat())
    return {
        "date": data.get("date"),
        "blocks": blocks,
        "reason": str(data.get("reason") or ""),
        "current": current_block(blocks, now) if now is not None and same_day else None,
        "step": event["step"],
    }


def _relationships(
    conn: sqlite3.Connection, meta: RunMeta, name: str, step: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT json_extract(data, '$.other') AS other, json_extract(data, '$.summary'), "
        f"step, MAX(id) FROM events WHERE agent = ? AND step <= ? AND {meta.agent_kind_term} = ? "
        "GROUP BY other ORDER BY step DESC",
        (name, step, "relationship"),
    )
    return [
        {"other": str(other), "summary": str(summary or ""), "step": at}
        for other, summary, at, _ in rows
        if other is not None
    ]


def agent_detail(
    conn: sqlite3.Connection, meta: RunMeta, agent: AgentInfo, step: int
) -> dict[str, Any]:
    """Persona, place, action, today's plan (current block marked) and relationships at a step."""
    now = time_at_step(conn, meta, step)
    move = _latest(conn, meta, agent.name, "move", step)
    action = _latest(conn, meta, agent.name, "action", step)
    started = meta.map.get("agents")
    start_tile = started.get(agent.name) if isinstance(started, dict) else None
    return {
        "name": agent.name,
        "persona": agent.persona,
        "step": step,
        "time": now.isoformat() if now else None,
        "place": move["data"].get("place") if move else None,
        "tile": move["data"].get("tile") if move else start_tile,
        "action": action["data"] if action else None,
        "plan": _plan(conn, meta, agent.name, step, now),
        "relationships": _relationships(conn, meta, agent.name, step),
    }


def agent_memories(
    conn: sqlite3.Connection,
    meta: RunMeta,
    name: str,
    step: int,
    *,
    limit: int,
    before_id: int | None = None,
    text: str | None = None,
    memory_kind: str | None = None,
) -> dict[str, Any]:
    """The agent's memories up to ``step``, newest first, filtered and paged by event id."""
    sql = [
        "SELECT id, step, time, data FROM events WHERE agent = ? AND step <= ? "
        f"AND {meta.agent_kind_term} = ?"
    ]
    params: list[Any] = [name, step, "memory"]
    if before_id is not None:
        sql.append("AND id < ?")
        params.append(before_id)
    if memory_kind:
        sql.append("AND json_extract(data, '$.memory_kind') = ?")
        params.append(memory_kind)
    if text:
        sql.append("AND instr(lower(json_extract(data, '$.text')), lower(?)) > 0")
        params.append(text)
    sql.append("ORDER BY step DESC, id DESC LIMIT ?")
    params.append(limit + 1)
    rows = [_event(row) for row in conn.execute(" ".join(sql), params)]
    page = rows[:limit]
    return {
        "memories": [_memory(row) for row in page],
        "next_before_id": page[-1]["id"] if len(rows) > limit else None,
    }


def _memory(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    importance = data.get("importance")
    return {
        "id": event["id"],
        "step": event["step"],
        "time": event["time"],
        "memory_id": data.get("id"),
        "kind": str(data.get("memory_kind") or "observation"),
        "text": str(data.get("text") or ""),
        "importance": importance if isinstance(importance, int | float) else None,
        "evidence": data.get("evidence") if isinstance(data.get("evidence"), list) else [],
    }


_INVOLVES = (
    "(COALESCE(json_extract(data, '$.speaker'), agent) = ? OR EXISTS "
    "(SELECT 1 FROM json_each(events.data, '$.listeners') WHERE json_each.value = ?))"
)


def _utterances(
    conn: sqlite3.Connection, conversation_id: Any, low: int, high: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT step, time, COALESCE(json_extract(data, '$.speaker'), agent), "
        "json_extract(data, '$.text') FROM events WHERE kind = 'utterance' "
        "AND step >= ? AND step <= ? AND json_extract(data, '$.conversation_id') = ? "
        "ORDER BY step, id LIMIT ?",
        (low, high, conversation_id, MAX_UTTERANCES_PER_CONVERSATION),
    )
    return [
        {"step": at, "time": moment, "speaker": str(speaker or ""), "text": str(text or "")}
        for at, moment, speaker, text in rows
    ]


def agent_conversations(
    conn: sqlite3.Connection,
    meta: RunMeta,
    name: str,
    step: int,
    *,
    limit: int,
    before_id: int | None = None,
) -> dict[str, Any]:
    """Conversations the agent took part in up to ``step``, newest first, with their utterances.

    A conversation still going on (utterances written, its ``conversation`` event not yet) comes
    first on the first page, marked ``ongoing``.
    """
    window = max(2, math.ceil(CONVERSATION_WINDOW_MINUTES / meta.minutes_per_step))
    sql = (
        "SELECT id, step, time, data FROM events WHERE kind = 'conversation' AND step <= ? "
        + ("AND id < ? " if before_id is not None else "")
        + "AND (agent = ? OR EXISTS (SELECT 1 FROM json_each(events.data, '$.participants') "
        "WHERE json_each.value = ?)) ORDER BY step DESC, id DESC LIMIT ?"
    )
    params: list[Any] = [step, *([before_id] if before_id is not None else []), name, name]
    rows = [_event(row) for row in conn.execute(sql, [*params, limit + 1])]
    page = rows[:limit]
    conversations = [_finished(conn, event, step, window) for event in page]
    if before_id is None:
        since = max(page[0]["step"] if page else 0, step - window)
        conversations[:0] = _ongoing(conn, name, since, step, window)
    return {
        "conversations": conversations,
        "next_before_id": page[-1]["id"] if len(rows) > limit else None,
    }


def _finished(
    conn: sqlite3.Connection, event: dict[str, Any], step: int, window: int
) -> dict[str, Any]:
    """A recorded conversation with the utterances written around its event (never after step)."""
    data = event["data"]
    conversation_id = _scalar(data.get("id"))
    participants = data.get("participants")
    low, high = event["step"] - window, min(step, event["step"] + window)
    return {
        "id": conversation_id,
        "step": event["step"],
        "time": event["time"],
        "participants": [str(p) for p in participants] if isinstance(participants, list) else [],
        "place": data.get("place"),
        "summary": str(data.get("summary") or ""),
        "ongoing": False,
        "utterances": []
        if conversation_id is None
        else _utterances(conn, conversation_id, low, high),
    }


def _recorded_ids(conn: sqlite3.Connection, since: int, step: int) -> set[Any]:
    rows = conn.execute(
        "SELECT json_extract(data, '$.id') FROM events WHERE kind = 'conversation' "
        "AND step >= ? AND step <= ?",
        (since, step),
    )
    return {row[0] for row in rows}


def _ongoing(
    conn: sqlite3.Connection, name: str, since: int, step: int, window: int
) -> list[dict[str, Any]]:
    """The agent's utterances since ``since`` whose conversation has no event yet, grouped."""
    known = _recorded_ids(conn, since - window, step)
    rows = conn.execute(
        "SELECT step, time, COALESCE(json_extract(data, '$.speaker'), agent), "
        "json_extract(data, '$.text'), json_extract(data, '$.conversation_id'), "
        "json_extract(data, '$.listeners') FROM events WHERE kind = 'utterance' "
        f"AND step >= ? AND step <= ? AND {_INVOLVES} ORDER BY step, id LIMIT ?",
        (since, step, name, name, MAX_UTTERANCES_PER_CONVERSATION),
    )
    grouped: dict[Any, dict[str, Any]] = {}
    for at, moment, speaker, text, conversation_id, listeners in rows:
        if conversation_id is None or conversation_id in known:
            continue
        entry = grouped.setdefault(
            conversation_id,
            {
                "id": conversation_id,
                "step": at,
                "time": moment,
                "participants": [],
                "place": None,
                "summary": "",
                "ongoing": True,
                "utterances": [],
            },
        )
        for person in [speaker, *(parse_json(listeners, []) or [])]:
            if isinstance(person, str) and person not in entry["participants"]:
                entry["participants"].append(person)
        entry["utterances"].append(
            {"step": at, "time": moment, "speaker": str(speaker or ""), "text": str(text or "")}
        )
    return sorted(grouped.values(), key=lambda c: c["step"], reverse=True)
