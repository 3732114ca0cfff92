"""Populations: the agents of an experiment, with the record of how they were made.

:meth:`Population.from_marginals` is the main road: microdata records (the shipped GSS-based
ones by default) are mapped to target variables, raked to the marginals (the shipped US adult
figures by default), ``n`` records are sampled by weight with a seeded generator, and each is
expanded into a persona. The population keeps the raking and sampling reports, so the margins of
the agents actually simulated can be checked against the targets.

Other roads: :meth:`Population.from_csv` (a CSV of people), :meth:`Population.from_twins`
(interview transcripts or biographies, with initial memories) and
:meth:`Population.from_personas`.

Examples
--------
>>> import numpy as np
>>> population = Population.from_marginals(50, np.random.default_rng(1))
>>> len(population), population.raking is not None and population.raking.converged
(50, True)
>>> population.sample.table.query("variable == 'sex'")[["category", "target", "sample"]].shape
(2, 3)
>>> Population.from_state(population.get_state()).to_frame().equals(population.to_frame())
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from societas.agents.persona import Persona
from societas.llm.types import LanguageModel, SamplingParams
from societas.population.microdata import (
    GSS_RECORDS,
    MicrodataMapping,
    apply_mapping,
    data_path,
    load_mapping,
)
from societas.population.personas import (
    NameBank,
    Twin,
    enrich_all,
    load_twins,
    personas_from_csv,
    record_persona,
)
from societas.population.raking import (
    EmptyPolicy,
    Marginals,
    RakingReport,
    Targets,
    as_marginals,
    load_marginals,
    rake,
)
from societas.population.sampling import SampleReport, sample_indices, sample_report

STATE_FORMAT = 1
PERSONA_FIELDS = ["name", "age", "occupation", "traits", "lifestyle", "situation", "background"]


@dataclass(frozen=True)
class RakingOptions:
    """Settings of the raking step (see :func:`societas.population.raking.rake`)."""

    tolerance: float = 1e-6
    max_iterations: int = 500
    trim: tuple[float | None, float | None] | None = None
    empty_categories: EmptyPolicy = "error"


@dataclass(frozen=True)
class Population:
    """Personas, their initial memories (twins), and how they were made.

    ``records`` holds, per persona, the row position of its microdata record (empty when the
    personas did not come from records);
    ``raking`` and ``sample`` are the reports of :meth:`from_marginals` (None otherwise);
    ``origin`` says in words where the personas came from.
    """

    personas: tuple[Persona, ...]
    memories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    records: tuple[int, ...] = ()
    raking: RakingReport | None = None
    sample: SampleReport | None = None
    origin: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.personas]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"persona names must be unique; repeated: {repeated}")
        if self.records and len(self.records) != len(self.personas):
            raise ValueError("records must give one entry per persona")
        unknown = sorted(set(self.memories) - set(names))
        if unknown:
            raise ValueError(f"memories given for unknown personas {unknown}")

    def __len__(self) -> int:
        return len(self.personas)

    def __iter__(self) -> Iterator[Persona]:
        return iter(self.personas)

    def persona(self, name: str) -> Persona:
        """The persona called ``name``."""
        for persona in self.personas:
            if persona.name == name:
                return persona
        raise KeyError(f"no persona named {name!r}")

    def initial_memories(self, name: str) -> list[str]:
        """The texts an agent starts remembering (twins); empty for other personas."""
        return list(self.memories.get(name, ()))

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_marginals(
        cls,
        n: int,
        rng: np.random.Generator,
        *,
        microdata: pd.DataFrame | str | Path | None = None,
        mapping: MicrodataMapping | str | Path | None = None,
        marginals: Marginals | Targets | str | Path | None = None,
        variables: Sequence[str] | None = None,
        replace: bool = False,
        raking: RakingOptions | None = None,
        names: NameBank | None = None,
    ) -> Population:
        """``n`` personas sampled from microdata raked to marginals.

        Defaults: the shipped GSS-based records, ``gss_mapping.yaml`` and the US adult
        marginals; ``variables`` defaults to every mapped variable that has targets. Sampling is
        without replacement, stratified implicitly by the raked variables, unless ``replace``
        (see :mod:`societas.population.sampling`).
        """
        spec = mapping if isinstance(mapping, MicrodataMapping) else load_mapping(mapping)
        records = read_records(microdata, spec)
        mapped = apply_mapping(records, spec, source=records_source(microdata))
        targets = read_marginals(marginals).merged(spec.target_merges())
        options = raking or RakingOptions()
        result = rake(
            mapped,
            targets,
            variables=variables,
            tolerance=options.tolerance,
            max_iterations=options.max_iterations,
            trim=options.trim,
            empty_categories=options.empty_categories,
        )
        raked = list(result.report.table["variable"].unique())
        picks = sample_indices(result.weights, n, rng, replace=replace, sort_by=mapped[raked])
        report = sample_report(
            mapped, picks, result.weights, targets, variables=raked, replace=replace
        )
        personas = expand_records(records, mapped, picks, spec, rng, names)
        return cls(
            personas=tuple(personas),
            records=tuple(int(i) for i in picks),
            raking=result.report,
            sample=report,
            origin=f"{spec.id} records raked to {', '.join(raked)}",
        )

    @classmethod
    def from_csv(
        cls, path: str | Path, rng: np.random.Generator, *, names: NameBank | None = None
    ) -> Population:
        """Personas from a CSV of people (see :func:`~.personas.personas_from_csv`)."""
        personas = personas_from_csv(path, rng, names=names)
        return cls(personas=tuple(personas), origin=f"people from {path}")

    @classmethod
    async def from_twins(
        cls,
        folder: str | Path,
        *,
        llm: LanguageModel | None = None,
        params: SamplingParams | None = None,
    ) -> Population:
        """Twins of the text files in ``folder`` (see :func:`~.personas.load_twins`)."""
        twins = await load_twins(folder, llm=llm, params=params)
        return cls.from_twin_list(twins, origin=f"twins from {folder}")

    @classmethod
    def from_twin_list(cls, twins: Sequence[Twin], *, origin: str = "twins") -> Population:
        return cls(
            personas=tuple(t.persona for t in twins),
            memories={t.persona.name: tuple(t.memories) for t in twins},
            origin=origin,
        )

    @classmethod
    def from_personas(
        cls,
        personas: Sequence[Persona],
        *,
        memories: Mapping[str, Sequence[str]] | None = None,
        origin: str = "given personas",
    ) -> Population:
        return cls(
            personas=tuple(personas),
            memories={k: tuple(v) for k, v in (memories or {}).items()},
            origin=origin,
        )

    async def enriched(
        self, llm: LanguageModel, *, params: SamplingParams | None = None
    ) -> Population:
        """A copy whose personas went through :func:`~.personas.enrich_persona` (one call each)."""
        personas = await enrich_all(llm, self.personas, params=params)
        return Population(
            personas=tuple(personas),
            memories=dict(self.memories),
            records=self.records,
            raking=self.raking,
            sample=self.sample,
            origin=self.origin,
        )

    # --- views and state --------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per persona: the persona fields (traits joined by '; '), the demographics
        (one column each, in order of first appearance) and ``record`` (row of the microdata)."""
        rows = []
        for index, persona in enumerate(self.personas):
            row: dict[str, Any] = {f: getattr(persona, f) for f in PERSONA_FIELDS}
            row["traits"] = "; ".join(persona.traits)
            row.update(persona.demographics)
            row["record"] = self.records[index] if self.records else None
            rows.append(row)
        columns = list(dict.fromkeys([*PERSONA_FIELDS, *(k for r in rows for k in r)]))
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """How the population was made, with the raking and sampling figures."""
        lines = [f"{len(self)} personas: {self.origin}"]
        if self.raking is not None:
            lines.append(self.raking.summary())
        if self.sample is not None:
            lines.append(self.sample.summary())
        return "\n".join(lines)

    def get_state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "personas": [p.model_dump(mode="json") for p in self.personas],
            "memories": {name: list(texts) for name, texts in self.memories.items()},
            "records": list(self.records),
            "raking": self.raking.get_state() if self.raking is not None else None,
            "sample": self.sample.get_state() if self.sample is not None else None,
            "origin": self.origin,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Population:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown population state format {state.get('format')!r}")
        return cls(
            personas=tuple(Persona.model_validate(p) for p in state["personas"]),
            memories={str(k): tuple(str(t) for t in v) for k, v in state["memories"].items()},
            records=tuple(int(r) for r in state["records"]),
            raking=RakingReport.from_state(state["raking"]) if state["raking"] else None,
            sample=SampleReport.from_state(state["sample"]) if state["sample"] else None,
            origin=str(state["origin"]),
        )


def read_records(
    microdata: pd.DataFrame | str | Path | None, spec: MicrodataMapping
) -> pd.DataFrame:
    if isinstance(microdata, pd.DataFrame):
        return microdata
    return spec.load(microdata if microdata is not None else data_path(GSS_RECORDS))


def records_source(microdata: pd.DataFrame | str | Path | None) -> str:
    if isinstance(microdata, pd.DataFrame):
        return "records"
    return str(microdata) if microdata is not None else GSS_RECORDS


def read_marginals(marginals: Marginals | Targets | str | Path | None) -> Marginals:
    if marginals is None or isinstance(marginals, str | Path):
        return load_marginals(marginals)
    return as_marginals(marginals)


def expand_records(
    records: pd.DataFrame,
    mapped: pd.DataFrame,
    picks: np.ndarray[Any, Any],
    spec: MicrodataMapping,
    rng: np.random.Generator,
    names: NameBank | None,
) -> list[Persona]:
    """A persona for every picked record (a record picked twice gives two personas)."""
    taken: set[str] = set()
    raw = records.iloc[picks].to_dict(orient="records")
    targets = mapped.iloc[picks].to_dict(orient="records")
    return [
        record_persona(
            {str(k): v for k, v in record.items()},
            spec.persona,
            rng,
            mapped={str(k): str(v) for k, v in target.items()},
            names=names,
            taken=taken,
            source=f"record {records.index[pick]}",
        )
        for record, target, pick in zip(raw, targets, picks, strict=True)
    ]
