"""Token probabilities over answer choices: the client method, its cache, and the real model."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from societas.agents.cognition.stated import state_distribution, token_distribution
from societas.agents.persona import Persona
from societas.llm.cache import ResponseCache
from societas.llm.client import LLM, first_token_shares
from societas.llm.fake import HashEmbedder, ScriptedBackend
from societas.llm.openai_compat import OpenAIBackend
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


ANSWER = {
    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{
        "index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "B"},
        "logprobs": {"content": [{"token": "B", "logprob": -0.2, "bytes": None, "top_logprobs": [
            {"token": "B", "logprob": -0.2, "bytes": None},
            {"token": "A", "logprob": -1.9, "bytes": None},
            {"token": "I", "logprob": -3.0, "bytes": None}]}]},
    }],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}  # fmt: skip


def test_an_openai_compatible_server_is_asked_for_logprobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps(ANSWER).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SOCIETAS_API_KEY", "test-key")
    try:
        backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{server.server_port}/v1")
        llm = LLM(backend, HashEmbedder())
        shares = asyncio.run(llm.choice_probabilities(ASK, ["A", "B"], purpose="survey"))
    finally:
        server.shutdown()
    assert seen[0]["logprobs"] is True and seen[0]["top_logprobs"] == 20
    assert seen[0]["max_tokens"] == 1
    total = math.exp(-0.2) + math.exp(-1.9)
    assert shares == pytest.approx({"A": math.exp(-1.9) / total, "B": math.exp(-0.2) / total})


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
