"""``societas validate`` (the validity suite and its scorecard) and ``societas calibrate``
(a new experiment's effect, calibrated by a scorecard)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn, cast

import typer
from rich.console import Console

from societas.cli.experiment_commands import RUN_ERRORS, counting_bars, new_bar
from societas.cli.output import (
    JsonOption,
    emit_json,
    json_mode_for_command,
    print_table,
    whole_table,
)
from societas.cli.server_options import BaseUrlOption, EndpointsOption
from societas.distributed.model_workers import ModelPool, SpecModel
from societas.distributed.ray_options import (
    RayCommand,
    RayOption,
    RayPlacement,
    WorkersOption,
    ray_placement,
)
from societas.distributed.session import RayError, ray_session
from societas.distributed.validity import run_suite_on_ray
from societas.evaluation.effect_calibration import CalibrationError, load_calibration
from societas.evaluation.validity import Scorecard, ValidityError, load_suite, run_suite
from societas.evaluation.validity_metrics import ValidityDataError, simulated_effect
from societas.evaluation.validity_report import null_text, write_scorecard
from societas.experiments.answer_modes import ANSWER_MODES, AnswerMode
from societas.experiments.report import ReportError, read_csv, read_spec
from societas.experiments.runner import with_answer_mode
from societas.experiments.spec import ExperimentError, ExperimentSpec, HumanTarget
from societas.llm.registry import DEFAULT_MODEL, open_llm
from societas.paths import default_llm_cache_path
from societas.population.personas import PERSONA_CONDITIONS, PersonaCondition

console = Console()


def register(app: typer.Typer) -> None:
    app.command("validate", cls=RayCommand)(validate)
    app.command("calibrate")(calibrate)


def validate(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Experiment files (or folders) with a human_target; default: the suite."
        ),
    ] = None,
    suite: Annotated[
        Path | None, typer.Option("--suite", help="A folder of experiment files to use.")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="A catalog name, gguf:PATH or openai:NAME.")
    ] = DEFAULT_MODEL,
    n: Annotated[
        int | None, typer.Option("--n", min=2, help="Agents per experiment (all arms together).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Experiment ids to run (comma-separated or repeated)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder; rerunning it resumes.")] = Path(
        "validity"
    ),
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines", help="Score three persona conditions: none, demographics, full."
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the calibration bootstrap.")] = 0,
    answer_mode: Annotated[
        str | None,
        typer.Option(
            "--answer-mode",
            help="How answers are produced: mode (the most likely answer), token (a draw from "
            "the model's token probabilities) or stated (a draw from a distribution the "
            "respondent states). Default: each file's answer_mode (mode).",
        ),
    ] = None,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    ray: RayOption = None,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the validity suite and write a scorecard: do simulated effects match people's?"""
    json_mode_for_command(ctx, console, as_json)
    placement = ray_placement(ray)
    ids = [part.strip() for item in only or [] for part in item.split(",") if part.strip()]
    paths = [*(files or []), *([suite] if suite is not None else [])]
    try:
        specs = load_suite(paths, ids)
    except (ValidityError, ExperimentError) as error:
        fail(str(error))
    if answer_mode is not None:
        if answer_mode not in ANSWER_MODES:
            fail(f"--answer-mode must be one of {', '.join(ANSWER_MODES)}, got {answer_mode!r}")
        specs = [with_answer_mode(s, cast(AnswerMode, answer_mode)) for s in specs]
    conditions: list[PersonaCondition] = list(PERSONA_CONDITIONS) if baselines else ["full"]
    try:
        if placement is None:
            scorecard = asyncio.run(
                run_with_progress(specs, model, base_url, endpoints, out, n, conditions, seed)
            )
        else:
            shared = str(endpoints.resolve()) if endpoints is not None else None
            source = SpecModel(model, base_url, str(default_llm_cache_path()), endpoints=shared)
            scorecard = asyncio.run(
                run_on_ray(specs, source, placement, workers, out, n, conditions, seed)
            )
    except (*RUN_ERRORS, ValidityError, ValidityDataError, RayError) as error:
        fail(str(error))
    modes = sorted({s.answer_mode for s in specs})
    scorecard.meta.update({"model": model, "experiments": len(specs), "answer_mode": modes})
    written = write_scorecard(scorecard, out)
    if as_json:  # scorecard.json as written, and the files beside it
        data = json.loads(written[0].read_text("utf-8"))
        emit_json({**data, "files": [str(p) for p in written]})
        return
    print_scorecard(scorecard)
    console.print("scorecard: " + ", ".join(str(p) for p in written))


async def run_with_progress(
    specs: Sequence[ExperimentSpec],
    model: str,
    base_url: str | None,
    endpoints: Path | None,
    out: Path,
    n: int | None,
    conditions: Sequence[PersonaCondition],
    seed: int,
) -> Scorecard:
    async with open_llm(model, base_url=base_url, endpoints=endpoints) as llm:
        with counting_bars() as bars:
            return await run_suite(
                specs,
                llm,
                out,
                n=n,
                conditions=conditions,
                progress=partial(new_bar, bars),
                seed=seed,
            )


async def run_on_ray(
    specs: Sequence[ExperimentSpec],
    source: SpecModel,
    placement: RayPlacement,
    workers: int | None,
    out: Path,
    n: int | None,
    conditions: Sequence[PersonaCondition],
    seed: int,
) -> Scorecard:
    """The suite with each item's agents on one pool of Ray workers (``--ray``)."""
    with ray_session(placement.address), counting_bars() as bars:
        async with ModelPool(source, workers=workers) as pool:
            return await run_suite_on_ray(
                specs,
                pool,
                out,
                n=n,
                conditions=conditions,
                progress=partial(new_bar, bars),
                seed=seed,
            )


def print_scorecard(scorecard: Scorecard) -> None:
    headers = ("experiment", "kind", "sim d [95% CI]", "human d", "sign", "sim/human", "SD ratio",
               "saturated", "null verdict", "failed")  # fmt: skip
    for condition in scorecard.conditions:
        rows = [
            (
                s.id,
                s.kind,
                f"{figure(s.sim_d)} [{figure(s.sim_low)}, {figure(s.sim_high)}]",
                figure(s.human_d),
                flag(s.sign_agrees),
                figure(s.magnitude_ratio),
                figure(s.dispersion_ratio),
                "yes" if s.saturated else "",
                null_text(s),
                f"{s.failed}/{s.asked}",
            )
            for s in scorecard.scores
            if s.condition == condition
        ]
        title = f"Validity: {condition} persona"
        print_table(console, whole_table(headers, rows, title=title, left=1))
    for summary in scorecard.summaries:
        console.print(f"[bold]{summary.condition}[/bold]:")
        for line in summary.lines():
            console.print(f"  {line}")
    for fit in scorecard.calibrations:
        console.print(
            f"calibration ({fit.condition}, {fit.model}): human d = {fit.intercept:.3g} + "
            f"{fit.slope:.3g} x simulated d, slope 95% CI [{figure(fit.slope_low)}, "
            f"{figure(fit.slope_high)}]; leave-one-paradigm-out RMSE {fit.loo_rmse:.3g} "
            f"({fit.folds} paradigms, {len(fit.items)}/{len(fit.items) + len(fit.excluded)} "
            f"items) vs uncalibrated {fit.raw_rmse:.3g}"
        )
    for note in scorecard.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def calibrate(
    folder: Annotated[Path, typer.Argument(help="An experiment output folder.")],
    calibration: Annotated[
        Path,
        typer.Option(
            "--calibration", "-c", help="calibration.json, or the validate folder holding it."
        ),
    ],
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Outcome id (default: the first).")
    ] = None,
    arm: Annotated[
        str | None, typer.Option("--arm", help="Treatment arm (default: the first).")
    ] = None,
    condition: Annotated[
        str | None, typer.Option("--condition", help="Persona condition of the calibration.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Calibrate the effect of a finished experiment with a validity scorecard's calibration."""
    try:
        fit = load_calibration(calibration, condition)
        spec = read_spec(folder)
        target = spec.human_target or HumanTarget(
            effect=0.0, type="d", source="none", outcome=outcome, arm=arm
        )
        if outcome is not None or arm is not None:
            target = target.model_copy(update={"outcome": outcome, "arm": arm, "items": None})
        check_names(spec, target)
        effect = simulated_effect(read_csv(folder / "responses.csv"), spec, target)
        estimate = fit.predict(effect.d, effect.se)
    except (CalibrationError, ReportError, ExperimentError, ValidityDataError) as error:
        fail(str(error))
    record = {
        "experiment": spec.name,
        "outcome": target.outcome or spec.outcomes[0].id,
        "arm": target.arm or spec.treatment_arms[0],
        "simulated_d": [effect.d, effect.low, effect.high],
        "calibrated": asdict(estimate),
        "calibration": {"condition": fit.condition, "model": fit.model, "slope": fit.slope},
    }
    path = folder / "calibrated.json"
    path.write_text(json.dumps(record, indent=2), "utf-8")
    if as_json:
        emit_json({**record, "written": str(path)})
        return
    console.print(
        f"{spec.name}: simulated d {figure(effect.d)} [{figure(effect.low)}, "
        f"{figure(effect.high)}] -> calibrated d {figure(estimate.estimate)}, "
        f"{estimate.level:.0%} prediction interval [{figure(estimate.low)}, "
        f"{figure(estimate.high)}] ({fit.model}, slope {fit.slope:.3g}, LOO RMSE "
        f"{fit.loo_rmse:.3g}, {len(fit.items)} experiments)"
    )
    console.print(f"written: {path}")


def check_names(spec: ExperimentSpec, target: HumanTarget) -> None:
    if target.outcome is not None and target.outcome not in [o.id for o in spec.outcomes]:
        raise ValidityDataError(f"{spec.name}: no outcome {target.outcome!r}")
    if target.arm is not None and target.arm not in spec.treatment_arms:
        raise ValidityDataError(
            f"{spec.name}: {target.arm!r} is not a treatment arm ({', '.join(spec.treatment_arms)})"
        )


def figure(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3g}"


def flag(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)
