"""The audit's result: one line per check, each a count of findings over what was checked.

A check that could not be made (no routine recorded, nothing of its kind in the run) says so
and counts as not checked rather than as passed, so a report cannot look clean by having
looked at nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, PrivateAttr

EXAMPLES_KEPT = 5


class Finding(BaseModel):
    """One defect: who, when (ISO time or "date HH:MM-HH:MM"), and what was wrong."""

    agent: str | None
    when: str
    detail: str
    amount: float = Field(default=1.0, description="how much it counts (1, or minutes)")


class CheckResult(BaseModel):
    """One check: ``findings`` (in ``unit``) out of ``denominator`` of them that were checked."""

    name: str
    family: str
    description: str
    unit: str = Field(description="what findings and denominator count, e.g. planned minutes")
    findings: float
    denominator: float
    checked: bool = True
    note: str = ""
    examples: list[Finding] = Field(default_factory=list)
    cases: int = Field(default=0, description="how many things were found wrong (blocks, lines...)")
    # Every finding, for figures computed over them (the plan sense); not saved.
    _all: list[Finding] = PrivateAttr(default_factory=list)

    @property
    def all_findings(self) -> list[Finding]:
        """Every finding of this run (the saved report keeps only the first few)."""
        return list(self._all) if self._all else list(self.examples)

    @property
    def rate(self) -> float | None:
        """Findings per unit checked; None when nothing was checked."""
        if not self.checked or self.denominator <= 0:
            return None
        return self.findings / self.denominator

    def figure(self) -> str:
        """``k/N unit (r%)``, or why there is no figure."""
        if not self.checked:
            return f"not checked: {self.note}"
        rate = self.rate
        share = ": none in the run" if rate is None else f" ({rate:.1%})"
        figure = f"{_number(self.findings)}/{_number(self.denominator)} {self.unit}{share}"
        return figure + (f"; {self.note}" if self.note and rate is not None else "")


def check_result(
    name: str,
    family: str,
    description: str,
    unit: str,
    findings: list[Finding],
    denominator: float,
) -> CheckResult:
    """A checked result from its findings (their amounts are summed)."""
    result = CheckResult(
        name=name,
        family=family,
        description=description,
        unit=unit,
        findings=round(sum(f.amount for f in findings), 3),
        denominator=round(denominator, 3),
        examples=findings[:EXAMPLES_KEPT],
        cases=len(findings),
    )
    result._all = list(findings)
    return result


def not_checked(name: str, family: str, description: str, unit: str, why: str) -> CheckResult:
    """A check that could not be made on this run, and why."""
    return CheckResult(
        name=name,
        family=family,
        description=description,
        unit=unit,
        findings=0,
        denominator=0,
        checked=False,
        note=why,
    )


class AuditReport(BaseModel):
    """Every check of a run; ``model_dump_json()`` is the ``--json`` output."""

    run: str
    agents: int
    checks: list[CheckResult]

    def check(self, name: str) -> CheckResult:
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(f"no audit check {name!r}; known: {[c.name for c in self.checks]}")

    @property
    def total_findings(self) -> int:
        """How many defects were found, each counted once (a block, a line, a memory)."""
        return sum(result.cases for result in self.checks)

    def describe(self, *, examples: int = 1) -> str:
        """A plain-text table: check, figure, and up to ``examples`` findings of each."""
        width = max(len(result.name) for result in self.checks) if self.checks else 0
        lines = [f"Coherence audit of {self.run} ({self.agents} agents)"]
        for result in self.checks:
            lines.append(f"  {result.name:<{width}}  {result.figure()}")
            for finding in result.examples[:examples]:
                who = f"{finding.agent}, " if finding.agent else ""
                lines.append(f"  {'':<{width}}    e.g. {who}{finding.when}: {finding.detail}")
        not_made = [r.name for r in self.checks if not r.checked]
        if not_made:
            lines.append(f"  not checked ({len(not_made)}): {', '.join(not_made)}")
        return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
