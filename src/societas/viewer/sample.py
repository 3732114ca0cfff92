"""A small synthetic run written straight into the run-store schema, for demos and tests.

No model is involved: agents follow fixed day plans across a little town, walk shortest paths,
chat when they meet, pass news on and record memories and model-call figures, so every panel of
the viewer has something to show.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = write_sample_run(Path(tmp), agents=3, steps=12, seed=1)
...     path.name
'run.sqlite'
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 48, 32
START = datetime(2024, 2, 13, 8, 0)
MINUTES_PER_STEP = 10
WALK_TILES_PER_STEP = 3

Box = tuple[int, int, int, int]
# Areas and their rooms: address, label, bbox (inclusive), door (x, y) when walled in.
TOWN: tuple[tuple[str, str, tuple[tuple[str, str, Box, tuple[int, int] | None], ...]], ...] = (
    ("town", "Town", (("town:street", "Main Street", (0, 0, WIDTH - 1, HEIGHT - 1), None),)),
    (
        "cafe",
        "Hobbs Cafe",
        (
            ("cafe:counter", "counter", (4, 3, 13, 7), (9, 2)),
            ("cafe:seating", "seating", (4, 9, 13, 14), (14, 12)),
        ),
    ),
    ("library", "Library", (("library:reading room", "reading room", (18, 3, 30, 12), (24, 13)),)),
    ("park", "Johnson Park", (("park:lawn", "lawn", (34, 3, 45, 16), None),)),
    (
        "house",
        "Oak Hill House",
        (
            ("house:kitchen", "kitchen", (4, 20, 11, 28), (8, 19)),
            ("house:bedroom", "bedroom", (13, 20, 20, 28), (16, 19)),
        ),
    ),
    ("market", "Market", (("market:stalls", "stalls", (26, 19, 44, 28), None),)),
)


def _places() -> tuple[tuple[str, str, str, Box, tuple[int, int] | None], ...]:
    """Each area followed by its rooms, as the engine's map export lists them."""
    entries: list[tuple[str, str, str, Box, tuple[int, int] | None]] = []
    for area, label, rooms in TOWN:
        boxes = [box for _, _, box, _ in rooms]
        union = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        entries.append((area, label, "area", union, None))
        entries += [(address, name, "room", box, door) for address, name, box, door in rooms]
    return tuple(entries)


PLACES = _places()
PLACE_INDEX = {address: index for index, (address, *_rest) in enumerate(PLACES)}
STREET = PLACE_INDEX["town:street"]
OBJECTS = (
    ("cafe:counter:coffee machine", (6, 4), "idle"),
    ("cafe:seating:table", (8, 11), "free"),
    ("library:reading room:bookshelf", (20, 4), "tidy"),
    ("park:lawn:bench", (39, 9), "empty"),
    ("house:bedroom:bed", (18, 26), "made"),
    ("market:stalls:fruit stand", (30, 22), "open"),
)
PEOPLE = (
    ("Mara Quist", 34, "baker", ["warm", "curious"]),
    ("Tomas Reyes", 52, "librarian", ["patient", "precise"]),
    ("Ines Holloway", 27, "painter", ["playful", "restless"]),
    ("Odile Fenn", 61, "retired nurse", ["kind", "talkative"]),
    ("Jun Park", 19, "student", ["shy", "ambitious"]),
    ("Ravi Mehta", 45, "grocer", ["cheerful", "busy"]),
)
ACTIVITIES = {
    "house:kitchen": ("having breakfast", "🍳"),
    "house:bedroom": ("reading in bed", "📖"),
    "cafe:counter": ("ordering a coffee", "☕"),
    "cafe:seating": ("chatting over coffee", "💬"),
    "library:reading room": ("studying at the library", "📚"),
    "park:lawn": ("walking in the park", "🌳"),
    "market:stalls": ("buying groceries", "🍎"),
}
NEWS = (
    (0, "mayor_election", "Isabella is running for mayor"),
    (18, "valentine_party", "A Valentine's party at Hobbs Cafe on Friday"),
)
SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE events(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, time TEXT NOT NULL,"
    " kind TEXT NOT NULL, agent TEXT, data TEXT NOT NULL)",
    "CREATE INDEX events_step ON events(step)",
    "CREATE INDEX events_agent_step ON events(agent, step)",
    "CREATE INDEX events_kind_step ON events(kind, step)",
    "CREATE TABLE checkpoints(step INTEGER PRIMARY KEY, time TEXT NOT NULL, state BLOB NOT NULL)",
)

Tile = tuple[int, int]


def sample_map() -> dict[str, Any]:
    """The sample town's map in the run store's ``map`` meta format."""
    rows = [[STREET] * WIDTH for _ in range(HEIGHT)]
    for index, (_address, _label, kind, (x0, y0, x1, y1), door) in enumerate(PLACES):
        if kind == "area" or index == STREET:
            continue
        if door is not None:
            for x in range(x0 - 1, x1 + 2):
                for y in range(y0 - 1, y1 + 2):
                    rows[y][x] = -1
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                rows[y][x] = index
        if door is not None:
            rows[door[1]][door[0]] = index
    places = [
        {"address": a, "label": label, "kind": kind, "bbox": list(box)}
        for a, label, kind, box, _ in PLACES
    ]
    objects = [{"address": a, "tile": list(tile), "state": s} for a, tile, s in OBJECTS]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "rows": rows,
        "places": places,
        "objects": objects,
        "agents": {},
    }


def _distances(rows: list[list[int]], goal: Tile) -> dict[Tile, int]:
    """Walking distance of every reachable tile to ``goal`` (breadth-first over floor tiles)."""
    distance = {goal: 0}
    queue = deque([goal])
    while queue:
        x, y = queue.popleft()
        for nxt in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            inside = 0 <= nxt[0] < WIDTH and 0 <= nxt[1] < HEIGHT
            if inside and nxt not in distance and rows[nxt[1]][nxt[0]] >= 0:
                distance[nxt] = distance[(x, y)] + 1
                queue.append(nxt)
    return distance


def _walk(distance: dict[Tile, int], tile: Tile, tiles: int) -> Tile:
    """Up to ``tiles`` steps from ``tile`` down the distance field."""
    for _ in range(tiles):
        here = distance.get(tile)
        if not here:
            break
        x, y = tile
        tile = min(
            ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)),
            key=lambda t: distance.get(t, here + 1),
        )
    return tile


@dataclass
class _Agent:
    name: str
    persona: dict[str, Any]
    plan: list[dict[str, str]]
    tile: Tile
    activity: str = ""
    knows: set[str] = field(default_factory=set)
    memory_count: int = 0


def _day_plan(rng: random.Random, steps: int) -> list[dict[str, str]]:
    places = [p for p in ACTIVITIES if p != "house:kitchen"]
    rng.shuffle(places)
    blocks, clock = [], START
    end_of_run = START + timedelta(minutes=MINUTES_PER_STEP * max(steps, 1))
    for place in ["house:kitchen", *places]:
        length = timedelta(minutes=MINUTES_PER_STEP * rng.randint(4, 9))
        activity = ACTIVITIES[place][0]
        blocks.append(
            {
                "start": clock.strftime("%H:%M"),
                "end": (clock + length).strftime("%H:%M"),
                "activity": activity,
                "place": place,
            }
        )
        clock += length
        if clock >= end_of_run:
            break
    return blocks


class _SampleTown:
    def __init__(self, conn: sqlite3.Connection, agents: int, steps: int, seed: int) -> None:
        self.conn, self.steps, self.rng = conn, steps, random.Random(seed)
        self.map = sample_map()
        self.rows: list[list[int]] = self.map["rows"]
        self.agents = [self._make_agent(i) for i in range(agents)]
        self.map["agents"] = {agent.name: list(agent.tile) for agent in self.agents}
        self.talked: dict[frozenset[str], int] = {}
        self.fields: dict[Tile, dict[Tile, int]] = {}
        self.conversations = 0

    def _make_agent(self, index: int) -> _Agent:
        name, age, job, traits = PEOPLE[index % len(PEOPLE)]
        if index >= len(PEOPLE):
            name = f"{name} {index // len(PEOPLE) + 1}"
        persona = {
            "name": name,
            "age": age,
            "occupation": job,
            "traits": traits,
            "lifestyle": "wakes at 7, busy mornings",
            "situation": "new in town",
        }
        home = (5 + index % 6, 21 + (index // 6) % 7)
        return _Agent(name, persona, _day_plan(self.rng, self.steps), home)

    def emit(self, step: int, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        moment = (START + timedelta(minutes=MINUTES_PER_STEP * step)).isoformat()
        self.conn.execute(
            "INSERT INTO events(step, time, kind, agent, data) VALUES (?, ?, ?, ?, ?)",
            (step, moment, kind, agent, json.dumps(data, ensure_ascii=False)),
        )

    def llm(self, step: int, agent: str, purpose: str, completion: int) -> None:
        self.emit(
            step,
            "llm_call",
            agent,
            {
                "purpose": purpose,
                "model": "smollm2-135m",
                "prompt_tokens": self.rng.randint(180, 420),
                "completion_tokens": completion,
                "cached": self.rng.random() < 0.2,
                "latency_s": round(completion * 0.1, 2),
                "error": None,
                "retries": 0,
                "repaired": False,
            },
        )

    def remember(self, step: int, agent: _Agent, kind: str, text: str, importance: int) -> None:
        agent.memory_count += 1
        self.emit(
            step,
            "memory",
            agent.name,
            {
                "id": f"{agent.name.split()[0].lower()}-{agent.memory_count}",
                "memory_kind": kind,
                "text": text,
                "importance": importance,
                "evidence": [],
            },
        )

    def run(self) -> None:
        for step in range(self.steps):
            if step == 0:
                self._start_day()
            for day_index, news_id, text in NEWS:
                if step == day_index and self.agents:
                    self._seed_news(step, news_id, text)
            for agent in self.agents:
                self._act(step, agent)
            self._meet(step)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_step', ?)", (str(step),))

    def _start_day(self) -> None:
        for agent in self.agents:
            self.emit(
                0,
                "plan",
                agent.name,
                {
                    "date": START.date().isoformat(),
                    "blocks": agent.plan,
                    "reason": "a usual Tuesday",
                },
            )
            self.llm(0, agent.name, "plan_day", 120)
            self.remember(0, agent, "plan", f"Plan for today: {agent.plan[0]['activity']} first", 3)

    def _seed_news(self, step: int, news_id: str, text: str) -> None:
        source = self.agents[(len(NEWS) + step) % len(self.agents)]
        source.knows.add(news_id)
        self.emit(
            step,
            "intervention",
            None,
            {"description": text, "news_id": news_id, "agents": [source.name]},
        )
        self.emit(
            step,
            "news_heard",
            source.name,
            {"news_id": news_id, "source": None, "conversation_id": None},
        )
        self.remember(step, source, "observation", f"Heard that {text.lower()}", 7)

    def _block(self, agent: _Agent, step: int) -> dict[str, str]:
        now = (START + timedelta(minutes=MINUTES_PER_STEP * step)).strftime("%H:%M")
        for block in agent.plan:
            if block["start"] <= now < block["end"]:
                return block
        return agent.plan[-1]

    def _act(self, step: int, agent: _Agent) -> None:
        block = self._block(agent, step)
        place = block["place"]
        x0, y0, x1, y1 = PLACES[PLACE_INDEX[place]][3]
        goal = ((x0 + x1) // 2 + self.rng.randint(-2, 2), (y0 + y1) // 2 + self.rng.randint(-1, 1))
        if goal not in self.fields:
            self.fields[goal] = _distances(self.rows, goal)
        tile = _walk(self.fields[goal], agent.tile, WALK_TILES_PER_STEP)
        if tile != agent.tile:  # like the engine: a move event only when the agent moves
            agent.tile = tile
            here = PLACES[self.rows[agent.tile[1]][agent.tile[0]]][0]
            self.emit(step, "move", agent.name, {"tile": list(agent.tile), "place": here})
        if block["activity"] != agent.activity:
            agent.activity = block["activity"]
            self.emit(
                step,
                "action",
                agent.name,
                {
                    "description": agent.activity,
                    "emoji": ACTIVITIES[place][1],
                    "place": place,
                    "object": None,
                    "start": (START + timedelta(minutes=MINUTES_PER_STEP * step)).isoformat(),
                    "minutes": 60,
                },
            )
            self.llm(step, agent.name, "react", 24)
            self._touch_object(step, place)
        if step % 4 == 1:
            self.remember(
                step,
                agent,
                "observation",
                f"I was {agent.activity} at {place}",
                self.rng.randint(1, 6),
            )
            self.llm(step, agent.name, "importance", 4)
        if step > 0 and step % 20 == 0:
            self.remember(
                step, agent, "reflection", f"I enjoy my mornings most when I am {agent.activity}", 8
            )
            self.llm(step, agent.name, "reflect", 60)

    def _touch_object(self, step: int, place: str) -> None:
        for address, _tile, _state in OBJECTS:
            if address.startswith(place + ":"):
                state = self.rng.choice(["in use", "busy", "idle"])
                self.emit(step, "object_state", None, {"object": address, "state": state})

    def _meet(self, step: int) -> None:
        by_place: dict[int, list[_Agent]] = {}
        for agent in self.agents:
            by_place.setdefault(self.rows[agent.tile[1]][agent.tile[0]], []).append(agent)
        for place_index, group in by_place.items():
            if place_index == STREET or len(group) < 2:
                continue
            for one, other in zip(group[::2], group[1::2], strict=False):
                pair = frozenset((one.name, other.name))
                if step - self.talked.get(pair, -99) >= 4:
                    self.talked[pair] = step
                    if len(other.knows) > len(one.knows):
                        one, other = other, one
                    self._converse(step, one, other, PLACES[place_index][0])

    def _converse(self, step: int, one: _Agent, other: _Agent, place: str) -> None:
        self.conversations += 1
        conversation_id = f"c{self.conversations}"
        news = sorted(one.knows - other.knows)
        lines = [
            (one, other, f"Morning, {other.name.split()[0]}! How are you?"),
            (other, one, "Good, thanks. Busy day ahead."),
        ]
        if news:
            text = next(t for _, n, t in NEWS if n == news[0])
            lines.append((one, other, f"Did you hear? {text}."))
        for speaker, listener, text in lines:
            self.emit(
                step,
                "utterance",
                speaker.name,
                {
                    "conversation_id": conversation_id,
                    "speaker": speaker.name,
                    "listeners": [listener.name],
                    "text": text,
                },
            )
        summary = f"{one.name} and {other.name} chatted" + (" about the news" if news else "")
        self.emit(
            step,
            "conversation",
            one.name,
            {
                "id": conversation_id,
                "participants": [one.name, other.name],
                "place": place,
                "summary": summary,
            },
        )
        if news:
            other.knows.add(news[0])
            self.emit(
                step,
                "news_heard",
                other.name,
                {"news_id": news[0], "source": one.name, "conversation_id": conversation_id},
            )
        for me, you in ((one, other), (other, one)):
            self.remember(step, me, "dialogue", f"Talked with {you.name} at {place}", 4)
            self.emit(
                step,
                "relationship",
                me.name,
                {"other": you.name, "summary": f"friendly with {you.name}"},
            )
            self.llm(step, me.name, "dialogue", 40)


def write_sample_run(
    run_dir: Path,
    *,
    agents: int = 5,
    steps: int = 60,
    seed: int = 0,
    status: str = "finished",
    summary: bool = True,
) -> Path:
    """Write a synthetic run into ``run_dir`` (created if missing); returns the database path."""
    if agents < 1 or steps < 1:
        raise ValueError("a sample run needs at least one agent and one step")
    if status not in ("running", "finished", "failed"):
        raise ValueError(f"status must be running, finished or failed (got {status!r})")
    run_dir.mkdir(parents=True, exist_ok=True)
    db_path = run_dir / "run.sqlite"
    if db_path.exists():
        raise FileExistsError(f"{db_path} already exists")
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in SCHEMA:
            conn.execute(statement)
        town = _SampleTown(conn, agents, steps, seed)
        meta = {
            "scenario": "sample-town",
            "seed": seed,
            "model": "smollm2-135m",
            "agents": [{"name": a.name, "persona": a.persona} for a in town.agents],
            "map": town.map,
            "start_time": START.isoformat(),
            "status": "running",
            "last_step": -1,
            "minutes_per_step": MINUTES_PER_STEP,
        }
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [(k, json.dumps(v, ensure_ascii=False)) for k, v in meta.items()],
        )
        town.run()
        conn.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps(status),))
        conn.commit()
    finally:
        conn.close()
    if summary:
        _write_summary(run_dir, db_path)
    return db_path


def _write_summary(run_dir: Path, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        calls, tokens = conn.execute(
            "SELECT COUNT(*), SUM(json_extract(data, '$.prompt_tokens') + "
            "json_extract(data, '$.completion_tokens')) FROM events WHERE kind = 'llm_call'"
        ).fetchone()
        heard = dict(
            conn.execute(
                "SELECT json_extract(data, '$.news_id'), COUNT(DISTINCT agent) FROM events "
                "WHERE kind = 'news_heard' GROUP BY 1"
            ).fetchall()
        )
    finally:
        conn.close()
    summary = {"diffusion": heard, "model_usage": {"calls": calls, "tokens": tokens or 0}}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
