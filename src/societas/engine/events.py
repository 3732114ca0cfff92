"""The event record: everything that happens in a run is an event in the run store.

Kinds and their ``data`` fields (the contract between the engine, measurements and the viewer):

- ``move``: ``tile`` [x, y], ``place`` (address "area:room" or "area:room:object").
- ``action``: ``description``, ``emoji``, ``place``, ``object`` (or null), ``start`` (ISO time),
  ``minutes``.
- ``object_state``: ``object`` (address), ``state``.
- ``observation``: ``text``.
- ``conversation``: ``id``, ``participants`` [names], ``place``, ``summary``.
- ``conversation_failed``: ``participants`` [names], ``place``, ``error``: the model gave no
  valid conversation, so none took place.
- ``utterance``: ``conversation_id``, ``speaker``, ``listeners`` [names], ``text``.
- ``news_heard``: ``news_id``, ``source`` (speaker name), ``conversation_id``.
- ``memory``: ``id``, ``memory_kind`` (observation|reflection|plan|dialogue), ``text``,
  ``importance``, ``evidence`` [ids].
- ``plan``: ``date``, ``blocks`` [{start, end, activity, place}], ``reason``.
- ``reaction``: ``choice`` (continue|replan|talk), ``target``, ``reason``; a replan with a
  detour adds ``detour``, ``place``, ``minutes``.
- ``relationship``: ``other``, ``summary``.
- ``llm_call``: ``purpose``, ``model``, ``prompt_tokens``, ``completion_tokens``, ``cached``,
  ``latency_s``, ``error`` (or null), ``retries``, ``repaired``, ``backend_calls``,
  ``invalid_answers``.
- ``intervention``: ``description``, plus what the intervention defines.

``agent`` is the acting or perceiving agent's name, or None for world-level events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EVENT_KINDS = frozenset(
    {
        "move",
        "action",
        "object_state",
        "observation",
        "conversation",
        "conversation_failed",
        "utterance",
        "news_heard",
        "memory",
        "plan",
        "reaction",
        "relationship",
        "llm_call",
        "intervention",
    }
)


class Event(BaseModel):
    """One thing that happened at a step of a run."""

    model_config = ConfigDict(frozen=True)

    step: int = Field(ge=0)
    time: datetime
    kind: str
    agent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
