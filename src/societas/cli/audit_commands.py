"""``societas audit``: the coherence report of a recorded run (rules only, no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from societas.durable import write_atomic
from societas.engine.run_schema import RunStoreError
from societas.measurement.audit import AuditInputError, AuditReport, audit_run

AUDIT_FILE = "audit.json"

console = Console()


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (finished or not).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    examples: Annotated[
        int, typer.Option("--examples", min=0, max=5, help="Findings shown per check.")
    ] = 1,
) -> None:
    """Check a run's plans, actions, dialogue and texts for incoherence, by rule.

    Every check gives its findings over what it checked (planned minutes, lines, memories...);
    a check that could not be made says so instead of passing.
    """
    try:
        report = audit_run(run_dir)
    except (AuditInputError, RunStoreError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    print_audit(report, console, examples=examples)


def audit_table(report: AuditReport) -> Table:
    """The report as a table: one row per check, its findings over what it checked."""
    table = Table(title=f"Coherence audit: {report.run} ({report.agents} agents)")
    table.add_column("check", no_wrap=True)
    table.add_column("found", justify="right", no_wrap=True)
    table.add_column("of", justify="right", no_wrap=True)
    table.add_column("unit")
    table.add_column("rate", justify="right", no_wrap=True)
    for check in report.checks:
        if not check.checked:
            table.add_row(check.name, "-", "-", check.unit, "not checked")
            continue
        rate = check.rate
        table.add_row(
            check.name,
            f"{check.findings:g}",
            f"{check.denominator:g}",
            check.unit,
            "none to check" if rate is None else f"{rate:.1%}",
        )
    return table


def print_audit(report: AuditReport, out: Console, *, examples: int = 1) -> None:
    """The table, then up to ``examples`` findings of each check."""
    out.print(audit_table(report))
    for check in report.checks:
        if check.note:
            out.print(f"  {check.name}: {check.note}", highlight=False)
    for check in report.checks:
        for finding in check.examples[:examples]:
            who = f"{finding.agent}, " if finding.agent else ""
            out.print(f"  {check.name}: {who}{finding.when}: {finding.detail}", highlight=False)


def save_run_audit(run_dir: Path) -> AuditReport | str:
    """Audit a run and save the report beside its summary; a run that cannot be audited gives
    the reason instead."""
    try:
        report = audit_run(run_dir)
    except (AuditInputError, RunStoreError) as error:
        return str(error)
    write_atomic(run_dir / AUDIT_FILE, report.model_dump_json(indent=2))
    return report


def print_run_audit(run_dir: Path, out: Console) -> None:
    """The audit at the end of a run: its table, and the report saved beside the summary."""
    report = save_run_audit(run_dir)
    if isinstance(report, str):
        out.print(f"[yellow]no coherence audit: {report}[/yellow]")
        return
    print_audit(report, out, examples=1)
