"""Retrieval: which memories come to an agent's mind for a query.

Each candidate record gets three components, each min-max normalised over the candidates:

- recency: ``decay_per_hour ** (game hours since the record was last accessed)``;
- importance: the record's 1-10 rating;
- relevance: cosine similarity to the query (a dot product: embeddings are normalised).

The score is their weighted sum. Everything is computed for all records and all queries at once,
and the top k come from ``argpartition``, so cost grows with one matrix product, not a Python loop.

Examples
--------
>>> from datetime import datetime
>>> import numpy as np
>>> from societas.memory.stream import MemoryStream
>>> stream = MemoryStream(dim=2)
>>> t = datetime(2024, 2, 13, 8)
>>> stream.add_many("observation", ["cat asleep", "fire in the bakery"], t, [2, 9],
...                 np.array([[1.0, 0.0], [0.0, 1.0]]))
[0, 1]
>>> retrieve(stream, np.array([0.0, 1.0]), t, k=1)
[1]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from societas.memory.records import KindLike, to_hours
from societas.memory.stream import MemoryStream

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.intp]

# Below this share of candidates, gathering their embeddings first beats scoring every row.
_GATHER_BELOW = 0.5
_FLAT_COMPONENT = 0.5
_VECTOR_PRODUCTS_UP_TO = 4


@dataclass(frozen=True)
class RetrievalWeights:
    """Weights of the three components and the hourly recency decay.

    >>> RetrievalWeights(relevance=2.0).relevance
    2.0
    """

    recency: float = 1.0
    importance: float = 1.0
    relevance: float = 1.0
    decay_per_hour: float = 0.995

    def __post_init__(self) -> None:
        for name in ("recency", "importance", "relevance"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"retrieval weight {name} must be finite and >= 0, got {value}")
        if not 0.0 < self.decay_per_hour <= 1.0:
            raise ValueError(f"decay_per_hour must be in (0, 1], got {self.decay_per_hour}")


DEFAULT_WEIGHTS = RetrievalWeights()


@dataclass(frozen=True)
class MemoryScores:
    """Scores of the candidate records for each query.

    ``ids`` (m,) are the candidates; ``recency`` and ``importance`` (m,) and ``relevance`` and
    ``total`` (q, m) are the normalised components and the weighted sum, one row per query.
    """

    ids: IdArray
    recency: FloatArray
    importance: FloatArray
    relevance: FloatArray
    total: FloatArray = field(repr=False)

    def top(self, k: int) -> list[list[int]]:
        """The ``k`` best ids for each query, best first."""
        return [[int(self.ids[column]) for column in row] for row in _top_columns(self.total, k)]


def score_memories(
    stream: MemoryStream,
    queries: npt.ArrayLike,
    now: datetime,
    *,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    kinds: Iterable[KindLike] | None = None,
    exclude: Iterable[int] = (),
) -> MemoryScores:
    """Score every candidate record (of ``kinds``, not in ``exclude``) against each query.

    ``queries`` is one vector (dim,) or a matrix (q, dim).
    """
    matrix = _query_matrix(queries, stream.dim)
    mask = stream.mask(kinds=kinds, exclude=exclude)
    ids = np.flatnonzero(mask)
    relevance = _similarities(stream, matrix, mask, ids)
    hours_idle = np.maximum(to_hours(now) - stream.last_access_hours[ids], 0.0)
    recency = _min_max(np.power(weights.decay_per_hour, hours_idle).astype(np.float32))
    importance = _min_max(stream.importances[ids])
    relevance = _min_max(relevance)
    static = weights.recency * recency + weights.importance * importance
    total = (weights.relevance * relevance + static).astype(np.float32)
    return MemoryScores(ids, recency, importance, relevance, total)


def retrieve_each(
    stream: MemoryStream,
    queries: npt.ArrayLike,
    now: datetime,
    *,
    k: int = 10,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    kinds: Iterable[KindLike] | None = None,
    exclude: Iterable[int] = (),
    touch: bool = False,
) -> list[list[int]]:
    """The top ``k`` ids for each query (rows of ``queries``), best first.

    With ``touch`` the returned records' last access becomes ``now``.
    """
    _check_k(k)
    scores = score_memories(stream, queries, now, weights=weights, kinds=kinds, exclude=exclude)
    found = scores.top(k)
    if touch:
        stream.touch({i for ids in found for i in ids}, now)
    return found


def retrieve(
    stream: MemoryStream,
    query: npt.ArrayLike,
    now: datetime,
    *,
    k: int = 10,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    kinds: Iterable[KindLike] | None = None,
    exclude: Iterable[int] = (),
    touch: bool = False,
) -> list[int]:
    """The top ``k`` ids for one query vector, best first."""
    vector = np.asarray(query, dtype=np.float32)
    if vector.ndim != 1:
        raise ValueError(f"retrieve takes one query vector, got shape {vector.shape}")
    if kinds is None and isinstance(exclude, tuple | list | set | frozenset) and not exclude:
        _check_k(k)
        found_all = _top_of_all(stream, _query_matrix(vector, stream.dim)[0], now, k, weights)
        if touch:
            stream.touch(found_all, now)
        return found_all
    found = retrieve_each(
        stream, vector, now, k=k, weights=weights, kinds=kinds, exclude=exclude, touch=touch
    )
    return found[0]


def retrieve_union(
    stream: MemoryStream,
    queries: npt.ArrayLike,
    now: datetime,
    *,
    k: int = 10,
    limit: int | None = None,
    weights: RetrievalWeights = DEFAULT_WEIGHTS,
    kinds: Iterable[KindLike] | None = None,
    exclude: Iterable[int] = (),
    touch: bool = False,
) -> list[int]:
    """The union of each query's top ``k``, ordered by best score over the queries.

    ``limit`` caps the union's size (keeping the best).
    """
    _check_k(k)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (or None), got {limit}")
    scores = score_memories(stream, queries, now, weights=weights, kinds=kinds, exclude=exclude)
    columns = np.unique(_top_columns(scores.total, k))
    best = scores.total[:, columns].max(axis=0)
    ordered = columns[np.lexsort((columns, -best))]
    found = [int(scores.ids[column]) for column in ordered[:limit]]
    if touch:
        stream.touch(found, now)
    return found


def _top_of_all(
    stream: MemoryStream, query: FloatArray, now: datetime, k: int, weights: RetrievalWeights
) -> list[int]:
    """:func:`retrieve` over every record: the same arithmetic as :func:`score_memories` and
    :func:`_top_columns` on one row, without masks and gathers (agents recall this way many
    times a step, so the fixed cost of a call matters more than its size)."""
    size = len(stream)
    if size == 0:
        return []
    relevance = np.empty(size, dtype=np.float32)
    np.einsum("ij,j->i", stream.embeddings, query, out=relevance)
    hours_idle = np.maximum(to_hours(now) - stream.last_access_hours, 0.0)
    recency = _min_max_row(np.power(weights.decay_per_hour, hours_idle).astype(np.float32))
    static = weights.recency * recency + weights.importance * _min_max_row(stream.importances)
    total = (weights.relevance * _min_max_row(relevance) + static).astype(np.float32)
    columns = np.argpartition(-total, k - 1)[:k] if k < size else np.arange(size)
    order = np.lexsort((columns, -total[columns]))  # equal scores: the older record first
    return [int(column) for column in columns[order]]


def _min_max_row(values: FloatArray) -> FloatArray:
    """:func:`_min_max` of one non-empty row."""
    low = values.min()
    span = values.max() - low
    if span <= 0:
        return np.full(values.shape, _FLAT_COMPONENT, dtype=np.float32)
    scaled: FloatArray = ((values - low) / span).astype(np.float32)
    return scaled


def _query_matrix(queries: npt.ArrayLike, dim: int | None) -> FloatArray:
    matrix = np.asarray(queries, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"queries must be a vector or a non-empty matrix, got {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"queries have dim {matrix.shape[1]}, the memory stream has {dim}")
    return matrix


def _similarities(
    stream: MemoryStream, queries: FloatArray, mask: npt.NDArray[np.bool_], ids: IdArray
) -> FloatArray:
    """Cosine similarity (q, m) of each query to the candidates (one contiguous row per query)."""
    if ids.size == 0:
        return np.zeros((queries.shape[0], 0), dtype=np.float32)
    embeddings = stream.embeddings
    gather = ids.size < _GATHER_BELOW * mask.size
    if gather:
        embeddings = embeddings[ids]
    similarities = _products(embeddings, queries)
    return similarities if gather or ids.size == mask.size else similarities[:, ids]


def _products(embeddings: FloatArray, queries: FloatArray) -> FloatArray:
    """``queries @ embeddings.T`` as (q, n).

    A few queries go through einsum one at a time: its single-threaded loop takes well under a
    millisecond at 10,000 x 384, while OpenBLAS's threaded matrix-vector product slows tenfold
    whenever another process (llama.cpp) holds a core. Many queries amortise a matrix product.
    """
    if queries.shape[0] > _VECTOR_PRODUCTS_UP_TO:
        return np.ascontiguousarray((embeddings @ queries.T).T)
    out = np.empty((queries.shape[0], embeddings.shape[0]), dtype=np.float32)
    for row, query in enumerate(queries):
        np.einsum("ij,j->i", embeddings, query, out=out[row])
    return out


def _min_max(values: FloatArray) -> FloatArray:
    """Scale to [0, 1] along the candidates (last axis); a flat row becomes a constant."""
    if values.shape[-1] == 0:
        return values.astype(np.float32)
    low = values.min(axis=-1, keepdims=True)
    span = values.max(axis=-1, keepdims=True) - low
    flat = span <= 0
    scaled = (values - low) / np.where(flat, 1.0, span)
    return np.where(flat, np.float32(_FLAT_COMPONENT), scaled).astype(np.float32)


def _top_columns(total: FloatArray, k: int) -> IdArray:
    """Column indexes (q, k') of the best ``k`` candidates for each query, best first."""
    count = total.shape[1]
    if count == 0:
        return np.zeros((total.shape[0], 0), dtype=np.intp)
    if k < count:
        columns = np.argpartition(-total, k - 1, axis=1)[:, :k]
    else:
        columns = np.broadcast_to(np.arange(count), total.shape)
    picked = np.take_along_axis(total, columns, axis=1)
    order = np.lexsort((columns, -picked), axis=1)  # equal scores: the older record first
    return np.take_along_axis(columns, order, axis=1)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
