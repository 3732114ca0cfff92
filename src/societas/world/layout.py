"""What a running world reads from its scenario: the static map and the residents' places.

Scenario files (:mod:`societas.scenarios.scenario`) also describe the residents as personas, so
they live above the agents layer. The world layer sits below it and must not import them; a
:class:`~societas.world.state.World` is built from anything that offers the members below, which
a loaded scenario does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from societas.world.places import PlaceTree, Tile
from societas.world.tilemap import TileMap


class PlacedObject(Protocol):
    """An object of the map as the world needs it: its usual state."""

    @property
    def state(self) -> str: ...


class Resident(Protocol):
    """A person living in the world, as the world needs them: the room they call home."""

    @property
    def home(self) -> str: ...


class WorldLayout(Protocol):
    """The static parts of a world and where its residents start.

    Equal layouts make equal worlds (given equal states); a world keeps its layout and shares it
    with its copies, so it is treated as immutable.
    """

    @property
    def name(self) -> str: ...

    @property
    def start_time(self) -> datetime: ...

    @property
    def minutes_per_step(self) -> int: ...

    @property
    def places(self) -> PlaceTree: ...

    @property
    def tilemap(self) -> TileMap: ...

    @property
    def objects(self) -> Mapping[str, Mapping[str, PlacedObject]]: ...

    def agent_names(self) -> list[str]: ...

    def agent(self, name: str) -> Resident: ...

    def spawn_tiles(self) -> dict[str, Tile]: ...
