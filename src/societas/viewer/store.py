"""Read-only access to a run directory: ``run.sqlite`` and ``summary.json``.

The viewer never writes. Every request opens its own ``mode=ro`` connection, so a simulation that
is still writing the run (WAL mode) is never disturbed and no connection is shared across threads.
What never changes during a run (agents, map, clock settings) is read once and cached.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

RUN_DB_NAME = "run.sqlite"
SUMMARY_NAME = "summary.json"
MAX_SUMMARY_BYTES = 8 * 1024 * 1024
DEFAULT_MINUTES_PER_STEP = 10.0


class RunNotFoundError(FileNotFoundError):
    """The directory holds no readable run store."""


class RunDataError(ValueError):
    """A file of the run exists but cannot be used (malformed, too large)."""


def parse_json(text: Any, default: Any = None) -> Any:
    """Decode a JSON column value; a malformed value yields ``default`` instead of an error."""
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO time from the store as a naive datetime (wall clock of the game)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        return None


@dataclass(frozen=True)
class AgentInfo:
    """One agent as the run's metadata lists it."""

    name: str
    persona: dict[str, Any]


@dataclass(frozen=True)
class RunMeta:
    """The parts of a run's metadata that stay fixed while it runs."""

    scenario: str
    seed: Any
    model: Any
    start_time: datetime | None
    minutes_per_step: float
    agents: tuple[AgentInfo, ...]
    map: dict[str, Any]
    agent_index: dict[str, int] = field(default_factory=dict)
    # SQL term for "this kind" in queries that filter one agent's events. Without an index led by
    # (agent, kind), SQLite would pick the (kind, step) index and scan every agent's events of
    # that kind; ``+kind`` keeps it on the (agent, step) index instead.
    agent_kind_term: str = "+kind"

    @property
    def agent_names(self) -> list[str]:
        return [agent.name for agent in self.agents]

    def agent(self, name: str) -> AgentInfo | None:
        index = self.agent_index.get(name)
        return None if index is None else self.agents[index]


@dataclass(frozen=True)
class Progress:
    """How far a run has got: what changes while the simulation writes."""

    status: str
    last_step: int
    last_event_id: int


def _agents_from_meta(raw: Any) -> tuple[AgentInfo, ...]:
    agents: list[AgentInfo] = []
    seen: set[str] = set()
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        if name in seen:
            continue
        seen.add(name)
        persona = item.get("persona")
        agents.append(AgentInfo(name=name, persona=persona if isinstance(persona, dict) else {}))
    return tuple(agents)


def _as_float(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return float(value)


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _has_agent_kind_index(conn: sqlite3.Connection) -> bool:
    """Whether an index on the events table starts with the columns (agent, kind)."""
    for _seq, name, *_ in conn.execute("PRAGMA index_list(events)").fetchall():
        quoted = str(name).replace('"', '""')
        columns = [row[2] for row in conn.execute(f'PRAGMA index_info("{quoted}")')]
        if columns[:2] == ["agent", "kind"]:
            return True
    return False


class RunReader:
    """Opens read-only connections to one run and caches its fixed metadata.

    Example::

        reader = RunReader(Path("runs/town"))
        with reader.connect() as conn:
            meta = reader.meta(conn)
            progress = reader.progress(conn)
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        self.db_path = self.run_dir / RUN_DB_NAME
        if not self.db_path.is_file():
            raise RunNotFoundError(f"{self.run_dir}: no {RUN_DB_NAME} in this directory")
        self._meta: RunMeta | None = None
        self._lock = threading.Lock()
        self._check_schema()

    def _check_schema(self) -> None:
        try:
            with self.connect() as conn:
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise RunNotFoundError(f"{self.db_path}: not a readable SQLite file ({exc})") from exc
        missing = {"meta", "events"} - tables
        if missing:
            raise RunNotFoundError(
                f"{self.db_path}: not a run store (missing tables: {', '.join(sorted(missing))})"
            )

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection, closed on exit."""
        uri = self.db_path.as_uri() + "?mode=ro"
        # One connection per request; FastAPI may resolve it and use it on different threads.
        conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only = ON")
            yield conn
        finally:
            conn.close()

    def meta(self, conn: sqlite3.Connection) -> RunMeta:
        """The fixed metadata; cached once the run has written its agents."""
        with self._lock:
            if self._meta is not None:
                return self._meta
        raw = {
            key: parse_json(value, value)
            for key, value in conn.execute("SELECT key, value FROM meta")
        }
        agents = _agents_from_meta(raw.get("agents"))
        run_map = raw.get("map")
        meta = RunMeta(
            scenario=str(raw.get("scenario", "")),
            seed=raw.get("seed"),
            model=raw.get("model"),
            start_time=parse_time(raw.get("start_time")),
            minutes_per_step=_as_float(raw.get("minutes_per_step"), DEFAULT_MINUTES_PER_STEP),
            agents=agents,
            map=run_map if isinstance(run_map, dict) else {},
            agent_index={agent.name: i for i, agent in enumerate(agents)},
            agent_kind_term="kind" if _has_agent_kind_index(conn) else "+kind",
        )
        if agents and meta.map:
            with self._lock:
                self._meta = meta
        return meta

    def progress(self, conn: sqlite3.Connection) -> Progress:
        """Status, last step and last event id, read fresh every time."""
        values = dict(
            conn.execute("SELECT key, value FROM meta WHERE key IN ('status', 'last_step')")
        )
        last_id = conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
        last_step = _as_int(parse_json(values.get("last_step")), -1)
        if last_step < 0:
            # A run that has not recorded last_step yet: fall back to its newest event.
            row = conn.execute("SELECT MAX(step) FROM events").fetchone()
            last_step = int(row[0]) if row[0] is not None else 0
        status = parse_json(values.get("status"), "unknown")
        return Progress(
            status=status if isinstance(status, str) else "unknown",
            last_step=last_step,
            last_event_id=int(last_id or 0),
        )

    def read_progress(self) -> Progress:
        """:meth:`progress` on its own connection (for polling from a worker thread)."""
        with self.connect() as conn:
            return self.progress(conn)

    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` when the run has written one; None otherwise."""
        path = self.run_dir / SUMMARY_NAME
        if not path.is_file():
            return None
        if not path.resolve().is_relative_to(self.run_dir):
            raise RunDataError(f"{SUMMARY_NAME}: links to a file outside the run directory")
        try:
            if path.stat().st_size > MAX_SUMMARY_BYTES:
                raise RunDataError(f"{SUMMARY_NAME}: larger than {MAX_SUMMARY_BYTES} bytes")
            data = parse_json(path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise RunDataError(f"{SUMMARY_NAME}: cannot be read ({exc.strerror or exc})") from exc
        if not isinstance(data, dict):
            raise RunDataError(f"{SUMMARY_NAME}: not a JSON object")
        return data
