"""Prompt versions are real: the lock matches the shipped templates and runs record the versions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from societas.engine.config import SimulationConfig
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.fake import SchemaFiller, ScriptedLLM
from societas.prompts import (
    PromptError,
    PromptTemplate,
    lock_problems,
    prompt_versions,
    read_lock,
    shipped_templates,
    template_hash,
    write_lock,
)
from societas.scenarios.scenario import load_scenario


def test_the_lock_matches_every_shipped_template() -> None:
    problems = lock_problems()
    assert not problems, (
        "prompt templates differ from prompt_versions.lock.json; bump each changed template's "
        "version, then run `python -m societas.prompts`:\n" + "\n".join(problems)
    )


def test_an_edit_without_a_version_bump_is_refused(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock.json"
    write_lock(lock_path)
    lock = read_lock(lock_path)
    key, template = next(iter(shipped_templates().items()))
    # The lock as it would be had the template's text been different at the same version.
    lock[key] = {"version": template.version, "hash": "0" * 16}
    lock_path.write_text(json.dumps(lock), "utf-8")
    assert lock_problems(read_lock(lock_path)) == [
        f"{key}: content changed but version is still {template.version}: bump it"
    ]
    with pytest.raises(PromptError, match="bump it"):
        write_lock(lock_path)
    # After a bump the lock can be rewritten.
    lock[key] = {"version": template.version - 1, "hash": "0" * 16}
    lock_path.write_text(json.dumps(lock), "utf-8")
    assert lock_problems(read_lock(lock_path)) == [
        f"{key}: version {template.version - 1} -> {template.version}"
    ]
    write_lock(lock_path)
    assert lock_problems(read_lock(lock_path)) == []


def test_the_hash_covers_the_text_but_not_the_version() -> None:
    base = PromptTemplate(id="t", version=1, system="You are ${name}.", user="Hi.")
    assert template_hash(base) == template_hash(base.model_copy(update={"version": 2}))
    assert template_hash(base) != template_hash(base.model_copy(update={"user": "Hello."}))


async def test_runs_record_the_prompt_versions(tmp_path: Path) -> None:
    sim = await Simulation.start(
        load_scenario("duo"),
        tmp_path / "run",
        ScriptedLLM(SchemaFiller(random.Random(0)).responder),
        SimulationConfig(),
    )
    await sim.run(hours=0.5)
    sim.close("finished")
    meta = RunStore.open(tmp_path / "run").meta()
    assert meta["prompts"] == prompt_versions()
    assert meta["prompts"]["societas.agents.cognition/plan_day"] >= 1
