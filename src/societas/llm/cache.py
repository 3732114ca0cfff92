"""A persistent, content-addressed cache of model answers and embeddings (SQLite).

A rerun of the same request returns the stored answer without calling the model, which makes
reruns identical and free. The key of an answer is the sha256 of the canonical JSON of everything
that determines it (:func:`cache_key`): the backend's model id, the call kind, the messages or
prompt, the sampling parameters, the JSON schema and the sample index. Embeddings are keyed by
(embedder model id, query or document, sha256 of the text) and stored as little-endian float32.

The database runs in WAL mode; every write is one transaction, so a process killed mid-write
leaves either the whole entry or nothing. Several asyncio tasks, threads and processes may share
a file: a locked database is waited for (short ``busy_timeout``, then retries) rather than failed.
The ``a``-prefixed methods run the database work in a thread so the event loop never waits on disk.

The cache's state is the file itself; :meth:`ResponseCache.export_jsonl` and
:meth:`ResponseCache.import_jsonl` move entries between files (a run's cache travels with it).

Examples
--------
>>> from societas.llm.types import Usage
>>> cache = ResponseCache(":memory:")
>>> key = cache_key(model_id="m", kind="complete", messages="Hi", params=None, json_schema=None,
...                 sample_index=0)
>>> cache.get(key) is None
True
>>> cache.put(key, model_id="m", kind="complete", answer=CachedAnswer(text="Hello", usage=Usage()))
>>> cache.get(key).text
'Hello'
>>> cache.stats().hits, cache.stats().misses, cache.stats().entries
(1, 1, 1)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from societas.llm.types import FloatMatrix, LLMError, Message, SamplingParams, Usage

CacheKind = Literal["chat", "complete", "embed"]
FloatVector = npt.NDArray[np.float32]

_SCHEMA_VERSION = 1
_KEY_VERSION = 1
_SQL_BATCH = 400  # stays below SQLite's limit on bound parameters
_VECTOR_DTYPE = np.dtype("<f4")
_T = TypeVar("_T")

_CREATE = (
    """CREATE TABLE IF NOT EXISTS responses (
        key TEXT PRIMARY KEY,
        model_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cached_prompt_tokens INTEGER NOT NULL,
        finish_reason TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS embeddings (
        model_id TEXT NOT NULL,
        is_query INTEGER NOT NULL,
        text_sha TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (model_id, is_query, text_sha)
    )""",
)


class CacheError(LLMError):
    """The cache file cannot be opened, read or written, or an import file is malformed."""


class CachedAnswer(BaseModel):
    """A stored answer: its text and what producing it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    usage: Usage = Usage()
    finish_reason: str = "stop"


class CacheStats(BaseModel):
    """Hits and misses since the cache was opened, and the number of stored entries."""

    model_config = ConfigDict(frozen=True)

    hits: int = 0
    misses: int = 0
    entries: int = 0
    embedding_hits: int = 0
    embedding_misses: int = 0
    embeddings: int = 0


class _ResponseLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["response"]
    key: str = Field(min_length=64, max_length=64)
    model_id: str
    kind: CacheKind
    text: str
    usage: Usage
    finish_reason: str


class _EmbeddingLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["embedding"]
    model_id: str
    is_query: bool
    text_sha: str = Field(min_length=64, max_length=64)
    dim: int = Field(ge=1)
    vector: str  # base64 of little-endian float32


_LINE = TypeAdapter(Annotated[_ResponseLine | _EmbeddingLine, Field(discriminator="type")])


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    *,
    model_id: str,
    kind: CacheKind,
    messages: Sequence[Message] | Sequence[str] | str,
    params: SamplingParams | None,
    json_schema: dict[str, Any] | None,
    sample_index: int,
) -> str:
    """The sha256 (hex) of everything that determines an answer.

    ``messages`` is the chat messages, the prompt of a completion, or the texts of an embedding
    request.
    """
    if isinstance(messages, str):
        payload: Any = messages
    else:
        payload = [m.model_dump() if isinstance(m, Message) else m for m in messages]
    document = {
        "v": _KEY_VERSION,
        "model_id": model_id,
        "kind": kind,
        "messages": payload,
        "params": None if params is None else params.model_dump(mode="json"),
        "schema": json_schema,
        "sample_index": sample_index,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def text_sha(text: str) -> str:
    """The sha256 (hex) of a text, the key of its embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers and embeddings in one SQLite file (or ``":memory:"``)."""

    def __init__(
        self, path: str | Path, *, busy_timeout_s: float = 0.2, lock_wait_s: float = 30.0
    ) -> None:
        self._path = str(path)
        self._lock_wait_s = lock_wait_s
        self._lock = threading.Lock()
        self._hits = self._misses = self._embedding_hits = self._embedding_misses = 0
        self._used_keys: set[str] = set()
        self._used_embeddings: set[tuple[str, bool, str]] = set()
        self._conn = self._open(busy_timeout_s)
        self._closed = False
        try:
            self._run(_prepare_schema)
        except CacheError:
            self.close()
            raise

    @property
    def path(self) -> str:
        return self._path

    # -- answers ---------------------------------------------------------------------------------

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer for ``key``, or None."""

        def read(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                "SELECT text, prompt_tokens, completion_tokens, cached_prompt_tokens, "
                "finish_reason FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                self._misses += 1
            else:
                self._hits += 1
                self._used_keys.add(key)
            return row

        row = self._run(read)
        if row is None:
            return None
        text, prompt_tokens, completion_tokens, cached_tokens, finish_reason = row
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_prompt_tokens=cached_tokens,
        )
        return CachedAnswer(text=text, usage=usage, finish_reason=finish_reason)

    def put(self, key: str, *, model_id: str, kind: CacheKind, answer: CachedAnswer) -> None:
        """Store an answer; an existing entry for ``key`` is kept (first answer wins)."""
        row = (
            key,
            model_id,
            kind,
            answer.text,
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
            answer.usage.cached_prompt_tokens,
            answer.finish_reason,
        )

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            self._used_keys.add(key)

        self._run(write)

    # -- embeddings ------------------------------------------------------------------------------

    def get_embeddings(
        self, model_id: str, is_query: bool, texts: Sequence[str]
    ) -> list[FloatVector | None]:
        """The stored vector of each text, None where there is none."""
        shas = [text_sha(t) for t in texts]

        def read(conn: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            unique = sorted(set(shas))
            for batch in _batches(unique, _SQL_BATCH):
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    "SELECT text_sha, dim, vector FROM embeddings WHERE model_id = ? AND "
                    f"is_query = ? AND text_sha IN ({marks})",
                    (model_id, int(is_query), *batch),
                )
                for sha, dim, blob in rows:
                    if len(blob) == dim * _VECTOR_DTYPE.itemsize:
                        found[sha] = blob
            self._embedding_hits += sum(1 for s in shas if s in found)
            self._embedding_misses += sum(1 for s in shas if s not in found)
            self._used_embeddings.update((model_id, is_query, s) for s in found)
            return found

        found = self._run(read)
        return [
            np.frombuffer(found[s], dtype=_VECTOR_DTYPE).astype(np.float32) if s in found else None
            for s in shas
        ]

    def put_embeddings(
        self, model_id: str, is_query: bool, texts: Sequence[str], vectors: FloatMatrix
    ) -> None:
        """Store one vector per text (rows of ``vectors``)."""
        if len(texts) != len(vectors):
            raise CacheError(f"{len(texts)} texts but {len(vectors)} vectors")
        rows = [
            (
                model_id,
                int(is_query),
                text_sha(t),
                int(v.shape[0]),
                v.astype(_VECTOR_DTYPE).tobytes(),
            )
            for t, v in zip(texts, vectors, strict=True)
        ]

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            self._used_embeddings.update((r[0], is_query, r[2]) for r in rows)

        self._run(write)

    # -- async variants --------------------------------------------------------------------------

    async def aget(self, key: str) -> CachedAnswer | None:
        """:meth:`get` in a worker thread."""
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, *, model_id: str, kind: CacheKind, answer: CachedAnswer) -> None:
        """:meth:`put` in a worker thread."""
        await asyncio.to_thread(lambda: self.put(key, model_id=model_id, kind=kind, answer=answer))

    async def aget_embeddings(
        self, model_id: str, is_query: bool, texts: Sequence[str]
    ) -> list[FloatVector | None]:
        """:meth:`get_embeddings` in a worker thread."""
        return await asyncio.to_thread(self.get_embeddings, model_id, is_query, texts)

    async def aput_embeddings(
        self, model_id: str, is_query: bool, texts: Sequence[str], vectors: FloatMatrix
    ) -> None:
        """:meth:`put_embeddings` in a worker thread."""
        await asyncio.to_thread(self.put_embeddings, model_id, is_query, texts, vectors)

    # -- bookkeeping -----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """Hits and misses of this session, entries stored in the file."""

        def count(conn: sqlite3.Connection) -> CacheStats:
            entries = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            embeddings = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                entries=entries,
                embedding_hits=self._embedding_hits,
                embedding_misses=self._embedding_misses,
                embeddings=embeddings,
            )

        return self._run(count)

    def export_jsonl(self, path: str | Path, *, only_used: bool = False) -> int:
        """Write entries to a JSONL file (one entry a line, in key order); returns the count.

        ``only_used`` limits the export to entries this session read or wrote, i.e. the answers
        one run depended on.
        """
        lines = self._run(lambda conn: list(self._export_lines(conn, only_used)))
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8") as handle:
                handle.writelines(line + "\n" for line in lines)
        except OSError as error:
            raise CacheError(f"cannot write cache export {target}: {error}") from error
        return len(lines)

    def import_jsonl(self, path: str | Path) -> int:
        """Add the entries of a JSONL export (existing keys are kept); returns how many were new.

        The whole file is checked before anything is written; a bad line is reported with its
        number and nothing is imported.
        """
        responses, embeddings = _read_export(Path(path))

        def write(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                added = conn.executemany(
                    "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", responses
                ).rowcount
                added += conn.executemany(
                    "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?, ?, ?)", embeddings
                ).rowcount
            return max(added, 0)

        return self._run(write)

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _open(self, busy_timeout_s: float) -> sqlite3.Connection:
        if self._path != ":memory:":
            try:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise CacheError(f"cannot create cache folder for {self._path}: {error}") from error
        try:
            return sqlite3.connect(
                self._path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise CacheError(f"cannot open cache {self._path}: {error}") from error

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` on the connection, waiting out locks held by other processes."""
        deadline = time.monotonic() + self._lock_wait_s
        pause = 0.005
        while True:
            try:
                with self._lock:
                    if self._closed:
                        raise CacheError(f"cache {self._path} is closed")
                    return work(self._conn)
            except sqlite3.OperationalError as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise CacheError(f"cache {self._path}: {error}") from error
            except sqlite3.Error as error:
                raise CacheError(f"cache {self._path}: {error}") from error
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _export_lines(self, conn: sqlite3.Connection, only_used: bool) -> Iterator[str]:
        for row in conn.execute("SELECT * FROM responses ORDER BY key"):
            key, model_id, kind, text, prompt, completion, cached, finish = row
            if only_used and key not in self._used_keys:
                continue
            usage = Usage(
                prompt_tokens=prompt, completion_tokens=completion, cached_prompt_tokens=cached
            )
            line = _ResponseLine(
                type="response",
                key=key,
                model_id=model_id,
                kind=kind,
                text=text,
                usage=usage,
                finish_reason=finish,
            )
            yield line.model_dump_json()
        order = "ORDER BY model_id, is_query, text_sha"
        for model_id, is_query, sha, dim, blob in conn.execute(f"SELECT * FROM embeddings {order}"):
            if only_used and (model_id, bool(is_query), sha) not in self._used_embeddings:
                continue
            vector = base64.b64encode(blob).decode("ascii")
            yield _EmbeddingLine(
                type="embedding",
                model_id=model_id,
                is_query=bool(is_query),
                text_sha=sha,
                dim=dim,
                vector=vector,
            ).model_dump_json()


def _prepare_schema(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > _SCHEMA_VERSION:
        raise CacheError(f"cache format {version} is newer than this version ({_SCHEMA_VERSION})")
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process; only a power cut can lose the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    with _transaction(conn):
        for statement in _CREATE:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _is_lock_error(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_export(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    responses: list[tuple[Any, ...]] = []
    embeddings: list[tuple[Any, ...]] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    _parse_export_line(path, number, line, responses, embeddings)
    except OSError as error:
        raise CacheError(f"cannot read cache export {path}: {error}") from error
    return responses, embeddings


def _parse_export_line(
    path: Path,
    number: int,
    line: str,
    responses: list[tuple[Any, ...]],
    embeddings: list[tuple[Any, ...]],
) -> None:
    try:
        entry = _LINE.validate_json(line)
    except ValidationError as error:
        raise CacheError(f"{path}:{number}: not a cache entry: {error}") from error
    if isinstance(entry, _ResponseLine):
        usage = entry.usage
        responses.append(
            (
                entry.key,
                entry.model_id,
                entry.kind,
                entry.text,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_prompt_tokens,
                entry.finish_reason,
            )
        )
        return
    try:
        blob = base64.b64decode(entry.vector, validate=True)
    except ValueError as error:
        raise CacheError(f"{path}:{number}: vector is not base64: {error}") from error
    if len(blob) != entry.dim * _VECTOR_DTYPE.itemsize:
        raise CacheError(f"{path}:{number}: vector has {len(blob)} bytes, expected dim {entry.dim}")
    embeddings.append((entry.model_id, int(entry.is_query), entry.text_sha, entry.dim, blob))
