"""Interventions: things injected into a running world at a game time (a policy, a message...).

They are scheduled on the world (``world.schedule(time, kind, data)``) so they travel with
snapshots and forks, and the engine applies the due ones at the start of each step. Each kind
says who notices what; the agents' memories and the run store's ``intervention`` events record it.

Kinds and their ``data``:

- ``announcement``: ``text``, optional ``agents`` (default everyone), optional ``importance``:
  a public notice every addressed agent learns (a new law, a mask policy, a news bulletin).
- ``rule``: ``text``, optional ``agents``: a standing rule, remembered with high importance and
  re-stated to each agent as a commitment-like memory.
- ``message``: ``sender``, ``recipients`` (default everyone else), ``text``: a message from one
  agent to others, remembered as dialogue by both sides.
- ``object_state``: ``object``, ``state``: the world changes (a shop closes, a sign goes up).

Examples
--------
>>> from datetime import datetime
>>> intervention_memory("announcement", {"text": "Masks are required indoors."}, "Ada")
'Announcement: Masks are required indoors.'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from societas.agents.agent import Agent
from societas.engine.agent_turns import MINDS_ONLY
from societas.engine.conversations import spread_news
from societas.memory.records import MemoryKind
from societas.world.errors import WorldError

if TYPE_CHECKING:
    from societas.engine.simulation import Simulation

KINDS = ("announcement", "rule", "message", "object_state")
DEFAULT_IMPORTANCE = {"announcement": 6, "rule": 8, "message": 6}


@dataclass(frozen=True)
class Delivery:
    """One agent's memory of an intervention."""

    agent: str
    text: str
    importance: int
    kind: str  # the memory kind: observation or dialogue


def check_intervention(kind: str, data: dict[str, Any], agents: list[str]) -> None:
    """Raise a clear error when an intervention is malformed (before it is scheduled)."""
    if kind not in KINDS:
        raise WorldError(f"unknown intervention kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind == "object_state":
        for field in ("object", "state"):
            if not str(data.get(field, "")).strip():
                raise WorldError(f"intervention object_state needs {field!r}")
        return
    if not str(data.get("text", "")).strip():
        raise WorldError(f"intervention {kind} needs a non-empty 'text'")
    named = list(data.get("agents") or []) + list(data.get("recipients") or [])
    if kind == "message":
        named.append(str(data.get("sender", "")))
    unknown = [name for name in named if name not in agents]
    if unknown:
        raise WorldError(f"intervention {kind} names unknown agents {unknown}; agents: {agents}")
    importance = data.get("importance")
    if importance is not None and not (isinstance(importance, int) and 1 <= importance <= 10):
        raise WorldError(f"intervention importance must be an integer 1-10, got {importance!r}")


def intervention_memory(kind: str, data: dict[str, Any], agent: str) -> str:
    """What ``agent`` remembers of the intervention."""
    text = " ".join(str(data.get("text", "")).split())
    if kind == "announcement":
        return f"Announcement: {text}"
    if kind == "rule":
        return f"New rule in town: {text}"
    sender = data.get("sender", "")
    if agent == sender:
        recipients = ", ".join(data.get("recipients") or []) or "everyone"
        return f"I sent a message to {recipients}: {text}"
    return f"{sender} sent me a message: {text}"


def deliveries(kind: str, data: dict[str, Any], agents: list[str]) -> list[Delivery]:
    """Who learns what from an intervention (none for a change of object state)."""
    if kind == "object_state":
        return []
    importance = int(data.get("importance") or DEFAULT_IMPORTANCE[kind])
    if kind == "message":
        sender = str(data["sender"])
        recipients = list(data.get("recipients") or [a for a in agents if a != sender])
        addressed = [sender, *recipients]
        memory_kind = "dialogue"
    else:
        addressed = list(data.get("agents") or agents)
        memory_kind = "observation"
    return [
        Delivery(name, intervention_memory(kind, data, name), importance, memory_kind)
        for name in sorted(set(addressed))
    ]


async def apply_due_interventions(sim: Simulation, now: datetime) -> None:
    """Apply the interventions due at ``now``: record them, change the world, spread their news
    and let every addressed agent remember what it learnt."""
    due = sim.world.pop_due()
    if not due:
        return
    memories: dict[str, list[tuple[str, int, MemoryKind]]] = {}
    for event in due:
        sim.recorder.emit(None, "intervention", {"kind": event.kind, **event.data})
        if event.kind == "object_state":
            sim.world.set_object_state(event.data["object"], event.data["state"])
            sim.recorder.emit(None, "object_state", dict(event.data))
            continue
        for delivery in deliveries(event.kind, event.data, sorted(sim.agents)):
            kind = MemoryKind.parse(delivery.kind)
            memories.setdefault(delivery.agent, []).append(
                (delivery.text, delivery.importance, kind)
            )
            source = str(event.data.get("sender") or event.kind)
            spread_news(sim, source, [delivery.agent], delivery.text, f"intervention:{event.seq}")
    if not sim.config.memory:
        return

    async def remember(agent: Agent) -> None:
        for text, importance, kind in memories.get(agent.name, []):
            await agent.remember(sim.llm, [text], kind, now, known=[importance])

    await sim.turns.for_each(remember, only=sorted(memories), share=MINDS_ONLY)
