"""``societas audit``: a rule-based coherence report of a recorded run, no model needed.

Each family of checks lives in its own module (plans, actions, dialogue, text); all of them
read the run through :mod:`~societas.measurement.audit.reader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.measurement.audit.actions import action_checks
from societas.measurement.audit.dialogue import dialogue_checks
from societas.measurement.audit.plans import plan_checks
from societas.measurement.audit.reader import AuditInputError, RunRecord, read_run, record_of
from societas.measurement.audit.report import AuditReport, CheckResult, Finding
from societas.measurement.audit.sense import PlanSense, plan_sense
from societas.measurement.audit.text import text_checks
from societas.scenarios.scenario import Scenario, scenario_from_text
from societas.world.errors import ScenarioError, WorldError

# The copy of its scenario that ``societas run`` keeps in every run directory.
RUN_SCENARIO = "scenario.yaml"

__all__ = [
    "AuditInputError",
    "AuditReport",
    "CheckResult",
    "Finding",
    "PlanSense",
    "audit_events",
    "audit_record",
    "audit_run",
    "audit_store",
    "plan_sense_of_run",
]


def audit_record(record: RunRecord) -> AuditReport:
    """Every check of a run read into a :class:`RunRecord`."""
    checks = [
        *plan_checks(record),
        *action_checks(record),
        *dialogue_checks(record),
        *text_checks(record),
    ]
    return AuditReport(run=record.name, agents=len(record.agents), checks=checks)


def audit_store(store: RunStore, scenario: Scenario) -> AuditReport:
    """Audit the run recorded in ``store`` (made from ``scenario``)."""
    return audit_record(read_run(store, scenario, name=str(Path(store.directory))))


def audit_events(events: Sequence[Event], scenario: Scenario, *, name: str = "run") -> AuditReport:
    """Audit events given directly, in the order they were recorded."""
    return audit_record(record_of(events, scenario, name=name))


def audit_run(run_dir: Path) -> AuditReport:
    """Audit the run in ``run_dir`` (see :func:`read_run_dir` for what it needs there)."""
    record = read_run_dir(run_dir)
    return audit_record(record)


def plan_sense_of_run(run_dir: Path) -> PlanSense:
    """The plan sense of the run in ``run_dir``: its planned minutes that pass the audit."""
    record = read_run_dir(run_dir)
    return plan_sense(record, audit_record(record))


def read_run_dir(run_dir: Path) -> RunRecord:
    """The run in ``run_dir`` with the scenario copy it was made from.

    Raises :class:`AuditInputError` when the directory has no readable scenario copy, and
    :class:`~societas.engine.run_schema.RunStoreError` when it holds no run.
    """
    path = run_dir / RUN_SCENARIO
    if not path.is_file():
        raise AuditInputError(f"{run_dir} is not a run directory: it has no {RUN_SCENARIO}")
    try:
        scenario = scenario_from_text(path.read_text(encoding="utf-8"), source=str(path))
    except (ScenarioError, WorldError) as error:
        raise AuditInputError(str(error)) from error
    with RunStore.open(run_dir, readonly=True) as store:
        return read_run(store, scenario, name=str(run_dir))
