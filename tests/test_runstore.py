"""The run store: schema, atomic steps, checkpoints, resume, pagination, readers and errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from societas.engine.events import Event
from societas.engine.run_reader import RunReader
from societas.engine.run_schema import DB_NAME, SCHEMA_VERSION, RunStoreError
from societas.engine.runstore import CheckpointRetention, RunStore

T0 = datetime(2026, 2, 13, 8, 0)


def at(step: int) -> datetime:
    return T0 + timedelta(minutes=10 * step)


def event(step: int, kind: str = "observation", agent: str | None = "Ada", **data: Any) -> Event:
    return Event(step=step, time=at(step), kind=kind, agent=agent, data=data)


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


# --------------------------------------------------------------------------- schema and meta


def test_create_writes_the_documented_schema(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run", {"scenario": "town", "seed": 3}) as store:
        store.commit_step(0, at(0), [event(0, text="hello")], {"clock": 0})
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {
            table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in ("meta", "events", "checkpoints")
        }
        indexes = {
            tuple(col[2] for col in conn.execute(f"PRAGMA index_info({row[1]})"))
            for row in conn.execute("PRAGMA index_list(events)")
        }
        row = conn.execute("SELECT step, time, kind, agent, data FROM events").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()
    assert columns == {
        "meta": ["key", "value"],
        "events": ["id", "step", "time", "kind", "agent", "data"],
        "checkpoints": ["step", "time", "state"],
    }
    assert {("step",), ("kind", "step"), ("agent", "kind", "step")} <= indexes
    assert row == (0, "2026-02-13T08:00:00", "observation", "Ada", '{"text":"hello"}')
    assert json.loads(meta["scenario"]) == "town"
    assert json.loads(meta["seed"]) == 3


def test_one_agents_events_are_found_through_an_index(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run", {"scenario": "town"}) as store:
        store.commit_step(0, at(0), [event(0, text="hello")])
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    try:
        plans = [
            str(conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
            for sql, params in (
                ("SELECT id FROM events WHERE agent = ? AND step <= ? ORDER BY id", ("Ada", 9)),
                ("SELECT id FROM events WHERE agent = ? AND kind = ? ORDER BY id", ("Ada", "move")),
            )
        ]
    finally:
        conn.close()
    assert all("events_agent_kind_step" in plan for plan in plans), plans


def test_meta_round_trip_and_store_kept_keys(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {"scenario": "town"}) as store:
        assert store.last_step() is None
        store.set_meta("hours", 1.5)
        store.set_meta("agents", ["Ada", "Bo"])
        store.commit_step(4, at(4), [])
        assert store.get_meta("hours") == 1.5
        assert store.get_meta("missing", "fallback") == "fallback"
        assert store.meta() == {
            "agents": ["Ada", "Bo"],
            "hours": 1.5,
            "last_step": 4,
            "last_time": at(4).isoformat(),
            "scenario": "town",
        }
        with pytest.raises(ValueError, match="kept by the run store"):
            store.set_meta("last_step", 9)
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            store.set_meta("when", object())


def test_create_takes_the_meta_of_another_run_for_a_fork(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "a", {"scenario": "town"}) as original:
        original.commit_step(3, at(3), [event(3)])
        copied = original.meta()
    with RunStore.create(tmp_path / "b", {**copied, "forked_from": "a"}) as fork:
        assert fork.meta() == {"scenario": "town", "forked_from": "a"}
        assert fork.last_step() is None


def test_create_refuses_a_run_with_events_unless_overwriting(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {"n": 1}):
        pass
    # An empty run (nothing committed) may be replaced.
    with RunStore.create(tmp_path, {"n": 2}) as store:
        assert store.get_meta("n") == 2
        store.commit_step(0, at(0), [event(0, text="x")])
    with pytest.raises(RunStoreError, match="already holds a run"):
        RunStore.create(tmp_path, {"n": 3})
    with RunStore.create(tmp_path, {"n": 4}, overwrite=True) as store:
        assert store.count_events() == 0
        assert store.get_meta("n") == 4


def test_events_round_trip_with_json_forms_of_dates_and_sets(tmp_path: Path) -> None:
    action = event(1, "action", description="baking", start=at(1), tags={"b", "a"}, object=None)
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(1, at(1), [action, event(1, "move", None, tile=[1, 2], place="park")])
        (first, second) = store.events()
    assert first.event.data == {
        "description": "baking",
        "start": at(1).isoformat(),
        "tags": ["a", "b"],
        "object": None,
    }
    assert first.event.time == at(1) and first.event.kind == "action"
    assert second.event == event(1, "move", None, tile=[1, 2], place="park")
    assert second.id > first.id


# --------------------------------------------------------------------------- commits


def test_commit_step_rejects_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(2, at(2), [event(2)])
        with pytest.raises(ValueError, match="step 3 was committed in step 4"):
            store.commit_step(4, at(4), [event(4), event(3)])
        with pytest.raises(ValueError, match="unknown event kind"):
            store.commit_step(4, at(4), [event(4, "teleport")])
        with pytest.raises(ValueError, match="not plain JSON"):
            store.commit_step(4, at(4), [event(4)], {"when": at(4)})
        with pytest.raises(RunStoreError, match="already holds steps up to 2"):
            store.commit_step(1, at(1), [event(1)])
        assert store.count_events() == 1
        assert store.last_step() == 2
        assert store.latest_checkpoint() is None
        # The same step again appends to it.
        store.commit_step(2, at(2), [event(2, text="more")])
        assert store.count_events(from_step=2, to_step=2) == 2


def test_a_failure_inside_the_commit_rolls_back_the_whole_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(0, at(0), [event(0)], {"n": 0})

        def explode(*_: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store, "_prune_checkpoints", explode)
        with pytest.raises(RunStoreError, match=r"disk I/O error on .*run.sqlite"):
            store.commit_step(1, at(1), [event(1), event(1)], {"n": 1})
        assert store.count_events() == 1
        assert store.last_step() == 0
        assert store.checkpoint_steps() == [0]


CRASHING_WRITER = """
    import os, sys, time
    from datetime import datetime, timedelta
    from societas.engine.events import Event
    from societas.engine.runstore import RunStore

    run_dir, marker, doomed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = datetime(2026, 2, 13, 8, 0)
    store = RunStore.create(run_dir, {"scenario": "crash"})
    original = store._prune_checkpoints

    def stall(conn):
        original(conn)
        if store_step[0] == doomed:
            # Every event of the doomed step is written inside the open transaction: die here.
            open(marker, "w").close()
            time.sleep(600)

    store._prune_checkpoints = stall
    store_step = [0]
    for step in range(doomed + 1):
        store_step[0] = step
        n = 20000 if step == doomed else 200
        events = [
            Event(step=step, time=t0 + timedelta(minutes=step), kind="observation",
                  agent=f"a{i % 7}", data={"i": i, "text": "x" * 200})
            for i in range(n)
        ]
        store.commit_step(step, t0 + timedelta(minutes=step), events, {"step": step, "n": n})
"""


def test_a_kill_in_the_middle_of_a_commit_leaves_every_committed_step_whole(
    tmp_path: Path,
) -> None:
    run_dir, marker, doomed = tmp_path / "run", tmp_path / "in-commit", 6
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CRASHING_WRITER), str(run_dir), str(marker), "6"]
    )
    try:
        wait_for(marker.exists)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # The uncommitted step spilled into the WAL (20000 large events); it must not be visible.
    with RunStore.open(run_dir) as store:
        assert store.last_step() == doomed - 1
        for step in range(doomed):
            rows = store.events(from_step=step, to_step=step, limit=None)
            assert sorted(r.event.data["i"] for r in rows) == list(range(200))
        assert store.count_events(from_step=doomed) == 0
        latest = store.latest_checkpoint()
        assert latest is not None
        assert latest.step == doomed - 1 and latest.state == {"step": doomed - 1, "n": 200}
        # The writer can carry on from there.
        store.commit_step(doomed, at(doomed), [event(doomed)])
        assert store.last_step() == doomed


# --------------------------------------------------------------------------- checkpoints


class CountingWorld:
    """A tiny deterministic world: each step emits events derived from its state."""

    def __init__(self) -> None:
        self.counter = 0
        self.log: list[int] = []

    def step(self, step: int) -> list[Event]:
        self.counter = (self.counter * 31 + step + 7) % 1009
        self.log.append(self.counter)
        return [event(step, "observation", f"a{self.counter % 3}", value=self.counter)]

    def get_state(self) -> dict[str, Any]:
        return {"counter": self.counter, "log": list(self.log)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CountingWorld:
        world = cls()
        world.counter = state["counter"]
        world.log = list(state["log"])
        return world


def simulate(store: RunStore, world: CountingWorld, steps: range) -> None:
    for step in steps:
        events = world.step(step)
        state = world.get_state() if (step + 1) % 3 == 0 else None
        store.commit_step(step, at(step), events, state)


def test_resume_from_checkpoint_reproduces_the_uninterrupted_log(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "whole", {}) as whole:
        simulate(whole, CountingWorld(), range(10))
        expected = [stored.event for stored in whole.iter_events()]

    with RunStore.create(tmp_path / "crashed", {}) as crashed:
        simulate(crashed, CountingWorld(), range(8))  # dies after step 7; last checkpoint: 5
    with RunStore.open(tmp_path / "crashed") as resumed:
        checkpoint = resumed.latest_checkpoint()
        assert checkpoint is not None and checkpoint.step == 5 and checkpoint.time == at(5)
        assert resumed.truncate_after(checkpoint.step) == 2
        assert resumed.last_step() == 5
        assert resumed.get_meta("last_time") == at(5).isoformat()
        simulate(resumed, CountingWorld.from_state(checkpoint.state), range(6, 10))
        assert [stored.event for stored in resumed.iter_events()] == expected
        assert resumed.checkpoint_steps() == [2, 5, 8]
        reference = CountingWorld()
        for step in range(9):
            reference.step(step)
        assert resumed.checkpoint(8).state == reference.get_state()


def test_checkpoint_state_comes_back_as_an_independent_copy(tmp_path: Path) -> None:
    state: dict[str, Any] = {"agents": {"Ada": {"memories": [1, 2]}}, "unicode": "café"}
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(0, at(0), [], state)
        state["unicode"] = "changed after saving"
        first = store.checkpoint(0).state
        first["agents"]["Ada"]["memories"].clear()
        assert store.checkpoint(0).state == {
            "agents": {"Ada": {"memories": [1, 2]}},
            "unicode": "café",
        }


def test_truncate_after_minus_one_empties_the_log(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {"keep": True}) as store:
        simulate(store, CountingWorld(), range(4))
        assert store.truncate_after(-1) == 4
        assert store.last_step() is None
        assert store.latest_checkpoint() is None
        assert store.get_meta("keep") is True
        store.commit_step(0, at(0), [event(0)])


def test_checkpoint_pruning_keeps_the_last_ones_and_an_archive(tmp_path: Path) -> None:
    retention = CheckpointRetention(keep_last=2, archive_every=10)
    with RunStore.create(tmp_path, {}, retention=retention) as store:
        for step in range(0, 31, 3):
            store.commit_step(step, at(step), [], {"step": step})
        assert store.checkpoint_steps() == [0, 12, 21, 27, 30]
        assert store.checkpoint(21).state == {"step": 21}
        with pytest.raises(RunStoreError, match=r"no checkpoint at step 3 .*0, 12, 21, 27, 30"):
            store.checkpoint(3)
    with RunStore.create(tmp_path / "default", {}) as store:
        for step in range(10):
            store.commit_step(step, at(step), [], {"step": step})
        assert store.checkpoint_steps() == [7, 8, 9]
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointRetention(keep_last=0)


# --------------------------------------------------------------------------- reading


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.create(tmp_path, {}) as store:
        for step in range(5):
            store.commit_step(
                step,
                at(step),
                [
                    event(step, "move", "Ada", tile=[step, 0], place="park"),
                    event(step, "observation", "Bo", text=f"seen {step}"),
                    event(step, "observation", "Ada", text=f"seen {step}"),
                    event(step, "llm_call", None, purpose="plan"),
                    event(step, "utterance", "Bo", text="hi"),
                ],
            )
        yield store


def test_pagination_visits_every_event_once_in_order(filled: RunStore) -> None:
    seen: list[int] = []
    after = 0
    while page := filled.events(after_id=after, limit=10):
        seen.extend(stored.id for stored in page)
        after = page[-1].id
    assert len(seen) == 25 == len(set(seen)) == filled.count_events()
    assert seen == sorted(seen)
    assert [s.id for s in filled.iter_events(page_size=4)] == seen
    assert len(filled.events(limit=None)) == 25
    assert filled.last_event_id() == seen[-1]
    assert filled.count_events(after_id=seen[9]) == 15


def test_filters_combine(filled: RunStore) -> None:
    ada_obs = filled.events(kinds=["observation"], agent="Ada", from_step=1, to_step=3)
    assert [(s.event.step, s.event.data["text"]) for s in ada_obs] == [
        (1, "seen 1"),
        (2, "seen 2"),
        (3, "seen 3"),
    ]
    assert filled.count_events(kinds="move") == 5
    assert filled.count_events(kinds={"move", "llm_call"}, to_step=1) == 4
    assert filled.count_events(agent="Bo") == 10
    assert filled.event_counts() == {"llm_call": 5, "move": 5, "observation": 10, "utterance": 5}
    with pytest.raises(ValueError, match="unknown event kind"):
        filled.events(kinds=["mvoe"])
    with pytest.raises(ValueError, match="limit"):
        filled.events(limit=0)


def test_export_events_jsonl(filled: RunStore, tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    assert filled.export_events_jsonl(target) == 25
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 25
    assert records[0] == {
        "id": 1,
        "step": 0,
        "time": "2026-02-13T08:00:00",
        "kind": "move",
        "agent": "Ada",
        "data": {"tile": [0, 0], "place": "park"},
    }


STEADY_WRITER = """
    import sys, time
    from datetime import datetime, timedelta
    from societas.engine.events import Event
    from societas.engine.runstore import RunStore

    t0 = datetime(2026, 2, 13, 8, 0)
    with RunStore.open(sys.argv[1]) as store:
        for step in range(60):
            events = [Event(step=step, time=t0, kind="move", agent=f"a{i}", data={"i": i})
                      for i in range(50)]
            store.commit_step(step, t0, events, {"step": step} if step % 5 == 0 else None)
            time.sleep(0.01)
"""


def test_a_read_only_reader_sees_whole_steps_while_a_writer_writes(tmp_path: Path) -> None:
    RunStore.create(tmp_path, {"scenario": "live"}).close()
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(STEADY_WRITER), str(tmp_path)])
    reads = 0
    try:
        with RunReader.open(tmp_path) as reader:
            while writer.poll() is None or reads == 0:
                last = reader.last_step()
                if last is not None:
                    assert reader.count_events(to_step=last) == 50 * (last + 1)
                    page = reader.events(from_step=last, to_step=last, limit=None)
                    assert sorted(s.event.data["i"] for s in page) == list(range(50))
                    checkpoint = reader.latest_checkpoint()
                    assert checkpoint is not None
                    assert checkpoint.state == {"step": checkpoint.step}
                    assert checkpoint.step <= (reader.last_step() or 0)
                reads += 1
            assert reader.last_step() == 59
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert reads > 1


def test_a_reader_never_writes(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {"scenario": "town"}) as store:
        store.commit_step(0, at(0), [event(0)], {"n": 0})
    before = (tmp_path / DB_NAME).read_bytes()
    with RunReader.open(tmp_path) as reader:
        assert not hasattr(reader, "commit_step") and not hasattr(reader, "set_meta")
        with reader.connect() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM events")
        assert reader.count_events() == 1
    with (
        RunStore.open(tmp_path, readonly=True) as store,
        pytest.raises(RunStoreError, match="opened read-only"),
    ):
        store.commit_step(1, at(1), [])
    assert (tmp_path / DB_NAME).read_bytes() == before


# --------------------------------------------------------------------------- errors


def test_directories_that_are_not_runs(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        RunStore.open(tmp_path / "missing")
    with pytest.raises(RunStoreError, match=f"has no {DB_NAME}"):
        RunStore.open(tmp_path)
    plain = sqlite3.connect(tmp_path / DB_NAME)
    plain.execute("CREATE TABLE other(x)")
    plain.commit()
    plain.close()
    with pytest.raises(RunStoreError, match="not a societas run store"):
        RunStore.open(tmp_path, readonly=True)
    with pytest.raises(RunStoreError, match="not a societas run store"):
        RunReader.open(tmp_path)


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite at all " * 200)
    for readonly in (False, True):
        with pytest.raises(RunStoreError, match=f"{DB_NAME} is damaged or not a SQLite database"):
            RunStore.open(tmp_path, readonly=readonly)
    with pytest.raises(RunStoreError, match="already holds a run"):
        RunStore.create(tmp_path, {})


def test_a_newer_schema_asks_for_an_upgrade(tmp_path: Path) -> None:
    RunStore.create(tmp_path, {}).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RunStoreError, match=r"newer than this societas reads.*upgrade"):
        RunStore.open(tmp_path)


def test_a_full_disk_is_reported_and_the_step_is_not_half_written(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, {}) as store:
        store.commit_step(0, at(0), [event(0)])
        conn = store._connection()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # what a full disk looks like
        big = [event(1, text="x" * 2000) for _ in range(50)]
        with pytest.raises(RunStoreError, match=r"disk holding .*run.sqlite is full"):
            store.commit_step(1, at(1), big, {"n": 1})
        assert store.count_events() == 1
        assert store.last_step() == 0


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {})
    store.close()
    store.close()
    with pytest.raises(RunStoreError, match="is closed"):
        store.count_events()


def make_read_only(directory: Path) -> bool:
    """Make ``directory`` unwritable (chmod; as root, the immutable flag). False if impossible."""
    directory.chmod(0o555)
    if not os.access(directory, os.W_OK):
        return True
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode:
        return False
    probe = directory / "probe"
    try:
        probe.touch()
    except OSError:
        return True
    probe.unlink()
    return False


def make_writable(directory: Path) -> None:
    chattr = shutil.which("chattr")
    if chattr:
        subprocess.run([chattr, "-i", str(directory)], capture_output=True)
    directory.chmod(0o755)


def test_read_only_directories(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, {"scenario": "town"}) as store:
        store.commit_step(0, at(0), [event(0)], {"n": 0})
    if not make_read_only(run_dir):
        make_writable(run_dir)
        pytest.skip("cannot make a directory read-only here")
    try:
        with pytest.raises(RunStoreError, match=r"cannot create run directory .*writable"):
            RunStore.create(run_dir / "inner", {})
        with pytest.raises(RunStoreError, match="check that the directory exists and is writable"):
            RunStore.open(run_dir)
        # A finished run on read-only storage can still be viewed.
        with RunReader.open(run_dir) as viewer:
            assert viewer.count_events() == 1
            assert viewer.latest_checkpoint() == (0, at(0), {"n": 0})
    finally:
        make_writable(run_dir)
