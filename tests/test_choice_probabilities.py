"""Token probabilities over answer choices: the client method, its cache, and the real model."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from societas.agents.cognition.stated import state_distribution, token_distribution
from societas.agents.persona import Persona
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM, first_token_shares
from societas.llm.fake import HashEmbedder
from societas.llm.fake_backend import ScriptedBackend
from societas.llm.types import (
    Completion,
    LLMConfigError,
    LLMOutputError,
    Message,
    SamplingParams,
)

ASK = [Message(role="user", content="Which? A) tea B) coffee")]


class LogprobBackend(ScriptedBackend):
    """A scripted backend that also reports first-token log probabilities."""

    def __init__(self, logprobs: dict[str, float]) -> None:
        super().__init__()
        self.logprobs = logprobs
        self.asked = 0

    async def chat_first_token(
        self, messages: Sequence[Message], choices: Sequence[str], params: SamplingParams, top: int
    ) -> Completion:
        self.asked += 1
        return Completion(text=choices[0], first_token_logprobs=self.logprobs)


def test_shares_are_renormalised_over_the_choices_only() -> None:
    shares = first_token_shares({"A": math.log(0.6), " B": math.log(0.2), "The": -0.1}, ["A", "B"])
    assert shares == pytest.approx({"A": 0.75, "B": 0.25})
    with pytest.raises(LLMOutputError, match="no answer choice"):
        first_token_shares({"The": -0.1}, ["A", "B"])


async def test_the_client_asks_once_and_caches(tmp_path: Path) -> None:
    backend = LogprobBackend({"A": math.log(0.3), "B": math.log(0.6)})
    llm = LLM(backend, HashEmbedder(), cache=ResponseCache(tmp_path / "c.sqlite"))
    first = await llm.choice_probabilities(ASK, ["A", "B"], purpose="survey")
    again = await llm.choice_probabilities(ASK, ["A", "B"], purpose="survey")
    assert first == again == pytest.approx({"A": 1 / 3, "B": 2 / 3}) and backend.asked == 1
    assert llm.meter.snapshot().purposes["survey"].cache_hits == 1
    plain = LLM(ScriptedBackend(), HashEmbedder())
    with pytest.raises(LLMConfigError, match="token probabilities"):
        await plain.choice_probabilities(ASK, ["A", "B"], purpose="survey")


@pytest.mark.model
def test_token_and_stated_distributions_on_the_tiny_model(tmp_path: Path) -> None:
    from societas.llm.registry import open_llm

    async def ask() -> tuple[dict[str, float], dict[str, float]]:
        async with open_llm("smollm2-135m", cache_path=tmp_path / "cache.sqlite") as llm:
            persona = Persona(name="Ada Quist", age=40)
            options = ["Tea", "Coffee", "Water"]
            token = await token_distribution(llm, persona, "What do you drink?", options)
            stated = await state_distribution(llm, persona, "What do you drink?", options)
            return token, stated.probabilities

    token, stated = asyncio.run(ask())
    for shares in (token, stated):
        assert set(shares) == {"Tea", "Coffee", "Water"}
        assert sum(shares.values()) == pytest.approx(1.0)
    # the model's own probabilities are spread, not a single certain answer
    assert 0 < max(token.values()) < 1
