"""The response cache: keys, persistence, concurrency, crash safety, export and import."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from societas.llm.cache import CachedAnswer, CacheError, ResponseCache, cache_key
from societas.llm.types import Message, SamplingParams, Usage

MESSAGES = [Message(role="system", content="You are Ada."), Message(role="user", content="Plan.")]
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}


def _key(**changes: Any) -> str:
    fields: dict[str, Any] = {
        "model_id": "qwen-1.5b@abc",
        "kind": "chat",
        "messages": MESSAGES,
        "params": SamplingParams(),
        "json_schema": SCHEMA,
        "sample_index": 0,
    }
    return cache_key(**(fields | changes))


def _answer(text: str, tokens: int = 3) -> CachedAnswer:
    return CachedAnswer(text=text, usage=Usage(prompt_tokens=tokens, completion_tokens=1))


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_key_changes_when_any_part_changes() -> None:
    variants = [
        _key(),
        _key(model_id="qwen-1.5b@def"),
        _key(kind="complete"),
        _key(messages=[*MESSAGES[:1], Message(role="user", content="Plan!")]),
        _key(messages=[Message(role="user", content="You are Ada."), MESSAGES[1]]),
        _key(params=SamplingParams(temperature=0.2)),
        _key(params=SamplingParams(max_tokens=64)),
        _key(params=SamplingParams(seed=1)),
        _key(params=SamplingParams(stop=("\n",))),
        _key(params=None),
        _key(json_schema=None),
        _key(json_schema={"type": "object", "properties": {"b": {"type": "string"}}}),
        _key(sample_index=1),
    ]
    assert len(set(variants)) == len(variants)
    assert all(len(k) == 64 for k in variants)


def test_key_is_stable_and_ignores_dict_order() -> None:
    reordered = {"properties": {"a": {"type": "string"}}, "type": "object"}
    assert _key() == _key(json_schema=reordered)
    assert _key() == _key(messages=list(MESSAGES))


def test_put_get_and_stats(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.db") as cache:
        key = _key()
        assert cache.get(key) is None
        cache.put(key, model_id="m", kind="chat", answer=_answer('{"a": "x"}', tokens=9))
        hit = cache.get(key)
        assert hit is not None
        assert hit.text == '{"a": "x"}'
        assert hit.usage.prompt_tokens == 9
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_first_answer_for_a_key_is_kept(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.db") as cache:
        cache.put("k" * 64, model_id="m", kind="chat", answer=_answer("first"))
        cache.put("k" * 64, model_id="m", kind="chat", answer=_answer("second"))
        hit = cache.get("k" * 64)
        assert hit is not None and hit.text == "first"


def test_entries_persist_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.db"
    with ResponseCache(path) as cache:
        cache.put(_key(), model_id="m", kind="chat", answer=_answer("kept"))
        cache.put_embeddings("e", False, ["hello"], np.full((1, 4), 0.5, dtype=np.float32))
    with ResponseCache(path) as reopened:
        hit = reopened.get(_key())
        assert hit is not None and hit.text == "kept"
        vector = reopened.get_embeddings("e", False, ["hello"])[0]
        assert vector is not None and np.array_equal(vector, np.full(4, 0.5, dtype=np.float32))
        assert reopened.stats().entries == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_embeddings_are_keyed_by_model_kind_and_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3, 8)).astype(np.float32)
    with ResponseCache(tmp_path / "c.db") as cache:
        cache.put_embeddings("e1", False, ["a", "b", "c"], vectors)
        found = cache.get_embeddings("e1", False, ["c", "zzz", "a"])
        assert found[1] is None
        assert found[0] is not None and np.array_equal(found[0], vectors[2])
        assert found[2] is not None and np.array_equal(found[2], vectors[0])
        assert found[0].dtype == np.float32
        assert cache.get_embeddings("e1", True, ["a"]) == [None]
        assert cache.get_embeddings("e2", False, ["a"]) == [None]
        stats = cache.stats()
        assert (stats.embeddings, stats.embedding_hits, stats.embedding_misses) == (3, 2, 3)


def test_returned_vectors_are_writable_copies(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.db") as cache:
        cache.put_embeddings("e", False, ["a"], np.ones((1, 2), dtype=np.float32))
        first = cache.get_embeddings("e", False, ["a"])[0]
        assert first is not None
        first[0] = 9.0
        again = cache.get_embeddings("e", False, ["a"])[0]
        assert again is not None and again[0] == 1.0


def test_concurrent_thread_writers_leave_a_consistent_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    shared = ResponseCache(path)
    own = [ResponseCache(path), ResponseCache(path)]
    caches = [shared, shared, *own]
    failures: list[BaseException] = []

    def write(worker: int, cache: ResponseCache) -> None:
        try:
            for i in range(50):
                key = f"{worker}-{i}".rjust(64, "0")
                cache.put(key, model_id="m", kind="chat", answer=_answer(f"w{worker} i{i}"))
                hit = cache.get(key)
                assert hit is not None and hit.text == f"w{worker} i{i}"
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write, args=(n, c)) for n, c in enumerate(caches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert shared.stats().entries == 200
    for cache in {id(c): c for c in caches}.values():
        cache.close()
    assert _integrity(path) == "ok"


async def test_concurrent_asyncio_writers(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.db")
    keys = [f"{i}".rjust(64, "a") for i in range(40)]

    async def write_then_read(i: int) -> str | None:
        await cache.aput(keys[i], model_id="m", kind="complete", answer=_answer(f"t{i}"))
        hit = await cache.aget(keys[i])
        return None if hit is None else hit.text

    texts = await asyncio.gather(*(write_then_read(i) for i in range(40)))
    assert texts == [f"t{i}" for i in range(40)]
    assert cache.stats().entries == 40
    cache.close()


_WRITER = """
import sys
from societas.llm.cache import CachedAnswer, ResponseCache
cache = ResponseCache(sys.argv[1])
worker = sys.argv[2]
for i in range(100):
    cache.put(f"{worker}-{i}".rjust(64, "0"), model_id="m", kind="chat",
              answer=CachedAnswer(text=f"{worker}:{i}"))
for i in range(20):
    cache.put(f"shared-{i}".rjust(64, "0"), model_id="m", kind="chat",
              answer=CachedAnswer(text=f"shared {i}"))
cache.close()
"""


def test_concurrent_processes_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name]) for name in ("p", "q")
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    with ResponseCache(path) as cache:
        assert cache.stats().entries == 220
        hit = cache.get("q-99".rjust(64, "0"))
        assert hit is not None and hit.text == "q:99"
    assert _integrity(path) == "ok"


_ENDLESS_WRITER = """
import sys
from societas.llm.cache import CachedAnswer, ResponseCache
cache = ResponseCache(sys.argv[1])
for i in range(5000):
    cache.put(f"{i}".rjust(64, "0"), model_id="m", kind="chat",
              answer=CachedAnswer(text=f"{i}:" + "x" * 300_000))
"""


def test_a_process_killed_mid_write_leaves_a_readable_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    writer = subprocess.Popen([sys.executable, "-c", _ENDLESS_WRITER, str(path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _count_rows(path) < 5:
            time.sleep(0.02)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert _integrity(path) == "ok"
    with ResponseCache(path) as cache:
        entries = cache.stats().entries
        assert entries >= 5
        for i in range(entries):
            hit = cache.get(f"{i}".rjust(64, "0"))
            assert hit is not None and hit.text == f"{i}:" + "x" * 300_000
        cache.put("after".rjust(64, "0"), model_id="m", kind="chat", answer=_answer("fine"))
        assert cache.stats().entries == entries + 1


def _count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.Error:  # tables not created yet
        return 0


def test_export_and_import_move_entries(tmp_path: Path) -> None:
    source = ResponseCache(tmp_path / "a.db")
    source.put(_key(), model_id="m", kind="chat", answer=_answer("one", tokens=4))
    source.put(_key(sample_index=1), model_id="m", kind="chat", answer=_answer("two"))
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    source.put_embeddings("e", True, ["p", "q"], vectors)
    exported = tmp_path / "run" / "cache.jsonl"
    assert source.export_jsonl(exported) == 4
    source.close()

    target = ResponseCache(tmp_path / "b.db")
    assert target.import_jsonl(exported) == 4
    assert target.import_jsonl(exported) == 0
    hit = target.get(_key())
    assert hit is not None and hit.text == "one" and hit.usage.prompt_tokens == 4
    found = target.get_embeddings("e", True, ["q"])[0]
    assert found is not None and np.array_equal(found, vectors[1])
    second = tmp_path / "again.jsonl"
    target.export_jsonl(second)
    assert second.read_text() == exported.read_text()
    target.close()


def test_export_only_used_entries(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with ResponseCache(path) as cache:
        for index in range(3):
            cache.put(_key(sample_index=index), model_id="m", kind="chat", answer=_answer("x"))
    with ResponseCache(path) as session:
        session.get(_key(sample_index=2))
        session.put(_key(sample_index=9), model_id="m", kind="chat", answer=_answer("new"))
        target = tmp_path / "used.jsonl"
        assert session.export_jsonl(target, only_used=True) == 2
    lines = target.read_text().splitlines()
    assert {_key(sample_index=2), _key(sample_index=9)} == {
        line.split('"key":"')[1][:64] for line in lines
    }


def test_import_reports_the_bad_line_and_imports_nothing(tmp_path: Path) -> None:
    source = ResponseCache(tmp_path / "a.db")
    source.put(_key(), model_id="m", kind="chat", answer=_answer("one"))
    exported = tmp_path / "x.jsonl"
    source.export_jsonl(exported)
    source.close()
    exported.write_text(exported.read_text() + '{"type": "response", "key": "short"}\n')
    with ResponseCache(tmp_path / "b.db") as target:
        with pytest.raises(CacheError, match=r"x\.jsonl:2"):
            target.import_jsonl(exported)
        assert target.stats().entries == 0


def test_a_file_that_is_not_a_cache_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database" * 100)
    with pytest.raises(CacheError, match=r"notes\.db"):
        ResponseCache(path)


def test_closed_cache_raises_cache_error(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.db")
    cache.close()
    cache.close()
    with pytest.raises(CacheError, match="closed"):
        cache.get(_key())


def test_memory_cache_works() -> None:
    with ResponseCache(":memory:") as cache:
        cache.put(_key(), model_id="m", kind="chat", answer=_answer("x"))
        hit = cache.get(_key())
        assert hit is not None and hit.text == "x"
