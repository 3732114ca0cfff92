"""``societas run``, ``resume``, ``inspect`` and ``interview``: town simulations from the shell."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from societas.agents.agent import Agent
from societas.agents.cognition.interview import answer_in_character
from societas.cli.audit_commands import AUDIT_FILE, print_run_audit, save_run_audit
from societas.cli.output import (
    JsonOption,
    Table,
    emit_json,
    json_mode_for_command,
    print_table,
    prose_column,
    whole_column,
)
from societas.cli.server_options import BaseUrlOption, EndpointsOption
from societas.distributed.model_servers import open_served_llm
from societas.distributed.model_workers import SpecModel
from societas.distributed.ray_options import (
    ModelServersOption,
    RayCommand,
    RayOption,
    RayPlacement,
    WorldShardsOption,
    ray_placement,
)
from societas.distributed.session import RayError, ray_session
from societas.distributed.world_shards import ray_world_shards
from societas.durable import write_atomic
from societas.engine.budget import Budget, BudgetExhausted, BudgetGuard, Spent
from societas.engine.config import SimulationConfig
from societas.engine.resume import resume_simulation
from societas.engine.run_directory import SCENARIO_COPY, SUMMARY_FILE, check_resumable
from societas.engine.run_schema import RunStoreError
from societas.engine.runstore import RunStore
from societas.engine.sharded_run import ShardedRun
from societas.engine.simulation import Simulation
from societas.llm.client import LLM
from societas.llm.registry import DEFAULT_MODEL, open_llm
from societas.llm.types import LLMError
from societas.measurement.end_of_run import EndOfRunAnswers, ask_end_of_run, question_count
from societas.measurement.run_summary import RunSummary
from societas.measurement.town_summary import TownSummary, summarise_town
from societas.memory.retrieval import RetrievalWeights
from societas.scenarios.scenario import Scenario, load_scenario, scenario_from_text
from societas.world.errors import ScenarioError, WorldError

console = Console()

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Model: a catalog name, gguf:PATH or openai:NAME.")
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens", min=1, help="Stop (resumably) once the run's model calls used N tokens."
    ),
]
MaxCallsOption = Annotated[
    int | None,
    typer.Option("--max-calls", min=1, help="Stop (resumably) after N model calls."),
]
MaxWallOption = Annotated[
    float | None,
    typer.Option("--max-wall", min=0.1, help="Stop (resumably) after SECONDS of wall time."),
]
BUDGET_EXIT_CODE = 3  # the run stopped because its budget ran out; it can be resumed
InterviewsOption = Annotated[
    bool,
    typer.Option(
        "--interviews/--no-interviews",
        help="At the end, ask every agent each news item's open question (graded against the "
        "item's facts) and whom it knows.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("run", cls=RayCommand)(run)
    app.command("resume", cls=RayCommand)(resume)
    app.command("inspect")(inspect)
    app.command("interview")(interview)


def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="A scenario file or a built-in name.")] = "town",
    model: ModelOption = DEFAULT_MODEL,
    hours: Annotated[float, typer.Option("--hours", min=0.1, max=24 * 14)] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory (new).")] = None,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    interviews: InterviewsOption = True,
    max_tokens: MaxTokensOption = None,
    max_calls: MaxCallsOption = None,
    max_wall: MaxWallOption = None,
    ray: RayOption = None,
    model_servers: ModelServersOption = 1,
    world_shards: WorldShardsOption = 1,
    as_json: JsonOption = False,
) -> None:
    """Simulate SCENARIO for HOURS of game time and record the run in OUT."""
    json_mode_for_command(ctx, console, as_json)
    placement = ray_placement(ray, model_servers, world_shards)
    loaded = _load_or_exit(scenario)
    out_dir = out or Path("runs") / f"{_slug(loaded.name)}-seed{seed}"
    config = SimulationConfig(seed=seed)
    budget = Budget(max_tokens, max_calls, max_wall)
    if placement is not None and placement.world_shards > 1:
        options = _ModelOptions(model, base_url, endpoints)
        summary, stopped = _run_async(
            _run_sharded(loaded, out_dir, options, config, hours, interviews, placement, budget)
        )
        _print_summary(summary, out_dir, as_json=as_json)
        _stop_if_over_budget(stopped, out_dir)
        return
    summary, stopped = _run_async(
        _run(
            loaded,
            out_dir,
            model,
            base_url,
            config,
            hours,
            interviews,
            endpoints,
            budget,
            placement=placement,
        )
    )
    _print_summary(summary, out_dir, as_json=as_json)
    _stop_if_over_budget(stopped, out_dir)


async def _run(
    scenario: Scenario,
    out_dir: Path,
    model: str,
    base_url: str | None,
    config: SimulationConfig,
    hours: float,
    interviews: bool,
    endpoints: Path | None = None,
    budget: Budget | None = None,
    *,
    placement: RayPlacement | None = None,
) -> tuple[RunSummary, str | None]:
    async with _open_model(model, base_url, endpoints, placement) as llm:
        started = time.perf_counter()
        guard = BudgetGuard(budget or Budget(), llm.meter)
        # The end goes in with the rest, so a run killed while starting can start again.
        until = scenario.start_time + timedelta(hours=hours)
        meta = {"model": model, "budget": guard.budget.to_meta(), "until": until.isoformat()}
        with _progress() as progress:
            # Loading the model and rating every agent's first memories take a while.
            progress.add_task("starting", total=None, info=f"{len(scenario.agents)} agents")
            sim = await Simulation.start(scenario, out_dir, llm, config, meter=llm.meter, meta=meta)
        answers, stopped = await _drive(
            sim, until, started, guard, finish=_interviews(sim, llm) if interviews else None
        )
        return _summarise(out_dir, scenario, answers), stopped


@dataclass(frozen=True)
class _ModelOptions:
    model: str
    base_url: str | None
    endpoints: Path | None


async def _run_sharded(
    scenario: Scenario,
    out_dir: Path,
    options: _ModelOptions,
    config: SimulationConfig,
    hours: float | None,
    interviews: bool,
    placement: RayPlacement,
    budget: Budget,
    *,
    resume: bool = False,
) -> tuple[RunSummary, str | None]:
    """``run`` or ``resume`` with ``--ray --world-shards K``: the agents stepped on K Ray
    actors, recorded here. A resumed run goes on for ``hours``, else to the end it was
    started for, and keeps its budget (``budget`` raises or sets limits). Returns the summary
    and why the run stopped early if its budget ran out."""
    endpoints = str(options.endpoints.resolve()) if options.endpoints is not None else None
    source = SpecModel(options.model, base_url=options.base_url, endpoints=endpoints)
    started = time.perf_counter()
    spent = Spent()
    if resume:
        with RunStore.open(out_dir, readonly=True) as before:
            budget = Budget.from_meta(before.get_meta("budget")).overridden(budget)
            spent = Spent.from_meta(before.get_meta("spent"))
    # The shards report their agents' model use after each step; the guard adds it up.
    guard = BudgetGuard(budget, None, spent_before=spent)
    # A local Ray gets a CPU slot per shard even on a smaller machine (the shards then share the
    # cores) rather than waiting for slots that never come.
    cpus = max(os.cpu_count() or 1, placement.world_shards)
    with ray_session(placement.address, num_cpus=cpus):
        async with ray_world_shards(scenario, source, config, placement.world_shards) as shards:
            if resume:
                run = await ShardedRun.resume(out_dir, scenario, shards)
            else:
                meta: dict[str, Any] = {"model": options.model}
                if hours is not None:
                    meta["until"] = (scenario.start_time + timedelta(hours=hours)).isoformat()
                run = await ShardedRun.start(scenario, out_dir, shards, config, meta=meta)
            store = run.store
            assert store is not None
            until = _until(run.now, hours, store.get_meta("until"))
            store.set_meta("budget", budget.to_meta())
            _, stopped = await _drive(run, until, started, guard)
    answers = None
    if stopped is None and interviews:
        with RunStore.open(out_dir, readonly=True) as reader:
            checkpoint = reader.latest_checkpoint()
        assert checkpoint is not None
        agents = {name: Agent.from_state(a) for name, a in checkpoint.state["agents"].items()}
        async with open_llm(
            options.model, base_url=options.base_url, endpoints=options.endpoints
        ) as llm:
            answers = await _ask_with_progress(scenario, agents, llm, checkpoint.time)
    return _summarise(out_dir, scenario, answers), stopped


def _until(now: datetime, hours: float | None, target: str | None) -> datetime:
    """Where a run stops: ``hours`` from now, else the end it was started for, else in an hour."""
    if hours is not None:
        return now + timedelta(hours=hours)
    if target is not None:
        return datetime.fromisoformat(target)
    return now + timedelta(hours=1)


def _open_model(
    model: str, base_url: str | None, endpoints: Path | None, placement: RayPlacement | None
) -> AbstractAsyncContextManager[LLM]:
    """The model in this process, or its backends on Ray model servers (``--ray``)."""
    if placement is None:
        return open_llm(model, base_url=base_url, endpoints=endpoints)
    return open_served_llm(
        model,
        servers=placement.model_servers,
        address=placement.address,
        base_url=base_url,
        endpoints=str(endpoints.resolve()) if endpoints is not None else None,
    )


class _Steppable(Protocol):
    """What :func:`_drive` steps: a :class:`Simulation` or a :class:`ShardedRun`."""

    store: RunStore | None

    @property
    def now(self) -> datetime: ...

    async def run(
        self,
        *,
        until: datetime | None = None,
        on_step: Callable[[Any], None] | None = None,
        budget: BudgetGuard | None = None,
    ) -> None: ...

    def close(self, status: str = "stopped") -> None: ...


Answers = EndOfRunAnswers


async def _drive(
    run: _Steppable,
    until: datetime,
    started: float,
    guard: BudgetGuard,
    *,
    finish: Callable[[], Awaitable[Answers | None]] | None = None,
) -> tuple[Answers | None, str | None]:
    """Step ``run`` to ``until`` with a progress bar, then ``finish`` it (the news interviews)
    unless its budget ran out, and close it with its status. Returns what ``finish`` gave and
    why the run stopped early if its budget ran out.

    After every step the store's ``spent`` meta says what the run has spent, so a killed run's
    spending still counts when it resumes; ``wall_s`` and the final ``spent`` go in at the end.
    """
    if run.store is not None:
        run.store.set_meta("until", until.isoformat())
    total_minutes = max(1.0, (until - run.now).total_seconds() / 60)
    begin = run.now
    status, stopped, answers = "failed", None, None
    failure: BaseException | None = None
    try:
        with _progress() as progress:
            task = progress.add_task("simulating", total=total_minutes, info="")

            def on_step(stepped: _Steppable) -> None:
                spending = guard.spent()
                if stepped.store is not None:
                    stepped.store.set_meta("spent", spending.to_meta())
                progress.update(
                    task,
                    completed=min(total_minutes, (stepped.now - begin).total_seconds() / 60),
                    info=f"{stepped.now:%a %H:%M}  calls {spending.calls}  "
                    f"tokens {spending.tokens}",
                )

            await run.run(until=until, on_step=on_step, budget=guard)
        status = "finished"
        if finish is not None:
            answers = await finish()
    except BudgetExhausted as exhausted:
        status, stopped, answers = "budget", exhausted.reason, None
    except BaseException as error:
        failure = error
        raise
    finally:
        try:
            try:
                if run.store is not None:
                    run.store.set_meta("wall_s", round(time.perf_counter() - started, 2))
                    run.store.set_meta("spent", guard.spent().to_meta())
            finally:
                guard.close()
                run.close(status)
        except RunStoreError:
            # On a full disk these writes fail too; the error that stopped the run is the one
            # to report (the store itself is intact: every step is one transaction).
            if failure is None:
                raise
    return answers, stopped


def _interviews(sim: Simulation, llm: LLM) -> Callable[[], Awaitable[Answers | None]]:
    """Ask every agent of ``sim`` each news item's open question and whom it knows."""

    async def ask() -> Answers | None:
        return await _ask_with_progress(sim.scenario, sim.agents, llm, sim.now)

    return ask


async def _ask_with_progress(
    scenario: Scenario, agents: dict[str, Agent], llm: LLM, now: datetime
) -> Answers:
    """The end-of-run questions (:func:`ask_end_of_run`) behind a progress bar counting them."""
    with _progress() as progress:
        total = question_count(scenario, len(agents))
        info = "what has each heard, whom does each know?"
        task = progress.add_task("interviews", total=total, info=info)
        return await ask_end_of_run(
            scenario, agents, llm, now, on_answer=lambda: progress.advance(task)
        )


def resume(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    hours: Annotated[
        float | None,
        typer.Option(
            "--hours",
            min=0.1,
            max=24 * 14,
            help="Game hours to add; without it, finish the span the run was started for.",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    interviews: InterviewsOption = True,
    max_tokens: MaxTokensOption = None,
    max_calls: MaxCallsOption = None,
    max_wall: MaxWallOption = None,
    ray: RayOption = None,
    model_servers: ModelServersOption = 1,
    world_shards: WorldShardsOption = 1,
    as_json: JsonOption = False,
) -> None:
    """Continue a run from its last checkpoint (after a crash, a kill, or to run longer).

    The run keeps the budget it was started with; ``--max-*`` options raise (or set) limits.
    A run recorded in one process may go on over world shards, and the other way round.
    """
    json_mode_for_command(ctx, console, as_json)
    placement = ray_placement(ray, model_servers, world_shards)
    scenario = _scenario_of(run_dir)
    budget = Budget(max_tokens, max_calls, max_wall)
    if placement is not None and placement.world_shards > 1:
        with RunStore.open(run_dir, readonly=True) as store:
            model = model or str(store.get_meta("model", DEFAULT_MODEL))
            # Shards restore the config saved in the checkpoint; this one only starts them.
            config = SimulationConfig.model_validate(store.get_meta("config") or {})
        options = _ModelOptions(model, base_url, endpoints)
        summary, stopped = _run_async(
            _run_sharded(
                scenario,
                run_dir,
                options,
                config,
                hours,
                interviews,
                placement,
                budget,
                resume=True,
            )
        )
        _print_summary(summary, run_dir, as_json=as_json)
        _stop_if_over_budget(stopped, run_dir)
        return
    summary, stopped = _run_async(
        _resume(
            run_dir,
            scenario,
            model,
            base_url,
            hours,
            interviews,
            endpoints,
            budget,
            placement=placement,
        )
    )
    _print_summary(summary, run_dir, as_json=as_json)
    _stop_if_over_budget(stopped, run_dir)


async def _resume(
    run_dir: Path,
    scenario: Scenario,
    model: str | None,
    base_url: str | None,
    hours: float | None,
    interviews: bool,
    endpoints: Path | None = None,
    budget: Budget | None = None,
    *,
    placement: RayPlacement | None = None,
) -> tuple[RunSummary, str | None]:
    with RunStore.open(run_dir, readonly=True) as store:
        model = model or str(store.get_meta("model", DEFAULT_MODEL))
        target = store.get_meta("until")
        budget = Budget.from_meta(store.get_meta("budget")).overridden(budget or Budget())
        spent = Spent.from_meta(store.get_meta("spent"))
    async with _open_model(model, base_url, endpoints, placement) as llm:
        started = time.perf_counter()
        guard = BudgetGuard(budget, llm.meter, spent_before=spent)
        sim = await resume_simulation(run_dir, llm, scenario, meter=llm.meter)
        if sim.store is not None:
            sim.store.set_meta("budget", budget.to_meta())
        until = _until(sim.now, hours, target)
        answers, stopped = await _drive(
            sim, until, started, guard, finish=_interviews(sim, llm) if interviews else None
        )
        return _summarise(run_dir, scenario, answers), stopped


def inspect(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    agent: Annotated[str, typer.Argument(help="The agent's name.")],
    memories: Annotated[int, typer.Option("--memories", min=0, max=10000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show an agent's persona, plan for the day and latest memories."""
    subject = _agent_at_checkpoint(run_dir, agent)
    latest = [subject.memory.by_id(memory_id) for memory_id in subject.memory.recent(memories)]
    if as_json:
        emit_json(
            {
                "name": subject.name,
                "persona": subject.persona.summary(),
                "relationships": dict(sorted(subject.relationships.items())),
                "plan": None
                if subject.plan is None
                else {
                    "day": str(subject.plan.day),
                    "blocks": [block.line() for block in subject.plan.blocks],
                },
                "memories": [
                    {
                        "id": record.id,
                        "kind": record.kind.label,
                        "importance": record.importance,
                        "text": record.text,
                    }
                    for record in latest
                ],
            }
        )
        return
    console.rule(f"[bold]{subject.name}")
    console.print(subject.persona.summary())
    if subject.relationships:
        console.print("\n[bold]Relationships")
        for other, note in sorted(subject.relationships.items()):
            console.print(f"  {other}: {note}")
    if subject.plan is not None:
        console.print(f"\n[bold]Plan for {subject.plan.day}")
        current = subject.current.start if subject.current else -1
        for block in subject.plan.blocks:
            marker = "→" if block.start <= current < block.end else " "
            console.print(f" {marker} {block.line()}")
    rows = [
        (str(record.id), record.kind.label, f"{record.importance:.0f}", record.text)
        for record in latest
    ]
    table = Table(
        whole_column("id", [row[0] for row in rows], justify="right"),
        whole_column("kind", [row[1] for row in rows]),
        whole_column("importance", [row[2] for row in rows], justify="right"),
        prose_column("memory"),
        title="Latest memories",
    )
    for row in rows:
        table.add_row(*row)
    print_table(console, table)


def interview(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    agent: Annotated[str, typer.Argument(help="The agent's name.")],
    question: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask an agent a question; it answers in character from its memories (the run is unchanged)."""
    json_mode_for_command(ctx, console, as_json)
    subject = _agent_at_checkpoint(run_dir, agent)
    with RunStore.open(run_dir, readonly=True) as store:
        model = model or str(store.get_meta("model", DEFAULT_MODEL))
        now = _checkpoint_time(store)
    answer = _run_async(_interview(subject, question, model, base_url, now, endpoints))
    if as_json:
        emit_json({"agent": subject.name, "question": question, "answer": answer, "model": model})
        return
    console.print(f"[bold]{subject.name}:[/bold] {answer}")


async def _interview(
    subject: Agent,
    question: str,
    model: str,
    base_url: str | None,
    now: Any,
    endpoints: Path | None = None,
) -> str:
    async with open_llm(model, base_url=base_url, endpoints=endpoints) as llm:
        memories = await subject.recall(llm, question, now, k=10, weights=RetrievalWeights())
        return await answer_in_character(
            llm, subject.persona, question=question, memories=memories, now=now
        )


# --------------------------------------------------------------------------------- helpers


def _load_or_exit(scenario: str) -> Scenario:
    try:
        return load_scenario(scenario)
    except (ScenarioError, WorldError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _scenario_of(run_dir: Path) -> Scenario:
    path = run_dir / SCENARIO_COPY
    try:
        check_resumable(run_dir)
    except RunStoreError as error:
        _fail(str(error))
    try:
        return scenario_from_text(path.read_text(encoding="utf-8"), source=str(path))
    except (ScenarioError, WorldError) as error:
        _fail(str(error))


def _agent_at_checkpoint(run_dir: Path, name: str) -> Agent:
    try:
        with RunStore.open(run_dir, readonly=True) as store:
            checkpoint = store.latest_checkpoint()
    except RunStoreError as error:
        _fail(str(error))
    if checkpoint is None:
        _fail(f"{run_dir} has no checkpoint yet")
    agents = checkpoint.state["agents"]
    match = [key for key in agents if key.lower() == name.lower()] or [
        key for key in agents if key.lower().split()[0] == name.lower()
    ]
    if len(match) != 1:
        _fail(f"no agent {name!r} in {run_dir}; agents: {', '.join(sorted(agents))}")
    return Agent.from_state(agents[match[0]])


def _checkpoint_time(store: RunStore) -> Any:
    checkpoint = store.latest_checkpoint()
    assert checkpoint is not None
    return checkpoint.time


def _summarise(
    run_dir: Path, scenario: Scenario, answers: EndOfRunAnswers | None = None
) -> TownSummary:
    with RunStore.open(run_dir, readonly=True) as store:
        summary = summarise_town(store, scenario, answers)
    write_atomic(run_dir / SUMMARY_FILE, summary.model_dump_json(indent=2))
    return summary


def _print_summary(summary: RunSummary, run_dir: Path, *, as_json: bool = False) -> None:
    with RunStore.open(run_dir, readonly=True) as store:
        wall_s = store.get_meta("wall_s")
    if as_json:  # the same figures as summary.json, with where the run is and how long it took
        data = summary.model_dump(mode="json")
        audit = save_run_audit(run_dir)
        audit_data = {"error": audit} if isinstance(audit, str) else audit.model_dump(mode="json")
        emit_json({"run_dir": str(run_dir), "wall_s": wall_s, **data, "audit": audit_data})
        return
    console.rule("[bold]Run summary")
    console.print(summary.describe(), highlight=False)
    if wall_s is not None:
        console.print(f"Wall time: {wall_s:.1f} s")
    print_run_audit(run_dir, console)
    console.print(
        f"\nRecorded in {run_dir} (summary in {run_dir / SUMMARY_FILE}, audit in "
        f"{run_dir / AUDIT_FILE}).\n"
        f"Watch it:        societas serve {run_dir}\n"
        f"Run longer:      societas resume {run_dir} --hours 4\n"
        f'Ask an agent:    societas interview {run_dir} NAME "What are you doing today?"\n'
        f"Another model:   societas run --model openai:NAME --base-url URL (or gguf:PATH)"
    )


def _stop_if_over_budget(stopped: str | None, run_dir: Path) -> None:
    """After a run that ran out of budget: say why and how to go on, and exit with code 3."""
    if stopped is None:
        return
    console.print(
        f"[yellow]stopped at a checkpoint: {stopped}.[/yellow]\n"
        f"Continue with a larger budget: societas resume {run_dir} --max-tokens N "
        "(or --max-calls N, --max-wall SECONDS)"
    )
    raise typer.Exit(BUDGET_EXIT_CODE)


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "run"


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),  # blank for a phase of unknown length
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    )


def _run_async(work: Any) -> Any:
    try:
        return asyncio.run(work)
    except (LLMError, RunStoreError, ScenarioError, WorldError, RayError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: resume with `societas resume DIR`[/yellow]")
        raise typer.Exit(130) from None


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)
