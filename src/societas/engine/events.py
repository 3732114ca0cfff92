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
- ``llm_call``: ``purpose``, ``model``, ``prompt_tokens`` (sent), ``reused_prompt_tokens`` (of
  those, the ones the server did not read again: prefix reuse; absent in older runs),
  ``completion_tokens``, ``cached`` (answered from the response cache, nothing sent),
  ``latency_s``, ``error`` (or null), ``retries``, ``repaired``, ``backend_calls``,
  ``invalid_answers``.
- ``intervention``: ``description``, plus what the intervention defines.
- ``routine``: the agent's routine (:class:`~societas.world.routine.Routine` as JSON: ``wake``,
  ``sleep``, ``work`` {place, start, end} or null, ``meals`` [{meal, time, place}], ``source``
  scenario|derived), once per agent at the start of a run.
- ``plan_check``: ``stage`` (day|replan|agreement|decision), ``violations`` [text] found in the
  model's plan, ``repaired`` (a repair call was made), ``remaining`` [text] still violating after
  it, ``fallbacks`` [{start, end, rule}] slots given back to the routine, ``text_fixes`` (free texts
  cut back to whole words or cleared of another script).
- ``commitment_decision``: ``description``, ``start``, ``place``, ``go`` (bool), ``reason``: the
  agent's own decision, shortly before, whether it still keeps an agreement.

``agent`` is the acting or perceiving agent's name, or None for world-level events.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        "routine",
        "plan_check",
        "commitment_decision",
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


# Where an event goes in its step's log: (emission count, agent of a per-agent pass, index).
EventKey = tuple[int, str, int]
CALL_KEY: EventKey = (-1, "", 0)  # model calls are ordered by what they were (in_stable_order)


# A total order of a step's events: (0, EventKey) for world events, (1, what a call was) for calls.
OrderKey = tuple[int, tuple[Any, ...]]


def order_key(key: EventKey, event: Event) -> OrderKey:
    """Where ``event``, emitted under ``key``, goes in its step's log (see in_stable_order)."""
    if event.kind != "llm_call":
        return (0, key)
    data = event.data
    return (
        1,
        (
            event.agent or "",
            str(data.get("purpose", "")),
            bool(data.get("cached")),
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            str(data.get("error") or ""),
        ),
    )


def in_stable_order(keyed: Sequence[tuple[EventKey, Event]]) -> list[Event]:
    """A step's events of one process with its model calls last, in an order that does not
    depend on timing.

    Concurrent calls are recorded as their answers arrive; sorting them by what they were makes
    the log of a run the same whichever answer came first (latencies aside). The other events
    stay in the order given: one process emits them in key order. (Shards' events are merged by
    :func:`order_key` instead.)
    """
    events = [event for _, event in keyed if event.kind != "llm_call"]
    calls = [item for item in keyed if item[1].kind == "llm_call"]
    if not calls:
        return events
    calls.sort(key=lambda item: order_key(*item))
    return events + [event for _, event in calls]
