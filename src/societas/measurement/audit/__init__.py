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
from societas.measurement.audit.text import text_checks
from societas.world.scenario import Scenario

__all__ = [
    "AuditInputError",
    "AuditReport",
    "CheckResult",
    "Finding",
    "audit_events",
    "audit_record",
    "audit_store",
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
