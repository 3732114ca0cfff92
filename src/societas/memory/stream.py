"""An agent's memory stream: every observation, plan, dialogue and reflection, stored by column.

Columns live in numpy arrays that double when full, so adding is amortised O(1) and retrieval
(:mod:`societas.memory.retrieval`) scores all records at once. A record's id is its row: ids start
at 0 and increase by one with every record added.

Examples
--------
>>> from datetime import datetime
>>> import numpy as np
>>> stream = MemoryStream(dim=2)
>>> morning = datetime(2024, 2, 13, 7)
>>> stream.add("observation", "Tom is baking", morning, 3, np.array([1, 0]))
0
>>> stream.add("reflection", "Tom loves baking", morning, 6, np.array([0, 1]), evidence=[0])
1
>>> stream.by_id(1).depth, stream.texts([1, 0])
(1, ['Tom loves baking', 'Tom is baking'])
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from societas.memory.records import (
    KindLike,
    MemoryKind,
    MemoryRecord,
    from_hours,
    to_hours,
)

# Format 2 stores times as base64 float64 bytes; format 1 (JSON lists) is still read.
STATE_FORMAT = 2
READABLE_FORMATS = frozenset({1, 2})
# Columns of :meth:`MemoryStream.rows_state`: fixed once a record is added.
ROW_COLUMNS = ("kinds", "texts", "created", "importance", "depth", "evidence", "embeddings")
MIN_IMPORTANCE = 1.0
MAX_IMPORTANCE = 10.0

BoolArray = npt.NDArray[np.bool_]
IdArray = npt.NDArray[np.intp]
ArrayT = TypeVar("ArrayT", bound="np.ndarray[Any, Any]")


class MemoryStream:
    """One agent's memories.

    ``dim`` is the embedding width; when None it is taken from the first record added.
    Embeddings are stored L2-normalised, so relevance is a dot product.
    """

    def __init__(self, dim: int | None = None, *, capacity: int = 64) -> None:
        if dim is not None and dim < 1:
            raise ValueError(f"embedding dim must be positive, got {dim}")
        self._dim = dim
        self._size = 0
        capacity = max(1, capacity)
        self._created = np.zeros(capacity, dtype=np.float64)
        self._last_access = np.zeros(capacity, dtype=np.float64)
        self._importance = np.zeros(capacity, dtype=np.float32)
        self._kind = np.zeros(capacity, dtype=np.int8)
        self._depth = np.zeros(capacity, dtype=np.int16)
        self._embeddings = np.zeros((capacity, dim or 0), dtype=np.float32)
        self._texts: list[str] = []
        self._evidence: list[tuple[int, ...]] = []
        self._unreflected = 0.0

    # ----------------------------------------------------------------------------- size, columns

    def __len__(self) -> int:
        return self._size

    @property
    def dim(self) -> int | None:
        """Embedding width, or None while the stream is empty and no width was given."""
        return self._dim

    @property
    def created_hours(self) -> npt.NDArray[np.float64]:
        """Creation times (hours since the epoch), one per record; read-only."""
        return _read_only(self._created[: self._size])

    @property
    def last_access_hours(self) -> npt.NDArray[np.float64]:
        """Last retrieval times (hours since the epoch); read-only."""
        return _read_only(self._last_access[: self._size])

    @property
    def importances(self) -> npt.NDArray[np.float32]:
        """Importance 1-10 of each record; read-only."""
        return _read_only(self._importance[: self._size])

    @property
    def kind_codes(self) -> npt.NDArray[np.int8]:
        """:class:`MemoryKind` code of each record; read-only."""
        return _read_only(self._kind[: self._size])

    @property
    def depths(self) -> npt.NDArray[np.int16]:
        """Reflection depth of each record (0 for non-reflections); read-only."""
        return _read_only(self._depth[: self._size])

    @property
    def embeddings(self) -> npt.NDArray[np.float32]:
        """The (n, dim) matrix of normalised embeddings; read-only."""
        return _read_only(self._embeddings[: self._size])

    # ------------------------------------------------------------------------------------- adding

    def add(
        self,
        kind: KindLike,
        text: str,
        created: datetime,
        importance: float,
        embedding: npt.ArrayLike,
        evidence: Iterable[int] = (),
    ) -> int:
        """Add one record and return its id; its last access starts at ``created``."""
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.ndim != 1:
            raise ValueError(f"embedding must be one vector, got shape {vector.shape}")
        return self.add_many(
            [kind], [text], [created], [importance], vector[np.newaxis, :], [tuple(evidence)]
        )[0]

    def add_many(
        self,
        kinds: KindLike | Sequence[KindLike],
        texts: Sequence[str],
        created: datetime | Sequence[datetime],
        importances: float | Sequence[float],
        embeddings: npt.ArrayLike,
        evidence: Sequence[Iterable[int]] | None = None,
    ) -> list[int]:
        """Add several records at once (one kind/time/importance may stand for all); returns ids.

        Evidence may cite records added earlier in the same call. Everything is checked before
        anything is stored, so a bad batch leaves the stream unchanged.
        """
        if isinstance(texts, str):
            raise ValueError("texts must be a sequence of strings, not one string")
        count = len(texts)
        if count == 0:
            return []
        kind_list = _per_record(kinds, count, "kinds", (str, int))
        times = _per_record(created, count, "created", (datetime,))
        scores = _per_record(importances, count, "importances", (int, float, np.number))
        cited: list[tuple[int, ...]] = (
            [()] * count if evidence is None else [tuple(int(i) for i in e) for e in evidence]
        )
        if len(cited) != count:
            raise ValueError(f"evidence has {len(cited)} entries for {count} texts")
        codes = np.array([MemoryKind.parse(k) for k in kind_list], dtype=np.int8)
        hours = np.array([to_hours(t) for t in times], dtype=np.float64)
        weights = self._checked_importances(scores)
        matrix = self._checked_embeddings(embeddings, count)
        for position, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"memory text #{position} is empty or not a string: {text!r}")
        depths = self._depths_for(codes, cited)
        return self._append(codes, list(texts), hours, weights, matrix, cited, depths)

    def _checked_importances(self, scores: Sequence[float]) -> npt.NDArray[np.float32]:
        values = np.array(scores, dtype=np.float64)
        bad = ~np.isfinite(values) | (values < MIN_IMPORTANCE) | (values > MAX_IMPORTANCE)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise ValueError(f"importance #{position} is {scores[position]!r}; it must be 1-10")
        return values.astype(np.float32)

    def _checked_embeddings(self, embeddings: npt.ArrayLike, count: int) -> npt.NDArray[np.float32]:
        matrix = np.array(embeddings, dtype=np.float32, copy=True)
        if matrix.ndim != 2 or matrix.shape[0] != count:
            raise ValueError(f"embeddings must have shape ({count}, dim), got {matrix.shape}")
        if self._dim is not None and matrix.shape[1] != self._dim:
            raise ValueError(f"embeddings have dim {matrix.shape[1]}, the stream has {self._dim}")
        if matrix.shape[1] < 1:
            raise ValueError("embeddings must have at least one dimension")
        if not np.isfinite(matrix).all():
            raise ValueError("embeddings contain NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        matrix /= norms
        return matrix

    def _depths_for(self, codes: npt.NDArray[np.int8], cited: list[tuple[int, ...]]) -> list[int]:
        """Depth of each new record; reflections sit one above the deepest record they cite."""
        if not any(cited) and not (codes == MemoryKind.REFLECTION).any():
            return [0] * len(codes)  # most batches: observations citing nothing
        depths: list[int] = []
        for offset, (code, ids) in enumerate(zip(codes, cited, strict=True)):
            new_id = self._size + offset
            for memory_id in ids:
                if not 0 <= memory_id < new_id:
                    raise ValueError(
                        f"record #{offset} cites memory {memory_id}, which does not precede it"
                    )
            if code != MemoryKind.REFLECTION:
                depths.append(0)
                continue
            cited_depths = [
                depths[i - self._size] if i >= self._size else int(self._depth[i]) for i in ids
            ]
            depths.append(1 + max(cited_depths, default=0))
        return depths

    def _append(
        self,
        codes: npt.NDArray[np.int8],
        texts: list[str],
        hours: npt.NDArray[np.float64],
        weights: npt.NDArray[np.float32],
        matrix: npt.NDArray[np.float32],
        cited: list[tuple[int, ...]],
        depths: list[int],
    ) -> list[int]:
        count = len(texts)
        if self._dim is None:
            self._dim = int(matrix.shape[1])
            self._embeddings = np.zeros((len(self._created), self._dim), dtype=np.float32)
        self._reserve(self._size + count)
        rows = slice(self._size, self._size + count)
        self._kind[rows] = codes
        self._created[rows] = hours
        self._last_access[rows] = hours
        self._importance[rows] = weights
        self._depth[rows] = depths
        self._embeddings[rows] = matrix
        self._texts.extend(texts)
        self._evidence.extend(tuple(sorted(set(ids))) for ids in cited)
        self._unreflected += float(weights[codes != MemoryKind.REFLECTION].sum())
        first = self._size
        self._size += count
        return list(range(first, self._size))

    def _reserve(self, needed: int) -> None:
        """Grow every column to hold ``needed`` rows, at least doubling (amortised O(1) adds)."""
        capacity = len(self._created)
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity)
        self._created = _grown(self._created, new_capacity)
        self._last_access = _grown(self._last_access, new_capacity)
        self._importance = _grown(self._importance, new_capacity)
        self._kind = _grown(self._kind, new_capacity)
        self._depth = _grown(self._depth, new_capacity)
        self._embeddings = _grown(self._embeddings, new_capacity)

    # ------------------------------------------------------------------------------------ reading

    def by_id(self, memory_id: int) -> MemoryRecord:
        """The record with this id (a copy; changing it does not change the stream)."""
        row = self._checked_id(memory_id)
        return MemoryRecord(
            id=row,
            kind=MemoryKind(int(self._kind[row])),
            text=self._texts[row],
            created=from_hours(self._created[row]),
            last_access=from_hours(self._last_access[row]),
            importance=float(self._importance[row]),
            evidence=self._evidence[row],
            depth=int(self._depth[row]),
            embedding=_read_only(self._embeddings[row].copy()),
        )

    def kind_and_importance(self, memory_id: int) -> tuple[MemoryKind, float]:
        """The kind and importance of a record, without copying the rest of it (a run records
        every new memory as an event, and :meth:`by_id` also builds dates and a vector copy)."""
        row = self._checked_id(memory_id)
        return MemoryKind(int(self._kind[row])), float(self._importance[row])

    def texts(self, ids: Iterable[int]) -> list[str]:
        """The texts of these records, in the order given."""
        return [self._texts[self._checked_id(i)] for i in ids]

    def evidence_of(self, memory_id: int) -> tuple[int, ...]:
        """Ids cited by this record (sorted; empty for most records)."""
        return self._evidence[self._checked_id(memory_id)]

    def recent(
        self,
        n: int,
        *,
        kinds: Iterable[KindLike] | None = None,
        min_importance: float | None = None,
    ) -> list[int]:
        """Ids of the ``n`` most recently created records, oldest first.

        ``kinds`` keeps only those kinds; ``min_importance`` skips records rated below it.
        """
        if n <= 0:
            return []
        candidates = np.flatnonzero(self.mask(kinds=kinds, min_importance=min_importance))
        order = candidates[np.argsort(self._created[candidates], kind="stable")]
        return [int(i) for i in order[-n:]]

    def since(self, moment: datetime, *, kinds: Iterable[KindLike] | None = None) -> list[int]:
        """Ids of the records created at or after ``moment``, oldest first."""
        mask = self.mask(kinds=kinds) & (self._created[: self._size] >= to_hours(moment))
        candidates = np.flatnonzero(mask)
        order = candidates[np.argsort(self._created[candidates], kind="stable")]
        return [int(i) for i in order]

    def mask(
        self,
        *,
        kinds: Iterable[KindLike] | None = None,
        exclude: Iterable[int] = (),
        min_importance: float | None = None,
    ) -> BoolArray:
        """A boolean row mask: records of the given kinds, not excluded, important enough."""
        selected = np.ones(self._size, dtype=np.bool_)
        if kinds is not None:
            chosen = [kinds] if isinstance(kinds, str | MemoryKind) else kinds
            codes = [int(MemoryKind.parse(k)) for k in chosen]
            selected &= np.isin(self._kind[: self._size], codes)
        excluded = np.fromiter(exclude, dtype=np.intp)
        if excluded.size:
            selected[excluded[(excluded >= 0) & (excluded < self._size)]] = False
        if min_importance is not None:
            selected &= self._importance[: self._size] >= min_importance
        return selected

    # ----------------------------------------------------------------------------------- updating

    def touch(self, ids: Iterable[int] | IdArray, now: datetime) -> None:
        """Mark records as accessed at ``now`` (retrieval does this for what it returns)."""
        rows = np.fromiter((self._checked_id(int(i)) for i in ids), dtype=np.intp)
        self._last_access[rows] = to_hours(now)

    @property
    def unreflected_importance(self) -> float:
        """Summed importance of non-reflection records added since the last reflection."""
        return self._unreflected

    def mark_reflected(self) -> None:
        """Start a new reflection period (the reflection code calls this)."""
        self._unreflected = 0.0

    def _checked_id(self, memory_id: int) -> int:
        if isinstance(memory_id, bool) or not 0 <= memory_id < self._size:
            raise KeyError(f"no memory with id {memory_id!r} (the stream has {self._size})")
        return int(memory_id)

    # -------------------------------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The complete state as JSON-serialisable data: :meth:`head_state` and every row.

        Embeddings travel as base64 float32 bytes and times (hours) as base64 float64 bytes.
        """
        return {**self.head_state(), **self.rows_state(0)}

    def head_state(self) -> dict[str, Any]:
        """The part of the state that changes in place: access times and reflection progress.

        The rest (:meth:`rows_state`) only ever grows, so a checkpoint writer can save the rows
        added since its last save and this head, instead of the whole stream every time.
        """
        return {
            "format": STATE_FORMAT,
            "dim": self._dim,
            "last_access": _hours_text(self._last_access[: self._size]),
            "unreflected": self._unreflected,
        }

    def rows_state(self, first: int) -> dict[str, Any]:
        """The columns of records ``first`` onwards (:data:`ROW_COLUMNS`), which never change.

        Joining the rows of consecutive ranges column by column (lists concatenated, base64
        strings as bytes) gives the rows of the whole range.
        """
        if not 0 <= first <= self._size:
            raise ValueError(f"first row {first} is outside the stream's 0..{self._size}")
        n = self._size
        return {
            "kinds": [MemoryKind(int(c)).label for c in self._kind[first:n]],
            "texts": self._texts[first:n],
            "created": _hours_text(self._created[first:n]),
            "importance": self._importance[first:n].tolist(),
            "depth": self._depth[first:n].tolist(),
            "evidence": [list(ids) for ids in self._evidence[first:n]],
            "embeddings": base64.b64encode(
                self._embeddings[first:n].astype("<f4").tobytes()
            ).decode(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MemoryStream:
        """Rebuild a stream from :meth:`get_state` output; the copy shares nothing with it."""
        return _StateReader(state).build()

    def copy(self) -> MemoryStream:
        """An independent copy (same as a state round trip, without the encoding)."""
        return MemoryStream.from_state(self.get_state())


class _StateReader:
    """Checks saved state field by field, so a bad snapshot fails with the field's name."""

    _COLUMNS = ("kinds", "texts", "created", "last_access", "importance", "depth", "evidence")

    def __init__(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise ValueError("memory stream state must be a mapping")
        missing = [
            key for key in (*self._COLUMNS, "format", "dim", "embeddings") if key not in state
        ]
        if missing:
            raise ValueError(f"memory stream state lacks field(s): {', '.join(missing)}")
        if state["format"] not in READABLE_FORMATS:
            raise ValueError(f"memory stream state format {state['format']!r} is not supported")
        self.state = state
        self.size = len(state["texts"])
        self.hours = {key: self._hours(key, state["format"]) for key in ("created", "last_access")}
        for key in self._COLUMNS:
            rows = len(self.hours[key]) if key in self.hours else len(state[key])
            if rows != self.size:
                raise ValueError(f"memory stream state field {key!r} has {rows} rows")

    def build(self) -> MemoryStream:
        state = self.state
        dim = state["dim"]
        if dim is None and self.size:
            raise ValueError("memory stream state field 'dim' is null but there are records")
        stream = MemoryStream(dim=dim, capacity=max(self.size, 1))
        n = self.size
        stream._size = n
        stream._kind[:n] = [MemoryKind.parse(k) for k in state["kinds"]]
        stream._created[:n] = self.hours["created"]
        stream._last_access[:n] = self.hours["last_access"]
        stream._importance[:n] = self._importances()
        stream._depth[:n] = np.asarray(state["depth"], dtype=np.int16)
        stream._embeddings[:n] = self._embeddings(dim)
        stream._texts = [str(text) for text in state["texts"]]
        stream._evidence = self._evidence()
        stream._unreflected = float(state.get("unreflected", 0.0))
        return stream

    def _hours(self, key: str, version: int) -> npt.NDArray[np.float64]:
        if version == 1:
            return self._floats(key)
        value = self.state[key]
        try:
            raw = base64.b64decode(value, validate=True)
        except (ValueError, TypeError) as error:
            raise ValueError(f"memory stream state field {key!r} is not base64") from error
        if len(raw) % 8:
            raise ValueError(f"memory stream state field {key!r} has {len(raw)} bytes")
        return self._finite(key, np.frombuffer(raw, dtype="<f8").astype(np.float64))

    def _floats(self, key: str) -> npt.NDArray[np.float64]:
        return self._finite(key, np.asarray(self.state[key], dtype=np.float64))

    @staticmethod
    def _finite(key: str, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if not np.isfinite(values).all():
            raise ValueError(f"memory stream state field {key!r} holds non-finite values")
        return values

    def _importances(self) -> npt.NDArray[np.float64]:
        values = self._floats("importance")
        if ((values < MIN_IMPORTANCE) | (values > MAX_IMPORTANCE)).any():
            raise ValueError("memory stream state field 'importance' holds values outside 1-10")
        return values

    def _evidence(self) -> list[tuple[int, ...]]:
        rows = [tuple(int(i) for i in ids) for ids in self.state["evidence"]]
        for row, ids in enumerate(rows):
            if any(not 0 <= i < row for i in ids):
                raise ValueError(f"memory stream state field 'evidence': record {row} cites {ids}")
        return rows

    def _embeddings(self, dim: int | None) -> npt.NDArray[np.float32]:
        try:
            raw = base64.b64decode(self.state["embeddings"], validate=True)
        except (ValueError, TypeError) as error:
            raise ValueError("memory stream state field 'embeddings' is not base64") from error
        expected = self.size * (dim or 0) * 4
        if len(raw) != expected:
            raise ValueError(
                f"memory stream state field 'embeddings' has {len(raw)} bytes, expected {expected}"
            )
        return np.frombuffer(raw, dtype="<f4").reshape(self.size, dim or 0).astype(np.float32)


def _hours_text(hours: npt.NDArray[np.float64]) -> str:
    return base64.b64encode(hours.astype("<f8").tobytes()).decode()


def _read_only(array: ArrayT) -> ArrayT:
    view = array.view()
    view.flags.writeable = False
    return view


def _grown(array: ArrayT, capacity: int) -> ArrayT:
    bigger = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger  # type: ignore[return-value]


def _per_record(value: object, count: int, name: str, scalar: tuple[type, ...]) -> list[Any]:
    """One value standing for every record, or exactly one value per record."""
    if isinstance(value, scalar):
        return [value] * count
    if not isinstance(value, Sequence):
        raise ValueError(f"{name} must be one value or a sequence, got {type(value).__name__}")
    if len(value) != count:
        raise ValueError(f"{name} has {len(value)} entries for {count} texts")
    return list(value)
