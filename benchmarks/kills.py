"""SIGKILL runs and resumes at random moments, resume them, compare with uninterrupted runs.

Prints one JSON document: for each workload (duo and town on the scripted model; duo on
smollm2-135m with ``--model``) and overall, the kills per phase (start-up, resume start-up,
mid-run, last step, final bookkeeping), how many resumed runs ended identical to the
uninterrupted run (k/N), refusals, duplicated events, and every failure with its kills.
See :mod:`societas.testing.random_kills` for how moments are drawn and phases read.

Usage::

    SOCIETAS_KILL_TRIALS=200 .venv/bin/python benchmarks/kills.py --out /tmp/kills
    .venv/bin/python benchmarks/kills.py --kills 30 --smollm2-share 0.1
    .venv/bin/python benchmarks/kills.py --sharded-kills 4 --experiment-kills 20

``SOCIETAS_KILL_TRIALS`` (or ``--kills``) is the number of kills in all; each trial kills one
run 1 to 4 times. The smollm2 workload uses the shared response cache (its reference run
fills it, so the killed runs replay the same answers).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from societas.testing.cli_process import CliProcesses
from societas.testing.experiment_kills import (
    ExperimentTrial,
    record_experiment,
    run_experiment_trial,
    summarise_experiments,
)
from societas.testing.random_kills import (
    TrialResult,
    Workload,
    kill_trials_from_env,
    record_reference,
    run_trial,
    summarise,
)

SHARDS = ("--ray", "local", "--world-shards", "2")


def sharded(home: Path) -> Workload:
    """duo over 2 world shards on a local Ray (each process starts Ray: slow, so few kills)."""
    return Workload(
        "duo-2-world-shards",
        ("duo", "--model", "fake:kills", "--hours", "6", "--seed", "3", "--no-interviews", *SHARDS),
        resume_args=("--no-interviews", *SHARDS),
        env={"SOCIETAS_HOME": str(home)},
    )


def workloads(home: Path, smollm2: bool) -> list[Workload]:
    fake = {"SOCIETAS_HOME": str(home)}
    found = [
        Workload(
            "duo",
            ("duo", "--model", "fake:kills", "--hours", "12", "--seed", "3", "--no-interviews"),
            env=fake,
        ),
        Workload(
            "town",
            ("town", "--model", "fake:kills", "--hours", "3", "--seed", "3", "--no-interviews"),
            env=fake,
        ),
    ]
    if smollm2:
        found.append(
            Workload(
                "duo-smollm2",
                ("duo", "--model", "smollm2-135m", "--hours", "2", "--seed", "0"),
                resume_args=(),
            )
        )
    return found


EXAMPLES = Path(__file__).parents[1] / "src" / "societas" / "experiments" / "examples"


def experiments(cli: CliProcesses, root: Path, rng: random.Random, kills: int) -> dict[str, Any]:
    """Kill experiments at random moments and run them again: their answers must be those
    of an uninterrupted experiment, each unit measured once."""
    found = {}
    env = {"SOCIETAS_HOME": str(root / "home")}
    for spec, wanted in (
        ("vignette_framing.yaml", kills - kills // 2),
        ("mask_policy_town.yaml", kills // 2),
    ):
        folder = root / spec.removesuffix(".yaml")
        folder.mkdir()
        args = [str(EXAMPLES / spec), "--model", "fake:kills", "--n", "6"]
        reference = record_experiment(cli, args, folder / "whole", env)
        results: list[ExperimentTrial] = []
        while sum(len(r.phases) for r in results) < wanted:
            n = min(rng.randint(1, 3), wanted - sum(len(r.phases) for r in results))
            results.append(
                run_experiment_trial(
                    cli,
                    args,
                    reference,
                    folder / f"trial{len(results)}",
                    rng,
                    kills=n,
                    trial=len(results),
                    env=env,
                )
            )
        found[spec] = summarise_experiments(results)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=None, help="kills in all (default 40)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    parser.add_argument(
        "--smollm2-share", type=float, default=0.1, help="share of kills on smollm2 (0: none)"
    )
    parser.add_argument(
        "--sharded-kills", type=int, default=0, help="extra kills of world-sharded runs on Ray"
    )
    parser.add_argument(
        "--experiment-kills",
        type=int,
        default=0,
        help="extra kills of experiments (half a between design, half a world design)",
    )
    args = parser.parse_args()
    total = args.kills or kill_trials_from_env(40)
    root = args.out or Path(tempfile.mkdtemp(prefix="societas-kills-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cli = CliProcesses()
    rng = random.Random(args.seed)
    chosen = workloads(root / "home", args.smollm2_share > 0)
    shares = {w.name: args.smollm2_share if "smollm2" in w.name else 1.0 for w in chosen}
    fake_share = (1 - args.smollm2_share) / sum(1 for w in chosen if "smollm2" not in w.name)
    wanted_of = {
        w.name: max(1, round(total * (shares[w.name] if "smollm2" in w.name else fake_share)))
        for w in chosen
    }
    if args.sharded_kills > 0:
        chosen.append(sharded(root / "home"))
        wanted_of[chosen[-1].name] = args.sharded_kills
    report: dict[str, Any] = {"kills_asked": total, "seed": args.seed, "workloads": {}}
    everything: list[TrialResult] = []
    started = time.perf_counter()
    for workload in chosen:
        wanted = wanted_of[workload.name]
        folder = root / workload.name
        folder.mkdir()
        record_reference(cli, workload, folder / "warm-up")  # fills caches, imports
        reference = record_reference(cli, workload, folder / "whole")
        results: list[TrialResult] = []
        while sum(len(r.kills) for r in results) < wanted:
            kills = min(rng.randint(1, 4), wanted - sum(len(r.kills) for r in results))
            trial = len(results)
            results.append(
                run_trial(
                    cli,
                    workload,
                    reference,
                    folder / f"trial{trial}",
                    rng,
                    kills=kills,
                    trial=trial,
                )
            )
        report["workloads"][workload.name] = summarise(results)
        everything.extend(results)
    report["overall"] = summarise(everything)
    if args.experiment_kills > 0:
        report["experiments"] = experiments(cli, root, rng, args.experiment_kills)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["runs_in"] = str(root)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
