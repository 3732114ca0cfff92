"""Settings of a simulation run (everything that changes behaviour, saved with the run).

The agents read a few of them through :class:`societas.agents.config.CognitionSettings`, which
this class satisfies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimulationConfig(BaseModel):
    """How agents think and how the engine steps.

    The three architecture switches (``reflection``, ``planning``, ``memory``) exist for ablations:
    turning one off is how an evaluation shows what that part contributes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    reflection_threshold: float = Field(default=150.0, gt=0)
    vision_radius: int = Field(default=8, ge=0, description="tiles; rooms here are compact")
    max_perceived: int = Field(
        default=3,
        ge=0,
        description="nearest agents (and changed objects) noticed per step; a reaction's prompt "
        "lists at most this many of the people in view",
    )
    talk_cooldown_hours: float = Field(default=3.0, ge=0)
    react_cooldown_hours: float = Field(
        default=1.0, ge=0, description="before an agent weighs reacting to the same person again"
    )
    max_conversation_turns: int = Field(default=6, ge=2, le=8)
    memories_per_prompt: int = Field(default=8, ge=0, le=50)
    walk_tiles_per_minute: float = Field(default=4.0, gt=0)
    max_plan_places: int = Field(
        default=40,
        ge=1,
        description="rooms a plan may choose from: a larger world offers those nearest home",
    )
    checkpoint_every: int = Field(default=6, ge=1, description="steps between checkpoints")
    reflection: bool = True
    planning: bool = True
    memory: bool = True
