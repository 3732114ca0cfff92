"""How a respondent's answer is produced: the model's single most likely answer, a draw from
its token probabilities, or a draw from a distribution the respondent states.

- ``mode``: greedy decoding (temperature 0): the single most likely answer. Whole arms often
  answer alike this way.
- ``token``: one draw from the model's own next-token distribution over the allowed answers
  (temperature 1, no nucleus cut, a seed of the respondent's own), so a population spreads as
  the model's probabilities do; numeric answers are drawn the same way, not taken at the mode.
- ``stated``: the respondent states a percent chance per option (or a low, typical and high
  number) and the answer is drawn in code from that, with the run's seeded rng.

Every respondent's draws come from :func:`respondent_rng`, seeded by the experiment's seed, the
agent, the question and the replicate, so a resumed or reordered run draws the same answers.

Examples
--------
>>> rng = respondent_rng(7, "Ada", "q", 0)
>>> draw_option(rng, {"Yes": 1.0, "No": 0.0})
'Yes'
>>> draw_from_quantiles(0.5, 10, 20, 40)
20.0
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np

from societas.llm.types import SamplingParams

AnswerMode = Literal["mode", "token", "stated"]
ANSWER_MODES: tuple[str, ...] = get_args(AnswerMode)


def respondent_rng(seed: int, agent: str, question: str, replicate: int) -> np.random.Generator:
    """The generator of one respondent's answer to one question (stable across runs)."""
    key = [seed, zlib.crc32(agent.encode()), zlib.crc32(question.encode()), replicate]
    return np.random.default_rng(key)


def sampling_for(mode: AnswerMode, rng: np.random.Generator) -> SamplingParams:
    """The model's sampling in ``mode`` (``token``: a seed drawn from the respondent's rng)."""
    if mode == "token":
        return SamplingParams(temperature=1.0, top_p=1.0, seed=int(rng.integers(0, 2**31 - 1)))
    return SamplingParams(temperature=0.0)


def shuffled(options: Sequence[str], rng: np.random.Generator) -> tuple[str, ...]:
    """``options`` in a random order (recorded with the answer, so order effects can be checked)."""
    return tuple(options[i] for i in rng.permutation(len(options)))


def draw_option(rng: np.random.Generator, probabilities: Mapping[str, float]) -> str:
    """One option drawn with the given probabilities (normalised)."""
    names = list(probabilities)
    weights = np.array([max(0.0, probabilities[n]) for n in names], np.float64)
    if weights.sum() <= 0:
        raise ValueError("no option has a positive probability")
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def draw_from_quantiles(u: float, low: float, typical: float, high: float) -> float:
    """The value at quantile ``u`` of a distribution with 10th, 50th and 90th percentiles
    ``low``, ``typical`` and ``high``: piecewise linear between them, extended beyond them with
    the slopes of the outer pieces."""
    points = [(0.1, low), (0.5, typical), (0.9, high)]
    if u <= 0.5:
        (u0, v0), (u1, v1) = points[0], points[1]
    else:
        (u0, v0), (u1, v1) = points[1], points[2]
    return float(v0 + (v1 - v0) * (u - u0) / (u1 - u0))
