"""The memory stream: adding, reading, the reflection counter and saved state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from societas.llm.fake import HashEmbedder
from societas.memory.records import MemoryKind, from_hours, to_hours
from societas.memory.stream import MemoryStream

T0 = datetime(2024, 2, 13, 7, 0)
EMBED = HashEmbedder(dim=32)


def _add(
    stream: MemoryStream,
    text: str,
    kind: str = "observation",
    *,
    created: datetime = T0,
    importance: float = 3,
    evidence: tuple[int, ...] | list[int] = (),
) -> int:
    return stream.add(kind, text, created, importance, EMBED.embed_sync([text])[0], evidence)


def _filled(count: int = 20) -> MemoryStream:
    stream = MemoryStream()
    texts = [f"event number {i} at the cafe" for i in range(count)]
    stream.add_many(
        ["observation", "plan", "dialogue", "observation"] * (count // 4),
        texts,
        [T0 + timedelta(minutes=10 * i) for i in range(count)],
        [float(1 + i % 10) for i in range(count)],
        EMBED.embed_sync(texts),
    )
    return stream


def test_ids_increase_and_records_read_back() -> None:
    stream = MemoryStream()
    first = _add(stream, "Mara is baking bread", importance=4)
    second = _add(stream, "Tom waved at Mara", created=T0 + timedelta(hours=1), importance=6)
    assert (first, second) == (0, 1)
    record = stream.by_id(second)
    assert record.kind is MemoryKind.OBSERVATION
    assert record.text == "Tom waved at Mara"
    assert record.created == record.last_access == T0 + timedelta(hours=1)
    assert record.importance == 6.0
    assert record.depth == 0 and record.evidence == ()
    assert record.embedding.shape == (32,)
    assert len(stream) == 2 and stream.dim == 32


def test_add_many_broadcasts_and_evidence_may_cite_the_same_batch() -> None:
    stream = MemoryStream()
    texts = ["a cat sleeps", "a dog barks", "animals are around"]
    ids = stream.add_many(
        ["observation", "observation", "reflection"],
        texts,
        T0,
        5,
        EMBED.embed_sync(texts),
        evidence=[(), (), (0, 1)],
    )
    assert ids == [0, 1, 2]
    assert stream.by_id(2).evidence == (0, 1)
    assert stream.by_id(2).depth == 1
    assert stream.texts([2, 0]) == ["animals are around", "a cat sleeps"]
    assert stream.kind_and_importance(2) == (MemoryKind.REFLECTION, 5.0)
    assert stream.kind_and_importance(0) == (stream.by_id(0).kind, stream.by_id(0).importance)
    with pytest.raises(KeyError, match="no memory with id 3"):
        stream.kind_and_importance(3)


def test_reflection_depth_is_one_above_its_deepest_evidence() -> None:
    stream = MemoryStream()
    obs = _add(stream, "seen")
    first = _add(stream, "thought", kind="reflection", evidence=[obs])
    second = _add(stream, "deeper thought", kind="reflection", evidence=[obs, first])
    uncited = _add(stream, "a thought with no evidence", kind="reflection")
    assert [stream.by_id(i).depth for i in (obs, first, second, uncited)] == [0, 1, 2, 1]


def test_storage_grows_past_its_capacity() -> None:
    stream = MemoryStream(capacity=2)
    for i in range(100):
        _add(stream, f"thing {i}", importance=1 + i % 10)
    assert len(stream) == 100
    assert stream.by_id(73).text == "thing 73"
    assert stream.importances[73] == 1 + 73 % 10
    assert stream.embeddings.shape == (100, 32)


def test_embeddings_are_stored_normalised() -> None:
    stream = MemoryStream(dim=3)
    stream.add("observation", "x", T0, 3, [3.0, 4.0, 0.0])
    np.testing.assert_allclose(stream.embeddings[0], [0.6, 0.8, 0.0], rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"importance": 11}, "importance"),
        ({"importance": 0.5}, "importance"),
        ({"text": "   "}, "empty"),
        ({"kind": "dream"}, "unknown memory kind"),
        ({"evidence": [5]}, "does not precede"),
        ({"created": datetime(2024, 1, 1, tzinfo=UTC)}, "naive"),
        ({"embedding": [1.0, 0.0]}, "dim"),
        ({"embedding": [float("nan")] * 32}, "NaN"),
    ],
)
def test_bad_records_are_refused_with_a_clear_error(
    change: dict[str, object], message: str
) -> None:
    stream = MemoryStream()
    _add(stream, "first")
    fields: dict[str, object] = {
        "kind": "observation",
        "text": "second",
        "created": T0,
        "importance": 3,
        "embedding": EMBED.embed_sync(["second"])[0],
        "evidence": (),
    } | change
    with pytest.raises(ValueError, match=message):
        stream.add(**fields)  # type: ignore[arg-type]
    assert len(stream) == 1  # nothing stored


def test_mismatched_batch_lengths_are_refused() -> None:
    stream = MemoryStream()
    with pytest.raises(ValueError, match="importances has 1 entries for 2 texts"):
        stream.add_many("observation", ["a", "b"], T0, [3], EMBED.embed_sync(["a", "b"]))
    with pytest.raises(ValueError, match="shape"):
        stream.add_many("observation", ["a", "b"], T0, 3, EMBED.embed_sync(["a"]))
    assert stream.add_many("observation", [], T0, 3, np.zeros((0, 32))) == []


def test_unknown_ids_raise_key_error() -> None:
    stream = _filled(4)
    for bad in (4, -1):
        with pytest.raises(KeyError, match="no memory with id"):
            stream.by_id(bad)
    with pytest.raises(KeyError):
        stream.texts([0, 9])


def test_recent_and_since_are_chronological_and_filter() -> None:
    stream = _filled(20)
    assert stream.recent(3) == [17, 18, 19]
    assert stream.recent(0) == []
    assert stream.recent(100) == list(range(20))
    assert stream.recent(2, kinds=["plan"]) == [13, 17]
    assert all(stream.importances[i] >= 8 for i in stream.recent(5, min_importance=8))
    assert stream.since(T0 + timedelta(minutes=170)) == [17, 18, 19]
    assert stream.since(T0 + timedelta(minutes=100), kinds=[MemoryKind.DIALOGUE]) == [10, 14, 18]


def test_recent_orders_by_creation_time_not_insertion() -> None:
    stream = MemoryStream()
    _add(stream, "late", created=T0 + timedelta(hours=2))
    _add(stream, "early", created=T0)
    assert stream.texts(stream.recent(2)) == ["early", "late"]


def test_unreflected_importance_counts_all_but_reflections() -> None:
    stream = MemoryStream()
    _add(stream, "a", importance=4)
    _add(stream, "b", kind="dialogue", importance=6)
    _add(stream, "c", kind="reflection", importance=9, evidence=[0])
    assert stream.unreflected_importance == 10
    stream.mark_reflected()
    assert stream.unreflected_importance == 0
    _add(stream, "d", importance=2)
    assert stream.unreflected_importance == 2


def test_touch_sets_last_access() -> None:
    stream = _filled(8)
    later = T0 + timedelta(days=1)
    stream.touch([2, 5], later)
    assert stream.by_id(2).last_access == later
    assert stream.by_id(3).last_access == stream.by_id(3).created


def test_columns_are_read_only() -> None:
    stream = _filled(4)
    with pytest.raises(ValueError):
        stream.importances[0] = 10
    with pytest.raises(ValueError):
        stream.embeddings[0, 0] = 1.0


def test_state_round_trip_is_exact_through_json() -> None:
    stream = _filled(20)
    _add(stream, "an insight", kind="reflection", evidence=[1, 3], importance=7)
    stream.touch([4], T0 + timedelta(hours=30, microseconds=7))
    state = json.loads(json.dumps(stream.get_state()))
    copy = MemoryStream.from_state(state)
    assert copy.get_state() == stream.get_state()
    for column in ("created_hours", "last_access_hours", "importances", "kind_codes", "depths"):
        np.testing.assert_array_equal(getattr(copy, column), getattr(stream, column))
    assert copy.embeddings.tobytes() == stream.embeddings.tobytes()
    assert copy.texts(range(21)) == stream.texts(range(21))
    assert copy.by_id(20).evidence == (1, 3) and copy.by_id(20).depth == 1
    assert copy.unreflected_importance == stream.unreflected_importance


def test_restored_copy_shares_no_mutable_state() -> None:
    stream = _filled(8)
    copy = MemoryStream.from_state(stream.get_state())
    before = stream.get_state()
    copy.touch([0], T0 + timedelta(days=3))
    _add(copy, "only in the copy")
    copy.mark_reflected()
    assert stream.get_state() == before
    _add(stream, "only in the original")
    assert copy.texts([8]) == ["only in the copy"]
    assert stream.copy().get_state() == stream.get_state()


def test_empty_stream_round_trips() -> None:
    copy = MemoryStream.from_state(json.loads(json.dumps(MemoryStream().get_state())))
    assert len(copy) == 0 and copy.dim is None
    assert copy.recent(5) == []


def test_bad_state_names_the_field() -> None:
    state = _filled(4).get_state()
    with pytest.raises(ValueError, match=r"lacks field.*texts"):
        MemoryStream.from_state({k: v for k, v in state.items() if k != "texts"})
    with pytest.raises(ValueError, match="'embeddings' has"):
        MemoryStream.from_state(state | {"embeddings": state["embeddings"][:8]})
    three_times = MemoryStream.from_state(state).rows_state(1)["created"]
    with pytest.raises(ValueError, match="'created' has 3 rows"):
        MemoryStream.from_state(state | {"created": three_times})
    with pytest.raises(ValueError, match="'created' is not base64"):
        MemoryStream.from_state(state | {"created": state["created"][:3]})
    with pytest.raises(ValueError, match="'importance' holds values outside"):
        MemoryStream.from_state(state | {"importance": [3, 0, 3, 3]})
    with pytest.raises(ValueError, match="'evidence': record 1 cites"):
        MemoryStream.from_state(state | {"evidence": [[], [2], [], []]})
    with pytest.raises(ValueError, match="unknown memory kind"):
        MemoryStream.from_state(state | {"kinds": ["observation", "wish", "plan", "plan"]})


def test_game_time_round_trips_to_the_microsecond() -> None:
    moment = datetime(2031, 7, 4, 23, 59, 59, 999_999)
    assert from_hours(to_hours(moment)) == moment
    assert from_hours(to_hours(T0)) == T0
