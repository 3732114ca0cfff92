"""Fixtures shared by the test modules.

Plain helpers (functions and constants a test imports) live in ``tests/support/`` and are imported
as ``support.<module>``: pytest puts ``tests/`` on the import path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.engine.runstore import RunStore
from societas.testing.cli_process import CliProcesses

# --- command-line processes -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli() -> CliProcesses:
    """Starts ``societas`` commands as real child processes (killable) that start at once.

    Modules that drive the command line in this process instead (typer's ``CliRunner``) define a
    ``cli`` fixture of their own, which takes precedence there.
    """
    return CliProcesses()


# --- a run the engine recorded --------------------------------------------------------------------

RECORDED_HOURS = 4


@pytest.fixture(scope="session")
def recorded_town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in town as the engine records it: ``societas run town`` for four game hours
    with the scripted ``fake:`` model (a few seconds, no weights). Shared by every test of the
    session: copy it before changing it."""
    run_dir = tmp_path_factory.mktemp("recorded") / "town"
    with pytest.MonkeyPatch.context() as patch:  # a cache of its own, out of the user's
        patch.setenv("SOCIETAS_HOME", str(tmp_path_factory.mktemp("home")))
        args = ["town", "--hours", str(RECORDED_HOURS), "--model", "fake:recorded"]
        result = CliRunner().invoke(app, ["run", *args, "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture
def running_town(recorded_town: Path, tmp_path: Path) -> Iterator[RunStore]:
    """A copy of the recorded town (without its summary) reopened by its writer and marked
    running, as while the engine records it; a test commits further steps and finishes it."""
    copy = tmp_path / "running"
    shutil.copytree(recorded_town, copy, ignore=shutil.ignore_patterns("summary.json"))
    with RunStore.open(copy) as store:
        store.set_meta("status", "running")
        yield store
