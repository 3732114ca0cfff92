"""Read-only access to a run store: events, checkpoints and metadata of a recorded run.

A :class:`RunReader` opens ``run.sqlite`` read-only (SQLite ``mode=ro``): it never writes, never
creates the file, never upgrades an older schema. It checks the layout that
:mod:`societas.engine.run_schema` defines, so a reader and the writer
(:class:`~societas.engine.runstore.RunStore`, which extends this class) cannot drift apart. It may
read while the engine writes (the store is in WAL mode); callers that run their own queries (the
viewer) take fresh read-only connections from :meth:`RunReader.connect`.

Examples
--------
>>> import tempfile
>>> from datetime import datetime
>>> from societas.engine.events import Event
>>> from societas.engine.runstore import RunStore
>>> t = datetime(2026, 2, 13, 8, 0)
>>> with tempfile.TemporaryDirectory() as tmp:
...     with RunStore.create(tmp, {"scenario": "town"}) as store:
...         store.commit_step(0, t, [Event(step=0, time=t, kind="move", agent="Mara",
...                                        data={"tile": [3, 4]})], {"clock": 0})
...     with RunReader.open(tmp) as reader:
...         print(reader.get_meta("scenario"), reader.count_events(kinds="move"))
town 1
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from pydantic import ValidationError

from societas.engine.events import EVENT_KINDS, Event
from societas.engine.run_schema import (
    DB_NAME,
    LAST_STEP_KEY,
    Layout,
    RunStoreError,
    check_layout,
    read_layout,
)
from societas.engine.segments import Segment, SegmentError, join_segments

BUSY_TIMEOUT_MS = 10_000


class StoredEvent(NamedTuple):
    """An event with its row id (ids grow with insertion order; use them to page and stream)."""

    id: int
    event: Event


class Checkpoint(NamedTuple):
    """The world's state as saved after ``step`` (simulated ``time``)."""

    step: int
    time: datetime
    state: dict[str, Any]


class RunReader:
    """Events, checkpoints and metadata of one run in ``DIR/run.sqlite``, read-only.

    Open with :meth:`open`. Any number of readers may read a store while one process writes it.
    A reader may be shared between threads.
    """

    def __init__(
        self, connection: sqlite3.Connection, path: Path, layout: Layout, *, immutable: bool
    ) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._path = path
        self._layout = layout
        self._immutable = immutable
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- opening and closing

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Self:
        """Open the run in ``directory`` for reading; RunStoreError says why it cannot be read."""
        db_path = run_database(directory)
        try:
            return cls._open_readonly(db_path, immutable=False)
        except RunStoreError as exc:
            # A finished run in a read-only directory has no -wal file and cannot get a -shm
            # file; with no -wal nothing can be writing it, so it is safe to read as immutable.
            if not (_cannot_open(exc) and not Path(f"{db_path}-wal").exists()):
                raise
        return cls._open_readonly(db_path, immutable=True)

    @classmethod
    def _open_readonly(cls, db_path: Path, *, immutable: bool) -> Self:
        connection = connect_readonly(db_path, immutable=immutable)
        try:
            layout = _checked_layout(connection, db_path)
        except BaseException:
            connection.close()
            raise
        return cls._wrap(connection, db_path, layout, immutable=immutable)

    @classmethod
    def _wrap(
        cls, connection: sqlite3.Connection, path: Path, layout: Layout, *, immutable: bool
    ) -> Self:
        """An object of this class over an open, checked connection."""
        return cls(connection, path, layout, immutable=immutable)

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection of its own, closed on exit, for callers that run their
        own queries (e.g. one per request of a server); it may be used on any thread."""
        conn = connect_readonly(self._path, immutable=self._immutable)
        try:
            yield conn
        finally:
            conn.close()

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
        """Whether this object only reads (always, for a reader)."""
        return True

    @property
    def layout(self) -> Layout:
        """The store's schema version, tables and index shape, as found when it was opened."""
        return self._layout

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
                raise translate_error(exc, self._path, action) from exc

    def _read_meta(self, conn: sqlite3.Connection, key: str, default: Any) -> Any:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else self._decode_meta(key, row[0])

    def _decode_meta(self, key: str, value: str) -> Any:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RunStoreError(f"meta {key!r} in {self._path} is not valid JSON: {exc}") from exc

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

    def _load_segments(self, key: str, size: int) -> list[Segment]:
        if not self._layout.has_segments:
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


# --------------------------------------------------------------------------- helpers


def run_database(directory: str | os.PathLike[str]) -> Path:
    """The run store file of ``directory``; RunStoreError when there is none."""
    run_dir = Path(directory)
    db_path = run_dir / DB_NAME
    if not run_dir.is_dir():
        raise RunStoreError(f"{run_dir} is not a run directory: it does not exist")
    if not db_path.is_file():
        raise RunStoreError(
            f"{run_dir} is not a run directory: it has no {DB_NAME}; "
            "pass the output directory of a run"
        )
    return db_path


def connect_readonly(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """A read-only connection to the run store at ``path`` (``immutable``: also without the
    shared-memory file, for a store that nothing writes); usable on any thread."""
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{'immutable=1' if immutable else 'mode=ro'}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise translate_error(exc, path, "open the run store") from exc
    return conn


def _checked_layout(conn: sqlite3.Connection, path: Path) -> Layout:
    try:
        layout = read_layout(conn)
    except sqlite3.Error as exc:
        raise translate_error(exc, path, "open the run store") from exc
    check_layout(layout, path)
    return layout


def translate_error(exc: sqlite3.Error, path: Path, action: str) -> RunStoreError:
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
        check_kinds(wanted)
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


def check_kinds(kinds: Sequence[str]) -> None:
    """ValueError unless ``kinds`` is a non-empty list of known event kinds."""
    if not kinds:
        raise ValueError("kinds is empty: pass None for every kind")
    unknown = sorted(set(kinds) - EVENT_KINDS)
    if unknown:
        raise ValueError(f"unknown event kind(s) {unknown}; known: {sorted(EVENT_KINDS)}")
