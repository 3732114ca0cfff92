"""One world's agents split over shards that step in lockstep (for towns too big for one process).

Every shard holds the whole world and a light copy of every agent, but *owns* only some agents:
their memories live there, and only there are their model calls made (plans, actions,
reactions, reflections, their side of a conversation). Whatever the others must know of an
owned agent's turn, its result and what others read of the agent (current action, place,
commitments), is shared at the end of each phase through an :class:`AgentExchange`, so every
shard then takes the same decisions about the world (who walks where, who talks to whom, who
heard the news) and the world stays identical on all of them.

A shard writes no run store: its events and its part of each checkpoint go out as
:class:`Shipment` objects, and the driver merges them (:func:`merge_shipments`) into what one
process would have written. With the same seed and response cache, a sharded run records the
same events and state as a run in one process.

:class:`LocalHub` connects shards in one process (tests, and a check before a cluster run);
``societas.distributed.world_shards`` connects them over Ray.

Examples
--------
>>> import asyncio
>>> hub = LocalHub(2)
>>> first, second = hub.member(0, {"Ann"}), hub.member(1, {"Bo"})
>>> async def share():
...     return await asyncio.gather(first.gather({"Ann": 1}), second.gather({"Bo": 2}))
>>> asyncio.run(share())
[{'Ann': 1, 'Bo': 2}, {'Ann': 1, 'Bo': 2}]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from societas.engine.events import OrderKey
from societas.engine.runstore import EventRow, RunStore

LEAD = 0  # the shard that emits the world's own events and saves the world in checkpoints


@dataclass
class Shipment:
    """What one shard would have committed to the run store in one commit."""

    step: int
    time: datetime
    # Encoded for the run store, each with its place in the step's log (events.order_key).
    events: list[tuple[OrderKey, EventRow]]
    # This shard's part of a checkpoint: its owned agents, and the world only on the lead.
    state: dict[str, Any] | None = None
    force_empty: bool = False


class AgentExchange(Protocol):
    """A shard's link to the other shards of its world."""

    @property
    def index(self) -> int:
        """This shard's number; shard :data:`LEAD` speaks for the world itself."""
        ...

    @property
    def owned(self) -> frozenset[str]:
        """The agents this shard steps."""
        ...

    async def gather(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Every shard's ``payload`` merged (keys are agent names, so they never clash).

        Every shard calls it at the same points of a step, in the same order.
        """
        ...


@dataclass
class _Round:
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    readers: int = 0


class LocalHub:
    """Exchange for shards running as tasks of one event loop."""

    def __init__(self, shards: int) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self.shards = shards
        self._rounds: dict[int, _Round] = {}

    def member(self, index: int, owned: set[str] | frozenset[str]) -> HubMember:
        if not 0 <= index < self.shards:
            raise ValueError(f"shard {index} is not one of 0..{self.shards - 1}")
        return HubMember(self.gather, index, frozenset(owned))

    async def gather(self, round_no: int, index: int, payload: dict[str, Any]) -> dict[str, Any]:
        current = self._rounds.setdefault(round_no, _Round())
        if index in current.parts:
            raise RuntimeError(f"shard {index} gave round {round_no} twice")
        current.parts[index] = payload
        if len(current.parts) == self.shards:
            current.done.set()
        await current.done.wait()
        current.readers += 1
        if current.readers == self.shards:  # the last shard to read the round frees it
            del self._rounds[round_no]
        return merge_payloads(current.parts)


class HubMember:
    """A shard's :class:`AgentExchange` through a hub: its n-th gather is the hub's round n.

    ``send(round_no, index, payload)`` hands the payload to the hub and returns the merged
    round (a call on a :class:`LocalHub`, or on a hub actor elsewhere).
    """

    def __init__(
        self,
        send: Callable[[int, int, dict[str, Any]], Awaitable[dict[str, Any]]],
        index: int,
        owned: frozenset[str],
    ) -> None:
        self._send = send
        self._index = index
        self._owned = owned
        self._round = 0

    @property
    def index(self) -> int:
        return self._index

    @property
    def owned(self) -> frozenset[str]:
        return self._owned

    async def gather(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._round += 1
        return await self._send(self._round, self._index, payload)


def merge_payloads(parts: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The shards' payloads in one dict, in shard order (each key comes from one shard)."""
    merged: dict[str, Any] = {}
    for index in sorted(parts):
        merged.update(parts[index])
    return merged


def partition_agents(homes: Mapping[str, tuple[float, float]], shards: int) -> list[set[str]]:
    """Agents split into ``shards`` groups of near-equal size by where they live.

    ``homes`` maps each agent to its home's centre (x, y). Neighbours share a shard: the town is
    cut into vertical strips, so most meetings (and the model calls of both sides of a
    conversation) stay on one shard. Ties go by name, so the split is the same on every run.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    if shards > len(homes):
        raise ValueError(f"{shards} shards for {len(homes)} agents: at most one shard per agent")
    ordered = sorted(homes, key=lambda name: (homes[name][0], homes[name][1], name))
    size, extra = divmod(len(ordered), shards)
    groups: list[set[str]] = []
    start = 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        groups.append(set(ordered[start:end]))
        start = end
    return groups


def merge_shipments(per_shard: Sequence[Sequence[Shipment]]) -> list[Shipment]:
    """The commits one process would have made, from each shard's shipments of the same steps.

    Every shard commits at the same points, so the n-th shipments of all shards belong together:
    their events are pooled (the caller orders them) and their checkpoint parts joined.
    """
    counts = {len(shipments) for shipments in per_shard}
    if len(counts) != 1:
        raise RuntimeError(f"shards disagree on how many commits a step made: {sorted(counts)}")
    merged: list[Shipment] = []
    for together in zip(*per_shard, strict=True):
        first = together[0]
        if any(
            (s.step, s.time, s.state is None) != (first.step, first.time, first.state is None)
            for s in together
        ):
            raise RuntimeError(f"shards disagree on the commit of step {first.step}")
        events = [event for shipment in together for event in shipment.events]
        state = None
        if first.state is not None:
            state = merge_states([s.state for s in together if s.state is not None])
        merged.append(
            Shipment(first.step, first.time, events, state, any(s.force_empty for s in together))
        )
    return merged


def merge_states(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A whole simulation state from the shards' parts (the lead's part carries the world)."""
    lead = next((part for part in parts if part.get("world") is not None), None)
    if lead is None:
        raise RuntimeError("no shard saved the world (the lead shard's part is missing)")
    agents: dict[str, Any] = {}
    for part in parts:
        agents.update(part["agents"])
    return {**lead, "agents": dict(sorted(agents.items()))}


def commit_shipment(store: RunStore, shipment: Shipment) -> None:
    """Write a merged shipment as one process writes its commit."""
    if not shipment.events and shipment.state is None and not shipment.force_empty:
        return
    rows = [row for _, row in sorted(shipment.events, key=lambda item: item[0])]
    store.commit_rows(shipment.step, shipment.time, rows, shipment.state)
