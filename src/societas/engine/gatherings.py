"""A scenario's gatherings as their hosts' own appointments.

A gathering the scenario declares (a party at the cafe, 17:00 to 19:00) is something its host
holds: a fact about the host's day, like a work shift, so code puts it in the host's plan as a
fixed appointment instead of hoping the model remembers it. The invitees get nothing: whether
they come is theirs to decide from what they heard, and the attendance figures count only them
(:mod:`societas.measurement.attendance` leaves the host out of the invited).

>>> from societas.scenarios.scenario import load_scenario
>>> [(host, appointment)] = host_appointments(load_scenario("town"))
>>> host, appointment.line(), appointment.minutes
('Lena Okafor', "17:00 host my Valentine's party at Bluebird Cafe @ Bluebird Cafe:dining room", 120)
"""

from __future__ import annotations

from societas.agents.agent import minute_of_day
from societas.agents.cognition.planning import Commitment
from societas.scenarios.scenario import Scenario
from societas.world.phrasing import whole_words

DESCRIPTION_CHARS = 80


def host_appointments(scenario: Scenario) -> list[tuple[str, Commitment]]:
    """For each gathering with a host, the host's appointment: at the gathering's place (its
    first room when the scenario names an area), time and length, on its day."""
    appointments = []
    for gathering in scenario.gatherings:
        rooms = [] if ":" in gathering.place else scenario.places.rooms(gathering.place)
        minutes = int((gathering.end - gathering.start).total_seconds() // 60)
        what = gathering.description.strip().rstrip(".").replace(f"{gathering.host}'s", "my")
        appointments.append(
            (
                gathering.host,
                Commitment(
                    description=whole_words(f"host {what}", DESCRIPTION_CHARS),
                    place=rooms[0] if rooms else gathering.place,
                    start=minute_of_day(gathering.start),
                    minutes=max(5, min(minutes, 8 * 60)),
                    day=gathering.start.date(),
                    decided=True,
                ),
            )
        )
    return appointments
