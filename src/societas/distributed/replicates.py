"""Replicates of a whole experiment: the same file run again with seeds derived from its own.

Replicate 0 is the experiment as written (its seed, its folder when it is the only one);
replicate ``r`` draws its seed from the file's seed and ``r``, so a set of replicates is itself
reproducible. Each replicate writes a complete experiment folder, ``replicate-RR`` inside the
output folder, whose ``experiment.yaml`` holds the seed it ran with.

Examples
--------
>>> replicate_seed(7, 0)
7
>>> replicate_seed(7, 1) == replicate_seed(7, 1) != replicate_seed(7, 2)
True
>>> replicate_folder(Path("out"), 1, 3).as_posix()
'out/replicate-01'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from societas.experiments.spec import ExperimentSpec, experiment_from_text

SEED_BITS = 0xFFFF_FFFF_FFFF_FFFF


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of replicate ``replicate`` of an experiment seeded ``seed``."""
    if replicate == 0:
        return seed
    state = np.random.SeedSequence([seed & SEED_BITS, replicate]).generate_state(1)
    return int(state[0])


def replicate_spec(spec: ExperimentSpec, replicate: int) -> ExperimentSpec:
    """``spec`` with the seed of ``replicate`` (its file text rewritten to say so)."""
    if replicate == 0:
        return spec
    data = yaml.safe_load(spec.source_text) if spec.source_text else spec.model_dump(mode="json")
    data["seed"] = replicate_seed(spec.seed, replicate)
    text = f"# replicate {replicate} of {spec.name} (seed {spec.seed})\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True
    )
    return experiment_from_text(text, f"{spec.name} replicate {replicate}", spec.resolve("."))


def replicate_folder(out: Path, replicate: int, replicates: int) -> Path:
    """Where a replicate writes: ``out`` itself when there is only one."""
    return out if replicates == 1 else out / f"replicate-{replicate:02d}"
