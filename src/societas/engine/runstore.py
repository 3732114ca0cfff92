"""The run store: one SQLite file per run holding its events, checkpoints and metadata.

A run directory holds ``run.sqlite`` with this schema (the viewer reads it directly):

- ``meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)``: JSON-encoded values.
- ``events(id INTEGER PRIMARY KEY, step, time, kind, agent, data)``: ``time`` ISO 8601, ``data``
  JSON; indexed on ``(step)``, ``(kind, step)`` and ``(agent, kind, step)`` (stores written
  before this layout also have ``(agent, step)``; readers work with either).
- ``checkpoints(step INTEGER PRIMARY KEY, time TEXT NOT NULL, state BLOB NOT NULL)``: the world's
  state after that step, as zlib-compressed JSON.
- ``segments(key, first, step, count, data)``: rows of the parts of checkpoints that only grow
  (memory streams; see :mod:`societas.engine.segments`), each saved once, by the checkpoint of
  ``step``; ``data`` is zlib-compressed JSON of their columns. ``segment_refs(step, key)`` lists
  the keys each checkpoint refers to, so that pruning checkpoints also drops unused segments.
- ``PRAGMA user_version``: the schema version.

The file is in WAL mode, so viewers read while the engine writes. Each step's events and its
checkpoint are committed in one transaction: a run killed at any moment keeps every committed step
whole, and :meth:`RunStore.truncate_after` rewinds the log to a checkpoint for an exact resume.
A new store appears whole (schema and metadata are written under another name, then renamed),
after the files that go with it (``companions``, e.g. the scenario). One process writes a store
at a time: a writer holds the folder's :class:`~societas.durable.WriterLock`.

Examples
--------
>>> import tempfile
>>> from datetime import datetime
>>> from societas.engine.events import Event
>>> t = datetime(2026, 2, 13, 8, 0)
>>> with tempfile.TemporaryDirectory() as tmp:
...     with RunStore.create(tmp, {"scenario": "town"}) as store:
...         store.commit_step(0, t, [Event(step=0, time=t, kind="observation", agent="Mara",
...                                        data={"text": "the cafe is open"})], {"clock": 0})
...         print(store.count_events(), store.latest_checkpoint().state)
1 {'clock': 0}
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from pydantic import BaseModel, ValidationError

from societas.durable import (
    FolderBusyError,
    WriterLock,
    replace_atomic,
    write_atomic,
)
from societas.engine.events import EVENT_KINDS, Event
from societas.engine.segments import (
    Segment,
    SegmentError,
    join_segments,
    split_segments,
)
from societas.failpoints import kill_point

# Version 2 added segments and segment_refs; a version-1 store is upgraded when opened to write.
SCHEMA_VERSION = 2
DB_NAME = "run.sqlite"
BUSY_TIMEOUT_MS = 10_000
WRITER_CACHE_KB = 64 * 1024
# Keys the store maintains itself inside every commit; callers may read but not set them.
LAST_STEP_KEY = "last_step"
LAST_TIME_KEY = "last_time"
RESERVED_META_KEYS = frozenset({LAST_STEP_KEY, LAST_TIME_KEY})

_SEGMENT_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS segments(key TEXT NOT NULL, first INTEGER NOT NULL,"
    " step INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(key, first))",
    "CREATE TABLE IF NOT EXISTS segment_refs(step INTEGER NOT NULL, key TEXT NOT NULL,"
    " PRIMARY KEY(step, key))",
    "CREATE INDEX IF NOT EXISTS segment_refs_key ON segment_refs(key)",
)
_SCHEMA_STATEMENTS = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE events(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, time TEXT NOT NULL,"
    " kind TEXT NOT NULL, agent TEXT, data TEXT NOT NULL)",
    "CREATE INDEX events_step ON events(step)",
    # No (agent, step) index: (agent, kind, step) serves one agent's events too, and each index
    # led by the agent costs a random B-tree insert per event (at 10,000 agents the two of them
    # took most of the time spent writing a step).
    "CREATE INDEX events_kind_step ON events(kind, step)",
    "CREATE INDEX events_agent_kind_step ON events(agent, kind, step)",
    "CREATE TABLE checkpoints(step INTEGER PRIMARY KEY, time TEXT NOT NULL, state BLOB NOT NULL)",
    *_SEGMENT_STATEMENTS,
)
_TABLES = frozenset({"meta", "events", "checkpoints"})


class RunStoreError(Exception):
    """The run store cannot be used: not a run, damaged, newer schema, read-only or full disk."""


# An event as stored: step, ISO time, kind, agent, JSON data.
EventRow = tuple[int, str, str, str | None, str]


class StoredEvent(NamedTuple):
    """An event with its row id (ids grow with insertion order; use them to page and stream)."""

    id: int
    event: Event


class Checkpoint(NamedTuple):
    """The world's state as saved after ``step`` (simulated ``time``)."""

    step: int
    time: datetime
    state: dict[str, Any]


@dataclass(frozen=True)
class CheckpointRetention:
    """Which checkpoints survive pruning: the ``keep_last`` newest, plus an archive.

    With ``archive_every`` set, the earliest checkpoint in each window of that many steps
    (steps 0..N-1, N..2N-1, ...) is kept too, so a long run can still be forked at regular points.
    With checkpoints every C steps, ``archive_every = k * C`` keeps every k-th one.

    >>> sorted(CheckpointRetention(keep_last=2, archive_every=10).steps_to_keep([0, 4, 8, 12, 16]))
    [0, 12, 16]
    """

    keep_last: int = 3
    archive_every: int | None = None

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be at least 1 (got {self.keep_last})")
        if self.archive_every is not None and self.archive_every < 1:
            raise ValueError(f"archive_every must be at least 1 step (got {self.archive_every})")

    def steps_to_keep(self, steps: Iterable[int]) -> set[int]:
        ordered = sorted(set(steps))
        keep = set(ordered[-self.keep_last :])
        if self.archive_every is not None:
            windows_seen: set[int] = set()
            for step in ordered:
                window = step // self.archive_every
                if window not in windows_seen:
                    windows_seen.add(window)
                    keep.add(step)
        return keep


class RunStore:
    """Events, checkpoints and metadata of one run, in ``DIR/run.sqlite``.

    Open with :meth:`create` (a new run) or :meth:`open` (an existing one; ``readonly=True`` for
    viewers). One process writes a store at a time; any number may read it meanwhile. A store
    object may be shared between threads.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        *,
        readonly: bool,
        retention: CheckpointRetention,
    ) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._path = path
        self._readonly = readonly
        self._retention = retention
        self._lock = threading.RLock()
        self._has_segments = True
        self._writer: WriterLock | None = None

    # ----------------------------------------------------------------- opening and closing

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        meta: Mapping[str, Any],
        *,
        overwrite: bool = False,
        retention: CheckpointRetention | None = None,
        companions: Mapping[str, str] | None = None,
    ) -> RunStore:
        """Create the run store in ``directory`` (made if missing) with the given metadata.

        An existing run with events or checkpoints is refused unless ``overwrite`` is True; an
        existing empty one is replaced. Keys the store keeps itself (``last_step``,
        ``last_time``) are left out, so the metadata of another run can be copied for a fork.
        ``companions`` maps file names to texts written into ``directory`` before the store
        appears, so a folder that has a store has them too.

        The store appears whole or not at all: a process killed while creating it leaves no
        ``run.sqlite`` (or the empty one it replaced).
        """
        run_dir = Path(directory)
        meta_rows = _encode_meta({k: v for k, v in meta.items() if k not in RESERVED_META_KEYS})
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunStoreError(
                f"cannot create run directory {run_dir}: {exc.strerror or exc}; "
                "choose a writable location"
            ) from exc
        writer = _lock_for_writing(run_dir)
        db_path = run_dir / DB_NAME
        try:
            if db_path.exists() and not overwrite and not _is_empty_run(db_path):
                raise RunStoreError(
                    f"{run_dir} already holds a run ({db_path} is not empty); resume it, choose "
                    "another directory, or overwrite it explicitly"
                )
            partial = db_path.with_name(DB_NAME + ".partial")
            try:
                for name, text in (companions or {}).items():
                    write_atomic(run_dir / name, text)
                _build_database(partial, meta_rows)
                _remove_database_files(db_path)
                replace_atomic(partial, db_path)
            except OSError as exc:
                raise RunStoreError(
                    f"cannot create the run store in {run_dir}: {exc.strerror or exc}; "
                    "check that the directory is writable and has free space"
                ) from exc
            except sqlite3.Error as exc:
                raise _translate_error(exc, partial, "create the run store") from exc
            store = cls(
                _connect(db_path, readonly=False),
                db_path,
                readonly=False,
                retention=retention or CheckpointRetention(),
            )
        except BaseException:
            writer.release()
            raise
        store._writer = writer
        kill_point("created", 0)  # a crash point for reliability tests (unset: no-op)
        return store

    @classmethod
    def reopen_at_checkpoint(cls, directory: str | os.PathLike[str]) -> tuple[RunStore, Checkpoint]:
        """Open a run to go on from its last checkpoint: what was recorded after it is dropped,
        and the run is marked running again."""
        store = cls.open(directory)
        try:
            checkpoint = store.latest_checkpoint()
        except BaseException:
            store.close()
            raise
        if checkpoint is None:
            store.close()
            raise RunStoreError(
                f"{directory} has no checkpoint yet: the run stopped while it was starting; "
                "resume it with `societas resume`, which starts it again from the beginning"
            )
        store.truncate_after(checkpoint.step)
        store.set_meta("status", "running")
        return store, checkpoint

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        readonly: bool = False,
        retention: CheckpointRetention | None = None,
    ) -> RunStore:
        """Open the run in ``directory``; ``readonly`` for readers such as the viewer."""
        run_dir = Path(directory)
        db_path = run_dir / DB_NAME
        if not run_dir.is_dir():
            raise RunStoreError(f"{run_dir} is not a run directory: it does not exist")
        if not db_path.is_file():
            raise RunStoreError(
                f"{run_dir} is not a run directory: it has no {DB_NAME}; "
                "pass the output directory of a run"
            )
        retention = retention or CheckpointRetention()
        if not readonly:
            writer = _lock_for_writing(run_dir)
            try:
                store = cls._open_checked(db_path, readonly, retention, immutable=False)
            except BaseException:
                writer.release()
                raise
            store._writer = writer
            return store
        try:
            return cls._open_checked(db_path, readonly, retention, immutable=False)
        except RunStoreError as exc:
            # A finished run in a read-only directory has no -wal file and cannot get a -shm
            # file; with no -wal nothing can be writing it, so it is safe to read as immutable.
            wal = Path(f"{db_path}-wal")
            if not (readonly and _cannot_open(exc) and not wal.exists()):
                raise
        return cls._open_checked(db_path, readonly, retention, immutable=True)

    @classmethod
    def _open_checked(
        cls, db_path: Path, readonly: bool, retention: CheckpointRetention, *, immutable: bool
    ) -> RunStore:
        connection = _connect(db_path, readonly=readonly, immutable=immutable)
        store = cls(connection, db_path, readonly=readonly, retention=retention)
        try:
            store._check_schema()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._writer is not None:
                self._writer.release()
                self._writer = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def directory(self) -> Path:
        """The run directory."""
        return self._path.parent

    @property
    def readonly(self) -> bool:
        """Whether this store was opened for reading only."""
        return self._readonly

    # ----------------------------------------------------------------------- writing

    def commit_step(
        self,
        step: int,
        time: datetime,
        events: Sequence[Event],
        checkpoint_state: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one step: its events and, optionally, the world's state after it, atomically.

        Steps never go back: ``step`` must be at least the last committed step (the same step may
        be committed again to append events). Commits with a checkpoint are flushed to disk
        before returning; the others may be lost in a power cut, never half-written.
        """
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        self.commit_rows(
            step, time, [encode_event(event, step) for event in events], checkpoint_state
        )

    def commit_rows(
        self,
        step: int,
        time: datetime,
        rows: Sequence[EventRow],
        checkpoint_state: Mapping[str, Any] | None = None,
    ) -> None:
        """:meth:`commit_step` for events already encoded with :func:`encode_event` (by the
        shards of a world, so the process that writes the store only writes)."""
        if step < 0:
            raise ValueError(f"step must be >= 0 (got {step})")
        if any(row[0] != step for row in rows):
            raise ValueError(f"an event of another step was committed in step {step}")
        blob: bytes | None = None
        segments: list[tuple[str, int, int, bytes]] = []
        keys: set[str] = set()
        if checkpoint_state is not None:
            try:
                saved_state, new_segments, keys = split_segments(checkpoint_state)
            except ValueError as exc:
                raise ValueError(f"checkpoint state of step {step}: {exc}") from exc
            blob = _encode_state(saved_state, step)
            segments = [_encode_segment(segment, step) for segment in new_segments]
        with self._write(f"commit step {step}", durable=blob is not None):
            conn = self._connection()
            last = self._read_meta(conn, LAST_STEP_KEY, None)
            if last is not None and step < last:
                # Only a program error gets here (one writer at a time, and a resume rewinds
                # the log to its checkpoint first); history is never written twice.
                raise RunStoreError(
                    f"cannot record step {step} in {self._path}: the run already holds steps "
                    f"up to {last}, and its history is not rewritten in place; resume the run "
                    "from its last checkpoint instead"
                )
            conn.executemany(
                "INSERT INTO events(step, time, kind, agent, data) VALUES (?, ?, ?, ?, ?)", rows
            )
            if blob is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO checkpoints(step, time, state) VALUES (?, ?, ?)",
                    (step, time.isoformat(), blob),
                )
                self._save_segments(conn, step, segments, keys)
                self._prune_checkpoints(conn)
            self._put_meta(conn, LAST_STEP_KEY, step)
            self._put_meta(conn, LAST_TIME_KEY, time.isoformat())
            # Crash points for reliability tests (no-ops unless SOCIETAS_KILL_AT is set).
            kill_point("in-commit", step)
            if blob is not None:
                kill_point("in-checkpoint", step)
        kill_point("commit", step)

    def truncate_after(self, step: int) -> int:
        """Delete every event and checkpoint after ``step``; returns the number of events deleted.

        Resuming from the checkpoint at ``step`` then replays the later steps, so the resumed log
        ends exactly as an uninterrupted run's would. ``step = -1`` empties the log.
        """
        if step < -1:
            raise ValueError(f"step must be >= -1 (got {step})")
        with self._write(f"truncate the run after step {step}", durable=True):
            conn = self._connection()
            deleted = conn.execute("DELETE FROM events WHERE step > ?", (step,)).rowcount
            conn.execute("DELETE FROM checkpoints WHERE step > ?", (step,))
            conn.execute("DELETE FROM segments WHERE step > ?", (step,))
            conn.execute("DELETE FROM segment_refs WHERE step > ?", (step,))
            last = self._read_meta(conn, LAST_STEP_KEY, None)
            if step < 0:
                conn.execute("DELETE FROM meta WHERE key IN (?, ?)", (LAST_STEP_KEY, LAST_TIME_KEY))
            elif last is not None and last > step:
                self._put_meta(conn, LAST_STEP_KEY, step)
                self._put_meta(conn, LAST_TIME_KEY, self._time_of_step(conn, step))
        return int(deleted)

    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``."""
        ((key, encoded),) = _encode_meta({key: value})
        with self._write(f"set meta {key!r}"):
            self._connection().execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, encoded)
            )

    # ----------------------------------------------------------------------- reading

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, else ``default``."""
        with self._read("read meta"):
            return self._read_meta(self._connection(), key, default)

    def meta(self) -> dict[str, Any]:
        """All metadata (including ``last_step`` and ``last_time``, kept by the store)."""
        with self._read("read meta"):
            rows = self._connection().execute("SELECT key, value FROM meta ORDER BY key")
            return {key: self._decode_meta(key, value) for key, value in rows}

    def last_step(self) -> int | None:
        """The last committed step, or None before the first commit."""
        value = self.get_meta(LAST_STEP_KEY)
        return None if value is None else int(value)

    def last_event_id(self) -> int:
        """The id of the newest event (0 when there are none): poll it to stream new events."""
        with self._read("read events"):
            row = self._connection().execute("SELECT MAX(id) FROM events").fetchone()
            return int(row[0] or 0)

    def events(
        self,
        *,
        kinds: str | Iterable[str] | None = None,
        agent: str | None = None,
        from_step: int | None = None,
        to_step: int | None = None,
        after_id: int | None = None,
        limit: int | None = 1000,
    ) -> list[StoredEvent]:
        """Events in the order they were recorded, filtered; steps bounds are inclusive.

        Page through a log by passing the last id seen as ``after_id``; ``limit=None`` returns
        every match.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1 or None (got {limit})")
        where, params = _event_filter(kinds, agent, from_step, to_step, after_id)
        sql = f"SELECT id, step, time, kind, agent, data FROM events{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read("read events"):
            rows = self._connection().execute(sql, params).fetchall()
        return [self._decode_event(row) for row in rows]

    def iter_events(
        self,
        *,
        kinds: str | Iterable[str] | None = None,
        agent: str | None = None,
        from_step: int | None = None,
        to_step: int | None = None,
        page_size: int = 5000,
    ) -> Iterator[StoredEvent]:
        """Every matching event, fetched page by page (bounded memory for long runs)."""
        after_id = 0
        while True:
            page = self.events(
                kinds=kinds,
                agent=agent,
                from_step=from_step,
                to_step=to_step,
                after_id=after_id,
                limit=page_size,
            )
            yield from page
            if len(page) < page_size:
                return
            after_id = page[-1].id

    def count_events(
        self,
        *,
        kinds: str | Iterable[str] | None = None,
        agent: str | None = None,
        from_step: int | None = None,
        to_step: int | None = None,
        after_id: int | None = None,
    ) -> int:
        """How many events match the filters (same meaning as in :meth:`events`)."""
        where, params = _event_filter(kinds, agent, from_step, to_step, after_id)
        with self._read("count events"):
            row = self._connection().execute(f"SELECT COUNT(*) FROM events{where}", params)
            return int(row.fetchone()[0])

    def event_counts(self) -> dict[str, int]:
        """The number of events of each kind present in the log."""
        with self._read("count events"):
            rows = self._connection().execute(
                "SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind"
            )
            return {kind: int(count) for kind, count in rows}

    def checkpoint_steps(self) -> list[int]:
        """Steps that have a checkpoint, oldest first."""
        with self._read("list checkpoints"):
            rows = self._connection().execute("SELECT step FROM checkpoints ORDER BY step")
            return [int(step) for (step,) in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, or None when the run has none."""
        with self._read("read the latest checkpoint"):
            row = (
                self._connection()
                .execute("SELECT step, time, state FROM checkpoints ORDER BY step DESC LIMIT 1")
                .fetchone()
            )
            return None if row is None else self._decode_checkpoint(row)

    def checkpoint(self, step: int) -> Checkpoint:
        """The checkpoint taken after ``step``; RunStoreError naming the available ones if none."""
        with self._read(f"read the checkpoint of step {step}"):
            row = (
                self._connection()
                .execute("SELECT step, time, state FROM checkpoints WHERE step = ?", (step,))
                .fetchone()
            )
            if row is not None:
                return self._decode_checkpoint(row)
        available = ", ".join(map(str, self.checkpoint_steps())) or "none"
        raise RunStoreError(
            f"no checkpoint at step {step} in {self._path} (checkpoints at: {available})"
        )

    def export_events_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every event as one JSON object per line (id, step, time, kind, agent, data).

        The file appears complete or not at all; returns the number of events written.
        """
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        count = 0
        try:
            with partial.open("w", encoding="utf-8") as out:
                for stored in self.iter_events():
                    record = {"id": stored.id, **stored.event.model_dump(mode="json")}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise RunStoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return count

    # ----------------------------------------------------------------------- internals

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RunStoreError(f"the run store {self._path} is closed")
        return self._conn

    @contextmanager
    def _read(self, action: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise _translate_error(exc, self._path, action) from exc

    @contextmanager
    def _write(self, action: str, *, durable: bool = False) -> Iterator[None]:
        """One write transaction; ``durable`` commits with a full sync to disk."""
        if self._readonly:
            raise RunStoreError(
                f"cannot {action}: {self._path} was opened read-only; open it without readonly"
            )
        with self._lock:
            conn = self._connection()
            try:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    if durable:
                        conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise _translate_error(exc, self._path, action) from exc

    def _check_schema(self) -> None:
        with self._read("open the run store"):
            conn = self._connection()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        if version > SCHEMA_VERSION:
            raise RunStoreError(
                f"{self._path} has schema version {version}, newer than this societas reads "
                f"({SCHEMA_VERSION}); upgrade societas to open it"
            )
        if version < 1 or not _TABLES.issubset(tables):
            raise RunStoreError(
                f"{self._path} is not a societas run store (no run schema in it); "
                "pass the output directory of a run"
            )
        self._has_segments = "segments" in tables
        if version < SCHEMA_VERSION and not self._readonly:
            with self._write("upgrade the run store"):
                conn = self._connection()
                for statement in _SEGMENT_STATEMENTS:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._has_segments = True

    def _prune_checkpoints(self, conn: sqlite3.Connection) -> None:
        steps = [int(step) for (step,) in conn.execute("SELECT step FROM checkpoints")]
        keep = self._retention.steps_to_keep(steps)
        doomed = [(s,) for s in steps if s not in keep]
        if not doomed:
            return
        conn.executemany("DELETE FROM checkpoints WHERE step = ?", doomed)
        # Rows of a stream that no kept checkpoint refers to any more (one replaced by a new
        # one, or saved again under a new key after a resume). Only the keys of the pruned
        # checkpoints are looked at: scanning every saved row each time is what costs.
        placeholders = ", ".join("?" * len(doomed))
        dropped = [
            key
            for (key,) in conn.execute(
                f"SELECT DISTINCT key FROM segment_refs WHERE step IN ({placeholders})"
                " AND key NOT IN (SELECT key FROM segment_refs"
                f" WHERE step NOT IN ({placeholders}))",
                [step for (step,) in doomed] * 2,
            )
        ]
        conn.executemany("DELETE FROM segment_refs WHERE step = ?", doomed)
        conn.executemany("DELETE FROM segments WHERE key = ?", [(key,) for key in dropped])

    @staticmethod
    def _save_segments(
        conn: sqlite3.Connection,
        step: int,
        segments: Sequence[tuple[str, int, int, bytes]],
        keys: Iterable[str],
    ) -> None:
        # A segment replaces any saved rows of its key from its first row on: those belonged to
        # a checkpoint that was rewound or is being replaced.
        conn.executemany(
            "DELETE FROM segments WHERE key = ? AND first >= ?",
            [(key, first) for key, first, _, _ in segments],
        )
        conn.executemany(
            "INSERT INTO segments(key, first, step, count, data) VALUES (?, ?, ?, ?, ?)",
            [(key, first, step, count, data) for key, first, count, data in segments],
        )
        conn.execute("DELETE FROM segment_refs WHERE step = ?", (step,))
        conn.executemany(
            "INSERT INTO segment_refs(step, key) VALUES (?, ?)", [(step, key) for key in keys]
        )

    def _load_segments(self, key: str, size: int) -> list[Segment]:
        if not self._has_segments:
            return []
        rows = self._connection().execute(
            "SELECT first, count, data FROM segments WHERE key = ? AND first < ? ORDER BY first",
            (key, size),
        )
        segments = []
        for first, count, data in rows:
            try:
                columns = json.loads(zlib.decompress(data).decode("utf-8"))
            except (zlib.error, UnicodeDecodeError, ValueError) as exc:
                raise SegmentError(f"saved rows {first}+ of {key!r} are damaged ({exc})") from exc
            segments.append(Segment(key, int(first), int(count), columns))
        return segments

    @staticmethod
    def _put_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def _read_meta(self, conn: sqlite3.Connection, key: str, default: Any) -> Any:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else self._decode_meta(key, row[0])

    def _decode_meta(self, key: str, value: str) -> Any:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RunStoreError(f"meta {key!r} in {self._path} is not valid JSON: {exc}") from exc

    @staticmethod
    def _time_of_step(conn: sqlite3.Connection, step: int) -> str | None:
        """The simulated time at ``step``: its checkpoint's, else that of its latest event."""
        row = conn.execute("SELECT time FROM checkpoints WHERE step = ?", (step,)).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT time FROM events WHERE step <= ? ORDER BY step DESC, id DESC LIMIT 1",
                (step,),
            ).fetchone()
        return None if row is None else str(row[0])

    def _decode_event(self, row: tuple[Any, ...]) -> StoredEvent:
        event_id, step, time, kind, agent, data = row
        try:
            event = Event(
                step=step,
                time=datetime.fromisoformat(time),
                kind=kind,
                agent=agent,
                data=json.loads(data),
            )
        except (ValueError, ValidationError) as exc:
            raise RunStoreError(f"event {event_id} in {self._path} is damaged: {exc}") from exc
        return StoredEvent(int(event_id), event)

    def _decode_checkpoint(self, row: tuple[Any, ...]) -> Checkpoint:
        step, time, blob = row
        try:
            state = json.loads(zlib.decompress(blob).decode("utf-8"))
            when = datetime.fromisoformat(time)
            if isinstance(state, dict):
                state = join_segments(state, self._load_segments)
        except (zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise RunStoreError(
                f"the checkpoint of step {step} in {self._path} is damaged ({exc}); "
                "resume from an earlier checkpoint"
            ) from exc
        if not isinstance(state, dict):
            raise RunStoreError(f"the checkpoint of step {step} in {self._path} is not an object")
        return Checkpoint(int(step), when, state)


# --------------------------------------------------------------------------- helpers


def _connect(path: Path, *, readonly: bool, immutable: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?{'immutable=1' if immutable else 'mode=ro'}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        else:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RunStoreError(f"{path} cannot use write-ahead logging (journal mode {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            # A writer inserts into indexes led by the agent, all over their B-trees: a page
            # cache larger than SQLite's 2 MB default keeps them from being read back each step.
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB}")
    except sqlite3.Error as exc:
        raise _translate_error(exc, path, "open the run store") from exc
    return conn


def _translate_error(exc: sqlite3.Error, path: Path, action: str) -> RunStoreError:
    """A RunStoreError that names the file, what went wrong and what to do about it."""
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text:
        problem = (
            f"{path} is damaged or not a SQLite database; restore it from a backup "
            "or start a new run in another directory"
        )
    elif "disk is full" in text:
        problem = f"the disk holding {path} is full; free some space, then resume the run"
    elif "disk i/o error" in text:
        problem = (
            f"disk I/O error on {path}; check the disk and that the directory is writable, "
            "then resume the run"
        )
    elif "readonly" in text or "read-only" in text:
        problem = (
            f"{path} or its directory is read-only; make it writable, copy the run elsewhere, "
            "or open it read-only to view it"
        )
    elif "unable to open" in text:
        problem = (
            f"cannot open {path}; check that the directory exists and is writable "
            "(a run store also needs to create its -wal and -shm files there)"
        )
    elif "locked" in text or "busy" in text:
        problem = f"{path} is busy: another process is writing this run; only one writer at a time"
    else:
        problem = f"{path}: {exc}"
    return RunStoreError(f"cannot {action}: {problem}")


def _cannot_open(exc: RunStoreError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause)


def _event_filter(
    kinds: str | Iterable[str] | None,
    agent: str | None,
    from_step: int | None,
    to_step: int | None,
    after_id: int | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else sorted(set(kinds))
        _check_kinds(wanted)
        clauses.append(f"kind IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    for clause, value in (
        ("agent = ?", agent),
        ("step >= ?", from_step),
        ("step <= ?", to_step),
        ("id > ?", after_id),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, params


def _check_kinds(kinds: Sequence[str]) -> None:
    if not kinds:
        raise ValueError("kinds is empty: pass None for every kind")
    unknown = sorted(set(kinds) - EVENT_KINDS)
    if unknown:
        raise ValueError(f"unknown event kind(s) {unknown}; known: {sorted(EVENT_KINDS)}")


def _json_default(value: Any) -> Any:
    """Event data may hold dates, sets and models; they are recorded in their JSON form."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_event(event: Event, step: int) -> EventRow:
    """``event`` as the run store writes it (checked: its step, kind and JSON data)."""
    if event.step != step:
        raise ValueError(
            f"a {event.kind!r} event of step {event.step} was committed in step {step}"
        )
    _check_kinds([event.kind])
    try:
        data = json.dumps(
            event.data, ensure_ascii=False, separators=(",", ":"), default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data of a {event.kind!r} event at step {step}: {exc}") from exc
    return event.step, event.time.isoformat(), event.kind, event.agent, data


def _encode_state(state: Mapping[str, Any], step: int) -> bytes:
    # Strict on purpose: a state must come back exactly as saved, so nothing is coerced.
    try:
        text = json.dumps(dict(state), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint state of step {step} is not plain JSON: {exc}") from exc
    # Level 1: checkpoints of a large town are big and written often; level 6 took twice the
    # time for a few per cent of size.
    return zlib.compress(text.encode("utf-8"), 1)


def _encode_segment(segment: Segment, step: int) -> tuple[str, int, int, bytes]:
    try:
        text = json.dumps(
            segment.columns, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"rows {segment.first}+ of {segment.key!r} in the checkpoint of step {step} "
            f"are not plain JSON: {exc}"
        ) from exc
    return segment.key, segment.first, segment.rows, zlib.compress(text.encode("utf-8"), 1)


def _encode_meta(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"meta keys must be non-empty strings (got {key!r})")
        if key in RESERVED_META_KEYS:
            raise ValueError(f"meta key {key!r} is kept by the run store itself")
        try:
            rows.append((key, json.dumps(value, ensure_ascii=False, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta {key!r} is not JSON-serialisable: {exc}") from exc
    return rows


def _is_empty_run(db_path: Path) -> bool:
    """True for a zero-byte file, a database without a run schema (its creation was cut short
    by an older version) or a run store with no events and no checkpoints."""
    if db_path.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                return True
            row = conn.execute(
                "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM checkpoints)"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return int(row[0]) == 0


def _lock_for_writing(run_dir: Path) -> WriterLock:
    try:
        return WriterLock(run_dir).acquire()
    except FolderBusyError as exc:
        raise RunStoreError(str(exc)) from exc
    except OSError as exc:
        raise RunStoreError(
            f"cannot write {run_dir}: {exc.strerror or exc}; check that it is writable"
        ) from exc


def _build_database(path: Path, meta_rows: Sequence[tuple[str, str]]) -> None:
    """A complete new run store at ``path`` (schema and metadata), closed and flushed.

    Built under a temporary name and renamed into place, so no reader or resume ever sees a
    store without its schema. It is born in WAL mode (closing the last connection folds the WAL
    into the file and deletes it, so nothing is left to follow it through the rename): switching
    modes later writes through a rollback journal, and a kill then leaves a hot journal that a
    read-only opener cannot roll back.
    """
    _remove_database_files(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RunStoreError(f"{path} cannot use write-ahead logging (journal mode {mode})")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA_STATEMENTS:
            conn.execute(statement)
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta_rows)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    finally:
        conn.close()
    if Path(f"{path}-wal").exists():
        raise RunStoreError(f"cannot create the run store: {path}-wal was not folded in on close")


def _remove_database_files(db_path: Path) -> None:
    # The WAL goes first: a database left without its WAL is consistent (it lacks the last
    # commits), whereas a stale WAL beside a new database would be replayed into it.
    for suffix in ("-wal", "-shm", "-journal", ""):
        try:
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        except OSError as exc:
            raise RunStoreError(f"cannot remove {db_path}{suffix}: {exc.strerror or exc}") from exc
