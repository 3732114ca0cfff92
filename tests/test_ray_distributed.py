"""Experiments and town runs on a local Ray instance equal their local runs.

One Ray instance (2 CPUs) and one pool of model workers serve the whole module; the model is the
instant ``fake:`` testing model, so the time goes to Ray, not to inference.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.distributed.experiments import run_experiment_on_ray
from societas.distributed.model_workers import ModelPool, SpecModel, WorkerResources
from societas.distributed.replicates import replicate_seed
from societas.distributed.session import RayCapacityError, ray_session
from societas.engine.runstore import RunStore
from societas.experiments.runner import ExperimentResult, run_experiment
from societas.experiments.spec import EXAMPLE, experiment_from_text
from societas.llm.registry import open_llm
from societas.llm.types import LanguageModel, LLMError

MODEL = "fake:ray"
WITHIN = """\
name: nudge
seed: 2
population: {marginals: {n: 8}}
arms: [{id: none}, {id: message}]
stimulus:
  message: {vignette: "A friend urged me to join the garden cleanup on Saturday."}
outcomes:
  - {id: join, type: likert, question: How willing are you to join the garden cleanup, points: 7}
  - {id: why, type: open, question: What would make you join, rubric: Names a concrete reason}
design: within
"""
WORLD = """\
name: masks
seed: 4
population: {scenario: duo}
arms: [{id: quiet}, {id: rule}]
stimulus:
  rule:
    intervention:
      kind: announcement
      data: {text: "Masks are required at the cafe from today."}
outcomes:
  - {id: mask, type: likert, question: How likely are you to wear a mask at the cafe}
design: {type: world, fork_at: "+00:30", hours: 0.5}
"""


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    # Logical CPUs: room for the shared pool and the workers a test starts beside it.
    with ray_session(num_cpus=4) as ray:
        # Workers cannot import this test module; its functions travel by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        yield ray


@pytest.fixture(scope="module")
def pool(ray_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelPool]:
    cache = tmp_path_factory.mktemp("ray-cache") / "llm.sqlite"
    workers = ModelPool(SpecModel(MODEL, cache_path=str(cache)), workers=2)
    yield workers
    asyncio.run(workers.aclose())


async def local_run(text: str, out: Path, n: int | None = None) -> ExperimentResult:
    async with open_llm(MODEL, cache_path=out.parent / f"{out.name}.sqlite") as llm:
        return await run_experiment(experiment_from_text(text), llm, out, n=n)


@pytest.mark.parametrize(("text", "n"), [(EXAMPLE, 12), (WITHIN, None), (WORLD, None)])
async def test_an_experiment_on_ray_writes_the_local_response_table(
    pool: ModelPool, tmp_path: Path, text: str, n: int | None
) -> None:
    local = await local_run(text, tmp_path / "local", n)
    seen: list[tuple[int, int]] = []
    spec = experiment_from_text(text)
    on_ray = await run_experiment_on_ray(
        spec, pool, tmp_path / "ray", n=n, progress=lambda done, total: seen.append((done, total))
    )
    table = (tmp_path / "ray" / "responses.csv").read_bytes()
    assert table == (tmp_path / "local" / "responses.csv").read_bytes()
    assert len(on_ray.responses) == len(local.responses) > 0
    assert (
        seen[-1][0]
        == seen[-1][1]
        == on_ray.responses["agent"].nunique() * (2 if spec.design.type == "world" else 1)
    )
    # Every request the workers made is counted, as in the local run.
    assert on_ray.usage["total"]["requests"] == local.usage["total"]["requests"]
    assert (tmp_path / "ray" / "report.html").exists()


async def test_a_rerun_on_ray_resumes_and_asks_nothing(pool: ModelPool, tmp_path: Path) -> None:
    spec = experiment_from_text(EXAMPLE)
    first = await run_experiment_on_ray(spec, pool, tmp_path, n=6)
    log = tmp_path / "responses.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:4]) + "\n")  # as if killed after four agents
    again = await run_experiment_on_ray(spec, pool, tmp_path, n=6)
    assert 0 < again.usage["total"]["requests"] < first.usage["total"]["requests"] / 2
    third = await run_experiment_on_ray(spec, pool, tmp_path, n=6)
    assert third.usage.get("total", {}).get("requests", 0) == 0
    assert third.responses.equals(first.responses)


async def failing(llm: LanguageModel, item: int) -> int:
    if item == 3:
        raise LLMError("item 3 has no answer")
    return item * 2


async def test_a_worker_failure_reaches_the_driver_as_itself(pool: ModelPool) -> None:
    assert (await pool.map(failing, [0, 1, 2])).results == [0, 2, 4]
    with pytest.raises(LLMError, match="item 3 has no answer"):
        await pool.map(failing, [0, 1, 2, 3, 4])


async def test_workers_the_cluster_cannot_place_fail_clearly(ray_local: Any) -> None:
    source = SpecModel(MODEL, use_cache=False)
    greedy = WorkerResources(num_cpus=64)
    async with ModelPool(source, resources=greedy, placement_timeout_s=1.0) as too_big:
        with pytest.raises(RayCapacityError, match="could not start 1 model workers"):
            await too_big.map(failing, [0])


def test_replicates_on_ray_from_the_cli(
    pool: ModelPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    file = tmp_path / "framing.yaml"
    file.write_text(EXAMPLE)
    out = tmp_path / "out"
    args = ["experiment", "--ray", str(file), "-m", MODEL, "--n", "6", "--replicates", "2"]
    result = CliRunner().invoke(app, [*args, "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    first = pd.read_csv(out / "replicate-00" / "responses.csv")
    second = pd.read_csv(out / "replicate-01" / "responses.csv")
    assert len(first) == len(second) == 6
    assert f"seed: {replicate_seed(7, 1)}" in (out / "replicate-01" / "experiment.yaml").read_text()
    assert list(first["agent"]) != list(second["agent"])  # another seed, another sample
    local = asyncio.run(local_run(EXAMPLE, tmp_path / "local", n=6))
    assert first.equals(pd.read_csv(tmp_path / "local" / "responses.csv"))
    assert len(local.responses) == 6


def test_validate_on_ray_scores_like_a_local_run(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, extra in (("local", []), ("ray", ["--ray", "--workers", "1"])):
        monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / f"home-{name}"))
        args = ["validate", *extra, "--only", "asian_disease", "-m", MODEL, "--n", "8"]
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    for table in ("scorecard.csv", "full/asian_disease/responses.csv"):
        assert (tmp_path / "ray" / table).read_bytes() == (tmp_path / "local" / table).read_bytes()


Logged = tuple[int, str, str | None, str]


def events_of(run_dir: Path) -> tuple[list[Logged], list[Logged]]:
    """The run's world events in order, and its model calls (wall-clock latency left out).

    A call is logged when its answer arrives, and answers from different model servers (or from a
    model's parallel slots) arrive in no fixed order, so calls are compared sorted.
    """
    with RunStore.open(run_dir, readonly=True) as store:
        events = [stored.event for stored in store.events(limit=None)]
    where_it_ran = {"latency_s", "reused_prompt_tokens"}  # a server's own timing and prefix cache
    logged = [
        (
            e.step,
            e.kind,
            e.agent,
            json.dumps({k: v for k, v in e.data.items() if k not in where_it_ran}),
        )
        for e in events
    ]
    return [e for e in logged if e[1] != "llm_call"], sorted(
        e for e in logged if e[1] == "llm_call"
    )


def test_run_with_ray_model_servers_from_the_cli(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "--model-servers", "2"])):
        monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / f"home-{name}"))
        out = tmp_path / name
        args = ["run", "duo", "-m", MODEL, "--hours", "0.5", "--no-interviews", "--seed", "5"]
        result = CliRunner().invoke(app, [*args, *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        # ... and goes on the same way.
        more = ["resume", str(out), "--hours", "0.5", "--no-interviews"]
        resumed = CliRunner().invoke(app, [*more, *extra])
        assert resumed.exit_code == 0, resumed.output
        runs[name] = events_of(out)
    world, calls = runs["ray"]
    assert (world, calls) == runs["local"]
    assert len(calls) > 10 and {kind for _, kind, _, _ in world} >= {"move", "action"}
