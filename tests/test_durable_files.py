"""Files whole or absent after a kill, and one writer per folder (``societas.durable``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from societas.durable import (
    FolderBusyError,
    WriterLock,
    append_line,
    complete_lines,
    write_atomic,
)
from societas.experiments.runner import ResponseLog


def test_write_atomic_replaces_the_file_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    write_atomic(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_line_cut_short_is_left_out_and_the_log_is_repaired_whole(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl"
    append_line(path, '{"unit": "a", "rows": [1]}')
    append_line(path, '{"unit": "b", "rows": [2]}')
    with path.open("a") as handle:
        handle.write('{"unit": "c", "ro')  # what a kill inside a write leaves
    assert complete_lines(path.read_text()) == (
        ['{"unit": "a", "rows": [1]}', '{"unit": "b", "rows": [2]}'],
        True,
    )
    log = ResponseLog(path)
    assert sorted(log.units) == ["a", "b"]
    log.append("c", [{"value": 3}])
    assert ResponseLog(path).units == {"a": [1], "b": [2], "c": [{"value": 3}]}


def _hold(folder: str, ready: Any) -> None:
    WriterLock(folder).acquire()
    ready.set()
    signal.pause()


def test_a_folder_has_one_writer_and_a_killed_writer_frees_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(tmp_path), ready))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(FolderBusyError, match=f"process {holder.pid} is still writing"):
            WriterLock(tmp_path).acquire()
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(60)
    with WriterLock(tmp_path) as lock:  # the kill released it: no stale lock to clean up
        assert lock.held
    assert not lock.held
