"""Walkability grid and shortest paths on it (4-neighbour moves, every step costs 1).

Paths are lists of ``(x, y)`` tiles that **exclude the start and include the goal**: ``len(path)``
is the number of steps, ``[]`` means "already there", ``None`` means "cannot get there".

Ties are broken deterministically (neighbours are tried up, left, right, down), so the same query
always returns the same path. Paths to places use a distance field per place, computed once on first
use and cached: afterwards every agent's path to that place costs only its own length.

Examples
--------
>>> grid = TileMap.from_rows(["....", ".##.", "...."])
>>> grid.path((0, 1), (3, 1))
[(0, 0), (1, 0), (2, 0), (3, 0), (3, 1)]
>>> grid.path((0, 0), (1, 1)) is None
True
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from societas.world.errors import WorldError
from societas.world.places import PlaceTree, Tile

UNREACHABLE = -1
# How far a place's distance field first reaches on a large map (see ``TileMap._field``).
FIELD_REACH = 128


class TileMap:
    """Which tiles can be walked on, and how to get from one to another.

    ``walkable`` is a ``(height, width)`` boolean array indexed ``[y, x]``. ``places`` (optional)
    lets :meth:`path_to_place` resolve addresses.
    """

    def __init__(self, walkable: npt.ArrayLike, places: PlaceTree | None = None) -> None:
        grid = np.array(walkable, dtype=bool)
        if grid.ndim != 2 or grid.size == 0:
            raise WorldError("walkable must be a non-empty 2-D grid")
        grid.setflags(write=False)
        self._walkable = grid
        self.height: int = int(grid.shape[0])
        self.width: int = int(grid.shape[1])
        self._places = places
        self._flat: list[bool] = grid.ravel().tolist()
        self._adjacent = self._adjacency()
        # Distance fields, compact (a large town walks to thousands of places), and the graph
        # that computes them in C; a distance is below the number of open tiles.
        self._fields: dict[str, array[int]] = {}
        self._partial: set[str] = set()  # fields that cover only FIELD_REACH steps so far
        self._graph: csr_array | None = None
        self._field_code = "h" if sum(self._flat) < 2**15 else "i"

    @classmethod
    def from_rows(cls, rows: Sequence[str], blocked: str = "#") -> TileMap:
        """A map from text rows; characters in ``blocked`` cannot be walked on."""
        return cls([[char not in blocked for char in row] for row in rows])

    def _adjacency(self) -> list[tuple[int, ...]]:
        # Neighbour lists in increasing index order (up, left, right, down) fix the tie-breaking.
        width, height, flat = self.width, self.height, self._flat
        adjacent: list[tuple[int, ...]] = []
        for index, open_tile in enumerate(flat):
            if not open_tile:
                adjacent.append(())
                continue
            y, x = divmod(index, width)
            candidates = (
                index - width if y > 0 else -1,
                index - 1 if x > 0 else -1,
                index + 1 if x < width - 1 else -1,
                index + width if y < height - 1 else -1,
            )
            adjacent.append(tuple(c for c in candidates if c >= 0 and flat[c]))
        return adjacent

    # -- tiles --------------------------------------------------------------------------------

    @property
    def walkable(self) -> npt.NDArray[np.bool_]:
        """Read-only ``(height, width)`` walkability grid, indexed ``[y, x]``."""
        return self._walkable

    def in_bounds(self, tile: Tile) -> bool:
        x, y = tile
        return 0 <= x < self.width and 0 <= y < self.height

    def is_walkable(self, tile: Tile) -> bool:
        return self.in_bounds(tile) and self._flat[int(tile[1]) * self.width + int(tile[0])]

    def neighbours(self, tile: Tile) -> list[Tile]:
        """Walkable tiles one step from ``tile`` (none if ``tile`` itself is blocked)."""
        return [self._tile(i) for i in self._adjacent[self._index(tile)]]

    def _index(self, tile: Tile) -> int:
        if not self.in_bounds(tile):
            raise WorldError(f"tile {list(tile)} is off the {self.width}x{self.height} map")
        return int(tile[1]) * self.width + int(tile[0])

    def _tile(self, index: int) -> Tile:
        y, x = divmod(index, self.width)
        return x, y

    # -- paths --------------------------------------------------------------------------------

    def path(self, start: Tile, goal: Tile) -> list[Tile] | None:
        """Shortest path by A* (Manhattan heuristic): start excluded, goal included.

        ``None`` when either end is blocked or no path exists; a tile off the map is an error.
        """
        source, target = self._index(start), self._index(goal)
        if not (self._flat[source] and self._flat[target]):
            return None
        if source == target:
            return []
        width, goal_x, goal_y = self.width, goal[0], goal[1]
        cost = {source: 0}
        came_from: dict[int, int] = {}
        closed: set[int] = set()
        first_h = abs(start[0] - goal_x) + abs(start[1] - goal_y)
        # Heap entries (f, h, index): among equal f, prefer closer to the goal, then lower index.
        frontier = [(first_h, first_h, source)]
        while frontier:
            _, _, current = heapq.heappop(frontier)
            if current == target:
                return self._trace(came_from, target)
            if current in closed:
                continue
            closed.add(current)
            next_cost = cost[current] + 1
            for neighbour in self._adjacent[current]:
                if next_cost < cost.get(neighbour, next_cost + 1):
                    cost[neighbour] = next_cost
                    came_from[neighbour] = current
                    y, x = divmod(neighbour, width)
                    h = abs(x - goal_x) + abs(y - goal_y)
                    heapq.heappush(frontier, (next_cost + h, h, neighbour))
        return None

    def path_to_tiles(self, start: Tile, goals: Iterable[Tile]) -> list[Tile] | None:
        """Shortest path to the nearest of several goal tiles (breadth-first search)."""
        source = self._index(start)
        targets = {self._index(goal) for goal in goals}
        if not self._flat[source]:
            return None
        if source in targets:
            return []
        came_from = {source: source}
        queue = deque([source])
        while queue:
            current = queue.popleft()
            for neighbour in self._adjacent[current]:
                if neighbour in came_from:
                    continue
                came_from[neighbour] = current
                if neighbour in targets:
                    return self._trace(came_from, neighbour)
                queue.append(neighbour)
        return None

    def path_to_place(
        self, start: Tile, address: str, max_steps: int | None = None
    ) -> list[Tile] | None:
        """Shortest path to the nearest tile of an area, room or object (its own tile); only its
        first ``max_steps`` tiles when given (a walker's stretch for one step of the clock)."""
        if max_steps is not None and max_steps < 0:
            raise ValueError(f"max_steps must not be negative, got {max_steps}")
        current = self._index(start)
        distances = self._field(address, near=current)
        remaining = distances[current]
        if remaining == UNREACHABLE:
            return None
        stop = 0 if max_steps is None else max(remaining - max_steps, 0)
        path: list[Tile] = []
        while remaining > stop:
            remaining -= 1
            current = next(n for n in self._adjacent[current] if distances[n] == remaining)
            path.append(self._tile(current))
        return path

    def distance_field(self, address: str) -> npt.NDArray[np.int32]:
        """Steps from every tile to the nearest tile of ``address``; -1 where unreachable."""
        field = np.array(self._field(address), dtype=np.int32).reshape(self.height, self.width)
        field.setflags(write=False)
        return field

    def _field(self, address: str, near: int | None = None) -> array[int]:
        """Steps to ``address`` from every tile (cached). Given the tile ``near`` that the caller
        needs, a large map's field first covers only ``FIELD_REACH`` steps around the place
        (people mostly walk to places near them); it is completed when a tile beyond is asked."""
        cached = self._fields.get(address)
        complete = address not in self._partial
        if cached is not None and (complete or (near is not None and cached[near] != UNREACHABLE)):
            return cached
        if self._places is None:
            raise WorldError("this tile map has no places; build it with a PlaceTree")
        goals = [int(y) * self.width + int(x) for x, y in self._places.tile_array(address)]
        reach = FIELD_REACH if cached is None and near is not None else None
        if reach is not None and len(self._flat) <= reach * reach:
            reach = None  # a small map: the whole field costs no more
        cached = self._fields[address] = self._steps_to(goals, reach)
        if reach is None:
            self._partial.discard(address)
            return cached
        self._partial.add(address)
        if near is not None and cached[near] == UNREACHABLE:
            return self._field(address, near)  # the caller is farther: complete the field now
        return cached

    def _steps_to(self, goals: list[int], reach: int | None = None) -> array[int]:
        """What :meth:`_breadth_first` from ``goals`` gives (exact step counts), computed in C;
        tiles more than ``reach`` steps away are left UNREACHABLE."""
        goals = [goal for goal in goals if self._flat[goal]]
        if not goals:
            return array(self._field_code, [UNREACHABLE]) * len(self._flat)
        if self._graph is None:
            tails = [tile for tile, near in enumerate(self._adjacent) for _ in near]
            heads = [neighbour for near in self._adjacent for neighbour in near]
            ones = np.ones(len(tails), dtype=np.float64)
            self._graph = csr_array((ones, (tails, heads)), shape=(len(self._flat),) * 2)
        limit = np.inf if reach is None else float(reach)
        steps = dijkstra(self._graph, indices=goals, unweighted=True, min_only=True, limit=limit)
        steps[~np.isfinite(steps)] = UNREACHABLE
        field = array(self._field_code)
        field.frombytes(steps.astype(f"=i{field.itemsize}").tobytes())
        return field

    def _breadth_first(self, sources: Iterable[int]) -> list[int]:
        distances = [UNREACHABLE] * len(self._flat)
        queue: deque[int] = deque()
        for source in sources:
            if self._flat[source] and distances[source] == UNREACHABLE:
                distances[source] = 0
                queue.append(source)
        while queue:
            current = queue.popleft()
            step = distances[current] + 1
            for neighbour in self._adjacent[current]:
                if distances[neighbour] == UNREACHABLE:
                    distances[neighbour] = step
                    queue.append(neighbour)
        return distances

    def _trace(self, came_from: dict[int, int], end: int) -> list[Tile]:
        # The start is the tile whose predecessor is itself or unknown; it is left out.
        path = [end]
        while (previous := came_from.get(path[-1], path[-1])) != path[-1]:
            path.append(previous)
        path.pop()
        return [self._tile(index) for index in reversed(path)]

    # -- connectivity -------------------------------------------------------------------------

    def distances_from(self, start: Tile) -> npt.NDArray[np.int32]:
        """Steps from ``start`` to every tile; -1 where unreachable or blocked."""
        field = np.array(self._breadth_first([self._index(start)]), dtype=np.int32)
        field = field.reshape(self.height, self.width)
        field.setflags(write=False)
        return field

    def component_labels(self) -> npt.NDArray[np.int32]:
        """Connected regions of walkable tiles: label per tile (0, 1, ... in reading order), -1
        for blocked tiles."""
        labels = [UNREACHABLE] * len(self._flat)
        label = 0
        for index, open_tile in enumerate(self._flat):
            if not open_tile or labels[index] != UNREACHABLE:
                continue
            labels[index] = label
            queue = deque([index])
            while queue:
                current = queue.popleft()
                for neighbour in self._adjacent[current]:
                    if labels[neighbour] == UNREACHABLE:
                        labels[neighbour] = label
                        queue.append(neighbour)
            label += 1
        return np.array(labels, dtype=np.int32).reshape(self.height, self.width)
