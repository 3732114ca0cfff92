"""The viewer's HTTP API over a run the engine recorded (the town, with the scripted ``fake:``
model): answers, bounds, bad input, live streaming while the run's writer writes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from societas.engine.events import Event
from societas.engine.run_reader import RunReader
from societas.engine.run_schema import EVENTS_BY_AGENT, EVENTS_BY_KIND
from societas.engine.runstore import RunStore
from societas.measurement.town_summary import summarise_town
from societas.scenarios.scenario import load_scenario
from societas.viewer import timeline
from societas.viewer.agent_view import current_block, minute_of_day
from societas.viewer.app import create_app
from societas.viewer.store import RunNotFoundError, RunView

AGENTS = 8  # the town's people, in the order the scenario lists them
ROSA, TOMAS = "Rosa Alvarez", "Tomas Alvarez"
START = datetime(2026, 2, 13, 7, 0)  # the town's first morning


@pytest.fixture(scope="module")
def run_dir(recorded_town: Path) -> Path:
    return recorded_town


@pytest.fixture(scope="module")
def last(run_dir: Path) -> int:
    """The run's last step, as its store says."""
    with RunReader.open(run_dir) as reader:
        step = reader.last_step()
    assert step is not None and step > 20
    return step


@pytest.fixture(scope="module")
def client(run_dir: Path) -> TestClient:
    return TestClient(create_app(run_dir))


@pytest.fixture
def own_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the run that a test may change."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def rows(run_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """What a query over the run store answers (read-only: the oracle of these tests)."""
    with RunReader.open(run_dir) as reader, reader.connect() as conn:
        return conn.execute(sql, params).fetchall()


def at(step: int) -> datetime:
    return START + timedelta(minutes=10 * step)


def insert_event(
    conn: sqlite3.Connection, step: int, kind: str, agent: str | None, data: Any
) -> None:
    """An event written around the store's writer: for data it would never write (malformed)."""
    text = data if isinstance(data, str) else json.dumps(data)
    conn.execute(
        "INSERT INTO events(step, time, kind, agent, data) VALUES (?, ?, ?, ?, ?)",
        (step, at(step).isoformat(), kind, agent, text),
    )


def append(run_dir: Path, step: int, kind: str, agent: str | None, data: dict[str, Any]) -> None:
    """Record one more event with the run store's writer, as the engine would."""
    with RunStore.open(run_dir) as store:
        store.commit_step(
            step, at(step), [Event(step=step, time=at(step), kind=kind, agent=agent, data=data)]
        )


# ------------------------------------------------------------------ run, map, frames, seek


def test_run_describes_the_run(client: TestClient, last: int) -> None:
    body = client.get("/api/run").json()
    assert body["scenario"] == "Alder Creek"
    assert body["model"] == "fake:recorded"
    assert body["start_time"] == START.isoformat()
    assert body["status"] == "finished"
    assert body["last_step"] == last
    assert len(body["agents"]) == AGENTS
    assert body["agents"][0]["name"] == ROSA
    assert body["agents"][0]["occupation"] == "owner of Alvarez Market"
    assert body["minutes_per_step"] == 10
    assert body["has_summary"] is True
    assert body["limits"]["frame_span"] == timeline.MAX_FRAME_SPAN


def test_map_has_rows_places_and_objects(client: TestClient, run_dir: Path) -> None:
    body = client.get("/api/map").json()
    assert len(body["rows"]) == body["height"]
    assert all(len(row) == body["width"] for row in body["rows"])
    assert any(place["address"] == "Bluebird Cafe:dining room" for place in body["places"])
    assert body["objects"] and all(len(o["tile"]) == 2 for o in body["objects"])
    (recorded,) = rows(run_dir, "SELECT value FROM meta WHERE key = 'map'")[0]
    assert body == json.loads(recorded)


def last_tile(run_dir: Path, agent: str, step: int) -> list[int]:
    """Where the log puts an agent at a step: its last move, else its tile on the map at start."""
    found = rows(
        run_dir,
        "SELECT data FROM events WHERE agent = ? AND kind = 'move' AND step <= ? "
        "ORDER BY step DESC, id DESC LIMIT 1",
        agent,
        step,
    )
    if found:
        moved: list[int] = json.loads(found[0][0])["tile"]
        return moved
    start: list[int] = json.loads(rows(run_dir, "SELECT value FROM meta WHERE key = 'map'")[0][0])[
        "agents"
    ][agent]
    return start


def replay(frames: dict[str, Any], step: int) -> list[list[int] | None]:
    """Tiles at ``step`` rebuilt from a frame range the way the front end does it."""
    tiles = [list(t) if t else None for t in frames["tiles"]]
    for at, i, x, y in frames["changes"]["moves"]:
        if at <= step:
            tiles[i] = [x, y]
    return tiles


def test_frames_state_at_start_and_changes_match_the_log(client: TestClient, run_dir: Path) -> None:
    body = client.get("/api/frames", params={"start": 4, "end": 16}).json()
    assert (body["start"], body["end"], body["complete"]) == (4, 16, True)
    names = body["agents"]
    assert len(names) == AGENTS
    assert body["changes"]["moves"], "agents walk between steps 4 and 16"
    for step in (4, 7, 10, 16):
        for i, name in enumerate(names):
            assert replay(body, step)[i] == last_tile(run_dir, name, step)
    assert all(4 < move[0] <= 16 for move in body["changes"]["moves"])
    assert set(body["times"]) == {str(s) for s in range(4, 17)}
    assert body["times"]["12"] == at(12).isoformat() == "2026-02-13T09:00:00"


def test_frames_show_agents_moving_and_acting(client: TestClient, last: int) -> None:
    body = client.get("/api/frames", params={"start": 0, "end": last}).json()
    assert replay(body, 0) != replay(body, last)
    assert all(action is not None for action in body["actions"])
    assert body["changes"]["actions"], "the agents change activity during the run"
    assert body["changes"]["utterances"], "the agents talk"
    _step, speaker, text, conversation = body["changes"]["utterances"][0]
    assert 0 <= speaker < AGENTS and text and conversation


def test_an_agent_that_never_moves_stays_on_its_start_tile(own_run: Path) -> None:
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        conn.execute("DELETE FROM events WHERE agent = ? AND kind = 'move'", (ROSA,))
        start_tile = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'map'").fetchone()[0]
        )["agents"][ROSA]
    client = TestClient(create_app(own_run))
    body = client.get("/api/frames", params={"start": 10, "end": 20}).json()
    assert body["tiles"][0] == start_tile
    assert client.get(f"/api/agents/{ROSA}").json()["tile"] == start_tile


def test_frames_end_is_clamped_to_the_last_step(client: TestClient, last: int) -> None:
    body = client.get("/api/frames", params={"start": 10, "end": 300}).json()
    assert body["end"] == last


def test_frames_cap_rows_and_say_where_they_stopped(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, last: int
) -> None:
    monkeypatch.setattr(timeline, "MAX_FRAME_ROWS", 12)
    body = client.get("/api/frames", params={"start": 1, "end": last}).json()
    assert 1 < body["end"] < last
    assert len(body["changes"]["moves"]) <= 12 + AGENTS


@pytest.mark.parametrize(
    "params",
    [
        {"start": -1, "end": 5},
        {"start": 5, "end": 4},
        {"start": 0, "end": timeline.MAX_FRAME_SPAN + 1},
        {"start": 10**12, "end": 10**12},
        {"start": "abc", "end": 5},
        {"start": 0},
    ],
)
def test_frames_reject_bad_ranges(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/frames", params=params)
    assert response.status_code == 422


def test_frames_use_the_events_indexes(run_dir: Path) -> None:
    run = RunView(run_dir)
    with run.connect() as conn:
        meta = run.meta(conn)
        changes = conn.execute(
            "EXPLAIN QUERY PLAN SELECT step FROM events WHERE kind = 'move' "
            "AND step > 1 AND step <= 9 ORDER BY step, id"
        ).fetchall()
        initial = conn.execute(
            "EXPLAIN QUERY PLAN " + timeline.last_of_kind_sql(meta), (ROSA, 5, "move")
        ).fetchall()
    assert EVENTS_BY_KIND in str(changes)
    assert EVENTS_BY_AGENT in str(initial), "one agent's state must not scan all agents"


def test_stores_of_the_older_layout_keep_one_agents_queries_on_an_index(own_run: Path) -> None:
    # Stores written before the (agent, kind, step) index have (agent, step) instead.
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        conn.execute(f"DROP INDEX {EVENTS_BY_AGENT}")
        conn.execute("CREATE INDEX events_agent_step ON events(agent, step)")
    run = RunView(own_run)
    with run.connect() as conn:
        meta = run.meta(conn)
        initial = conn.execute(
            "EXPLAIN QUERY PLAN " + timeline.last_of_kind_sql(meta), (ROSA, 5, "move")
        ).fetchall()
    assert meta.agent_kind_term == "+kind"
    assert "events_agent_step" in str(initial)


def test_seek_finds_the_step_at_a_game_time(client: TestClient, last: int) -> None:
    assert client.get("/api/seek", params={"time": "2026-02-13T08:05"}).json() == {
        "step": 6,
        "time": "2026-02-13T08:00:00",
    }
    assert client.get("/api/seek", params={"time": "2020-01-01T00:00"}).json()["step"] == 0
    assert client.get("/api/seek", params={"time": "2030-01-01T00:00"}).json()["step"] == last
    assert client.get("/api/seek", params={"time": "half past nine"}).status_code == 422
    assert client.get("/api/seek").status_code == 422


# ------------------------------------------------------------------ raw events


def test_events_page_through_the_whole_log(client: TestClient, run_dir: Path) -> None:
    seen: list[int] = []
    after = 0
    while True:
        page = client.get("/api/events", params={"after_id": after, "limit": 97}).json()
        seen += [event["id"] for event in page["events"]]
        after = page["next_after_id"]
        if not page["has_more"]:
            break
    assert seen == [r[0] for r in rows(run_dir, "SELECT id FROM events ORDER BY id")]


def test_events_filter_by_kind_agent_and_steps(client: TestClient) -> None:
    params: dict[str, Any] = {"kind": "memory", "agent": ROSA, "step_min": 3, "step_max": 18}
    events = client.get("/api/events", params=params | {"limit": 500}).json()["events"]
    assert events
    assert all(e["kind"] == "memory" and e["agent"] == ROSA for e in events)
    assert all(3 <= e["step"] <= 18 for e in events)
    assert isinstance(events[0]["data"]["text"], str)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 100_000},
        {"after_id": -1},
        {"kind": "gossip"},
        {"agent": "Nobody Here"},
        {"agent": "x" * 500},
        {"step_min": -3},
    ],
)
def test_events_reject_bad_parameters(client: TestClient, params: dict[str, Any]) -> None:
    assert client.get("/api/events", params=params).status_code == 422


def test_events_with_malformed_data_still_load(own_run: Path, last: int) -> None:
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        insert_event(conn, last, "memory", ROSA, "{not json")
        insert_event(conn, last, "move", ROSA, {"tile": "nowhere"})
    client = TestClient(create_app(own_run))
    page = client.get("/api/events", params={"after_id": 0, "limit": 500, "agent": ROSA})
    assert page.status_code == 200
    assert client.get(f"/api/agents/{ROSA}").status_code == 200
    assert client.get(f"/api/agents/{ROSA}/memories").status_code == 200
    assert client.get("/api/frames", params={"start": last, "end": last}).status_code == 200


# ------------------------------------------------------------------ agent panel


def test_agent_detail_marks_the_current_plan_block(client: TestClient, run_dir: Path) -> None:
    body = client.get(f"/api/agents/{ROSA}", params={"step": 15}).json()
    assert body["persona"]["occupation"] == "owner of Alvarez Market"
    assert body["time"] == "2026-02-13T09:30:00"
    blocks, current = body["plan"]["blocks"], body["plan"]["current"]
    assert blocks and current is not None
    assert blocks[current]["start"] <= "09:30" < blocks[current]["end"]
    assert body["action"]["description"]
    assert body["tile"] == last_tile(run_dir, ROSA, 15)
    assert body["relationships"] and all(r["other"] != ROSA for r in body["relationships"])


def test_agent_detail_defaults_to_the_last_step(client: TestClient, last: int) -> None:
    assert client.get(f"/api/agents/{ROSA}").json()["step"] == last


def test_plan_times_accept_clock_and_iso_forms() -> None:
    assert minute_of_day("07:30") == 450
    assert minute_of_day("2024-02-13T14:05:00") == 845
    assert minute_of_day(None) is None
    night = [{"start": "22:00", "end": "06:00"}, {"start": "06:00", "end": "22:00"}]
    assert current_block(night, datetime(2024, 2, 13, 2, 0)) == 0
    assert current_block(night, datetime(2024, 2, 13, 12, 0)) == 1


def test_memories_are_newest_first_and_never_from_the_future(client: TestClient) -> None:
    page = client.get(f"/api/agents/{ROSA}/memories", params={"step": 18, "limit": 500}).json()
    memories = page["memories"]
    assert memories and page["next_before_id"] is None
    assert all(m["step"] <= 18 for m in memories)
    assert [m["id"] for m in memories] == sorted((m["id"] for m in memories), reverse=True)
    assert {m["kind"] for m in memories} >= {"plan", "observation"}
    assert all(isinstance(m["importance"], int) for m in memories)


def test_memories_filter_by_text_and_kind(client: TestClient, run_dir: Path) -> None:
    found = client.get(f"/api/agents/{ROSA}/memories", params={"q": "COUNCIL"}).json()
    expected = rows(
        run_dir,
        "SELECT id FROM events WHERE kind = 'memory' AND agent = ? "
        "AND json_extract(data, '$.text') LIKE '%council%' ORDER BY id DESC",
        ROSA,
    )
    assert expected and [m["id"] for m in found["memories"]] == [r[0] for r in expected]
    assert all("council" in m["text"].lower() for m in found["memories"])
    dialogue = client.get(f"/api/agents/{ROSA}/memories", params={"kind": "dialogue"}).json()
    assert dialogue["memories"]
    assert all(m["kind"] == "dialogue" for m in dialogue["memories"])
    nothing = client.get(f"/api/agents/{ROSA}/memories", params={"q": "zebra"}).json()
    assert nothing["memories"] == []


def test_memories_page_without_gaps_or_repeats(client: TestClient) -> None:
    everything = client.get(f"/api/agents/{ROSA}/memories", params={"limit": 500}).json()
    collected: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"before_id": cursor} if cursor else {})
        page = client.get(f"/api/agents/{ROSA}/memories", params=params).json()
        collected += [m["id"] for m in page["memories"]]
        cursor = page["next_before_id"]
        if cursor is None:
            break
    assert collected == [m["id"] for m in everything["memories"]]


def test_conversations_hold_the_agent_and_their_utterances(
    client: TestClient, run_dir: Path
) -> None:
    body = client.get(f"/api/agents/{ROSA}/conversations", params={"limit": 50}).json()
    conversations = body["conversations"]
    assert conversations
    for conversation in conversations:
        assert ROSA in conversation["participants"]
        expected = rows(
            run_dir,
            "SELECT json_extract(data, '$.text') FROM events WHERE kind = 'utterance' "
            "AND json_extract(data, '$.conversation_id') = ? ORDER BY id",
            conversation["id"],
        )
        assert [u["text"] for u in conversation["utterances"]] == [r[0] for r in expected]
    steps = [c["step"] for c in conversations]
    assert steps == sorted(steps, reverse=True)


def test_conversations_page_and_respect_the_step(client: TestClient) -> None:
    url = f"/api/agents/{ROSA}/conversations"
    everything = client.get(url, params={"limit": 50}).json()["conversations"]
    first = client.get(url, params={"limit": 1}).json()
    assert first["conversations"][0]["id"] == everything[0]["id"]
    if len(everything) > 1:
        cursor = first["next_before_id"]
        second = client.get(url, params={"limit": 1, "before_id": cursor}).json()
        assert second["conversations"][0]["id"] == everything[1]["id"]
    early = client.get(url, params={"step": everything[-1]["step"], "limit": 50}).json()
    assert all(c["step"] <= everything[-1]["step"] for c in early["conversations"])


def test_a_conversation_in_progress_shows_as_ongoing(own_run: Path, last: int) -> None:
    # The lines of a talk are recorded as they are said; its ``conversation`` event at its end.
    for speaker, listener, text in ((ROSA, TOMAS, "Got a minute?"), (TOMAS, ROSA, "Always.")):
        line = {"conversation_id": "live-1", "speaker": speaker, "listeners": [listener]}
        append(own_run, last, "utterance", speaker, line | {"text": text})
    body = TestClient(create_app(own_run)).get(f"/api/agents/{ROSA}/conversations").json()
    ongoing = body["conversations"][0]
    assert ongoing["ongoing"] is True and ongoing["id"] == "live-1"
    assert [u["text"] for u in ongoing["utterances"]] == ["Got a minute?", "Always."]
    assert set(ongoing["participants"]) == {ROSA, TOMAS}


@pytest.mark.parametrize(
    "path",
    [
        "/api/agents/Nobody%20Here",
        "/api/agents/Nobody%20Here/memories",
        "/api/agents/Nobody%20Here/conversations",
        "/api/agents/..%2F..%2Fetc%2Fpasswd",
        "/api/agents/%2e%2e",
        f"/api/agents/{'x' * 300}",
        f"/api/agents/{ROSA}?step=-1",
        f"/api/agents/{ROSA}/memories?limit=501",
        f"/api/agents/{ROSA}/memories?q={'q' * 201}",
        f"/api/agents/{ROSA}/memories?kind=dream",
        f"/api/agents/{ROSA}/memories?before_id=0",
        f"/api/agents/{ROSA}/conversations?limit=51",
    ],
)
def test_agent_endpoints_reject_bad_requests(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert "root:" not in response.text


# ------------------------------------------------------------------ town panel


def say(step: int, speaker: str, listener: str, text: str) -> list[Event]:
    """A two-person conversation at ``step`` in which ``speaker`` says ``text``, as recorded."""
    talk = f"{step}:{speaker}:{listener}"
    return [
        Event(
            step=step,
            time=at(step),
            kind="conversation",
            agent=speaker,
            data={"id": talk, "participants": [speaker, listener], "place": "park", "summary": ""},
        ),
        Event(
            step=step,
            time=at(step),
            kind="utterance",
            agent=speaker,
            data={
                "conversation_id": talk,
                "speaker": speaker,
                "listeners": [listener],
                "text": text,
            },
        ),
    ]


def commit(run_dir: Path, step: int, events: list[Event]) -> None:
    with RunStore.open(run_dir) as store:
        store.commit_step(step, at(step), events)


def test_diffusion_starts_from_the_scenarios_initial_knowers(client: TestClient) -> None:
    # The scripted model's lines name no news item: only the initial knowers know.
    body = client.get("/api/town/diffusion").json()
    assert body["population"] == AGENTS and body["unavailable"] is None
    assert [(i["news_id"], i["initial"], i["heard"], i["points"]) for i in body["items"]] == [
        ("rosa_council", 2, 2, [[0, 2]]),
        ("lena_party", 3, 3, [[0, 3]]),
    ]
    # Labelled by the scenario's descriptions.
    assert body["items"][0]["label"].startswith("Rosa Alvarez is running for the town council")


def test_diffusion_counts_a_listener_only_when_the_speaker_knew(own_run: Path, last: int) -> None:
    harold, mei, jonah = "Harold Finch", "Mei Chen", "Jonah Reed"
    # Harold never knew: his mention passes nothing on to Mei, and the engine's trace of it
    # (which trusts whoever it let learn) is not the summary's figure either.
    commit(own_run, last + 1, say(last + 1, harold, mei, "Is Rosa running for the council?"))
    heard = {"news_id": "rosa_council", "source": harold, "source_knew": True}
    append(own_run, last + 1, "news_heard", mei, heard)
    # Rosa knew from the start: Jonah hears it from her, then Mei from Jonah.
    commit(own_run, last + 2, say(last + 2, ROSA, jonah, "Vote Rosa: my council campaign!"))
    commit(own_run, last + 3, say(last + 3, jonah, mei, "Rosa is a council candidate now."))
    client = TestClient(create_app(own_run))
    body = client.get("/api/town/diffusion").json()
    rosa = body["items"][0]
    assert rosa["news_id"] == "rosa_council" and rosa["method"] == "keywords"
    assert rosa["points"] == [[0, 2], [last + 2, 3], [last + 3, 4]]
    before = client.get("/api/town/diffusion", params={"step": last + 2}).json()
    assert before["items"][0]["heard"] == 3
    # The summary's keyword spread of the same run counts the same people.
    with RunStore.open(own_run, readonly=True) as store:
        summary = summarise_town(store, load_scenario(own_run / "scenario.yaml"))
    figures = {figure.news_id: figure for figure in summary.graded_news}
    assert {i["news_id"]: i["heard"] for i in body["items"]} == {
        news_id: len(figure.keyword_knowers) for news_id, figure in figures.items()
    }
    assert figures["rosa_council"].keyword_knowers == sorted([ROSA, TOMAS, jonah, mei])


def test_an_item_without_a_graded_question_follows_the_engines_trace_from_knowers(
    own_run: Path, last: int
) -> None:
    # Without a question and facts, the summary traces lena_party by the engine's news_heard.
    copy = own_run / "scenario.yaml"
    scenario = yaml.safe_load(copy.read_text(encoding="utf-8"))
    (party,) = [news for news in scenario["news"] if news["id"] == "lena_party"]
    del party["question"], party["facts"]
    copy.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    harold, mei = "Harold Finch", "Mei Chen"
    # Harold was never told, whatever the engine's flag says: Mei does not learn it from him.
    for step, hearer, source in [(last + 1, mei, harold), (last + 2, harold, "Lena Okafor")]:
        heard = {"news_id": "lena_party", "source": source, "source_knew": True}
        append(own_run, step, "news_heard", hearer, heard | {"conversation_id": f"{step}:x"})
    body = TestClient(create_app(own_run)).get("/api/town/diffusion").json()
    party_item = body["items"][1]
    assert party_item["method"] == "news_heard"
    assert party_item["points"] == [[0, 3], [last + 2, 4]]
    with RunStore.open(own_run, readonly=True) as store:
        summary = summarise_town(store, load_scenario(copy))
    (figure,) = [news for news in summary.news if news.news_id == "lena_party"]
    assert figure.final_count == party_item["heard"] == 4


def test_a_run_without_its_scenario_copy_shows_no_diffusion(own_run: Path) -> None:
    (own_run / "scenario.yaml").unlink()
    client = TestClient(create_app(own_run))
    body = client.get("/api/town/diffusion").json()
    assert body["items"] == [] and body["population"] == AGENTS
    assert "scenario.yaml" in body["unavailable"]
    assert client.get("/api/town/usage").json()["totals"]["calls"] > 0


def test_a_broken_scenario_copy_is_named_not_guessed_around(own_run: Path) -> None:
    (own_run / "scenario.yaml").write_text("name: Alder Creek\nagents: 3\n", encoding="utf-8")
    body = TestClient(create_app(own_run)).get("/api/town/diffusion").json()
    assert body["items"] == []
    assert body["unavailable"].startswith("scenario.yaml cannot be used:")
    assert "agents" in body["unavailable"]


def test_network_edges_count_conversations_per_pair(client: TestClient, run_dir: Path) -> None:
    body = client.get("/api/town/network").json()
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for (data,) in rows(run_dir, "SELECT data FROM events WHERE kind = 'conversation'"):
        one, other = sorted(json.loads(data)["participants"])
        expected[(one, other)] += 1
    assert {(a, b): w for a, b, w in body["edges"]} == expected
    assert len(body["nodes"]) == AGENTS
    degree = {node["name"]: node["degree"] for node in body["nodes"]}
    assert sum(degree.values()) == 2 * len(body["edges"])


def test_usage_totals_match_the_llm_calls(client: TestClient, run_dir: Path, last: int) -> None:
    body = client.get("/api/town/usage").json()
    language = "FROM events WHERE kind = 'llm_call' AND json_extract(data, '$.purpose') != 'embed'"
    calls, prompt, completion, reused = rows(
        run_dir,
        "SELECT COUNT(*), SUM(json_extract(data, '$.prompt_tokens')), "
        "SUM(json_extract(data, '$.completion_tokens')), "
        f"COALESCE(SUM(json_extract(data, '$.reused_prompt_tokens')), 0) {language}",
    )[0]
    # The totals count language-model calls; embedding requests are counted apart.
    assert body["totals"]["calls"] == calls
    assert body["totals"]["tokens"] == prompt + completion
    assert body["totals"]["reused_prompt_tokens"] == reused
    share = body["totals"]["reuse_share"]
    assert share == (pytest.approx(reused / prompt, abs=1e-4) if prompt else None)
    ((embeds,),) = rows(
        run_dir,
        "SELECT COUNT(*) FROM events WHERE kind = 'llm_call' "
        "AND json_extract(data, '$.purpose') = 'embed'",
    )
    assert embeds > 0 and body["totals"]["embedding_requests"] == embeds
    hours = last * 10 / 60  # from the start to the time of the last step, as the summary counts
    assert body["game_hours"] == pytest.approx(hours, abs=1e-3)
    assert body["per_agent_hour"]["calls"] == pytest.approx(calls / (hours * AGENTS), abs=1e-3)
    purposes = {p["purpose"]: p["calls"] for p in body["purposes"]}
    assert purposes.keys() >= {"plan", "decompose", "react", "converse_line", "embed"}
    assert purposes["embed"] == embeds


def test_usage_per_agent_hour_is_the_summarys(client: TestClient, run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["usage"]
    body = client.get("/api/town/usage").json()
    assert body["per_agent_hour"] == {
        "calls": summary["calls_per_agent_hour"],
        "tokens": summary["tokens_per_agent_hour"],
    }
    assert body["totals"]["calls"] == summary["total"]["calls"]
    assert body["totals"]["tokens"] == summary["total"]["total_tokens"]
    assert body["totals"]["embedding_requests"] == summary["embeddings"]["calls"]
    # At step 0 no game time has passed: no rate rather than a made-up one.
    first = client.get("/api/town/usage", params={"step": 0}).json()
    assert first["per_agent_hour"] == {"calls": None, "tokens": None}


@pytest.mark.parametrize("path", ["/api/town/diffusion", "/api/town/network", "/api/town/usage"])
def test_town_endpoints_reject_bad_steps(client: TestClient, path: str) -> None:
    assert client.get(path, params={"step": -1}).status_code == 422
    assert client.get(path, params={"step": "soon"}).status_code == 422


def test_summary_is_served_and_problems_are_reported(own_run: Path) -> None:
    client = TestClient(create_app(own_run))
    body = client.get("/api/summary").json()
    assert body["summary"]["usage"]["total"]["calls"] > 0
    (own_run / "summary.json").write_text("[1, 2", encoding="utf-8")
    assert client.get("/api/summary").json()["problem"] == "summary.json: not a JSON object"
    (own_run / "summary.json").unlink()
    assert client.get("/api/summary").status_code == 404


# ------------------------------------------------------------------ live mode


def read_progress(client: TestClient, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    with client.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                messages.append(json.loads(line[len("data: ") :]))
    return messages


def test_live_stream_of_a_finished_run_reports_once_and_ends(client: TestClient, last: int) -> None:
    messages = read_progress(client, "/api/live")
    assert len(messages) == 1
    assert messages[0]["status"] == "finished" and messages[0]["last_step"] == last


def test_live_stream_follows_a_run_being_written(running_town: RunStore) -> None:
    store = running_town
    last = store.last_step()
    assert last is not None
    start_id = store.last_event_id()

    def simulate() -> None:
        for step in (last + 1, last + 2, last + 3):
            time.sleep(0.15)
            move = {"tile": [5, 5 + step % 10], "place": "Alder Creek:main street"}
            store.commit_step(
                step,
                at(step),
                [Event(step=step, time=at(step), kind="move", agent=ROSA, data=move)],
            )
        time.sleep(0.15)
        store.set_meta("status", "finished")

    client = TestClient(create_app(store.directory, poll_s=0.02))
    window = {"start": 0, "end": last + 5}
    assert client.get("/api/frames", params=window).json()["complete"] is False
    writer = threading.Thread(target=simulate)
    writer.start()
    messages = read_progress(client, f"/api/live?after_id={start_id}")
    writer.join()
    assert messages[-1]["status"] == "finished"
    assert messages[-1]["last_step"] == last + 3
    ids = [m["last_event_id"] for m in messages]
    assert ids == sorted(ids) and ids[-1] == start_id + 3
    assert len(messages) >= 3, "each new step is reported while the run is written"
    frames = client.get("/api/frames", params=window).json()
    assert frames["end"] == last + 3 and frames["complete"] is True


def test_live_rejects_bad_cursor(client: TestClient) -> None:
    assert client.get("/api/live", params={"after_id": -5}).status_code == 422


# ------------------------------------------------------------------ static files and guards


def test_page_and_static_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "societas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/static/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "http://" not in script.text and "https://" not in script.text
    assert client.get("/static/viewer.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%252e%252e/%252e%252e/etc/passwd",
        "/static/....//....//etc/passwd",
        "/static//etc/passwd",
        "/static/%00",
        "/static/../run.sqlite",
        "/static/%2e%2e/%2e%2e/run.sqlite",
        "/run.sqlite",
        "/summary.json",
        "/..%2f..%2fetc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_nothing_outside_the_static_folder_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert "root:" not in response.text and "SQLite format" not in response.text


def test_requests_are_bounded(client: TestClient) -> None:
    assert client.get("/api/run?pad=" + "x" * 5000).status_code == 414
    with_body = client.request("GET", "/api/run", content=b"x" * 10)
    assert with_body.status_code == 413
    assert client.post("/api/run").status_code in (405, 413)
    assert client.delete("/api/run").status_code == 405


def test_host_header_is_checked_when_hosts_are_given(run_dir: Path) -> None:
    guarded = TestClient(
        create_app(run_dir, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1"
    )
    assert guarded.get("/api/run").status_code == 200
    assert guarded.get("/api/run", headers={"host": "attacker.example"}).status_code == 400


def test_unexpected_errors_answer_cleanly(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from societas.viewer import app as viewer_app

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(viewer_app, "usage", broken)
    client = TestClient(create_app(run_dir), raise_server_exceptions=False)
    response = client.get("/api/town/usage", params={"step": 3})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}

    def locked(*_: Any, **__: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(viewer_app, "network", locked)
    response = client.get("/api/town/network", params={"step": 3})
    assert response.status_code == 503


def test_a_directory_without_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match=r"no run\.sqlite"):
        create_app(tmp_path)


def test_files_that_are_not_run_stores_are_refused(tmp_path: Path) -> None:
    (tmp_path / "run.sqlite").write_bytes(b"this is not a database at all, just text" * 20)
    with pytest.raises(RunNotFoundError, match="damaged or not a SQLite database"):
        create_app(tmp_path)
    (tmp_path / "run.sqlite").unlink()
    with sqlite3.connect(tmp_path / "run.sqlite") as conn:
        conn.execute("CREATE TABLE other(x)")
    with pytest.raises(RunNotFoundError, match="not a societas run store"):
        create_app(tmp_path)
