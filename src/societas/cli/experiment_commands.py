"""``societas experiment`` and ``societas report``: run an experiment file, rebuild its report."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from societas.cli.output import (
    JsonOption,
    emit_json,
    json_mode_for_command,
    print_table,
    whole_table,
)
from societas.cli.server_options import BaseUrlOption, EndpointsOption
from societas.distributed.experiments import run_experiment_on_ray
from societas.distributed.model_workers import ModelPool, SpecModel
from societas.distributed.ray_options import (
    RayCommand,
    RayOption,
    RayPlacement,
    WorkersOption,
    ray_placement,
)
from societas.distributed.replicates import replicate_folder, replicate_spec
from societas.distributed.session import RayError, ray_session
from societas.experiments.designs import DesignError
from societas.experiments.report import ReportError, write_report
from societas.experiments.runner import ExperimentResult, ExperimentRunError, run_experiment
from societas.experiments.spec import ExperimentError, ExperimentSpec, load_experiment
from societas.llm.registry import DEFAULT_MODEL, open_llm
from societas.llm.types import LLMError
from societas.paths import default_llm_cache_path
from societas.population import MicrodataError, RakingError, SamplingError
from societas.world.errors import WorldError

console = Console()
SHOWN_SECTIONS = ("effect", "paired", "cluster")
# Problems of the experiment or its population that the user can fix: reported, no traceback.
RUN_ERRORS = (
    ExperimentRunError,
    DesignError,
    LLMError,
    WorldError,
    MicrodataError,
    RakingError,
    SamplingError,
)


def register(app: typer.Typer) -> None:
    app.command("experiment", cls=RayCommand)(experiment)
    app.command("report")(report)


def experiment(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The experiment file (YAML).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="A catalog name, gguf:PATH or openai:NAME.")
    ] = DEFAULT_MODEL,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder; rerunning it resumes.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", min=2, help="Use only N agents.")] = None,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    ray: RayOption = None,
    workers: WorkersOption = None,
    replicates: Annotated[
        int,
        typer.Option(
            "--replicates",
            min=1,
            max=1000,
            help="Run the whole experiment K times, replicate r with a seed derived from the "
            "file's seed and r (each in OUT/replicate-RR).",
        ),
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Run the experiment FILE: survey every agent, analyse, and write an HTML report."""
    json_mode_for_command(ctx, console, as_json)
    placement = ray_placement(ray)
    try:
        spec = load_experiment(file)
    except ExperimentError as error:
        fail(str(error))
    out_dir = out or Path("experiments") / spec.name
    runs = [
        (replicate_spec(spec, r), replicate_folder(out_dir, r, replicates))
        for r in range(replicates)
    ]
    try:
        if placement is None:
            results = [
                asyncio.run(run_with_progress(one, model, base_url, folder, n, endpoints))
                for one, folder in runs
            ]
        else:
            shared = str(endpoints.resolve()) if endpoints is not None else None
            source = SpecModel(model, base_url, str(default_llm_cache_path()), endpoints=shared)
            results = asyncio.run(run_on_ray(runs, source, placement, workers, n))
    except (*RUN_ERRORS, RayError) as error:
        fail(str(error))
    if as_json:
        emit_json({"results": [result_json(result) for result in results]})
        return
    for result in results:
        print_result(result)


async def run_on_ray(
    runs: list[tuple[ExperimentSpec, Path]],
    source: SpecModel,
    placement: RayPlacement,
    workers: int | None,
    n: int | None,
) -> list[ExperimentResult]:
    """Every replicate in turn on one pool of Ray workers (each loads the model once)."""
    results = []
    with ray_session(placement.address):
        async with ModelPool(source, workers=workers) as pool:
            for spec, folder in runs:
                work = functools.partial(run_experiment_on_ray, spec, pool, folder, n=n)
                results.append(await with_progress(spec, work))
    return results


async def run_with_progress(
    spec: ExperimentSpec,
    model: str,
    base_url: str | None,
    out_dir: Path,
    n: int | None,
    endpoints: Path | None = None,
) -> ExperimentResult:
    async with open_llm(model, base_url=base_url, endpoints=endpoints) as llm:
        work = functools.partial(run_experiment, spec, llm, out_dir, n=n)
        return await with_progress(spec, work)


async def with_progress(
    spec: ExperimentSpec,
    work: Callable[..., Awaitable[ExperimentResult]],
) -> ExperimentResult:
    """``work(progress=advance)`` with a progress bar that ``advance(done, total)`` moves."""
    with counting_bars() as bars:
        return await work(progress=new_bar(bars, f"{spec.name} ({spec.design.type})"))


def counting_bars() -> Progress:
    """Progress bars that count done units out of a total (learnt as the work goes)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def new_bar(bars: Progress, label: str) -> Callable[[int, int], None]:
    """A bar of ``bars`` and the ``advance(done, total)`` callback that moves it."""
    task = bars.add_task(label, total=None)
    return lambda done, total: bars.update(task, completed=done, total=total)


def report(
    folder: Annotated[Path, typer.Argument(help="An experiment output folder.")],
) -> None:
    """Rebuild report.html of an experiment folder from its saved files."""
    try:
        path = write_report(folder)
    except (ReportError, ExperimentError) as error:
        fail(str(error))
    console.print(f"report: {path}")


def shown_effects(result: ExperimentResult) -> list[dict[str, Any]]:
    """The effect rows the summary shows (one per outcome, section and contrast)."""
    rows = result.analysis[result.analysis["section"].isin(SHOWN_SECTIONS)]
    return [
        {
            "outcome": str(row["outcome"]),
            "section": str(row["section"]),
            "contrast": str(row["group"]),
            "estimand": str(row["estimand"]),
            "estimate": float(row["estimate"]),
            "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]),
            "p": float(row["p_value"]),
        }
        for _, row in rows.iterrows()
    ]


def result_json(result: ExperimentResult) -> dict[str, Any]:
    """What :func:`print_result` shows, for ``--json``."""
    return {
        "experiment": result.spec.name,
        "control_arm": result.spec.control_arm,
        "effects": shown_effects(result),
        "usage": result.usage.get("total") or None,
        "answers": len(result.responses),
        "notes": list(result.notes),
        "report": str(result.report_path),
    }


def print_result(result: ExperimentResult) -> None:
    effects = shown_effects(result)
    rows = [
        (
            e["outcome"],
            e["section"],
            e["contrast"],
            e["estimand"],
            figure(e["estimate"]),
            f"[{figure(e['ci_low'])}, {figure(e['ci_high'])}]",
            figure(e["p"]),
        )
        for e in effects
    ]
    headers = ("outcome", "section", "contrast", "estimand", "estimate", "95% CI", "p")
    title = f"{result.spec.name}: effects vs {result.spec.control_arm}"
    print_table(console, whole_table(headers, rows, title=title, left=4))
    total = result.usage.get("total") or {}
    if total:
        console.print(
            f"model: {total.get('calls', 0)} calls, {total.get('cache_hits', 0)} cache hits, "
            f"{total.get('prompt_tokens', 0) + total.get('completion_tokens', 0)} tokens"
        )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"{len(result.responses)} answers; report: {result.report_path}")


def figure(value: object) -> str:
    number = float(str(value))
    return "–" if math.isnan(number) else f"{number:.3g}"


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)
