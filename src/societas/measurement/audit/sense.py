"""Plan sense: the share of planned minutes that no plan check of the audit found wrong.

It is the audit's plan checks (meal times, repeated meals, other households' homes, over-long
blocks, minutes away from work in work hours) folded into one figure, for the believability
evaluation to show beside plan recall: an absurd plan repeated back word for word recalls well
but makes no sense. Each planned minute counts once however many checks flag it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from societas.measurement.audit.plans import FAMILY
from societas.measurement.audit.reader import RunRecord
from societas.measurement.audit.report import AuditReport

# Plan checks that do not count planned minutes, shown beside the score instead.
_COUNTED_APART = ("wake_anchor",)


class PlanSense(BaseModel):
    """``sensible_minutes`` of ``planned_minutes`` free of findings; the checks' own figures."""

    score: float | None = Field(description="sensible / planned minutes; None: no plan")
    sensible_minutes: float
    planned_minutes: float
    checks: dict[str, str] = Field(description="each plan check's figure (k/N unit)")
    routine_checked: bool = Field(description="whether routine anchors could be checked")

    def describe(self) -> str:
        if self.score is None:
            return "plan sense: no plan recorded"
        anchors = "" if self.routine_checked else "; routine anchors not checked"
        return (
            f"plan sense {self.score:.2f} ({self.sensible_minutes:g}/{self.planned_minutes:g} "
            f"planned minutes without a finding{anchors})"
        )


def plan_sense(record: RunRecord, report: AuditReport) -> PlanSense:
    """The plan sense of the run in ``record``, from its audit ``report``."""
    blocks = {
        (plan.agent, f"{plan.day} {block.span()}"): block.minutes
        for plan in record.final_plans()
        for block in plan.blocks
    }
    flagged: dict[tuple[str, str], float] = {}
    checks = [c for c in report.checks if c.family == FAMILY]
    for check in checks:
        if not check.checked or check.name in _COUNTED_APART:
            continue
        for finding in check.all_findings:
            key = (finding.agent or "", finding.when)
            if key in blocks:  # work hours left out of the plan are not planned minutes
                flagged[key] = min(max(flagged.get(key, 0.0), finding.amount), blocks[key])
    planned = float(sum(blocks.values()))
    sensible = planned - sum(flagged.values())
    return PlanSense(
        score=None if planned <= 0 else round(sensible / planned, 4),
        sensible_minutes=round(sensible, 3),
        planned_minutes=planned,
        checks={check.name: check.figure() for check in checks},
        routine_checked=all(c.checked for c in checks if c.name.endswith("_anchor")),
    )
