"""Who an agent is: the persona every prompt about the agent starts from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Persona(BaseModel):
    """An agent's stable identity.

    Examples
    --------
    >>> p = Persona(name="Mara Quist", age=34, traits=["warm", "curious"], occupation="baker")
    >>> p.first_name
    'Mara'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    age: int = Field(ge=0, le=120)
    traits: list[str] = Field(default_factory=list)
    occupation: str = ""
    lifestyle: str = Field(default="", description="Daily rhythm and habits, e.g. wakes at 6.")
    situation: str = Field(default="", description="What is going on in the agent's life now.")
    background: str = ""
    demographics: dict[str, str] = Field(
        default_factory=dict, description="Survey-style attributes (age group, education, ...)."
    )

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def summary(self) -> str:
        """A compact description for prompts (a few lines, stable order for prefix reuse)."""
        lines = [f"Name: {self.name} (age {self.age})"]
        if self.occupation:
            lines.append(f"Occupation: {self.occupation}")
        if self.traits:
            lines.append("Traits: " + ", ".join(self.traits))
        if self.lifestyle:
            lines.append(f"Lifestyle: {self.lifestyle}")
        if self.background:
            lines.append(f"Background: {self.background}")
        if self.situation:
            lines.append(f"Currently: {self.situation}")
        if self.demographics:
            lines.append(
                "Demographics: " + "; ".join(f"{k}: {v}" for k, v in self.demographics.items())
            )
        return "\n".join(lines)
