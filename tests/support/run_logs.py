"""What a recorded run holds, in forms that tests compare: its event log and its last state.

Two runs that should be the same (killed and resumed against whole, sharded against local, with a
budget against without) are compared through these, so that every test compares the same thing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from societas.engine.run_schema import DB_NAME
from societas.engine.runstore import RunStore

EventRow = tuple[int, str, str | None, str]
TimedEventRow = tuple[int, str, str, str | None, str]


def event_log(run_dir: Path) -> list[TimedEventRow]:
    """Every event, model calls included: (step, time, kind, agent, data as sorted JSON)."""
    with RunStore.open(run_dir, readonly=True) as store:
        return [
            (
                e.event.step,
                e.event.time.isoformat(),
                e.event.kind,
                e.event.agent,
                json.dumps(e.event.data, sort_keys=True),
            )
            for e in store.iter_events()
        ]


def world_events(run_dir: Path) -> list[EventRow]:
    """What happened in the world: (step, kind, agent, data as sorted JSON), model calls left
    out (whether a call hit the cache, and its timings, may differ between equal runs)."""
    with RunStore.open(run_dir, readonly=True) as store:
        return [
            (e.event.step, e.event.kind, e.event.agent, json.dumps(e.event.data, sort_keys=True))
            for e in store.iter_events()
            if e.event.kind != "llm_call"
        ]


def final_state(run_dir: Path) -> dict[str, Any]:
    """The state of the run's last checkpoint (there must be one)."""
    with RunStore.open(run_dir, readonly=True) as store:
        checkpoint = store.latest_checkpoint()
    assert checkpoint is not None, f"{run_dir} has no checkpoint"
    return checkpoint.state


def assert_store_intact(run_dir: Path) -> None:
    """The run's database passes SQLite's integrity check (opened read-only, changing nothing)."""
    conn = sqlite3.connect(f"{(run_dir / DB_NAME).resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
