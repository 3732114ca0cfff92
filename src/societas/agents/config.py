"""The settings an agent's thinking reads, as the agents layer sees them.

The run's full settings live in :class:`societas.engine.config.SimulationConfig`, which also holds
what only the engine uses (vision, walking speed, checkpoints). An agent needs just the switches
below, so it declares them here and the engine's config satisfies this protocol: the agents layer
never imports the engine.
"""

from __future__ import annotations

from typing import Protocol


class CognitionSettings(Protocol):
    """What :class:`~societas.agents.agent.Agent` reads from the run's settings.

    ``reflection``, ``planning`` and ``memory`` switch those parts of the architecture off for
    ablations; ``reflection_threshold`` is the importance sum that triggers a reflection and
    ``memories_per_prompt`` how many retrieved memories a prompt carries.
    """

    @property
    def reflection(self) -> bool: ...

    @property
    def reflection_threshold(self) -> float: ...

    @property
    def planning(self) -> bool: ...

    @property
    def memory(self) -> bool: ...

    @property
    def memories_per_prompt(self) -> int: ...
