"""Who came to each planned gathering, from the agents' ``move`` events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from societas.engine.events import Event
from societas.measurement.event_fields import optional_str
from societas.world.storylines import TrackedGathering


class Attendance(BaseModel):
    """Who came to a gathering: present at its place for at least ``min_minutes`` of its window."""

    gathering_id: str
    place: str
    start: datetime
    end: datetime
    min_minutes: float
    minutes: dict[str, float] = Field(description="minutes at the place in the window, if any")
    attendees: list[str]
    host: str | None = Field(default=None, description="holds it; never counted as invited")
    invited: list[str] | None = Field(
        description="heard of it before it ended, the host excepted; None: unknown"
    )
    invited_attendees: list[str] | None
    uninvited_attendees: list[str] | None
    share_of_invited: float | None


def in_place(address: str, prefix: str) -> bool:
    """Whether ``address`` lies within ``prefix`` (whole address parts: "cafe" holds "cafe:bar").

    >>> in_place("cafe:counter", "cafe"), in_place("cafeteria:hall", "cafe")
    (True, False)
    """
    prefix = prefix.rstrip(":")
    return address == prefix or address.startswith(prefix + ":")


def presence_minutes(
    events: Sequence[Event],
    *,
    place: str,
    window_start: datetime,
    window_end: datetime,
    run_end: datetime,
    initial_places: Mapping[str, str] | None = None,
    run_start: datetime | None = None,
) -> dict[str, float]:
    """Minutes each agent spent within ``place`` during the window, from ``move`` events.

    An agent stays where its last ``move`` put it (or its initial place, from ``run_start``) until
    its next move or ``run_end``. Agents never there are left out.
    """
    tracks: dict[str, list[tuple[datetime, str | None]]] = defaultdict(list)
    origin = run_start or window_start
    for name, initial_place in (initial_places or {}).items():
        tracks[name].append((origin, initial_place))
    for event in events:
        if event.kind == "move" and event.agent:
            tracks[event.agent].append((event.time, optional_str(event.data.get("place"))))
    minutes: dict[str, float] = {}
    for name, track in tracks.items():
        track.sort(key=lambda entry: entry[0])
        total = 0.0
        for (since, address), until in zip(
            track, [t for t, _ in track[1:]] + [run_end], strict=True
        ):
            if address is None or not in_place(address, place):
                continue
            overlap = (min(until, window_end) - max(since, window_start)).total_seconds()
            total += max(overlap, 0.0) / 60
        if total > 0:
            minutes[name] = round(total, 3)
    return minutes


def gathering_attendance(
    events: Sequence[Event],
    gathering: TrackedGathering,
    *,
    run_end: datetime,
    initial_places: Mapping[str, str] | None = None,
    run_start: datetime | None = None,
    invited: Collection[str] | None = None,
    agents: Collection[str] | None = None,
) -> Attendance:
    """Attendance of ``gathering``; ``invited`` (e.g. knowers of its news item) adds the split."""
    minutes = presence_minutes(
        events,
        place=gathering.place,
        window_start=gathering.start,
        window_end=gathering.end,
        run_end=run_end,
        initial_places=initial_places,
        run_start=run_start,
    )
    if agents is not None:
        minutes = {name: spent for name, spent in minutes.items() if name in agents}
    attendees = sorted(name for name, spent in minutes.items() if spent >= gathering.min_minutes)
    # The host holds the gathering (the scenario puts it in the host's plan), so only the others'
    # coming is something the agents decided.
    invited_list = None if invited is None else sorted(set(invited) - {gathering.host})
    came = None if invited_list is None else sorted(set(attendees) & set(invited_list))
    return Attendance(
        gathering_id=gathering.id,
        place=gathering.place,
        start=gathering.start,
        end=gathering.end,
        min_minutes=gathering.min_minutes,
        minutes=minutes,
        attendees=attendees,
        invited=invited_list,
        invited_attendees=came,
        host=gathering.host,
        uninvited_attendees=None
        if invited is None
        else sorted(set(attendees) - set(invited) - {gathering.host}),
        share_of_invited=(len(came) / len(invited_list))
        if came is not None and invited_list
        else None,
    )
