"""How connected the agents became: densities of the conversation and "knows" networks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel

from societas.engine.events import Event
from societas.measurement.event_fields import listed_names, optional_str


class DensityPoint(BaseModel):
    """Network densities from ``time`` on.

    ``conversation``: undirected, an edge when two agents have talked, 2|E|/(n(n-1)).
    ``knows``: directed, initial relationships plus both directions of every conversation,
    |E|/(n(n-1)).
    """

    time: datetime
    conversation: float
    knows: float


class NetworkDensity(BaseModel):
    """How connected the agents became."""

    agents: int
    start: DensityPoint
    end: DensityPoint
    series: list[DensityPoint]
    conversation_pairs: list[tuple[str, str]]
    knows_edges: int


def network_density(
    events: Sequence[Event],
    *,
    agents: Sequence[str],
    start: datetime,
    end: datetime | None = None,
    relationships: Mapping[str, Sequence[str]] | None = None,
) -> NetworkDensity:
    """Densities of the conversation and "knows" networks at ``start``, over time and at ``end``.

    Two agents are linked once a ``conversation`` event lists both, or one speaks to the other
    in an ``utterance``. Fewer than two agents give density 0.
    """
    members = set(agents)
    possible = len(members) * (len(members) - 1)
    pairs: set[tuple[str, str]] = set()
    knows = {
        (name, other)
        for name, others in (relationships or {}).items()
        for other in others
        if name in members and other in members and name != other
    }

    def point(time: datetime) -> DensityPoint:
        if possible == 0:
            return DensityPoint(time=time, conversation=0.0, knows=0.0)
        return DensityPoint(
            time=time, conversation=2 * len(pairs) / possible, knows=len(knows) / possible
        )

    series = [point(start)]
    for event in events:
        new_pairs = _talking_pairs(event, members) - pairs
        if not new_pairs:
            continue
        pairs |= new_pairs
        knows |= {edge for a, b in new_pairs for edge in ((a, b), (b, a))}
        if series[-1].time == event.time:
            series[-1] = point(event.time)
        else:
            series.append(point(event.time))
    final_time = end or (events[-1].time if events else start)
    return NetworkDensity(
        agents=len(members),
        start=series[0],
        end=point(max(final_time, series[-1].time)),
        series=series,
        conversation_pairs=sorted(pairs),
        knows_edges=len(knows),
    )


def conversation_counts(
    events: Iterable[Event], *, agents: Collection[str]
) -> dict[tuple[str, str], int]:
    """How many ``conversation`` events each pair of agents (``(a, b)`` with ``a < b``) shared:
    the edges of the conversation network, weighted.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for event in events:
        if event.kind == "conversation":
            for pair in _talking_pairs(event, agents):
                counts[pair] += 1
    return dict(counts)


def _talking_pairs(event: Event, members: Collection[str]) -> set[tuple[str, str]]:
    """The pairs of agents (in name order) that ``event`` shows talking to each other."""
    talkers = {name for name in _talkers(event) if name in members}
    return {(a, b) for a in talkers for b in talkers if a < b}


def _talkers(event: Event) -> set[str]:
    if event.kind == "conversation":
        return set(listed_names(event.data.get("participants")))
    if event.kind == "utterance":
        speaker = optional_str(event.data.get("speaker")) or event.agent
        return set(listed_names(event.data.get("listeners"))) | ({speaker} if speaker else set())
    return set()
