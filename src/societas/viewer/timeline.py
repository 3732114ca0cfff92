"""Game time and agent frames over step ranges, computed with indexed SQL.

A *frame range* tells the front end where every agent stands and what it does at the first step of
the range, then only what changes inside it. Queries stay on the events indexes:
``(agent, kind, step)`` (``(agent, step)`` in stores of an older layout) for each agent's state at
the first step, ``(kind, step)`` for the changes, ``(step)`` for times.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from societas.viewer.store import Progress, RunMeta, parse_json, parse_time

MAX_FRAME_SPAN = 500
MAX_FRAME_ROWS = 50_000
MAX_UTTERANCE_CHARS = 280


def last_of_kind_sql(meta: RunMeta) -> str:
    """An agent's newest event of a kind at or before a step (parameters: agent, step, kind)."""
    return (
        "SELECT step, data FROM events WHERE agent = ? AND step <= ? "
        f"AND {meta.agent_kind_term} = ? ORDER BY step DESC, id DESC LIMIT 1"
    )


def _after(base: datetime, minutes: float) -> datetime | None:
    """``base`` plus ``minutes``; None past the calendar's end (a step far beyond any run)."""
    try:
        return base + timedelta(minutes=minutes)
    except OverflowError:
        return None


def time_at_step(conn: sqlite3.Connection, meta: RunMeta, step: int) -> datetime | None:
    """The game time of ``step``: the newest recorded time at or before it, plus whole steps."""
    row = conn.execute(
        "SELECT step, time FROM events WHERE step <= ? ORDER BY step DESC LIMIT 1", (step,)
    ).fetchone()
    minutes = meta.minutes_per_step
    if row is not None:
        base = parse_time(row[1])
        if base is not None:
            return _after(base, minutes * (step - int(row[0])))
    if meta.start_time is not None:
        return _after(meta.start_time, minutes * step)
    return None


def seek_step(conn: sqlite3.Connection, meta: RunMeta, target: datetime, last_step: int) -> int:
    """The last step whose game time is at or before ``target`` (0 when it precedes the run).

    Binary search over steps, so runs that skip time (nights fast-forwarded) still seek exactly.
    """
    target = target.replace(tzinfo=None)
    low, high = 0, max(0, last_step)
    while low < high:
        middle = (low + high + 1) // 2
        moment = time_at_step(conn, meta, middle)
        if moment is not None and moment <= target:
            low = middle
        else:
            high = middle - 1
    return low


def _capped_end(conn: sqlite3.Connection, start: int, end: int) -> int:
    """Shrink ``end`` so no kind returns more than MAX_FRAME_ROWS changes."""
    for kind in ("move", "action"):
        row = conn.execute(
            "SELECT step FROM events WHERE kind = ? AND step > ? AND step <= ? "
            "ORDER BY step LIMIT 1 OFFSET ?",
            (kind, start, end, MAX_FRAME_ROWS),
        ).fetchone()
        if row is not None:
            end = max(start + 1, int(row[0]) - 1)
    return end


def _tile_of(data: Any) -> list[int] | None:
    tile = data.get("tile") if isinstance(data, dict) else None
    if isinstance(tile, list) and len(tile) == 2 and all(isinstance(v, int) for v in tile):
        return [tile[0], tile[1]]
    return None


def _action_of(data: Any) -> list[str] | None:
    if not isinstance(data, dict):
        return None
    return [
        str(data.get("description") or ""),
        str(data.get("emoji") or ""),
        str(data.get("place") or ""),
    ]


def _initial_states(
    conn: sqlite3.Connection, meta: RunMeta, start: int
) -> tuple[list[list[int] | None], list[list[str] | None]]:
    tiles: list[list[int] | None] = []
    actions: list[list[str] | None] = []
    sql = last_of_kind_sql(meta)
    # Moves are recorded only when an agent moves; before its first one it is where it started.
    started = meta.map.get("agents")
    start_tiles = started if isinstance(started, dict) else {}
    for name in meta.agent_names:
        move = conn.execute(sql, (name, start, "move")).fetchone()
        action = conn.execute(sql, (name, start, "action")).fetchone()
        data = parse_json(move[1]) if move else {"tile": start_tiles.get(name)}
        tiles.append(_tile_of(data))
        actions.append(_action_of(parse_json(action[1])) if action else None)
    return tiles, actions


def _object_states(conn: sqlite3.Connection, start: int) -> dict[str, str]:
    rows = conn.execute(
        "SELECT json_extract(data, '$.object') AS obj, json_extract(data, '$.state'), MAX(id) "
        "FROM events WHERE kind = 'object_state' AND step <= ? GROUP BY obj",
        (start,),
    )
    return {str(obj): str(state) for obj, state, _ in rows if obj is not None}


def _changes(
    conn: sqlite3.Connection, meta: RunMeta, start: int, end: int
) -> dict[str, list[list[Any]]]:
    index = meta.agent_index
    moves = [
        [step, index[agent], x, y]
        for step, agent, x, y in conn.execute(
            "SELECT step, agent, json_extract(data, '$.tile[0]'), json_extract(data, '$.tile[1]') "
            "FROM events WHERE kind = 'move' AND step > ? AND step <= ? ORDER BY step, id",
            (start, end),
        )
        if agent in index and isinstance(x, int) and isinstance(y, int)
    ]
    actions = [
        [step, index[agent], str(text or ""), str(emoji or ""), str(place or "")]
        for step, agent, text, emoji, place in conn.execute(
            "SELECT step, agent, json_extract(data, '$.description'), "
            "json_extract(data, '$.emoji'), json_extract(data, '$.place') "
            "FROM events WHERE kind = 'action' AND step > ? AND step <= ? ORDER BY step, id",
            (start, end),
        )
        if agent in index
    ]
    utterances = [
        [step, index[speaker], str(text or "")[:MAX_UTTERANCE_CHARS], str(conversation or "")]
        for step, speaker, text, conversation in conn.execute(
            "SELECT step, COALESCE(json_extract(data, '$.speaker'), agent), "
            "json_extract(data, '$.text'), json_extract(data, '$.conversation_id') "
            "FROM events WHERE kind = 'utterance' AND step >= ? AND step <= ? ORDER BY step, id",
            (start, end),
        )
        if speaker in index
    ]
    objects = [
        [step, str(obj), str(state)]
        for step, obj, state in conn.execute(
            "SELECT step, json_extract(data, '$.object'), json_extract(data, '$.state') "
            "FROM events WHERE kind = 'object_state' AND step > ? AND step <= ? ORDER BY step, id",
            (start, end),
        )
        if obj is not None
    ]
    return {"moves": moves, "actions": actions, "utterances": utterances, "objects": objects}


def step_times(conn: sqlite3.Connection, meta: RunMeta, start: int, end: int) -> dict[str, str]:
    """Game time (ISO) of every step in ``[start, end]``, from events or the run's clock."""
    recorded = {
        int(step): str(moment)
        for step, moment in conn.execute(
            "SELECT step, MIN(time) FROM events WHERE step >= ? AND step <= ? GROUP BY step",
            (start, end),
        )
        if moment is not None
    }
    times: dict[str, str] = {}
    base = None if start in recorded else time_at_step(conn, meta, start)
    base_step = start
    for step in range(start, end + 1):
        if step in recorded:
            times[str(step)] = recorded[step]
            base, base_step = parse_time(recorded[step]), step
        elif base is not None:
            moment = _after(base, meta.minutes_per_step * (step - base_step))
            if moment is not None:
                times[str(step)] = moment.isoformat()
    return times


def frame_range(
    conn: sqlite3.Connection, meta: RunMeta, start: int, end: int, progress: Progress
) -> dict[str, Any]:
    """Agents' states at ``start`` and every change in ``(start, end]``.

    ``end`` may come back smaller than asked (never past the run's last step, never more than
    MAX_FRAME_ROWS changes of a kind); the caller asks again from there.
    ``complete`` is False while the range reaches the step the simulation is still writing.
    """
    if end > start + MAX_FRAME_SPAN:
        raise ValueError(f"end - start must be at most {MAX_FRAME_SPAN}")
    end = _capped_end(conn, start, min(end, max(progress.last_step, start)))
    tiles, actions = _initial_states(conn, meta, start)
    return {
        "start": start,
        "end": end,
        "complete": progress.status != "running" or end < progress.last_step,
        "agents": meta.agent_names,
        "tiles": tiles,
        "actions": actions,
        "objects": _object_states(conn, start),
        "changes": _changes(conn, meta, start, end),
        "times": step_times(conn, meta, start, end),
    }
