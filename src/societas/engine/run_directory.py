"""What a run directory holds, and where a run that stopped (killed, crashed) takes up again.

A run directory holds the copy of its scenario (``scenario.yaml``), then the run store
(``run.sqlite``), written in that order and each whole or absent; ``summary.json`` comes at the
end. A process may be killed at any moment, so a resume meets one of these:

- no run store: the run was stopped before it recorded anything. Nothing says how it was
  started (model, hours, seed), so :func:`check_resumable` says so and how to start it again;
- a run store without a checkpoint: it was stopped while its agents were set up (the first
  checkpoint holds them). Its metadata says how it was started, so it starts again from the
  beginning (:func:`restart_meta`) and ends as a run never stopped would;
- a run store with checkpoints: it goes on from the last one (anything recorded after it is
  dropped and recorded again), whatever step, checkpoint or bookkeeping was cut short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from societas.engine.config import SimulationConfig
from societas.engine.run_schema import DB_NAME, RunStoreError
from societas.engine.runstore import RunStore

SCENARIO_COPY = "scenario.yaml"
SUMMARY_FILE = "summary.json"

# Metadata every run store gets from the scenario and the config when it is created
# (:func:`~societas.engine.run_meta.run_meta`); a restart computes them afresh.
_DERIVED_META = frozenset(
    {"scenario", "seed", "config", "start_time", "minutes_per_step", "agents", "map", "status"}
)


class RunNeverStartedError(RunStoreError):
    """The folder holds no run store: the run was stopped before it recorded anything."""


def check_resumable(run_dir: Path) -> None:
    """Raise :class:`RunStoreError` in plain words if ``run_dir`` holds no run to take up."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunStoreError(f"{run_dir} is a file; pass the output directory of a run")
    if not (run_dir / DB_NAME).is_file():
        where = "in" if run_dir.exists() else "in (or even create)"
        raise RunNeverStartedError(
            f"{run_dir} holds no run: if one was started there, it never started (it was "
            f"stopped before it recorded anything {where} {run_dir}). Run it again with "
            f"`societas run SCENARIO --out {run_dir}` and the options you used before"
        )
    if not (run_dir / SCENARIO_COPY).is_file():
        # Only a run store written before the scenario copy came first can lack it.
        raise RunStoreError(
            f"{run_dir} has a run store but no {SCENARIO_COPY} (the copy of its scenario, which "
            f"this version writes first); copy the scenario file it was started from to "
            f"{run_dir / SCENARIO_COPY} and resume again"
        )


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` got past its start (its agents are in a checkpoint)."""
    with RunStore.open(run_dir, readonly=True) as store:
        return bool(store.checkpoint_steps())


def restart_meta(run_dir: Path) -> tuple[SimulationConfig, dict[str, Any]]:
    """The config and the caller's metadata (model, budget, end time...) of a run that
    stopped before its first checkpoint, to start it again exactly as it was started."""
    with RunStore.open(run_dir, readonly=True) as store:
        meta = store.meta()
    if meta.get("forked_from"):
        # A fork starts from another run's state, not from its scenario: that state is gone.
        raise RunStoreError(
            f"{run_dir} is a fork of {meta['forked_from']} that was stopped before its first "
            "checkpoint; fork that run again"
        )
    try:
        config = SimulationConfig.model_validate(meta.get("config") or {})
    except ValueError as exc:
        raise RunStoreError(f"the config saved in {run_dir / DB_NAME} is not valid: {exc}") from exc
    extra = {key: value for key, value in meta.items() if key not in _DERIVED_META}
    return config, extra
