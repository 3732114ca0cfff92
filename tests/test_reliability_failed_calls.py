"""A model call that fails for good ends the step: the failed call is recorded, labelled with its
error, nothing else of the step is kept, nothing is cached, and a resume from the last checkpoint
ends exactly like a run that never failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM
from societas.llm.fake import BackendRequest, HashEmbedder, SchemaAnswers, ScriptedBackend
from societas.llm.types import BackendTransientError, LLMUnavailableError
from societas.scenarios.scenario import load_scenario
from support.run_logs import world_events


class Outage:
    """Answers like the ``fake:`` model until switched off, then every request fails."""

    def __init__(self) -> None:
        self.down = False
        self._answers = SchemaAnswers()

    def __call__(self, request: BackendRequest) -> str:
        if self.down:
            raise BackendTransientError("server down")
        return self._answers(request)


def model(outage: Outage, cache: Path) -> LLM:
    backend = ScriptedBackend(responder=outage, model_id="fake:outage")
    return LLM(backend, HashEmbedder(), cache=ResponseCache(cache), max_retries=2, retry_base_s=0)


async def test_a_failed_call_is_recorded_as_a_failure_and_the_run_resumes(tmp_path: Path) -> None:
    whole = await Simulation.start(
        load_scenario("duo"), tmp_path / "whole", model(Outage(), tmp_path / "c1.sqlite")
    )
    await whole.run(hours=8)
    whole.close("finished")

    outage = Outage()
    llm = model(outage, tmp_path / "c2.sqlite")
    sim = await Simulation.start(load_scenario("duo"), tmp_path / "run", llm, meter=llm.meter)
    await sim.run(hours=3)
    outage.down = True
    with pytest.raises(LLMUnavailableError, match=r"after 3 attempts: .*server down"):
        await sim.run(hours=5)
    failed_step = sim.step_index
    sim.close("failed")
    assert llm.cache is not None
    cached = llm.cache.stats().entries
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        at_failure = [s.event for s in store.iter_events(from_step=failed_step)]
    assert at_failure and all(e.kind == "llm_call" for e in at_failure)
    failures = [e.data for e in at_failure if e.data["error"]]
    assert failures and all(f["retries"] == 2 and not f["cached"] for f in failures)
    assert "LLMUnavailableError" in failures[0]["error"]

    outage.down = False
    resumed = Simulation.resume(tmp_path / "run", llm, load_scenario("duo"), meter=llm.meter)
    await resumed.run(until=whole.now)
    resumed.close("finished")
    assert llm.cache.stats().entries > cached  # the failed calls left nothing behind before
    llm.cache.close()
    assert world_events(tmp_path / "run") == world_events(tmp_path / "whole")
