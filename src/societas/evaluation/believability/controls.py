"""Negative controls: what the believability score is worth against agents who know nothing.

A score means little on its own: a generic, friendly answer can pass many questions. So the same
questions are put, with the same grading, to two interviewees who cannot know the run:

- ``shuffled``: each agent keeps its persona (name, age, occupation, traits) but answers with the
  experience of another agent of the run: that agent's memories, relationship notes, plan and
  current activity (agents in name order, each takes the next one's, the last the first's). We
  chose "another's memories under this agent's name" over "this agent's questions to another
  agent" because the persona stays the same, so the gap measures what the run's experience adds,
  not whether an interviewee gets its own name right. It needs at least two agents.
- ``no_memory``: the persona alone, with no memories, notes, plan or activity.

The gap ``real - control`` is what the score means: an instrument whose real run does not score
clearly above the shuffled control does not measure the run. Scores and gaps are the mean of the
category means (as the headline score), with 95% bootstrap intervals over the questions, resampled
within each category and paired between the real run and the control (the same questions).

The gaps and their intervals are computed by :mod:`.control_stats`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from societas.agents.agent import Agent

CONTROLS: dict[str, str] = {
    "shuffled": "own persona, another agent's memories, notes and plan",
    "no_memory": "own persona, no memories, notes or plan",
}
"""Control name -> what its interviewee is given."""


def shuffled_donors(names: Sequence[str]) -> dict[str, str]:
    """Whose experience each agent gets in the shuffled control: the next agent in name order.

    >>> shuffled_donors(["Bo", "Ada", "Cy"])
    {'Ada': 'Bo', 'Bo': 'Cy', 'Cy': 'Ada'}
    >>> shuffled_donors(["Ada"])
    {}
    """
    ordered = sorted(names)
    if len(ordered) < 2:
        return {}
    return {name: ordered[(i + 1) % len(ordered)] for i, name in enumerate(ordered)}


def control_interviewees(agents: Mapping[str, Agent], control: str) -> dict[str, Agent]:
    """Stand-ins for ``agents`` in ``control`` (empty when the control is impossible).

    The stand-ins share the originals' memory streams; interviews never write to them.
    """
    if control == "shuffled":
        donors = shuffled_donors(list(agents))
        return {
            name: dataclasses.replace(agents[donor], persona=agents[name].persona)
            for name, donor in donors.items()
        }
    if control == "no_memory":
        return {
            name: Agent(persona=agent.persona, home=agent.home) for name, agent in agents.items()
        }
    raise ValueError(f"no control {control!r}; controls: {', '.join(CONTROLS)}")
