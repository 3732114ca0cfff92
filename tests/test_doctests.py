"""Every example in the package's docstrings runs and prints what it shows (``doctest``).

The modules are found by reading the files, so collecting these tests imports nothing; each test
imports one module (optional extras such as Ray are imported lazily by the code that needs them)
and runs its examples in a temporary working directory and ``SOCIETAS_HOME``. Examples use the
scripted ``fake:`` model and no network; one that needs a real model or server is marked
``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

PACKAGE = "societas"
# ``python -m societas`` runs the command line when imported.
NOT_IMPORTED = {"societas.__main__"}


def package_root() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations, f"{PACKAGE} is not importable"
    return Path(next(iter(spec.submodule_search_locations)))


def modules_with_examples() -> list[str]:
    root = package_root()
    names = []
    for path in sorted(root.rglob("*.py")):
        if ">>>" not in path.read_text(encoding="utf-8"):
            continue
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if name not in NOT_IMPORTED:
            names.append(name)
    return names


MODULES = modules_with_examples()


def test_the_package_has_examples() -> None:
    assert len(MODULES) >= 50, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_hold(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))  # caches and weights stay here
    module = importlib.import_module(name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert tests, f"{name} has '>>>' in its source but no example doctest can find"
    report: list[str] = []
    runner = doctest.DocTestRunner(verbose=False)
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
