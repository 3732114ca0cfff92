"""Populations of agents that follow real joint distributions.

Microdata records with a real joint structure (:mod:`.microdata`) are raked to official margins
(:mod:`.raking`), sampled by weight (:mod:`.sampling`) and expanded into personas
(:mod:`.personas`); :class:`Population` (:mod:`.sources`) ties the steps together and keeps their
reports. Shipped data (``population/data``): GSS-based demographic records (MIT notice in
``LICENSE-genagents.txt``), US adult marginals with their sources, the mapping between them, and
name lists.
"""

from societas.population.microdata import (
    MicrodataError,
    MicrodataMapping,
    PersonaRules,
    VariableMap,
    apply_mapping,
    load_gss_records,
    load_mapping,
    load_microdata,
)
from societas.population.personas import (
    NameBank,
    PersonaSourceError,
    Twin,
    enrich_persona,
    load_twin,
    load_twins,
    personas_from_csv,
    record_persona,
    split_memories,
    twin_from_text,
)
from societas.population.raking import (
    Marginals,
    RakingError,
    RakingReport,
    RakingResult,
    RakingWarning,
    load_marginals,
    rake,
)
from societas.population.sampling import SampleReport, SamplingError, sample_indices, sample_report
from societas.population.sources import Population, RakingOptions

__all__ = [
    "Marginals",
    "MicrodataError",
    "MicrodataMapping",
    "NameBank",
    "PersonaRules",
    "PersonaSourceError",
    "Population",
    "RakingError",
    "RakingOptions",
    "RakingReport",
    "RakingResult",
    "RakingWarning",
    "SampleReport",
    "SamplingError",
    "Twin",
    "VariableMap",
    "apply_mapping",
    "enrich_persona",
    "load_gss_records",
    "load_mapping",
    "load_marginals",
    "load_microdata",
    "load_twin",
    "load_twins",
    "personas_from_csv",
    "rake",
    "record_persona",
    "sample_indices",
    "sample_report",
    "split_memories",
    "twin_from_text",
]
