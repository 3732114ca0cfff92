"""Files that survive a kill at any moment: whole or absent, never half-written.

A process may be SIGKILLed (or the machine lose power) between any two instructions. A file
written in place can then be left empty or cut short, and a later reader takes it for the real
thing. Here a file is written beside its final name, flushed to disk, and renamed over it (a
rename is atomic), then the directory is flushed so the new name itself survives a power cut.

:class:`WriterLock` keeps a second process from writing the same folder: a process that was
meant to be killed but was not (its parent was killed instead) would otherwise go on writing
beside the one resuming its work, and the two would record the same history twice.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_atomic(Path(tmp) / "a.txt", "hello")
...     append_line(Path(tmp) / "log.jsonl", '{"unit": 1}')
...     (Path(tmp) / "a.txt").read_text(), (Path(tmp) / "log.jsonl").read_text()
('hello', '{"unit": 1}\\n')
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Self

try:  # POSIX; elsewhere writers are not kept apart (nothing else changes)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PARTIAL_SUFFIX = ".partial"


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8): afterwards the file holds the old
    content or the new, whatever happens meanwhile. OSError if it cannot be written."""
    target = Path(path)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with partial.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    sync_directory(target.parent)


def replace_atomic(partial: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move a finished ``partial`` file over ``target`` durably (flushed, renamed, the
    directory flushed): for files written by other code (a table, a database)."""
    source = Path(partial)
    with source.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(source, target)
    sync_directory(Path(target).parent)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append ``line`` and a newline to ``path`` in one write and flush it to disk.

    A kill can cut the line short but never interleave it with another; readers skip a last
    line without its newline (see :func:`complete_lines`).
    """
    payload = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, payload)
        while written < len(payload):  # only on a full disk or a signal; finish the line
            written += os.write(fd, payload[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_lines(text: str) -> tuple[list[str], bool]:
    """The lines of ``text`` that were written whole, and whether a cut-short last line
    (no newline after it: its write was interrupted) was left out."""
    lines = text.split("\n")
    tail = lines.pop()  # "" when the text ends with a newline
    return lines, bool(tail)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (new or renamed files) to disk, where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


class FolderBusyError(Exception):
    """Another live process is writing the folder."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        who = f"process {pid}" if pid else "another process"
        stop = f"wait for it to end or stop it (kill {pid})" if pid else "wait for it to end"
        super().__init__(
            f"{who} is still writing {folder} (a run, resume or experiment that was not "
            f"stopped); {stop}, then try again"
        )


class WriterLock:
    """An exclusive lock on a folder, held by the one process that writes it.

    The lock is the operating system's (``flock`` on ``LOCK_NAME`` in the folder), so it goes
    away with its process however that process ends: a killed writer never leaves the folder
    locked. The file holds the writer's process id, for the error message of the next one.
    """

    LOCK_NAME = "writer.lock"

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> Self:
        """Take the lock; :class:`FolderBusyError` if a live process holds it."""
        if self._fd is not None or fcntl is None:
            return self
        path = self.folder / self.LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise FolderBusyError(self.folder, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (idempotent); closing the file releases it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
