"""The run store's layout, defined once: its tables, indexes, reserved keys and schema version.

A run directory holds ``run.sqlite``:

- ``meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)``: JSON-encoded values.
- ``events(id INTEGER PRIMARY KEY, step, time, kind, agent, data)``: ``time`` ISO 8601, ``data``
  JSON; indexed on ``(step)``, ``(kind, step)`` and ``(agent, kind, step)`` (stores written
  before this layout have ``(agent, step)`` instead of the last; readers work with either,
  see :attr:`Layout.agent_kind_index`).
- ``checkpoints(step INTEGER PRIMARY KEY, time TEXT NOT NULL, state BLOB NOT NULL)``: the world's
  state after that step, as zlib-compressed JSON.
- ``segments(key, first, step, count, data)``: rows of the parts of checkpoints that only grow
  (memory streams; see :mod:`societas.engine.segments`), each saved once, by the checkpoint of
  ``step``; ``data`` is zlib-compressed JSON of their columns. ``segment_refs(step, key)`` lists
  the keys each checkpoint refers to, so that pruning checkpoints also drops unused segments.
- ``PRAGMA user_version``: the schema version.

The writer (:mod:`societas.engine.runstore`) creates and upgrades this layout; readers
(:mod:`societas.engine.run_reader`, and through it the viewer) check it and never change it.

Examples
--------
>>> import sqlite3
>>> conn = sqlite3.connect(":memory:")
>>> create_schema(conn)
>>> layout = read_layout(conn)
>>> layout.version == SCHEMA_VERSION, layout.has_segments, layout.agent_kind_index
(True, True, True)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "run.sqlite"
# Version 2 added segments and segment_refs; a version-1 store is upgraded when opened to write.
SCHEMA_VERSION = 2
# Keys the store maintains itself inside every commit; callers may read but not set them.
LAST_STEP_KEY = "last_step"
LAST_TIME_KEY = "last_time"
RESERVED_META_KEYS = frozenset({LAST_STEP_KEY, LAST_TIME_KEY})

# The events indexes, by name (a reader may check that a query uses the one it means to).
EVENTS_BY_STEP = "events_step"
EVENTS_BY_KIND = "events_kind_step"
EVENTS_BY_AGENT = "events_agent_kind_step"

SEGMENT_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS segments(key TEXT NOT NULL, first INTEGER NOT NULL,"
    " step INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(key, first))",
    "CREATE TABLE IF NOT EXISTS segment_refs(step INTEGER NOT NULL, key TEXT NOT NULL,"
    " PRIMARY KEY(step, key))",
    "CREATE INDEX IF NOT EXISTS segment_refs_key ON segment_refs(key)",
)
SCHEMA_STATEMENTS = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE events(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, time TEXT NOT NULL,"
    " kind TEXT NOT NULL, agent TEXT, data TEXT NOT NULL)",
    f"CREATE INDEX {EVENTS_BY_STEP} ON events(step)",
    # No (agent, step) index: (agent, kind, step) serves one agent's events too, and each index
    # led by the agent costs a random B-tree insert per event (at 10,000 agents the two of them
    # took most of the time spent writing a step).
    f"CREATE INDEX {EVENTS_BY_KIND} ON events(kind, step)",
    f"CREATE INDEX {EVENTS_BY_AGENT} ON events(agent, kind, step)",
    "CREATE TABLE checkpoints(step INTEGER PRIMARY KEY, time TEXT NOT NULL, state BLOB NOT NULL)",
    *SEGMENT_STATEMENTS,
)
REQUIRED_TABLES = frozenset({"meta", "events", "checkpoints"})


class RunStoreError(Exception):
    """The run store cannot be used: not a run, damaged, newer schema, read-only or full disk."""


@dataclass(frozen=True)
class Layout:
    """What an open database holds: its schema version, tables and the shape of its indexes."""

    version: int
    tables: frozenset[str]
    # Whether an index on events starts with (agent, kind): stores written before the current
    # layout only have (agent, step), and one agent's events of a kind are then best found
    # through that index (a query says ``+kind`` so that SQLite does not pick (kind, step)).
    agent_kind_index: bool

    @property
    def has_segments(self) -> bool:
        return "segments" in self.tables

    @property
    def is_run_store(self) -> bool:
        return self.version >= 1 and self.tables >= REQUIRED_TABLES


def read_layout(conn: sqlite3.Connection) -> Layout:
    """The layout of the database behind ``conn`` (only reads; sqlite3 errors pass through)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = frozenset(
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
    )
    return Layout(version, tables, "events" in tables and _has_agent_kind_index(conn))


def check_layout(layout: Layout, path: Path) -> None:
    """Raise :class:`RunStoreError` unless ``path`` (with ``layout``) is a run store this
    version of societas can read."""
    if layout.version > SCHEMA_VERSION:
        raise RunStoreError(
            f"{path} has schema version {layout.version}, newer than this societas reads "
            f"({SCHEMA_VERSION}); upgrade societas to open it"
        )
    if not layout.is_run_store:
        raise RunStoreError(
            f"{path} is not a societas run store (no run schema in it); "
            "pass the output directory of a run"
        )


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index of the current layout in an empty database."""
    for statement in SCHEMA_STATEMENTS:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def upgrade_schema(conn: sqlite3.Connection) -> None:
    """Bring a store of an older schema version to the current one (adds what it lacks)."""
    for statement in SEGMENT_STATEMENTS:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _has_agent_kind_index(conn: sqlite3.Connection) -> bool:
    for _seq, name, *_ in conn.execute("PRAGMA index_list(events)").fetchall():
        quoted = str(name).replace('"', '""')
        columns = [row[2] for row in conn.execute(f'PRAGMA index_info("{quoted}")')]
        if columns[:2] == ["agent", "kind"]:
            return True
    return False
