"""Model weights from installed packages: locate, assemble once, verify before use.

Weight parts are found through importlib (never the network). Multi-part models are concatenated
once into ``<models dir>/<name>.gguf``; a single-file model is used where its package installed it.
Either way the file's size and sha256 are checked against the catalog before the file is used.
Hashing a gigabyte takes seconds, so a sidecar record keeps (size, mtime, sha256) of the verified
file and later calls only rehash when the file changed.

Assembly writes a temporary file, fsyncs it and renames it into place, under an exclusive lock
file, so two processes starting at once assemble the model only once and never see a partial file.

Examples
--------
>>> from societas.llm.catalog import get_entry
>>> path = ensure_weights(get_entry("smollm2-135m"))  # doctest: +SKIP
>>> weights_status(get_entry("smollm2-135m")).installed  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from societas import paths
from societas.llm.catalog import ModelEntry, WeightPart
from societas.llm.types import LLMConfigError

log = logging.getLogger(__name__)

_CHUNK_BYTES = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class WeightsStatus:
    """What ``societas models`` shows about one catalog model (computed without hashing)."""

    name: str
    installed: bool
    """Every part's package is installed."""
    missing: tuple[str, ...]
    """Requirements (``package==version``) of the parts that are not installed."""
    path: Path | None
    """Where the usable GGUF file is (or will be, once assembled)."""
    assembled: bool
    """The GGUF file exists at ``path`` (single-file models: installed in place)."""
    verified: bool
    """A verification record matches the file as it is now."""
    size_bytes: int


def locate_part(part: WeightPart) -> Path | None:
    """The installed file of ``part``, or None when its package or file is missing.

    Uses ``find_spec`` so the part's module is located without being imported (some weight
    packages import runtimes at import time that are deliberately not installed).
    """
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / part.path
        if candidate.is_file():
            return candidate
    return None


def locate_parts(entry: ModelEntry) -> list[Path]:
    """The installed files of all of ``entry``'s parts, in order.

    Raises :class:`LLMConfigError` naming the missing packages and the pip command installing them.
    """
    found: list[Path] = []
    missing: list[WeightPart] = []
    for part in entry.parts:
        path = locate_part(part)
        if path is None:
            missing.append(part)
        else:
            found.append(path)
    if missing:
        raise LLMConfigError(_missing_parts_message(entry, missing))
    return found


def ensure_weights(entry: ModelEntry) -> Path:
    """Path of ``entry``'s verified GGUF file, assembling it from its parts the first time.

    Raises :class:`LLMConfigError` when a part is missing or the weights do not match the catalog's
    size and sha256.
    """
    parts = locate_parts(entry)
    if entry.single_file:
        return _verify_in_place(entry, parts[0])
    target = assembled_path(entry)
    record = _record_path_for(target)
    if _recorded_sha256(target, record) == entry.sha256:
        return target
    with _exclusive_lock(target.with_name(target.name + ".lock")):
        # Whoever held the lock before us may have just finished the same work.
        if target.is_file():
            if _hash_and_record(target, record) == entry.sha256:
                return target
            log.warning("%s does not match the catalog; assembling it again", target)
            target.unlink()
        _assemble(entry, parts, target)
        _write_record(target, record, entry.sha256)
    return target


def weights_status(entry: ModelEntry) -> WeightsStatus:
    """Installed? assembled? verified? — from file metadata only (no hashing)."""
    located = [locate_part(part) for part in entry.parts]
    missing = tuple(
        part.requirement for part, path in zip(entry.parts, located, strict=True) if path is None
    )
    path: Path | None
    if entry.single_file:
        path = located[0]
        record = _in_place_record_path(entry)
    else:
        path = assembled_path(entry)
        record = _record_path_for(path)
    on_disk = path is not None and path.is_file()
    verified = on_disk and path is not None and _recorded_sha256(path, record) == entry.sha256
    return WeightsStatus(
        name=entry.name,
        installed=not missing,
        missing=missing,
        path=path,
        assembled=on_disk,
        verified=verified,
        size_bytes=entry.size_bytes,
    )


def assembled_path(entry: ModelEntry) -> Path:
    """Where a multi-part model's assembled GGUF file lives."""
    return paths.models_dir() / f"{entry.name}.gguf"


def external_gguf_sha256(path: Path) -> str:
    """sha256 of a user-supplied GGUF file, rehashed only when the file changed.

    Raises :class:`LLMConfigError` when the file is missing or is not a GGUF file.
    """
    if not path.is_file():
        raise LLMConfigError(f"GGUF file not found: {path}")
    with path.open("rb") as handle:
        magic = handle.read(len(_GGUF_MAGIC))
    if magic != _GGUF_MAGIC:
        raise LLMConfigError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    resolved = path.resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:24]
    record = paths.models_dir() / "external" / f"{key}.verified.json"
    recorded = _recorded_sha256(resolved, record)
    return recorded if recorded is not None else _hash_and_record(resolved, record)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


# --- verification records -------------------------------------------------------------------


def _record_path_for(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _in_place_record_path(entry: ModelEntry) -> Path:
    # Site-packages may be read-only, so the record of an in-place file lives in the models dir.
    return paths.models_dir() / f"{entry.name}.verified.json"


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _recorded_sha256(path: Path, record: Path) -> str | None:
    """The sha256 a record holds for ``path`` if the file is unchanged since, else None."""
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
        current = _file_identity(path)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in current.items()):
        return None
    sha = saved.get("sha256")
    return sha if isinstance(sha, str) else None


def _hash_and_record(path: Path, record: Path) -> str:
    sha = file_sha256(path)
    _write_record(path, record, sha)
    return sha


def _write_record(path: Path, record: Path, sha256: str) -> None:
    content = json.dumps({**_file_identity(path), "sha256": sha256}, indent=1)
    record.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_file(record) as handle:
        handle.write(content.encode())


# --- assembly -------------------------------------------------------------------------------


def _verify_in_place(entry: ModelEntry, path: Path) -> Path:
    record = _in_place_record_path(entry)
    sha = _recorded_sha256(path, record)
    if sha is None:
        size = path.stat().st_size
        if size != entry.size_bytes:
            raise LLMConfigError(_mismatch_message(entry, f"{path} has {size:,} bytes"))
        sha = _hash_and_record(path, record)
    if sha != entry.sha256:
        raise LLMConfigError(_mismatch_message(entry, f"{path} has sha256 {sha}"))
    return path


def _assemble(entry: ModelEntry, parts: list[Path], target: Path) -> None:
    total = sum(part.stat().st_size for part in parts)
    if total != entry.size_bytes:
        raise LLMConfigError(_mismatch_message(entry, f"its parts hold {total:,} bytes"))
    free = shutil.disk_usage(target.parent).free
    if free < total:
        raise LLMConfigError(
            f"not enough disk space to assemble {entry.name!r} in {target.parent}: "
            f"needs {total:,} bytes, {free:,} free (set SOCIETAS_HOME to use another directory)"
        )
    log.info("assembling %s from %d parts into %s", entry.name, len(parts), target)
    digest = hashlib.sha256()
    with _atomic_file(target, verify=lambda: _check_digest(entry, digest.hexdigest())) as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)


def _check_digest(entry: ModelEntry, sha: str) -> None:
    if sha != entry.sha256:
        raise LLMConfigError(_mismatch_message(entry, f"the assembled file has sha256 {sha}"))


@contextlib.contextmanager
def _atomic_file(target: Path, verify: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """Write ``target`` via a temporary sibling: fsync, optional ``verify()``, then rename.

    On any error (including a failed verification) the temporary file is removed and ``target``
    is left untouched.
    """
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify()
        os.replace(temp, target)
        _fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (works across processes and threads)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- messages -------------------------------------------------------------------------------


def _missing_parts_message(entry: ModelEntry, missing: list[WeightPart]) -> str:
    absent = [p.requirement for p in missing if importlib.util.find_spec(p.module) is None]
    broken = [p.requirement for p in missing if p.requirement not in absent]
    lines = [f"model {entry.name!r} cannot be used: {len(missing)} weight package(s) missing."]
    if absent:
        lines.append(f"Not installed: {', '.join(absent)}. Install with:")
        lines.append(f"  {entry.pip_install_command(absent)}")
    if broken:
        lines.append(
            f"Installed but without their weight file: {', '.join(broken)}. Reinstall with:"
        )
        lines.append(f"  {entry.pip_install_command(broken, reinstall=True)}")
    return "\n".join(lines)


def _mismatch_message(entry: ModelEntry, found: str) -> str:
    expected = f"{entry.size_bytes:,} bytes, sha256 {entry.sha256}"
    lines = [f"weights of {entry.name!r} do not match the catalog: {found}; expected {expected}."]
    wrong = _wrong_versions(entry)
    if wrong:
        lines.append(f"Installed versions differ from the pinned ones: {', '.join(wrong)}.")
    lines.append(
        f"Reinstall the pinned packages with:\n  {entry.pip_install_command(reinstall=True)}"
    )
    return "\n".join(lines)


def _wrong_versions(entry: ModelEntry) -> list[str]:
    wrong = []
    for part in entry.parts:
        try:
            installed = importlib.metadata.version(part.package)
        except importlib.metadata.PackageNotFoundError:
            continue
        if installed != part.version:
            wrong.append(f"{part.package} {installed} (pinned {part.version})")
    return wrong
