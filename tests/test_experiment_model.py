"""End to end on the real tiny model: a 4-agent vignette experiment, then a rerun from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.experiments.runner import run_experiment
from societas.experiments.spec import EXAMPLE, experiment_from_text

pytestmark = pytest.mark.model


async def test_vignette_experiment_on_the_tiny_model(tmp_path: Path) -> None:
    from societas.llm.registry import open_llm

    spec = experiment_from_text(EXAMPLE)
    async with open_llm("smollm2-135m", cache_path=tmp_path / "llm-cache.sqlite") as llm:
        result = await run_experiment(spec, llm, tmp_path / "out", n=4)
        calls = llm.meter.snapshot().total.calls
        again = await run_experiment(spec, llm, tmp_path / "again", n=4)
        assert llm.meter.snapshot().total.calls == calls  # the rerun is served by the cache
    assert len(result.responses) == 4
    assert set(result.responses["answer"]) <= {"A", "B"}
    assert result.responses.groupby("arm").size().to_dict() == {"gain": 2, "loss": 2}
    assert result.usage["purposes"]["survey"]["requests"] == 4
    assert (tmp_path / "out" / "report.html").exists()
    assert again.responses["answer"].tolist() == result.responses["answer"].tolist()
