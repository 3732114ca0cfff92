"""The package's layers only point down, and no package reaches into another's private names.

Every module of ``src/societas`` is parsed (not imported), and every import in it is checked:
module-level ones, ones inside functions and ones under ``if TYPE_CHECKING:`` alike, since each
is a dependency a reader must follow. A module may import its own layer or a lower one; a name
starting with one underscore belongs to its package, so another package may not import it (nor
reach it as ``module._name`` through an imported module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import societas

ROOT = Path(societas.__file__).parent
PACKAGE = "societas"

# Bottom first. A top-level module or package missing here fails the test: give it a layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    # The bottom: the neutral top-level modules share it with llm, memory and world (prompts.py
    # renders llm.types messages).
    ("llm", "memory", "world", "durable", "paths", "prompts", "concurrency", "failpoints"),
    ("agents",),
    ("scenarios",),  # scenario files: a world plus its residents (personas)
    ("engine",),
    ("measurement",),
    ("population", "experiments", "evaluation"),
    ("distributed", "viewer", "cli"),
    ("testing",),  # harnesses for crash tests and benchmarks; production never imports them
    ("__init__", "__main__"),  # the package itself and ``python -m societas``
)
# Numbered from 1 at the bottom, as in docs/architecture.md.
LAYER_OF = {name: index for index, names in enumerate(LAYERS, start=1) for name in names}


@dataclass(frozen=True)
class Import:
    """One import of a societas module: where it is, what it names."""

    path: str  # relative to the package root, e.g. "world/state.py"
    line: int
    module: str  # absolute dotted module, e.g. "societas.world.places"
    names: tuple[str, ...]  # for ``from M import a, b``; empty for ``import M``

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def top_of(relative: Path) -> str:
    """The top-level package or module a file belongs to: ``engine``, ``paths``, ``__init__``."""
    return relative.parts[0].removesuffix(".py")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_module(dotted: str) -> bool:
    """Whether ``societas.a.b`` is a module or package of the source tree."""
    parts = dotted.split(".")[1:]
    base = ROOT.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def absolute(node: ast.ImportFrom, relative: Path) -> str:
    """The absolute module of ``from ... import``, resolving relative imports."""
    if node.level == 0:
        return node.module or ""
    package = [PACKAGE, *relative.parent.parts]
    if relative.name == "__init__.py" and node.level == 1:
        base = package
    else:
        base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_in(text: str, relative: Path) -> Iterator[Import]:
    """The societas imports of the source ``text`` of the file at ``relative`` (to the root)."""
    tree = ast.parse(text, filename=str(relative))
    path = relative.as_posix()
    # Names bound to another module of the package, to catch ``module._private`` uses.
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield Import(path, node.lineno, alias.name, ())
                    if alias.asname:
                        bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, relative)
            if module != PACKAGE and not module.startswith(PACKAGE + "."):
                continue
            names = tuple(alias.name for alias in node.names)
            # ``from societas.x import y`` where y is a module imports that module.
            submodules = [name for name in names if is_module(f"{module}.{name}")]
            for name in submodules:
                yield Import(path, node.lineno, f"{module}.{name}", ())
            for alias in node.names:
                if alias.name in submodules:
                    bound[alias.asname or alias.name] = f"{module}.{alias.name}"
            others = tuple(name for name in names if name not in submodules)
            if others or not submodules:
                yield Import(path, node.lineno, module, others)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and is_private(node.attr)
        ):
            yield Import(path, node.lineno, bound[node.value.id], (node.attr,))


def problems_of(found: Import) -> list[str]:
    own = top_of(Path(found.path))
    parts = found.module.split(".")
    target = parts[1] if len(parts) > 1 else "__init__"
    if target == own:
        return []
    problems = []
    if target == "__init__":
        # The package root holds only its metadata (``__version__``); anything else there would
        # be a module above every layer.
        if any(not (name.startswith("__") and name.endswith("__")) for name in found.names):
            problems.append(f"{found.where()}: imports {found.names} from the package root")
    elif LAYER_OF[target] > LAYER_OF[own]:
        problems.append(
            f"{found.where()}: {own} (layer {LAYER_OF[own]}) imports {found.module} "
            f"({target}, layer {LAYER_OF[target]}): a higher layer"
        )
    private = [part for part in parts[2:] if is_private(part)]
    private += [name for name in found.names if is_private(name)]
    if private:
        problems.append(
            f"{found.where()}: imports private {', '.join(private)} of another package "
            f"({found.module})"
        )
    return problems


def imports_of(file: Path) -> Iterator[Import]:
    return imports_in(file.read_text(encoding="utf-8"), file.relative_to(ROOT))


def source_files() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unknown = sorted({top_of(f.relative_to(ROOT)) for f in source_files()} - set(LAYER_OF))
    assert not unknown, f"no layer for {unknown}: add them to LAYERS in tests/test_layers.py"


def test_imports_only_point_down_and_never_at_private_names() -> None:
    problems = [
        problem
        for file in source_files()
        if top_of(file.relative_to(ROOT)) in LAYER_OF
        for found in imports_of(file)
        for problem in problems_of(found)
    ]
    layers = " < ".join("/".join(names) for names in LAYERS)
    assert not problems, f"{len(problems)} import(s) break the layers ({layers}):\n" + "\n".join(
        problems
    )


def test_the_check_sees_upward_private_and_hidden_imports() -> None:
    """The checker itself: an upward import inside a function or a TYPE_CHECKING block, and a
    private name reached through an imported module of another package, are all reported."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "from societas.world import places\n"
        "from societas.llm import registry\n"
        "if TYPE_CHECKING:\n"
        "    from societas.engine.config import SimulationConfig\n"
        "def f() -> None:\n"
        "    import societas.agents.agent\n"
        "    from societas.llm.client import _private\n"
        "    registry._hidden\n"
        "    places._same_package_is_fine\n"
        "    from societas import __version__\n"
    )
    found = list(imports_in(code, Path("world", "sample.py")))
    problems = [problem for item in found for problem in problems_of(item)]
    assert problems == [
        "world/sample.py:5: world (layer 1) imports societas.engine.config (engine, layer 4): "
        "a higher layer",
        "world/sample.py:7: world (layer 1) imports societas.agents.agent (agents, layer 2): "
        "a higher layer",
        "world/sample.py:8: imports private _private of another package (societas.llm.client)",
        "world/sample.py:9: imports private _hidden of another package (societas.llm.registry)",
    ]
