"""Full disks and read-only output directories: a clear error naming the file and what to do, no
traceback, no damage to what was saved, and a resume once space (or permission) is back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.engine import runstore
from societas.engine.run_schema import DB_NAME
from societas.engine.runstore import RunStore
from support.run_logs import assert_store_intact, final_state, world_events

RUN_ARGS = ["duo", "--model", "fake:resources", "--hours", "6", "--seed", "4", "--no-interviews"]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # keep messages on one line
    return CliRunner()


def assert_intact(run_dir: Path) -> None:
    assert_store_intact(run_dir)
    final_state(run_dir)  # a checkpoint is there


def pages(run_dir: Path) -> int:
    conn = sqlite3.connect(run_dir / DB_NAME)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


def test_a_full_disk_stops_the_run_cleanly_and_it_resumes(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, full = tmp_path / "whole", tmp_path / "full"
    result = cli.invoke(app, ["run", *RUN_ARGS, "--out", str(whole)])
    assert result.exit_code == 0, result.output
    with RunStore.create(tmp_path / "empty", {}):
        pass
    schema = pages(tmp_path / "empty")
    # Room for the schema and two thirds of the run's rows: the run fails part-way through.
    limit = schema + (pages(whole) - schema) * 2 // 3

    # SQLite's page limit fails a write exactly as a full disk does (SQLITE_FULL).
    connect = runstore._connect

    def small_disk(path: Path, **options: Any) -> sqlite3.Connection:
        conn = connect(path, **options)
        conn.execute(f"PRAGMA max_page_count = {limit}")
        return conn

    monkeypatch.setattr(runstore, "_connect", small_disk)
    result = cli.invoke(app, ["run", *RUN_ARGS, "--out", str(full)])
    assert result.exit_code == 2
    assert "is full; free some space, then resume the run" in result.output
    assert "Traceback" not in result.output
    assert_intact(full)
    with RunStore.open(full, readonly=True) as store:
        assert store.get_meta("status") == "failed"
        assert store.last_step() is not None and store.last_step() > 0

    monkeypatch.setattr(runstore, "_connect", connect)  # space is back
    result = cli.invoke(app, ["resume", str(full), "--no-interviews"])
    assert result.exit_code == 0, result.output
    assert world_events(full) == world_events(whole)


def can_mount_tmpfs() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 400 KiB tmpfs (root only): a real ENOSPC, WAL file and all."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.mark.skipif(not can_mount_tmpfs(), reason="mounting a tiny tmpfs needs root")
def test_a_really_full_filesystem_is_reported_and_the_run_stays_readable(
    cli: CliRunner, tiny_disk: Path
) -> None:
    run_dir = tiny_disk / "run"
    result = cli.invoke(app, ["run", *RUN_ARGS, "--hours", "48", "--out", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert "full" in result.output or "disk I/O error" in result.output
    assert_intact(run_dir)


def make_read_only(directory: Path) -> bool:
    """Make ``directory`` and its files unwritable: chmod, or as root the immutable flag.

    False if impossible here.
    """
    paths = [*directory.iterdir(), directory]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    if not os.access(directory, os.W_OK):
        return True
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    flagged = subprocess.run([chattr, "+i", *map(str, paths)], capture_output=True)
    return flagged.returncode == 0


def make_writable(directory: Path) -> None:
    chattr = shutil.which("chattr")
    paths = [directory, *directory.iterdir()]
    if chattr:
        subprocess.run([chattr, "-i", *map(str, paths)], capture_output=True)
    for path in paths:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_read_only_output_directories_get_a_clear_error(cli: CliRunner, tmp_path: Path) -> None:
    run_dir, locked = tmp_path / "run", tmp_path / "locked"
    result = cli.invoke(app, ["run", *RUN_ARGS, "--hours", "2", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    before = world_events(run_dir)
    locked.mkdir()
    if not make_read_only(locked) or not make_read_only(run_dir):
        make_writable(locked)
        make_writable(run_dir)
        pytest.skip("cannot make a directory read-only here")
    try:
        result = cli.invoke(app, ["run", *RUN_ARGS, "--out", str(locked / "run")])
        assert result.exit_code == 2
        assert f"cannot create run directory {locked / 'run'}" in result.output
        assert "writable" in result.output and "Traceback" not in result.output

        result = cli.invoke(app, ["resume", str(run_dir), "--hours", "2", "--no-interviews"])
        assert result.exit_code == 2
        assert "writable" in result.output and "Traceback" not in result.output
    finally:
        make_writable(locked)
        make_writable(run_dir)
    assert_intact(run_dir)
    assert world_events(run_dir) == before
