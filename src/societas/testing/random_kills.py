"""Kill runs and resumes with SIGKILL at random moments, resume them, and compare the result with
an uninterrupted run: the guarantee that a run killed at any moment ends as if nothing happened.

Named fail points (:mod:`societas.failpoints`) stop a process exactly where a test says;
this module stops real ``societas run`` and ``societas resume`` processes from outside, at moments
drawn from a seeded generator, wherever the process happens to be (importing, creating the store,
setting up agents, between or inside steps, writing a checkpoint, the final status and summary).

Kills are aimed at the phases of a run so that short ones are hit too: the harness picks a
phase, waits for the store to show it has begun (polling ``run.sqlite``, read-only), then for a
random delay, and kills. The phase a kill really landed in is read from the store afterwards
(:func:`phase_of`): ``start-up`` (before the first checkpoint), ``resume start-up`` (a resume
that had not yet recorded a step), ``mid-run``, ``last step`` (the last step or the one before
it under way) and ``final bookkeeping`` (the final checkpoint, status, summary).

A trial starts a run, kills it, resumes it, kills the resume, and so on (``kills`` times), then
resumes it to its end; its event log, model calls, memories, metadata and summary must equal
those of an uninterrupted run of the same seed on the same model and cache.

Example (the ``benchmarks/kills.py`` script runs many)::

    cli = CliProcesses()
    workload = Workload("duo", ("duo", "--model", "fake:k", "--hours", "12", "--no-interviews"))
    reference = record_reference(cli, workload, Path("tmp/ref"))
    result = run_trial(cli, workload, reference, Path("tmp/t0"), random.Random(0), kills=3)
    assert result.identical
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from societas.engine.run_directory import SUMMARY_FILE
from societas.engine.run_schema import DB_NAME
from societas.engine.runstore import RunStore
from societas.testing.cli_process import CliProcesses, kill_group

PHASES = ("start-up", "resume start-up", "mid-run", "last step", "final bookkeeping")
# Metadata that measures this process's cost rather than the run: wall seconds, and what the
# model calls really cost (work lost to a kill is paid again, unless the cache has it).
COST_META = frozenset({"wall_s", "spent", "endpoints"})
# The part of a model call's record that does not depend on timing or on the cache (a cached
# answer reports no tokens: the tokens are what the call cost, not what the run did).
CALL_FIELDS = ("purpose", "model", "error")
POLL_S = 0.001
PROCESS_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Workload:
    """A run to kill: ``societas run ARGS --out DIR``, then ``societas resume DIR RESUME``."""

    name: str
    run_args: tuple[str, ...]
    resume_args: tuple[str, ...] = ("--no-interviews",)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreState:
    """What a run directory shows at one moment (read without disturbing its writer)."""

    exists: bool = False
    checkpoints: tuple[int, ...] = ()
    last_step: int | None = None
    status: str | None = None
    summary: bool = False

    @property
    def latest_checkpoint(self) -> int | None:
        return self.checkpoints[-1] if self.checkpoints else None


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: where it is, its steps and how long its parts took."""

    run_dir: Path
    steps: tuple[int, ...]  # the steps run, in order (sleep may skip some numbers)
    final: int  # the step of the final checkpoint (taken before the step after the last)
    startup_s: float  # launch to the first checkpoint
    stepping_s: float  # first checkpoint to the final one
    closing_s: float  # final checkpoint to the process's exit

    @property
    def last(self) -> int:
        return self.steps[-1]

    @property
    def before_last(self) -> int:
        return self.steps[-2] if len(self.steps) > 1 else self.steps[-1]

    @property
    def step_s(self) -> float:
        return self.stepping_s / max(1, len(self.steps))


@dataclass
class Kill:
    """One SIGKILL: of which command, aimed at which phase, landed in which."""

    command: str  # "run" or "resume"
    aimed_at: str
    delay_s: float
    phase: str


@dataclass
class TrialResult:
    """One run killed ``len(kills)`` times and resumed to its end."""

    workload: str
    trial: int
    kills: list[Kill] = field(default_factory=list)
    outlived: int = 0  # processes that ended before the moment drawn for their kill
    never_started: int = 0  # resumes that said the run never started (it was run again)
    refusals: list[str] = field(default_factory=list)
    duplicated_events: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.refusals and not self.differences


def store_state(run_dir: Path) -> StoreState:
    """The store's checkpoints, last step and status, and whether the summary is written."""
    db = run_dir / DB_NAME
    summary = (run_dir / SUMMARY_FILE).is_file()
    if not db.is_file():
        return StoreState(summary=summary)
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            steps = tuple(s for (s,) in conn.execute("SELECT step FROM checkpoints ORDER BY step"))
            meta = dict(
                conn.execute("SELECT key, value FROM meta WHERE key IN ('last_step', 'status')")
            )
        finally:
            conn.close()
    except sqlite3.Error:
        # Only while the writer has it open and the -shm file is being made; count it as there.
        return StoreState(exists=True, summary=summary)
    last = meta.get("last_step")
    status = meta.get("status")
    return StoreState(
        exists=True,
        checkpoints=steps,
        last_step=None if last is None else int(json.loads(last)),
        status=None if status is None else str(json.loads(status)),
        summary=summary,
    )


def phase_of(after: StoreState, before: StoreState | None, reference: Reference) -> str:
    """The phase a process was in when it was killed, from the store before and after.

    ``before`` is the store as a resume found it (None for ``run``).
    """
    resumed = before is not None
    if after.latest_checkpoint is None or after.last_step is None:
        return "resume start-up" if resumed else "start-up"
    last = after.last_step
    if last >= reference.final:
        return "final bookkeeping"
    if last is not None and (
        before is not None
        and before.latest_checkpoint is not None
        and after.latest_checkpoint == before.latest_checkpoint
        and (last <= before.latest_checkpoint or last == before.last_step)
    ):
        # Nothing recorded after the checkpoint it resumed from (or not even rewound to it).
        return "resume start-up"
    if last >= reference.before_last:
        return "last step"
    return "mid-run"


def record_reference(cli: CliProcesses, workload: Workload, run_dir: Path) -> Reference:
    """Run ``workload`` uninterrupted into ``run_dir``, timing its parts from outside."""
    log = run_dir.with_name(run_dir.name + ".log")
    started = time.perf_counter()
    process = cli.start(_run_command(workload, run_dir), log=log, env=workload.env)
    first = final = None
    while process.is_alive():
        state = store_state(run_dir)
        now = time.perf_counter() - started
        if first is None and state.checkpoints:
            first = now
        if final is None and state.status == "finished":
            final = now
        time.sleep(POLL_S)
    process.join()
    ended = time.perf_counter() - started
    if process.exitcode != 0:
        raise RuntimeError(f"the uninterrupted run of {workload.name} failed; see {log}")
    with RunStore.open(run_dir, readonly=True) as store:
        last_step = store.last_step()
        steps = sorted({e.event.step for e in store.iter_events()} | set(store.checkpoint_steps()))
    assert last_step is not None
    ran = tuple(step for step in steps if step < last_step)
    first = first if first is not None else ended / 10
    final = final if final is not None else ended
    return Reference(
        run_dir=run_dir,
        steps=ran or (last_step,),
        final=last_step,
        startup_s=first,
        stepping_s=max(0.0, final - first),
        closing_s=max(0.0, ended - final),
    )


def run_trial(
    cli: CliProcesses,
    workload: Workload,
    reference: Reference,
    run_dir: Path,
    rng: random.Random,
    *,
    kills: int,
    trial: int = 0,
) -> TrialResult:
    """Start ``workload`` in ``run_dir``, SIGKILL it ``kills`` times at random moments
    (resuming after each), resume it to the end, and compare it with ``reference``.

    A resume that answers that the run never started (it was killed before recording
    anything) is followed as a user would: the run is started again.
    """
    result = TrialResult(workload.name, trial)
    log = run_dir.with_name(run_dir.name + ".log")
    plan = plan_kills(rng, kills)
    before: StoreState | None = None  # the store as the next resume finds it; None: a new run
    while True:
        aimed = plan[len(result.kills)] if len(result.kills) < len(plan) else None
        command = _run_command(workload, run_dir) if before is None else None
        command = command or _resume_command(workload, run_dir)
        if aimed is not None and aimed.endswith("start-up"):
            aimed = "start-up" if before is None else "resume start-up"
        process = cli.start(command, log=log, env=workload.env)
        if aimed is None:
            process.join(PROCESS_TIMEOUT_S)
            killed = False
        else:
            trigger, delay = _trigger(rng, reference, aimed, before)
            killed = _kill_when(process, run_dir, trigger, delay, before)
            process.join()
        if killed:
            assert aimed is not None
            phase = phase_of(store_state(run_dir), before, reference)
            result.kills.append(Kill(command[0], aimed, round(delay, 4), phase))
        elif process.exitcode is None:
            kill_group(process)
            process.join()
            result.refusals.append(f"{command[0]} ran past {PROCESS_TIMEOUT_S:g} s")
            return result
        elif process.exitcode != 0:
            error = _last_error(log, process.exitcode)
            if "never started" not in error or before is None:
                result.refusals.append(error)
                return result
            result.never_started += 1
            before = None  # as the message says: run it again
            continue
        elif aimed is None:
            break
        else:
            result.outlived += 1
            plan.pop(len(result.kills))  # that moment never came; aim the next process
        before = store_state(run_dir)
    result.duplicated_events, result.differences = compare_runs(reference.run_dir, run_dir)
    return result


def plan_kills(rng: random.Random, kills: int) -> list[str]:
    """The phases to aim ``kills`` kills at, in the order a run passes them: perhaps the
    run's start-up first, then resumes killed while starting or further on."""
    plan = ["start-up"] if rng.random() < 0.25 else []
    later = ["resume start-up", "mid-run", "mid-run", "last step", "final bookkeeping"]
    drawn = [rng.choice(later) for _ in range(kills - len(plan))]
    order = {phase: float(index) for index, phase in enumerate(later)}
    # A resume may be killed while it starts at any point of the run's life.
    keys = {
        i: rng.uniform(0, 4) if p == "resume start-up" else order[p] for i, p in enumerate(drawn)
    }
    return plan + [drawn[i] for i in sorted(keys, key=lambda i: keys[i])]


def compare_runs(reference: Path, candidate: Path) -> tuple[int, list[str]]:
    """Events beyond the reference's (duplicated), and how ``candidate`` differs from it."""
    want, got = _recorded(reference), _recorded(candidate)
    differences = []
    extra = Counter(got["events"]) - Counter(want["events"])
    extra_calls = Counter(got["calls"]) - Counter(want["calls"])
    duplicated = sum(extra.values()) + sum(extra_calls.values())
    if got["events"] != want["events"]:
        differences.append(
            f"event log differs: {len(got['events'])} events, {len(want['events'])} expected; "
            f"first difference at event {_first_difference(got['events'], want['events'])}"
        )
    if Counter(got["calls"]) != Counter(want["calls"]):
        differences.append(
            f"model calls differ: {len(got['calls'])} recorded, {len(want['calls'])} expected"
        )
    if got["memories"] != want["memories"]:
        differences.append("agents' memories differ")
    if got["state"] != want["state"]:
        differences.append("final world state differs")
    if got["meta"] != want["meta"]:
        keys = sorted(
            k
            for k in set(got["meta"]) | set(want["meta"])
            if got["meta"].get(k) != want["meta"].get(k)
        )
        differences.append(f"run metadata differs in {keys}")
    if got["summary"] != want["summary"]:
        differences.append("summary.json differs")
    return duplicated, differences


def summarise(results: Sequence[TrialResult]) -> dict[str, Any]:
    """Counts over trials: kills per phase and per command, identical logs, refusals,
    duplicated events, and the differences found (with their trials)."""
    kills = [kill for result in results for kill in result.kills]
    return {
        "trials": len(results),
        "kills": len(kills),
        "kills_per_phase": {phase: sum(k.phase == phase for k in kills) for phase in PHASES},
        "kills_of_resumes": sum(k.command == "resume" for k in kills),
        "processes_that_ended_before_their_kill": sum(r.outlived for r in results),
        "never_started_reports": sum(r.never_started for r in results),
        "identical_logs": f"{sum(r.identical for r in results)}/{len(results)}",
        "refusals": sum(len(r.refusals) for r in results),
        "duplicated_events": sum(r.duplicated_events for r in results),
        "failures": [
            {
                "workload": r.workload,
                "trial": r.trial,
                "refusals": r.refusals,
                "differences": r.differences,
                "kills": [(k.command, k.phase) for k in r.kills],
            }
            for r in results
            if not r.identical
        ],
    }


def kill_trials_from_env(default: int, variable: str = "SOCIETAS_KILL_TRIALS") -> int:
    """The number of kills asked for in ``variable`` (a benchmark's long run), else ``default``."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{variable}={text!r}: expected a positive number of kills")
    return int(text)


# ----------------------------------------------------------------------------------- helpers

_Trigger = tuple[str, int]  # ("launch", 0) or ("step", N): wait for last_step >= N


def _trigger(
    rng: random.Random, ref: Reference, aimed: str, before: StoreState | None
) -> tuple[_Trigger, float]:
    """The store state that starts the phase ``aimed`` at, and a random delay after it.

    A resume first rewinds the store to its checkpoint, so steps are awaited past that one.
    """
    resumed_from = before.latest_checkpoint if before is not None else None
    later = [step for step in ref.steps if resumed_from is None or step > resumed_from]
    if aimed in ("start-up", "resume start-up"):
        return ("launch", 0), rng.uniform(0.0, ref.startup_s * 1.2)
    if aimed == "mid-run" and len(later) > 2:
        return ("step", rng.choice(later[:-2])), rng.uniform(0.0, ref.step_s)
    if aimed in ("mid-run", "last step") and later:
        return ("step", ref.before_last), rng.uniform(0.0, ref.step_s * 1.5)
    return ("step", ref.final), rng.uniform(0.0, ref.closing_s * 1.2)


def _kill_when(
    process: Any, run_dir: Path, trigger: _Trigger, delay: float, before: StoreState | None
) -> bool:
    """SIGKILL ``process`` ``delay`` seconds after ``trigger``; False if it ended first."""
    kind, step = trigger
    deadline = time.perf_counter() + PROCESS_TIMEOUT_S
    floor = before.latest_checkpoint if before is not None else None
    rewound = floor is None
    while kind == "step" and process.is_alive() and time.perf_counter() < deadline:
        last = store_state(run_dir).last_step
        if not rewound:  # until the resume has dropped what followed its checkpoint
            rewound = last is not None and floor is not None and last <= floor
        elif last is not None and last >= step:
            break
        time.sleep(POLL_S)
    fire = time.perf_counter() + delay
    while process.is_alive() and time.perf_counter() < fire:
        time.sleep(min(POLL_S, max(0.0, fire - time.perf_counter())))
    if not process.is_alive():
        return False
    kill_group(process)
    return True


def _run_command(workload: Workload, run_dir: Path) -> list[str]:
    return ["run", *workload.run_args, "--out", str(run_dir)]


def _resume_command(workload: Workload, run_dir: Path) -> list[str]:
    return ["resume", str(run_dir), *workload.resume_args]


def _last_error(log: Path, code: int | None) -> str:
    """The last error the command printed, its wrapped lines joined."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    starts = [i for i, line in enumerate(lines) if line.lower().startswith("error")]
    tail = lines[starts[-1] :] if starts else lines[-3:]
    return f"exit {code}: {' '.join(line for line in tail if line) or '(no output)'}"


def _recorded(run_dir: Path) -> dict[str, Any]:
    with RunStore.open(run_dir, readonly=True) as store:
        events: list[tuple[Any, ...]] = []
        calls: list[tuple[Any, ...]] = []
        for stored in store.iter_events():
            e = stored.event
            if e.kind == "llm_call":
                calls.append((e.step, e.agent, *(e.data.get(k) for k in CALL_FIELDS)))
            else:
                data = json.dumps(e.data, sort_keys=True)
                events.append((e.step, e.time.isoformat(), e.kind, e.agent, data))
        checkpoint = store.latest_checkpoint()
        meta = {k: v for k, v in store.meta().items() if k not in COST_META}
    state = checkpoint.state if checkpoint is not None else {}
    memories = {
        name: agent.get("memory", {}).get("texts")
        for name, agent in state.get("agents", {}).items()
    }
    summary_path = run_dir / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    if isinstance(summary, dict):
        summary.pop("usage", None)  # model use as metered, cache hits included
    return {
        "events": events,
        "calls": calls,
        "memories": memories,
        "state": state,
        "meta": meta,
        "summary": summary,
    }


def _first_difference(got: Sequence[Any], want: Sequence[Any]) -> int:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return index
    return min(len(got), len(want))
