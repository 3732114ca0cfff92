"""Run ``societas`` commands in child processes that start in milliseconds.

Crash tests start and kill the command line many times; a fresh interpreter would import
societas (pandas, llama.cpp bindings, ...) for seconds each time. :class:`CliProcesses` forks
every command from a ``forkserver`` that imported the command line once, so each child is a real,
separate process (it can be SIGKILLed, its files and locks are its own) that starts at once.

Examples
--------
>>> cli = CliProcesses()
>>> args = ["run", "duo", "--hours", "1", "--model", "fake:t", "--out", "runs/x"]
>>> code = cli.run(args, log=Path("x.log"), env={"SOCIETAS_HOME": "home"})
>>> code  # the exit status; -9 when the process was SIGKILLed
0
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

PRELOADED = ("societas.cli.app",)


class CliProcesses:
    """Starts ``societas ARGS`` in forked children of a server that has societas imported."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("forkserver")
        # Only takes effect if the server is not running yet; otherwise children import lazily.
        self._context.set_forkserver_preload(list(PRELOADED))

    def run(
        self,
        args: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
    ) -> int:
        """Run the command to its end; its exit status (minus the signal number if killed).

        ``env`` is added to the child's environment; stdout and stderr go to ``log`` (appended).
        """
        process = self.start(args, log=log, env=env)
        process.join(timeout_s)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise TimeoutError(f"societas {' '.join(args)} ran past {timeout_s:g} s; see {log}")
        return int(process.exitcode)

    def start(
        self, args: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
    ) -> BaseProcess:
        """Start the command and return at once: the caller may ``kill()`` it at any moment
        (SIGKILL), ``join()`` it and read its ``exitcode``."""
        process = self._context.Process(
            target=_child, args=(list(args), dict(env or {}), str(log)), daemon=True
        )
        process.start()
        return process


def kill_group(process: BaseProcess) -> None:
    """SIGKILL a started command and every process it started (Ray's, say), at once: the
    command leads a process group of its own, so nothing it started is left running."""
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError):  # it had ended, and all it started with it
        os.killpg(process.pid, signal.SIGKILL)


def _child(args: list[str], env: dict[str, str], log: str) -> None:
    os.setpgid(0, 0)  # a group of its own, for kill_group
    os.environ.update(env)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    from societas.cli.app import app

    app(args=args, prog_name="societas")
