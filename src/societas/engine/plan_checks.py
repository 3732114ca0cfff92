"""How often plans broke the rules: the run summary's count of checks, repairs and fallbacks.

Every plan an agent makes (a day plan, a replan, an agreement laid over a plan) is checked by
rules and recorded as a ``plan_check`` event. The denominator is every check, so a run whose
plans all fall back to the routine cannot pass for one whose plans were sound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

PLAN_CHECK_KINDS = ("plan_check", "commitment_decision")


class PlanChecks(BaseModel):
    """Counts over a run's ``plan_check`` events (``k`` of ``checked`` plans)."""

    checked: int = 0
    violating: int = 0
    repaired: int = 0
    fell_back: int = 0
    fallback_slots: dict[str, int] = Field(default_factory=dict)
    text_fixes: int = 0
    declined: int = 0
    decided: int = 0

    def describe(self) -> str:
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.fallback_slots.items()))
        return (
            f"Plans: {self.checked} checked, {self.violating} broke a rule, {self.repaired} "
            f"repair requests, {self.fell_back} fell back to the routine"
            + (f" ({rules})" if rules else "")
            + f"; {self.text_fixes} texts repaired; appointments: {self.declined} of "
            f"{self.decided} declined"
        )


def plan_checks(events: Iterable[Any]) -> PlanChecks:
    """Totals of the ``plan_check`` and ``commitment_decision`` events among ``events``."""
    totals = PlanChecks()
    slots: Counter[str] = Counter()
    for event in events:
        data = event.data
        if event.kind == "plan_check":
            totals.checked += 1
            totals.violating += bool(data.get("violations"))
            totals.repaired += bool(data.get("repaired"))
            totals.fell_back += bool(data.get("fallbacks"))
            totals.text_fixes += int(data.get("text_fixes", 0))
            slots.update(str(f.get("rule", "")) for f in data.get("fallbacks", []))
        elif event.kind == "commitment_decision":
            totals.decided += 1
            totals.declined += not data.get("go", True)
    totals.fallback_slots = dict(slots)
    return totals
