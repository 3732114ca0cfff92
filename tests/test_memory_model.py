"""Importance rating and reflection on the real tiny model: valid, bounded answers, few calls.

The 135M model is weak, so these tests check the contract (counts, ranges, citations, call
budget), not the quality of what it says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from societas.agents.cognition.importance import ImportanceMemo, rate_importance
from societas.agents.cognition.reflection import reflect
from societas.agents.persona import Persona
from societas.llm.registry import open_llm
from societas.llm.types import SamplingParams
from societas.memory.records import MemoryKind
from societas.memory.stream import MemoryStream

pytestmark = pytest.mark.model

ADA = Persona(name="Ada Lind", age=31, occupation="baker", traits=["warm", "anxious"])
NOW = datetime(2024, 2, 13, 21, 0)
DAY = [
    "Tom told Ada the bakery rent will double next month",
    "Ada worried about paying the rent",
    "Klaus asked Ada to cater his wedding",
    "Ada agreed to cater the wedding",
    "Maria praised Ada's rye bread",
    "the oven is idle",
    "Ada counted the money in the till",
]


async def test_rating_and_reflecting_on_the_tiny_model(tmp_path: Path) -> None:
    async with open_llm("smollm2-135m", cache_path=tmp_path / "llm-cache.sqlite") as llm:
        scores = await rate_importance(llm, ADA, DAY, memo=ImportanceMemo())
        assert len(scores) == len(DAY)
        assert all(1 <= score <= 10 for score in scores)
        assert scores[5] == 1  # the idle oven is routine

        stream = MemoryStream()
        times = [NOW - timedelta(hours=len(DAY) - i) for i in range(len(DAY))]
        stream.add_many("observation", DAY, times, scores, await llm.embed(DAY))
        greedy = SamplingParams(temperature=0.0)
        new = await reflect(llm, ADA, stream, NOW, params=greedy)

        purposes = llm.meter.snapshot().purposes
        assert purposes["rate"].requests == 1
        assert 1 <= purposes["reflect"].requests <= 2
        assert new == list(range(len(DAY), len(DAY) + len(new)))
        for memory_id in new:
            record = stream.by_id(memory_id)
            assert record.kind is MemoryKind.REFLECTION
            assert record.evidence and all(0 <= i < len(DAY) for i in record.evidence)
            assert record.depth == 1 and 1 <= record.importance <= 10
            assert 0 < len(record.text) <= 160
        assert stream.unreflected_importance == 0
