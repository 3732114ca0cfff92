"""The run store's writer: one SQLite file per run holding its events, checkpoints and metadata.

The layout of ``run.sqlite`` is defined in :mod:`societas.engine.run_schema`; reading (also
while the engine writes) is :class:`~societas.engine.run_reader.RunReader`, which
:class:`RunStore` extends with writing. The file is in WAL mode, so viewers read while the
engine writes. Each step's events and its checkpoint are committed in one transaction: a run
killed at any moment keeps every committed step whole, and :meth:`RunStore.truncate_after`
rewinds the log to a checkpoint for an exact resume. A new store appears whole (schema and
metadata are written under another name, then renamed), after the files that go with it
(``companions``, e.g. the scenario). One process writes a store at a time: a writer holds the
folder's :class:`~societas.durable.WriterLock`.

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
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel

from societas.durable import (
    FolderBusyError,
    WriterLock,
    replace_atomic,
    write_atomic,
)
from societas.engine.events import Event
from societas.engine.run_reader import (
    BUSY_TIMEOUT_MS,
    Checkpoint,
    RunReader,
    check_kinds,
    run_database,
    translate_error,
)
from societas.engine.run_schema import (
    DB_NAME,
    LAST_STEP_KEY,
    LAST_TIME_KEY,
    RESERVED_META_KEYS,
    SCHEMA_VERSION,
    Layout,
    RunStoreError,
    check_layout,
    create_schema,
    read_layout,
    upgrade_schema,
)
from societas.engine.segments import Segment, split_segments
from societas.failpoints import kill_point

WRITER_CACHE_KB = 64 * 1024

# An event as stored: step, ISO time, kind, agent, JSON data.
EventRow = tuple[int, str, str, str | None, str]


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


class RunStore(RunReader):
    """Events, checkpoints and metadata of one run, in ``DIR/run.sqlite``, for its writer.

    Open with :meth:`create` (a new run) or :meth:`open` (an existing one). One process writes a
    store at a time; any number may read it meanwhile (readers that never write use
    :class:`~societas.engine.run_reader.RunReader`; ``readonly=True`` opens a RunStore that
    refuses writes, for code that takes a RunStore). A store object may be shared between
    threads.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        layout: Layout,
        *,
        immutable: bool = False,
        readonly: bool = False,
        retention: CheckpointRetention | None = None,
    ) -> None:
        super().__init__(connection, path, layout, immutable=immutable)
        self._readonly = readonly
        self._retention = retention or CheckpointRetention()
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
                raise translate_error(exc, partial, "create the run store") from exc
            store = cls._open_for_writing(db_path, retention or CheckpointRetention())
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
    ) -> Self:
        """Open the run in ``directory`` to write it (an older schema is upgraded);
        ``readonly`` opens it as :meth:`RunReader.open` does, and writes are refused."""
        if readonly:
            return super().open(directory)
        db_path = run_database(directory)
        writer = _lock_for_writing(db_path.parent)
        try:
            store = cls._open_for_writing(db_path, retention or CheckpointRetention())
        except BaseException:
            writer.release()
            raise
        store._writer = writer
        return store

    @classmethod
    def _open_for_writing(cls, db_path: Path, retention: CheckpointRetention) -> Self:
        connection = _connect(db_path)
        try:
            try:
                layout = read_layout(connection)
            except sqlite3.Error as exc:
                raise translate_error(exc, db_path, "open the run store") from exc
            check_layout(layout, db_path)
        except BaseException:
            connection.close()
            raise
        store = cls(connection, db_path, layout, retention=retention)
        if layout.version < SCHEMA_VERSION:
            try:
                store._upgrade()
            except BaseException:
                store.close()
                raise
        return store

    @classmethod
    def _wrap(
        cls, connection: sqlite3.Connection, path: Path, layout: Layout, *, immutable: bool
    ) -> Self:
        return cls(connection, path, layout, immutable=immutable, readonly=True)

    def close(self) -> None:
        """Close the database and let go of the run directory (idempotent)."""
        with self._lock:
            super().close()
            if self._writer is not None:
                self._writer.release()
                self._writer = None

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

    # ----------------------------------------------------------------------- internals

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
                raise translate_error(exc, self._path, action) from exc

    def _upgrade(self) -> None:
        with self._write("upgrade the run store"):
            upgrade_schema(self._connection())
            self._layout = read_layout(self._connection())

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

    @staticmethod
    def _put_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

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


# --------------------------------------------------------------------------- helpers


def _connect(path: Path) -> sqlite3.Connection:
    """The writer's connection: WAL mode, normal sync, a large page cache."""
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RunStoreError(f"{path} cannot use write-ahead logging (journal mode {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        # A writer inserts into indexes led by the agent, all over their B-trees: a page
        # cache larger than SQLite's 2 MB default keeps them from being read back each step.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB}")
    except sqlite3.Error as exc:
        raise translate_error(exc, path, "open the run store") from exc
    return conn


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
    check_kinds([event.kind])
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
        create_schema(conn)
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta_rows)
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
