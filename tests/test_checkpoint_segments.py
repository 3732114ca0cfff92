"""Checkpoints save each memory only once: appended parts, their segments, and the run store."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from societas.engine.checkpoints import StreamSaver
from societas.engine.config import SimulationConfig
from societas.engine.run_reader import RunReader
from societas.engine.run_schema import DB_NAME, SCHEMA_VERSION
from societas.engine.runstore import CheckpointRetention, RunStore
from societas.engine.segments import (
    Segment,
    SegmentError,
    appended,
    join_columns,
    join_segments,
    split_segments,
)
from societas.engine.simulation import Simulation
from societas.memory.stream import MemoryStream
from societas.scenarios.scenario import load_scenario
from support.scripted import scripted_llm
from test_runstore import T0, at


def grown(stream: MemoryStream, count: int, start: int = 0) -> MemoryStream:
    rng = np.random.default_rng(start)
    stream.add_many(
        "observation",
        [f"memory {i}" for i in range(start, start + count)],
        T0 + timedelta(hours=start),
        [3] * count,
        rng.standard_normal((count, 4)).astype(np.float32),
    )
    return stream


def segment_rows(run_dir: Path) -> list[tuple[str, int, int, int]]:
    conn = sqlite3.connect(run_dir / DB_NAME)
    try:
        return list(
            conn.execute("SELECT key, first, count, step FROM segments ORDER BY key, first")
        )
    finally:
        conn.close()


def test_a_stream_joined_from_its_row_ranges_is_the_whole_stream() -> None:
    stream = grown(MemoryStream(dim=4), 5)
    first = stream.rows_state(0)
    grown(stream, 3, start=5)
    stream.touch([1, 6], T0 + timedelta(hours=9))
    parts = [
        Segment("k", 0, 5, first),
        Segment("k", 5, 3, stream.rows_state(5)),
    ]
    joined = {**stream.head_state(), **join_columns("k", 8, parts)}
    assert joined == stream.get_state()
    assert MemoryStream.from_state(joined).get_state() == stream.get_state()


def test_a_first_format_stream_state_is_still_read() -> None:
    stream = grown(MemoryStream(dim=4), 3)
    state = stream.get_state()
    old = state | {
        "format": 1,
        "created": stream.created_hours.tolist(),
        "last_access": stream.last_access_hours.tolist(),
    }
    assert MemoryStream.from_state(old).get_state() == state


def test_split_leaves_references_and_join_puts_the_rows_back() -> None:
    part = appended("a", first=2, count=1, columns={"texts": ["c"]}, head={"dim": 4})
    empty = appended("b", first=0, count=0, columns={"texts": []}, head={"dim": 4})
    state = {"agents": {"A": {"memory": part, "home": "x"}, "B": {"memory": empty}}}
    saved, new, keys = split_segments(state)
    assert state["agents"]["A"]["memory"] is part  # the caller's state is left alone
    assert saved["agents"]["A"] == {
        "memory": {"dim": 4, "$appended": {"key": "a", "size": 3}},
        "home": "x",
    }
    assert saved["agents"]["B"] == {"memory": {"dim": 4, "texts": []}}
    assert new == [Segment("a", 2, 1, {"texts": ["c"]})] and keys == {"a"}
    stored = [Segment("a", 0, 2, {"texts": ["a", "b"]}), *new]
    whole = join_segments(saved, lambda key, size: stored)
    assert whole["agents"]["A"]["memory"] == {"dim": 4, "texts": ["a", "b", "c"]}


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ([Segment("k", 0, 2, {"t": [1, 2]}), Segment("k", 3, 1, {"t": [4]})], "a gap at row 2"),
        ([Segment("k", 0, 2, {"t": [1, 2]}), Segment("k", 1, 3, {"t": [2, 3, 4]})], "an overlap"),
        ([Segment("k", 0, 2, {"t": [1, 2]})], "stop at row 2; the checkpoint has 4"),
        ([Segment("k", 0, 5, {"t": [1, 2, 3, 4, 5]})], "past its 4 rows"),
        ([Segment("k", 0, 2, {"t": [1, 2]}), Segment("k", 2, 2, {"t": "AAAA"})], "changes type"),
    ],
)
def test_rows_that_do_not_add_up_are_refused_with_the_key(
    stored: list[Segment], problem: str
) -> None:
    with pytest.raises(SegmentError, match=problem):
        join_columns("k", 4, stored)


def test_the_store_saves_each_row_once_and_reads_every_checkpoint_whole(tmp_path: Path) -> None:
    stream, saver = grown(MemoryStream(dim=4), 4), StreamSaver()
    states: dict[int, dict[str, Any]] = {}
    with RunStore.create(tmp_path, {}, retention=CheckpointRetention(keep_last=10)) as store:
        for step in range(4):
            state = {"clock": step, "memory": saver.part("Ada", stream, step)}
            store.commit_step(step, at(step), [], state)
            saver.committed()
            states[step] = {"clock": step, "memory": stream.get_state()}
            grown(stream, 2, start=10 * (step + 1))
            stream.touch([0], at(step))
        assert [(k, first, count) for k, first, count, _ in segment_rows(tmp_path)] == [
            ("Ada@0", 0, 4),
            ("Ada@0", 4, 2),
            ("Ada@0", 6, 2),
            ("Ada@0", 8, 2),
        ]
        for step, state in states.items():
            assert store.checkpoint(step).state == state
        # Rewinding drops the rows saved after the step; the next save starts a new key.
        store.truncate_after(1)
        assert [row[1] for row in segment_rows(tmp_path)] == [0, 4]
        assert store.latest_checkpoint().state == states[1]  # type: ignore[union-attr]


def test_pruned_checkpoints_take_rows_no_kept_checkpoint_needs(tmp_path: Path) -> None:
    old, new, saver = grown(MemoryStream(dim=4), 3), grown(MemoryStream(dim=4), 2), StreamSaver()
    with RunStore.create(tmp_path, {}, retention=CheckpointRetention(keep_last=1)) as store:
        store.commit_step(0, at(0), [], {"memory": saver.part("Ada", old, 0)})
        saver.committed()
        # The agent's stream is replaced: it is saved whole under a new key.
        store.commit_step(1, at(1), [], {"memory": saver.part("Ada", new, 1)})
        saver.committed()
        assert [row[0] for row in segment_rows(tmp_path)] == ["Ada@1"]
        assert store.latest_checkpoint().state == {"memory": new.get_state()}  # type: ignore[union-attr]


def test_a_failed_commit_saves_nothing_as_held(tmp_path: Path) -> None:
    stream, saver = grown(MemoryStream(dim=4), 3), StreamSaver()
    with RunStore.create(tmp_path, {}) as store:
        part = saver.part("Ada", stream, 0)
        with pytest.raises(ValueError, match="not plain JSON"):
            store.commit_step(0, at(0), [], {"memory": part, "bad": float("nan")})
        saver.discard()
        store.commit_step(0, at(0), [], {"memory": saver.part("Ada", stream, 0)})
        saver.committed()
        assert store.latest_checkpoint().state == {"memory": stream.get_state()}  # type: ignore[union-attr]


def test_a_first_version_store_is_upgraded_when_opened_to_write(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(0, at(0), [], {"clock": 0})
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript("DROP TABLE segments; DROP TABLE segment_refs; PRAGMA user_version = 1;")
    conn.close()
    with RunReader.open(tmp_path) as reader:
        assert reader.latest_checkpoint().state == {"clock": 0}  # type: ignore[union-attr]
        assert not reader.layout.has_segments
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1, "a reader never migrates"
    conn.close()
    stream = grown(MemoryStream(dim=4), 2)
    with RunStore.open(tmp_path) as store:
        store.commit_step(1, at(1), [], {"memory": StreamSaver().part("Ada", stream, 1)})
        assert store.latest_checkpoint().state == {"memory": stream.get_state()}  # type: ignore[union-attr]
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_a_simulation_saves_each_memory_once_and_resumes_exactly(tmp_path: Path) -> None:
    scenario = load_scenario("duo")
    sim = await Simulation.start(
        scenario, tmp_path / "run", scripted_llm(), SimulationConfig(seed=1, checkpoint_every=2)
    )
    await sim.run(hours=2.0)
    sizes = {name: len(agent.memory) for name, agent in sim.agents.items()}
    checkpoint = sim.store.latest_checkpoint()  # type: ignore[union-attr]
    assert checkpoint is not None and checkpoint.state == sim.get_state()
    sim.close()
    rows = segment_rows(tmp_path / "run")
    saved: dict[str, int] = {}
    for key, _, count, _ in rows:
        saved[key.split("@")[0]] = saved.get(key.split("@")[0], 0) + count
    # Every memory is stored once, over several checkpoints.
    assert saved == sizes and all(size >= 5 for size in sizes.values())
    assert len(rows) > 2 * len(sizes)

    resumed = Simulation.resume(tmp_path / "run", scripted_llm(), scenario)
    await resumed.run(hours=1.0)
    checkpoint = resumed.store.latest_checkpoint()  # type: ignore[union-attr]
    assert checkpoint is not None and checkpoint.state == resumed.get_state()
    resumed.close()
