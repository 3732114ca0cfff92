"""Read-only access to a run directory for the viewer: ``run.sqlite``, ``summary.json`` and the
scenario copy (``scenario.yaml``).

The viewer never writes. It reads the run store through the engine's read-only
:class:`~societas.engine.run_reader.RunReader` (which checks the layout that
:mod:`societas.engine.run_schema` defines, and never writes or migrates); every request takes a
fresh read-only connection from it, so a simulation that is still writing the run (WAL mode) is
never disturbed and no connection is shared across threads. What never changes during a run
(agents, map, clock settings) is read once and cached.
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

from societas.engine.run_reader import RunReader
from societas.engine.run_schema import LAST_STEP_KEY, RunStoreError
from societas.viewer.run_scenario import RunScenario, read_run_scenario

SUMMARY_NAME = "summary.json"
MAX_SUMMARY_BYTES = 8 * 1024 * 1024
DEFAULT_MINUTES_PER_STEP = 10.0


class RunNotFoundError(FileNotFoundError):
    """The directory holds no readable run store (the message says why)."""


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
    # (agent, kind) (stores of an older layout), SQLite would pick the (kind, step) index and scan
    # every agent's events of that kind; ``+kind`` keeps it on the (agent, step) index instead.
    agent_kind_term: str = "kind"

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


class RunView:
    """One run as the viewer reads it: read-only connections and its cached fixed metadata.

    Example::

        run = RunView(Path("runs/town"))
        with run.connect() as conn:
            meta = run.meta(conn)
            progress = run.progress(conn)
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        try:
            self.store = RunReader.open(self.run_dir)
        except RunStoreError as exc:
            raise RunNotFoundError(str(exc)) from exc
        self._meta: RunMeta | None = None
        self._scenario: RunScenario | None = None
        self._lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection, closed on exit."""
        # One connection per request; FastAPI may resolve it and use it on different threads.
        with self.store.connect() as conn:
            yield conn

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
            agent_kind_term="kind" if self.store.layout.agent_kind_index else "+kind",
        )
        if agents and meta.map:
            with self._lock:
                self._meta = meta
        return meta

    def scenario(self) -> RunScenario:
        """The run's scenario copy (written before its store, so it never changes), read once."""
        with self._lock:
            if self._scenario is None:
                self._scenario = read_run_scenario(self.run_dir)
            return self._scenario

    def progress(self, conn: sqlite3.Connection) -> Progress:
        """Status, last step and last event id, read fresh every time."""
        values = dict(
            conn.execute("SELECT key, value FROM meta WHERE key IN ('status', ?)", (LAST_STEP_KEY,))
        )
        last_id = conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
        last_step = _as_int(parse_json(values.get(LAST_STEP_KEY)), -1)
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
