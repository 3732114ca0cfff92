"""How long the client waits for a model call and how often it tries again.

The defaults suit a local model or a healthy server. A slow shared server needs a longer timeout,
a flaky one more retries, and a test of failure handling none. Every command reads the settings
from the environment (``SOCIETAS_LLM_TIMEOUT_S``, ``SOCIETAS_LLM_RETRIES``), which the CLI's
``--llm-timeout`` and ``--llm-retries`` set, so Ray workers started by the command (and those
of a cluster, which receive the variables with the job) use them too.

Examples
--------
>>> patience_from({"SOCIETAS_LLM_TIMEOUT_S": "600", "SOCIETAS_LLM_RETRIES": "5"})
Patience(timeout_s=600.0, max_retries=5)
>>> patience_from({})
Patience(timeout_s=180.0, max_retries=3)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from societas.llm.types import LLMConfigError

TIMEOUT_VARIABLE = "SOCIETAS_LLM_TIMEOUT_S"
RETRIES_VARIABLE = "SOCIETAS_LLM_RETRIES"
DEFAULT_TIMEOUT_S = 180.0
DEFAULT_RETRIES = 3
MAX_RETRIES = 20

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Patience:
    """Seconds before one backend call times out; retries of a call that failed transiently."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise LLMConfigError(f"the model call timeout must be positive, got {self.timeout_s}")
        if not 0 <= self.max_retries <= MAX_RETRIES:
            raise LLMConfigError(
                f"model call retries must be 0-{MAX_RETRIES}, got {self.max_retries}"
            )

    def environment(self) -> dict[str, str]:
        """The variables that carry these settings to other processes."""
        return {TIMEOUT_VARIABLE: f"{self.timeout_s:g}", RETRIES_VARIABLE: str(self.max_retries)}


def patience_from(env: Mapping[str, str] | None = None) -> Patience:
    """The settings in ``env`` (default: this process's environment), defaults where unset."""
    source = os.environ if env is None else env
    timeout = _read(source, TIMEOUT_VARIABLE, float)
    retries = _read(source, RETRIES_VARIABLE, int)
    return Patience(
        timeout_s=DEFAULT_TIMEOUT_S if timeout is None else timeout,
        max_retries=DEFAULT_RETRIES if retries is None else retries,
    )


def set_patience(patience: Patience) -> None:
    """Make ``patience`` this process's setting (and its child processes')."""
    os.environ.update(patience.environment())


def patience_variables() -> dict[str, str]:
    """The settings' variables that are set here, to hand to processes elsewhere."""
    names = (TIMEOUT_VARIABLE, RETRIES_VARIABLE)
    return {k: os.environ[k].strip() for k in names if os.environ.get(k, "").strip()}


def _read(source: Mapping[str, str], name: str, kind: type[Number]) -> Number | None:
    raw = source.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        expected = "a whole number" if kind is int else "a number of seconds"
        raise LLMConfigError(
            f"environment variable {name} must be {expected}, got {raw!r}"
        ) from None
