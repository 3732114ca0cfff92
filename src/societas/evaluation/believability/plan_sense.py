"""Plan sense beside plan recall: whether the plans an evaluation asks about make sense.

Plan recall (the ``plans`` category) grades an agent's answer against its own plan, so an absurd
plan repeated back scores well. Plan sense grades the plans themselves, by the coherence audit's
plan checks (meal times, repeated meals, other households' homes, over-long blocks, routine
anchors), with no model: the share of planned minutes that no check found wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from societas.engine.run_schema import RunStoreError
from societas.measurement.audit import AuditInputError, plan_sense_of_run


def plan_sense_json(run_dir: str | Path) -> dict[str, Any]:
    """The run's plan sense as the evaluation report writes it; ``score`` None with a
    ``note`` when the run cannot be read."""
    try:
        sense = plan_sense_of_run(Path(run_dir))
    except (AuditInputError, RunStoreError) as error:
        return {"score": None, "note": f"no plan sense: {error}"}
    return {**sense.model_dump(mode="json"), "note": sense.describe()}
