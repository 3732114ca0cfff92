"""The storylines a scenario declares for measurement: news items and gatherings.

:class:`ScenarioInfo` is what the run measurements need to know about a scenario (agents, start,
the news to trace, the gatherings to take attendance of, who knows whom and where everyone
starts); :meth:`societas.scenarios.scenario.Scenario.measurement_info` builds it from a
scenario file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TrackedNews(BaseModel):
    """A seeded news item as the measurements trace it: who knows it at the start and the words
    that mention it (the scenario file's :class:`~societas.scenarios.scenario.NewsSpec` has more).

    ``keywords`` is a list of groups; a text mentions the item when it contains at least one word
    (or phrase) of every group.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    keywords: list[list[str]] = Field(min_length=1)
    initial_knowers: list[str] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _groups_not_blank(cls, groups: list[list[str]]) -> list[list[str]]:
        for index, group in enumerate(groups):
            if not group or any(not word.strip() for word in group):
                raise ValueError(f"keyword group {index} is empty or has a blank word")
        return groups


class TrackedGathering(BaseModel):
    """A planned gathering whose attendance is measured: a place (address prefix such as
    ``"cafe"`` or ``"cafe:hall"``) and a time window; ``news_id`` names the news item that
    announces it (its knowers are the invited).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    place: str = Field(min_length=1)
    start: datetime
    end: datetime
    min_minutes: float = Field(default=15.0, ge=0)
    news_id: str | None = None
    host: str | None = None  # holds it (an appointment of their own), so is not an invitee

    @model_validator(mode="after")
    def _window_forward(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"gathering {self.id!r} ends ({self.end}) before it starts")
        return self


class ScenarioInfo(BaseModel):
    """What the measurements need to know about the scenario and the run.

    ``relationships`` maps an agent to the agents it knows at the start (directed; names that
    are not agents are ignored).
    ``initial_places`` gives where agents are before their first ``move`` event. ``end`` is the
    simulated time the run reached; when None, the time of the last event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: list[str] = Field(min_length=1)
    start: datetime
    end: datetime | None = None
    news: list[TrackedNews] = Field(default_factory=list)
    gatherings: list[TrackedGathering] = Field(default_factory=list)
    relationships: dict[str, list[str]] = Field(default_factory=dict)
    initial_places: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        known = set(self.agents)
        if len(known) != len(self.agents):
            raise ValueError("agents: names must be unique")
        news_ids = [item.id for item in self.news]
        if len(set(news_ids)) != len(news_ids):
            raise ValueError("news: ids must be unique")
        for item in self.news:
            _require_agents(known, item.initial_knowers, f"news {item.id!r} initial_knowers")
        for gathering in self.gatherings:
            if gathering.news_id is not None and gathering.news_id not in news_ids:
                raise ValueError(
                    f"gathering {gathering.id!r}: news_id {gathering.news_id!r} is not a news item"
                )
        _require_agents(known, list(self.initial_places), "initial_places")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def news_item(self, news_id: str) -> TrackedNews:
        for item in self.news:
            if item.id == news_id:
                return item
        raise KeyError(f"no news item {news_id!r}; known: {[i.id for i in self.news]}")


def _require_agents(known: set[str], names: Iterable[str], where: str) -> None:
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"{where}: unknown agent(s) {unknown}")
