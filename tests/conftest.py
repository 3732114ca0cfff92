"""Fixtures shared by the test modules.

Plain helpers (functions and constants a test imports) live in ``tests/support/`` and are imported
as ``support.<module>``: pytest puts ``tests/`` on the import path.
"""

from __future__ import annotations

import pytest

from societas.testing.cli_process import CliProcesses

# --- command-line processes -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli() -> CliProcesses:
    """Starts ``societas`` commands as real child processes (killable) that start at once.

    Modules that drive the command line in this process instead (typer's ``CliRunner``) define a
    ``cli`` fixture of their own, which takes precedence there.
    """
    return CliProcesses()
