"""The record of a run: a step's events and model calls, kept until the step commits them.

Every event is keyed by its place in the step, so that the logs of shards (each recording only
its own agents' events, see :mod:`societas.engine.sharding`) merge into the order one process
writes: code every shard runs counts each event whether it records it or not, and a pass over
agents that only their owners run (:meth:`StepRecorder.pass_over`) keys its events by agent.

A step's events, and a checkpoint when one is due, go to the run store in one transaction
(:meth:`StepRecorder.commit`); a shard ships them to its driver instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from societas.agents.agent import Agent
from societas.engine.checkpoints import StreamSaver
from societas.engine.events import CALL_KEY, Event, EventKey, in_stable_order, order_key
from societas.engine.runstore import RunStore, encode_event
from societas.engine.sharding import Shipment
from societas.world.clock import GameClock


class StepRecorder:
    """The pending events of a step, each stamped with the step and time of ``clock``.

    ``owned`` names the agents a shard records (None: every agent, not sharded); the world's
    own events are recorded by the ``lead`` shard only.
    """

    def __init__(self, clock: GameClock, owned: frozenset[str] | None, lead: bool) -> None:
        self.clock = clock
        self.owned = owned
        self.lead = lead
        self._events: list[tuple[EventKey, Event]] = []
        self._emitted = 0
        self._pass_agent: str | None = None
        self._pass_index = 0
        # What a shard would have committed, for its driver to collect (take_shipments).
        self.shipments: list[Shipment] = []
        self.saver = StreamSaver()

    def emit(self, agent: str | None, kind: str, data: dict[str, Any]) -> None:
        """Record an event of ``agent`` (None: of the world) at the clock's step and time."""
        if self._pass_agent is None:
            self._emitted += 1
            key: EventKey = (self._emitted, "", 0)
        else:
            self._pass_index += 1
            key = (self._emitted, self._pass_agent, self._pass_index)
        if self.owned is not None and not (agent in self.owned if agent is not None else self.lead):
            return  # the shard that owns the agent (or the lead, for the world) records it
        # Built unvalidated: the engine's own fields are well-typed, a large town emits hundreds
        # of thousands of events an hour, and the run store checks each kind as it writes it.
        self._events.append(
            (
                key,
                Event.model_construct(
                    step=self.clock.step, time=self.clock.now, kind=kind, agent=agent, data=data
                ),
            )
        )

    def pass_over(self, names: Sequence[str]) -> Iterator[str]:
        """``names`` (in name order) for a pass in which each agent emits its own events.

        The pass takes one place in the log, the same on every shard whichever agents it
        owns, and within it each agent's events go in its turn.
        """
        self._emitted += 1
        try:
            for name in names:
                self._pass_agent, self._pass_index = name, 0
                yield name
        finally:
            self._pass_agent = None

    def drain_outboxes(self, agents: Mapping[str, Agent], names: Sequence[str]) -> None:
        """Record the events the agents ``names`` (those this simulation steps) left in their
        outboxes (what their own cognition reported), and empty them."""
        # Only owned agents remember, so only their outboxes fill.
        for name in self.pass_over(names):
            agent = agents[name]
            for kind, data in agent.outbox:
                self.emit(name, kind, data)
            agent.outbox.clear()

    def record_call(self, agent: str | None, data: dict[str, Any]) -> None:
        """Record a model call made for ``agent`` (its ``llm_call`` event ``data``)."""
        self._events.append(
            (
                CALL_KEY,
                Event(
                    step=self.clock.step,
                    time=self.clock.now,
                    kind="llm_call",
                    agent=agent,
                    data=data,
                ),
            )
        )

    def record_failed_calls(self, store: RunStore | None) -> None:
        """Keep the model calls of a step that failed (with their errors) and drop the rest.

        The step's other events never happened as far as the run is concerned; a resume from
        the last checkpoint replaces these records with those of the step run again.
        """
        calls = [event for _, event in self._events if event.kind == "llm_call"]
        self._events = []
        if store is not None and calls:
            store.commit_step(self.clock.step, self.clock.now, calls)

    def discard(self) -> None:
        """Drop the pending events (a simulation that records nothing)."""
        self._events.clear()

    def commit(
        self,
        store: RunStore | None,
        step: int,
        time: datetime,
        state: dict[str, Any] | None,
        force_empty: bool,
    ) -> None:
        """Write the pending events of ``step`` and the checkpoint ``state`` in one transaction;
        with no ``store`` (a shard), ship them to the driver instead."""
        keyed, self._events = self._events, []
        if store is None:
            # The driver writes what all shards shipped, or the run stops there. Events go
            # encoded: checking and encoding them is the shards' work, not the driver's.
            rows = [(order_key(key, event), encode_event(event, step)) for key, event in keyed]
            self.shipments.append(Shipment(step, time, rows, state, force_empty))
            self.saver.committed()
            return
        events = in_stable_order(keyed)
        if not events and state is None and not force_empty:
            return
        try:
            store.commit_step(step, time, events, state)
        except BaseException:
            self.saver.discard()
            raise
        self.saver.committed()

    def take_shipments(self) -> list[Shipment]:
        """What this shard committed since the last call, for its driver."""
        shipments, self.shipments = self.shipments, []
        return shipments
