"""``societas evaluate`` and ``ablate``: believability interviews of runs, and ablations."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from societas.cli.output import (
    JsonOption,
    emit_json,
    json_mode_for_command,
    print_table,
    whole_table,
)
from societas.cli.server_options import BaseUrlOption, EndpointsOption
from societas.engine.run_schema import RunStoreError
from societas.evaluation.believability.ablation import EVALUATION_FOLDER, run_ablations
from societas.evaluation.believability.facts import EvaluationError, read_run
from societas.evaluation.believability.interviews import Evaluation, evaluate_run
from societas.evaluation.believability.judge_choice import choose_judge
from societas.evaluation.believability.plan_sense import plan_sense_json
from societas.evaluation.believability.questions import DEFAULT_PER_CATEGORY
from societas.evaluation.believability.report import evaluation_tables, write_evaluation
from societas.llm.client import LLM
from societas.llm.registry import DEFAULT_MODEL, open_llm
from societas.llm.types import LanguageModel, LLMError
from societas.scenarios.scenario import load_scenario
from societas.world.errors import ScenarioError, WorldError

console = Console()

JudgeOption = Annotated[
    str | None,
    typer.Option(
        "--judge-model",
        "--judge",
        help="Model grading free answers (evaluate default: a fit installed model other than "
        "--model, else --model; ablate default: --model).",
    ),
]
PerCategoryOption = Annotated[
    int,
    typer.Option("--per-category", min=1, max=10, help="Questions per category and agent."),
]
# Where ``openai:`` models are served: a URL (or several) and an endpoints file.
Server = tuple[str | None, Path | None]


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("ablate")(ablate)


def evaluate(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Answering model (default: the run's).")
    ] = None,
    judge_model: JudgeOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the tables and report, or a .json/.csv/.html file."),
    ] = None,
    per_category: PerCategoryOption = DEFAULT_PER_CATEGORY,
    seed: Annotated[int, typer.Option("--seed", help="Seeds question choice and bootstrap.")] = 0,
    controls: Annotated[
        bool,
        typer.Option(
            "--controls/--no-controls",
            help="Also interview a shuffled-memory and a no-memory stand-in of every agent "
            "(the score's negative controls; about triples the calls).",
        ),
    ] = True,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Interview every agent of RUN_DIR in five categories and grade the answers."""
    json_mode_for_command(ctx, console, as_json)
    try:
        facts, _ = read_run(run_dir)
    except EvaluationError as error:
        _fail(str(error))
    answering = model or facts.model or DEFAULT_MODEL
    target = out or run_dir / EVALUATION_FOLDER
    evaluation: Evaluation = _run_async(
        _evaluate(
            run_dir, answering, judge_model, (base_url, endpoints), per_category, seed, controls
        )
    )
    try:
        files = write_evaluation(evaluation, target, seed=seed)
    except (EvaluationError, OSError) as error:
        _fail(str(error))
    if as_json:
        summary, tables = evaluation_tables(evaluation, seed)
        emit_json(
            {
                "run_dir": str(run_dir),
                "by_category": tables["by_category"].to_dict(orient="records"),
                "summary": asdict(summary),
                "written": [str(f) for f in files],
            }
        )
        return
    _print_evaluation(evaluation, seed)
    console.print(plan_sense_json(run_dir)["note"], highlight=False)  # beside plan recall
    console.print(f"\nWritten: {', '.join(str(f) for f in files)}")


async def _evaluate(
    run_dir: Path,
    model: str,
    judge_model: str | None,
    server: Server,
    per_category: int,
    seed: int,
    controls: bool = True,
) -> Evaluation:
    base_url, endpoints = server
    async with AsyncExitStack() as stack:

        async def opened(name: str) -> LanguageModel:
            return await stack.enter_async_context(
                open_llm(name, base_url=base_url, endpoints=endpoints)
            )

        llm = await opened(model)
        console.print("Calibrating the judge on the shipped graded examples ...")
        judge, report = await choose_judge(model, llm, opened, explicit=judge_model)
        return await evaluate_run(
            run_dir,
            llm,
            judge=judge,
            max_per_category=per_category,
            seed=seed,
            model_name=model,
            judge_name=report.model,
            controls=controls,
            judge_report=report,
        )


async def _models(
    stack: AsyncExitStack, model: str, judge_model: str | None, server: Server
) -> tuple[LLM, LanguageModel]:
    base_url, endpoints = server
    llm = await stack.enter_async_context(open_llm(model, base_url=base_url, endpoints=endpoints))
    if judge_model is None or judge_model == model:
        return llm, llm
    judge = await stack.enter_async_context(
        open_llm(judge_model, base_url=base_url, endpoints=endpoints)
    )
    return llm, judge


def ablate(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="A scenario file or a built-in name.")] = "town",
    hours: Annotated[float, typer.Option("--hours", min=0.1, max=24 * 14)] = 2.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    model: Annotated[str, typer.Option("--model", "-m")] = DEFAULT_MODEL,
    judge_model: JudgeOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder.")] = None,
    per_category: PerCategoryOption = DEFAULT_PER_CATEGORY,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run SCENARIO with the full architecture and three ablations (same seed), interview each.

    Writes OUT/<condition>/ (the run and its evaluation) and OUT/ablation.csv, ablation.json and
    report.html; rerunning into OUT reuses finished runs and resumes unfinished ones.
    """
    json_mode_for_command(ctx, console, as_json)
    try:
        loaded = load_scenario(scenario)
    except (ScenarioError, WorldError) as error:
        _fail(str(error))
    out_dir = out or Path("runs") / f"ablate-{Path(scenario).stem}-seed{seed}"
    table = _run_async(
        _ablate(
            loaded, out_dir, hours, seed, model, judge_model, per_category, (base_url, endpoints)
        )
    )
    if as_json:
        report = str(out_dir / "report.html")
        emit_json({"conditions": table.to_dict(orient="records"), "report": report})
        return
    rows = [
        (
            str(row.label),
            _ci(row, "overall"),
            f"{row.hallucination_rate:.2f}",
            "" if row.condition == "full" else _ci(row, "full_minus_this"),
        )
        for row in table.itertuples()
    ]
    headers = ("condition", "overall [95% CI]", "hallucination", "full − this [95% CI]")
    print_table(console, whole_table(headers, rows))
    console.print(f"Report: {out_dir / 'report.html'}")


async def _ablate(
    scenario: Any,
    out_dir: Path,
    hours: float,
    seed: int,
    model: str,
    judge_model: str | None,
    per_category: int,
    server: Server,
) -> Any:
    async with AsyncExitStack() as stack:
        llm, judge = await _models(stack, model, judge_model, server)
        result = await run_ablations(
            scenario,
            out_dir,
            llm,
            hours=hours,
            seed=seed,
            judge=judge,
            model_name=model,
            judge_name=judge_model or model,
            max_per_category=per_category,
            meter=llm.meter,
            on_status=lambda message: console.print(message),
        )
        return result.table


def _ci(row: Any, name: str) -> str:
    value, low, high = (getattr(row, f) for f in (name, f"{name}_low", f"{name}_high"))
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def _print_evaluation(evaluation: Evaluation, seed: int) -> None:
    _, tables = evaluation_tables(evaluation, seed)
    rows = [
        (str(row.category), f"{row.mean:.2f}", f"[{row.low:.2f}, {row.high:.2f}]", str(row.answers))
        for row in tables["by_category"].itertuples()
    ]
    headers = ("category", "mean", "95% CI", "answers")
    print_table(console, whole_table(headers, rows, title="Believability"))
    if "controls" in tables:
        _print_controls(tables["controls"])
    report = evaluation.judge
    if report is not None:
        console.print(f"Judge: {report.model} ({report.chosen})")
        if report.calibration is not None:
            console.print(f"  calibration: {report.calibration.summary()}")
        for caveat in report.caveats:
            console.print(f"  [yellow]caveat:[/yellow] {caveat}")


def _print_controls(frame: Any) -> None:
    rows = [
        (
            str(row.condition),
            f"{row.score:.2f} [{row.low:.2f}, {row.high:.2f}]",
            "" if row.condition == "real run" else _ci(row, "gap"),
            str(row.questions),
        )
        for row in frame.itertuples()
    ]
    headers = ("interviewee", "score [95% CI]", "real − this [95% CI]", "questions")
    print_table(console, whole_table(headers, rows, title="Controls"))


def _run_async(work: Any) -> Any:
    try:
        return asyncio.run(work)
    except (EvaluationError, LLMError, RunStoreError, ScenarioError, WorldError, OSError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)
