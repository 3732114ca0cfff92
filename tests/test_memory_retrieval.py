"""Retrieval: ranking by recency, importance and relevance, filters, touching, speed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from societas.llm.fake import HashEmbedder
from societas.memory.records import MemoryKind, to_hours
from societas.memory.retrieval import (
    RetrievalWeights,
    retrieve,
    retrieve_each,
    retrieve_union,
    score_memories,
)
from societas.memory.stream import MemoryStream

T0 = datetime(2024, 2, 13, 7, 0)
EMBED = HashEmbedder(dim=128)
ONLY_RELEVANCE = RetrievalWeights(recency=0, importance=0, relevance=1)
ONLY_RECENCY = RetrievalWeights(recency=1, importance=0, relevance=0)
ONLY_IMPORTANCE = RetrievalWeights(recency=0, importance=1, relevance=0)


def _vector(text: str) -> np.ndarray:
    return EMBED.embed_sync([text])[0]


def _town() -> MemoryStream:
    stream = MemoryStream()
    texts = [
        "Isabella is planning a valentine party at the cafe",
        "the garden is full of tulips",
        "Klaus is writing a research paper on gentrification",
        "Maria asked Klaus about his paper",
        "the cafe counter is busy in the morning",
    ]
    stream.add_many("observation", texts, T0, 5, EMBED.embed_sync(texts))
    return stream


def test_a_relevant_record_beats_irrelevant_ones() -> None:
    stream = _town()
    query = _vector("who is throwing a valentine party")
    assert retrieve(stream, query, T0, k=1) == [0]
    assert retrieve(stream, _vector("Klaus paper research"), T0, k=2) == [2, 3]


def test_recency_and_importance_weights_each_change_the_ranking() -> None:
    stream = MemoryStream()
    text = "the bakery oven broke"
    old_important = stream.add("observation", text, T0, 9, _vector(text))
    new_minor = stream.add("observation", text, T0 + timedelta(hours=20), 2, _vector(text))
    now = T0 + timedelta(hours=21)
    query = _vector(text)
    assert retrieve(stream, query, now, k=2, weights=ONLY_RECENCY) == [new_minor, old_important]
    assert retrieve(stream, query, now, k=2, weights=ONLY_IMPORTANCE) == [old_important, new_minor]
    balanced = RetrievalWeights(recency=1, importance=3, relevance=1)
    assert retrieve(stream, query, now, k=1, weights=balanced) == [old_important]


def test_components_are_min_max_normalised() -> None:
    stream = MemoryStream()
    texts = ["red apple", "green apple pie", "blue sky", "apple"]
    stream.add_many(
        "observation",
        texts,
        [T0 + timedelta(hours=h) for h in (0, 5, 10, 30)],
        [1, 4, 10, 7],
        EMBED.embed_sync(texts),
    )
    now = T0 + timedelta(hours=40)
    weights = RetrievalWeights(recency=2, importance=3, relevance=0.5, decay_per_hour=0.9)
    scores = score_memories(stream, EMBED.embed_sync(["apple", "sky"]), now, weights=weights)
    np.testing.assert_allclose(scores.importance, [0, 3 / 9, 1, 6 / 9], rtol=1e-6)
    raw = 0.9 ** np.array([40.0, 35, 30, 10])
    expected_recency = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(scores.recency, expected_recency, rtol=1e-5, atol=1e-6)
    assert scores.relevance.shape == (2, 4)
    np.testing.assert_allclose(scores.relevance.min(axis=1), 0, atol=1e-7)
    np.testing.assert_allclose(scores.relevance.max(axis=1), 1, atol=1e-7)
    expected_total = 0.5 * scores.relevance + 2 * scores.recency + 3 * scores.importance
    np.testing.assert_allclose(scores.total, expected_total, rtol=1e-6)


def test_a_flat_component_is_a_constant() -> None:
    stream = MemoryStream()
    stream.add_many("observation", ["a b", "c d"], T0, 5, EMBED.embed_sync(["a b", "c d"]))
    scores = score_memories(stream, _vector("a b"), T0)
    np.testing.assert_array_equal(scores.importance, [0.5, 0.5])
    np.testing.assert_array_equal(scores.recency, [0.5, 0.5])


def test_kind_filter_and_exclusion() -> None:
    stream = MemoryStream()
    texts = ["party at the cafe", "plan to host a party", "a party would be fun", "party talk"]
    stream.add_many(
        ["observation", "plan", "reflection", "dialogue"], texts, T0, 5, EMBED.embed_sync(texts)
    )
    query = _vector("party")
    assert retrieve(stream, query, T0, k=5, kinds=["plan", MemoryKind.DIALOGUE]) == [3, 1]
    assert sorted(retrieve(stream, query, T0, k=5, exclude=[0, 2])) == [1, 3]
    assert retrieve(stream, query, T0, k=5, kinds=["plan"], exclude=[1]) == []


def test_touch_updates_last_access_of_returned_records_only() -> None:
    stream = _town()
    later = T0 + timedelta(hours=3)
    found = retrieve(stream, _vector("valentine party"), later, k=2, weights=ONLY_RELEVANCE)
    assert all(stream.by_id(i).last_access == T0 for i in range(len(stream)))
    found = retrieve(stream, _vector("valentine party"), later, k=2, touch=True)
    for memory_id in range(len(stream)):
        expected = later if memory_id in found else T0
        assert stream.by_id(memory_id).last_access == expected


def test_touching_makes_a_record_more_recent_next_time() -> None:
    stream = MemoryStream()
    text = "the well is dry"
    stream.add_many("observation", [text, text], T0, 5, EMBED.embed_sync([text, text]))
    later = T0 + timedelta(hours=10)
    stream.touch([1], later)
    assert retrieve(stream, _vector(text), later, k=1, weights=ONLY_RECENCY) == [1]


def test_k_beyond_the_candidates_returns_them_all_ranked() -> None:
    stream = _town()
    found = retrieve(stream, _vector("Klaus paper"), T0, k=50, weights=ONLY_RELEVANCE)
    assert sorted(found) == list(range(5))
    assert found[:2] == [2, 3]
    assert retrieve(MemoryStream(), np.ones(8), T0, k=3) == []


def test_several_queries_give_a_ranking_each_and_a_union() -> None:
    stream = _town()
    queries = EMBED.embed_sync(["valentine party", "Klaus paper research"])
    assert retrieve_each(stream, queries, T0, k=1, weights=ONLY_RELEVANCE) == [[0], [2]]
    union = retrieve_union(stream, queries, T0, k=2, weights=ONLY_RELEVANCE)
    assert sorted(union) == sorted(set(union))
    assert {0, 2} <= set(union) and len(union) <= 4
    assert len(retrieve_union(stream, queries, T0, k=2, limit=1)) == 1


def test_bad_arguments_are_refused() -> None:
    stream = _town()
    with pytest.raises(ValueError, match="k must be at least 1"):
        retrieve(stream, _vector("x"), T0, k=0)
    with pytest.raises(ValueError, match="queries have dim 3"):
        retrieve(stream, np.ones(3), T0)
    with pytest.raises(ValueError, match="one query vector"):
        retrieve(stream, np.ones((2, 128)), T0)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        retrieve_union(stream, _vector("x"), T0, limit=0)
    with pytest.raises(ValueError, match="decay_per_hour"):
        RetrievalWeights(decay_per_hour=1.5)
    with pytest.raises(ValueError, match="recency"):
        RetrievalWeights(recency=-1)


# --- the vectorised implementation against a plain one --------------------------------------


def _naive_top(
    stream: MemoryStream,
    query: np.ndarray,
    now: datetime,
    k: int,
    weights: RetrievalWeights,
    kinds: set[int] | None,
    exclude: set[int],
) -> list[tuple[int, float]]:
    candidates = [
        i
        for i in range(len(stream))
        if (kinds is None or stream.kind_codes[i] in kinds) and i not in exclude
    ]
    now_h = to_hours(now)

    def normalise(values: list[float]) -> list[float]:
        low, high = min(values), max(values)
        return [0.5 if high == low else (v - low) / (high - low) for v in values]

    recency = normalise(
        [weights.decay_per_hour ** max(now_h - stream.last_access_hours[i], 0) for i in candidates]
    )
    importance = normalise([float(stream.importances[i]) for i in candidates])
    relevance = normalise([float(np.dot(stream.embeddings[i], query)) for i in candidates])
    scored = [
        (
            memory_id,
            weights.recency * rec + weights.importance * imp + weights.relevance * rel,
        )
        for memory_id, rec, imp, rel in zip(candidates, recency, importance, relevance, strict=True)
    ]
    return sorted(scored, key=lambda pair: -pair[1])[:k]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_retrieval_matches_a_naive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, dim = 400, 24
    stream = MemoryStream()
    stream.add_many(
        rng.integers(0, 4, n).tolist(),
        [f"memory {i}" for i in range(n)],
        [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 5000, n)],
        rng.uniform(1, 10, n).tolist(),
        rng.standard_normal((n, dim)),
    )
    stream.touch(rng.choice(n, 50, replace=False).tolist(), T0 + timedelta(hours=90))
    now = T0 + timedelta(hours=100)
    weights = RetrievalWeights(
        recency=float(rng.uniform(0, 2)),
        importance=float(rng.uniform(0, 2)),
        relevance=float(rng.uniform(0, 2)),
        decay_per_hour=0.98,
    )
    queries = rng.standard_normal((3, dim)).astype(np.float32)
    exclude = set(rng.choice(n, 30, replace=False).tolist())
    for kinds in (None, {0, 2}):
        kind_list = None if kinds is None else sorted(kinds)
        found = retrieve_each(
            stream, queries, now, k=12, weights=weights, kinds=kind_list, exclude=exclude
        )
        union = retrieve_union(
            stream, queries, now, k=12, weights=weights, kinds=kind_list, exclude=exclude
        )
        best: dict[int, float] = {}  # each record's best score over all the queries
        in_a_top: set[int] = set()
        for query, ids in zip(queries, found, strict=True):
            reference = _naive_top(stream, query, now, n, weights, kinds, exclude)
            assert ids == [memory_id for memory_id, _ in reference[:12]]
            in_a_top.update(ids)
            for memory_id, score in reference:
                best[memory_id] = max(score, best.get(memory_id, -1.0))
        assert union == sorted(in_a_top, key=lambda i: -best[i])


def test_retrieval_at_ten_thousand_records_is_fast() -> None:
    rng = np.random.default_rng(7)
    n, dim = 10_000, 384
    stream = MemoryStream(dim=dim, capacity=n)
    stream.add_many(
        rng.integers(0, 4, n).tolist(),
        ["m"] * n,
        [T0 + timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, 40_000, n))],
        rng.integers(1, 11, n).astype(float).tolist(),
        rng.standard_normal((n, dim)),
    )
    now = T0 + timedelta(days=30)
    timings = []
    for _ in range(40):
        query = rng.standard_normal(dim).astype(np.float32)
        start = time.perf_counter()
        retrieve(stream, query, now, k=10)
        timings.append(time.perf_counter() - start)
    # Typically under 1 ms; the bound is loose because test machines are shared.
    assert float(np.median(timings)) < 0.010
