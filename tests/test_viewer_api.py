"""The viewer's HTTP API over a recorded run: answers, bounds, bad input, live streaming, CLI."""

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
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from societas.cli import viewer_commands
from societas.viewer import timeline
from societas.viewer.agent_view import current_block, minute_of_day
from societas.viewer.app import create_app
from societas.viewer.sample import START, write_sample_run
from societas.viewer.store import RunNotFoundError, RunReader

AGENTS, STEPS = 5, 40
MARA = "Mara Quist"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run")
    write_sample_run(path, agents=AGENTS, steps=STEPS, seed=3)
    return path


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
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def insert_event(
    conn: sqlite3.Connection, step: int, kind: str, agent: str | None, data: Any
) -> None:
    moment = (START + timedelta(minutes=10 * step)).isoformat()
    text = data if isinstance(data, str) else json.dumps(data)
    conn.execute(
        "INSERT INTO events(step, time, kind, agent, data) VALUES (?, ?, ?, ?, ?)",
        (step, moment, kind, agent, text),
    )


# ------------------------------------------------------------------ run, map, frames, seek


def test_run_describes_the_run(client: TestClient) -> None:
    body = client.get("/api/run").json()
    assert body["scenario"] == "sample-town"
    assert body["status"] == "finished"
    assert body["last_step"] == STEPS - 1
    assert body["agents"][0]["name"] == MARA
    assert body["agents"][0]["occupation"] == "baker"
    assert body["minutes_per_step"] == 10
    assert body["has_summary"] is True
    assert body["limits"]["frame_span"] == timeline.MAX_FRAME_SPAN


def test_map_has_rows_places_and_objects(client: TestClient) -> None:
    body = client.get("/api/map").json()
    assert len(body["rows"]) == body["height"]
    assert all(len(row) == body["width"] for row in body["rows"])
    assert any(place["address"] == "cafe:counter" for place in body["places"])
    assert body["objects"][0]["tile"] == [6, 4]


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
    body = client.get("/api/frames", params={"start": 10, "end": 30}).json()
    assert (body["start"], body["end"], body["complete"]) == (10, 30, True)
    names = body["agents"]
    assert len(names) == AGENTS
    for step in (10, 17, 30):
        for i, name in enumerate(names):
            assert replay(body, step)[i] == last_tile(run_dir, name, step)
    assert all(10 < move[0] <= 30 for move in body["changes"]["moves"])
    assert set(body["times"]) == {str(s) for s in range(10, 31)}
    assert body["times"]["12"] == (START + timedelta(minutes=120)).isoformat()


def test_frames_show_agents_moving_and_acting(client: TestClient) -> None:
    body = client.get("/api/frames", params={"start": 0, "end": STEPS - 1}).json()
    first, last = replay(body, 0), replay(body, STEPS - 1)
    assert first != last
    assert all(action is not None for action in body["actions"])
    assert body["changes"]["actions"], "the sample agents change activity during the run"
    assert body["changes"]["utterances"], "the sample agents talk"
    _step, speaker, text, conversation = body["changes"]["utterances"][0]
    assert 0 <= speaker < AGENTS and text and conversation


def test_an_agent_that_never_moves_stays_on_its_start_tile(own_run: Path) -> None:
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        conn.execute("DELETE FROM events WHERE agent = ? AND kind = 'move'", (MARA,))
        start_tile = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'map'").fetchone()[0]
        )["agents"][MARA]
    client = TestClient(create_app(own_run))
    body = client.get("/api/frames", params={"start": 20, "end": 30}).json()
    assert body["tiles"][0] == start_tile
    assert client.get(f"/api/agents/{MARA}").json()["tile"] == start_tile


def test_frames_end_is_clamped_to_the_last_step(client: TestClient) -> None:
    body = client.get("/api/frames", params={"start": 30, "end": 300}).json()
    assert body["end"] == STEPS - 1


def test_frames_cap_rows_and_say_where_they_stopped(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline, "MAX_FRAME_ROWS", 12)
    body = client.get("/api/frames", params={"start": 1, "end": 35}).json()
    assert body["end"] < 35
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
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        meta = RunReader(run_dir).meta(conn)
        changes = conn.execute(
            "EXPLAIN QUERY PLAN SELECT step FROM events WHERE kind = 'move' "
            "AND step > 1 AND step <= 9 ORDER BY step, id"
        ).fetchall()
        initial = conn.execute(
            "EXPLAIN QUERY PLAN " + timeline.last_of_kind_sql(meta), (MARA, 5, "move")
        ).fetchall()
    assert "events_kind_step" in str(changes)
    assert "events_agent_step" in str(initial), "one agent's state must not scan all agents"


def test_seek_finds_the_step_at_a_game_time(client: TestClient) -> None:
    assert client.get("/api/seek", params={"time": "2024-02-13T09:05"}).json() == {
        "step": 6,
        "time": "2024-02-13T09:00:00",
    }
    assert client.get("/api/seek", params={"time": "2020-01-01T00:00"}).json()["step"] == 0
    assert client.get("/api/seek", params={"time": "2030-01-01T00:00"}).json()["step"] == STEPS - 1
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
    params: dict[str, Any] = {"kind": "memory", "agent": MARA, "step_min": 5, "step_max": 20}
    events = client.get("/api/events", params=params | {"limit": 500}).json()["events"]
    assert events
    assert all(e["kind"] == "memory" and e["agent"] == MARA for e in events)
    assert all(5 <= e["step"] <= 20 for e in events)
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


def test_events_with_malformed_data_still_load(own_run: Path) -> None:
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        insert_event(conn, STEPS - 1, "memory", MARA, "{not json")
        insert_event(conn, STEPS - 1, "move", MARA, {"tile": "nowhere"})
    client = TestClient(create_app(own_run))
    last = client.get("/api/events", params={"after_id": 0, "limit": 500, "agent": MARA})
    assert last.status_code == 200
    assert client.get(f"/api/agents/{MARA}").status_code == 200
    assert client.get(f"/api/agents/{MARA}/memories").status_code == 200
    assert (
        client.get("/api/frames", params={"start": STEPS - 1, "end": STEPS - 1}).status_code == 200
    )


# ------------------------------------------------------------------ agent panel


def test_agent_detail_marks_the_current_plan_block(client: TestClient) -> None:
    body = client.get(f"/api/agents/{MARA}", params={"step": 15}).json()
    assert body["persona"]["occupation"] == "baker"
    assert body["time"] == "2024-02-13T10:30:00"
    blocks, current = body["plan"]["blocks"], body["plan"]["current"]
    assert blocks and current is not None
    assert blocks[current]["start"] <= "10:30" < blocks[current]["end"]
    assert body["action"]["description"]
    assert body["tile"] is not None
    assert body["relationships"] and all(r["other"] != MARA for r in body["relationships"])


def test_agent_detail_defaults_to_the_last_step(client: TestClient) -> None:
    assert client.get(f"/api/agents/{MARA}").json()["step"] == STEPS - 1


def test_plan_times_accept_clock_and_iso_forms() -> None:
    assert minute_of_day("07:30") == 450
    assert minute_of_day("2024-02-13T14:05:00") == 845
    assert minute_of_day(None) is None
    night = [{"start": "22:00", "end": "06:00"}, {"start": "06:00", "end": "22:00"}]
    assert current_block(night, datetime(2024, 2, 13, 2, 0)) == 0
    assert current_block(night, datetime(2024, 2, 13, 12, 0)) == 1


def test_memories_are_newest_first_and_never_from_the_future(client: TestClient) -> None:
    page = client.get(f"/api/agents/{MARA}/memories", params={"step": 20, "limit": 500}).json()
    memories = page["memories"]
    assert memories and page["next_before_id"] is None
    assert all(m["step"] <= 20 for m in memories)
    assert [m["id"] for m in memories] == sorted((m["id"] for m in memories), reverse=True)
    assert {m["kind"] for m in memories} >= {"plan", "observation"}
    assert all(isinstance(m["importance"], int) for m in memories)


def test_memories_filter_by_text_and_kind(client: TestClient) -> None:
    found = client.get(f"/api/agents/{MARA}/memories", params={"q": "TALKED WITH"}).json()
    assert found["memories"]
    assert all("talked with" in m["text"].lower() for m in found["memories"])
    reflections = client.get(f"/api/agents/{MARA}/memories", params={"kind": "reflection"}).json()
    assert reflections["memories"]
    assert all(m["kind"] == "reflection" for m in reflections["memories"])
    nothing = client.get(f"/api/agents/{MARA}/memories", params={"q": "zebra"}).json()
    assert nothing["memories"] == []


def test_memories_page_without_gaps_or_repeats(client: TestClient) -> None:
    everything = client.get(f"/api/agents/{MARA}/memories", params={"limit": 500}).json()
    collected: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"before_id": cursor} if cursor else {})
        page = client.get(f"/api/agents/{MARA}/memories", params=params).json()
        collected += [m["id"] for m in page["memories"]]
        cursor = page["next_before_id"]
        if cursor is None:
            break
    assert collected == [m["id"] for m in everything["memories"]]


def test_conversations_hold_the_agent_and_their_utterances(
    client: TestClient, run_dir: Path
) -> None:
    body = client.get(f"/api/agents/{MARA}/conversations", params={"limit": 50}).json()
    conversations = body["conversations"]
    assert conversations
    for conversation in conversations:
        assert MARA in conversation["participants"]
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
    url = f"/api/agents/{MARA}/conversations"
    everything = client.get(url, params={"limit": 50}).json()["conversations"]
    first = client.get(url, params={"limit": 1}).json()
    assert first["conversations"][0]["id"] == everything[0]["id"]
    if len(everything) > 1:
        cursor = first["next_before_id"]
        second = client.get(url, params={"limit": 1, "before_id": cursor}).json()
        assert second["conversations"][0]["id"] == everything[1]["id"]
    early = client.get(url, params={"step": everything[-1]["step"], "limit": 50}).json()
    assert all(c["step"] <= everything[-1]["step"] for c in early["conversations"])


def test_a_conversation_in_progress_shows_as_ongoing(own_run: Path) -> None:
    step = STEPS - 1
    with sqlite3.connect(own_run / "run.sqlite") as conn:
        for speaker, listener, text in (
            (MARA, "Tomas Reyes", "Got a minute?"),
            ("Tomas Reyes", MARA, "Always."),
        ):
            insert_event(
                conn,
                step,
                "utterance",
                speaker,
                {
                    "conversation_id": "live-1",
                    "speaker": speaker,
                    "listeners": [listener],
                    "text": text,
                },
            )
    body = TestClient(create_app(own_run)).get(f"/api/agents/{MARA}/conversations").json()
    ongoing = body["conversations"][0]
    assert ongoing["ongoing"] is True and ongoing["id"] == "live-1"
    assert [u["text"] for u in ongoing["utterances"]] == ["Got a minute?", "Always."]
    assert set(ongoing["participants"]) == {MARA, "Tomas Reyes"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/agents/Nobody%20Here",
        "/api/agents/Nobody%20Here/memories",
        "/api/agents/Nobody%20Here/conversations",
        "/api/agents/..%2F..%2Fetc%2Fpasswd",
        "/api/agents/%2e%2e",
        f"/api/agents/{'x' * 300}",
        f"/api/agents/{MARA}?step=-1",
        f"/api/agents/{MARA}/memories?limit=501",
        f"/api/agents/{MARA}/memories?q={'q' * 201}",
        f"/api/agents/{MARA}/memories?kind=dream",
        f"/api/agents/{MARA}/memories?before_id=0",
        f"/api/agents/{MARA}/conversations?limit=51",
    ],
)
def test_agent_endpoints_reject_bad_requests(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert "root:" not in response.text


# ------------------------------------------------------------------ town panel


def test_diffusion_counts_distinct_hearers_over_time(client: TestClient, run_dir: Path) -> None:
    body = client.get("/api/town/diffusion").json()
    assert body["population"] == AGENTS
    expected = dict(
        rows(
            run_dir,
            "SELECT json_extract(data, '$.news_id'), COUNT(DISTINCT agent) FROM events "
            "WHERE kind = 'news_heard' GROUP BY 1",
        )
    )
    assert {item["news_id"]: item["heard"] for item in body["items"]} == expected
    for item in body["items"]:
        counts = [count for _, count in item["points"]]
        assert counts == sorted(counts) and counts[-1] == item["heard"]
    assert any(item["label"] for item in body["items"]), "labels come from interventions"
    early = client.get("/api/town/diffusion", params={"step": 0}).json()
    assert all(p[0] == 0 for item in early["items"] for p in item["points"])


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


def test_usage_totals_match_the_llm_calls(client: TestClient, run_dir: Path) -> None:
    body = client.get("/api/town/usage").json()
    calls, prompt, completion = rows(
        run_dir,
        "SELECT COUNT(*), SUM(json_extract(data, '$.prompt_tokens')), "
        "SUM(json_extract(data, '$.completion_tokens')) FROM events WHERE kind = 'llm_call'",
    )[0]
    assert body["totals"]["calls"] == calls
    assert body["totals"]["tokens"] == prompt + completion
    (reused,) = rows(
        run_dir,
        "SELECT COALESCE(SUM(json_extract(data, '$.reused_prompt_tokens')), 0) FROM events "
        "WHERE kind = 'llm_call'",
    )[0]
    assert body["totals"]["reused_prompt_tokens"] == reused
    share = body["totals"]["reuse_share"]
    assert share == (pytest.approx(reused / prompt, abs=1e-4) if prompt else None)
    hours = STEPS * 10 / 60
    assert body["game_hours"] == pytest.approx(hours, abs=1e-3)
    assert body["per_agent_hour"]["calls"] == pytest.approx(calls / (hours * AGENTS), abs=1e-3)
    assert {p["purpose"] for p in body["purposes"]} >= {"plan_day", "react", "dialogue"}


@pytest.mark.parametrize("path", ["/api/town/diffusion", "/api/town/network", "/api/town/usage"])
def test_town_endpoints_reject_bad_steps(client: TestClient, path: str) -> None:
    assert client.get(path, params={"step": -1}).status_code == 422
    assert client.get(path, params={"step": "soon"}).status_code == 422


def test_summary_is_served_and_problems_are_reported(own_run: Path) -> None:
    client = TestClient(create_app(own_run))
    body = client.get("/api/summary").json()
    assert body["summary"]["model_usage"]["calls"] > 0
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


def test_live_stream_of_a_finished_run_reports_once_and_ends(client: TestClient) -> None:
    messages = read_progress(client, "/api/live")
    assert len(messages) == 1
    assert messages[0]["status"] == "finished" and messages[0]["last_step"] == STEPS - 1


def test_live_stream_follows_a_run_being_written(tmp_path: Path) -> None:
    write_sample_run(tmp_path, agents=2, steps=5, status="running", summary=False)
    db = tmp_path / "run.sqlite"
    (start_id,) = rows(tmp_path, "SELECT MAX(id) FROM events")[0]

    def simulate() -> None:
        for step in (5, 6, 7):
            time.sleep(0.15)
            with sqlite3.connect(db) as conn:
                insert_event(conn, step, "move", MARA, {"tile": [5, 5 + step], "place": "x"})
                conn.execute("UPDATE meta SET value = ? WHERE key = 'last_step'", (str(step),))
        time.sleep(0.15)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE meta SET value = '\"finished\"' WHERE key = 'status'")

    client = TestClient(create_app(tmp_path, poll_s=0.02))
    assert client.get("/api/frames", params={"start": 0, "end": 10}).json()["complete"] is False
    writer = threading.Thread(target=simulate)
    writer.start()
    messages = read_progress(client, f"/api/live?after_id={start_id}")
    writer.join()
    assert messages[-1]["status"] == "finished"
    assert messages[-1]["last_step"] == 7
    ids = [m["last_event_id"] for m in messages]
    assert ids == sorted(ids) and ids[-1] == start_id + 3
    assert len(messages) >= 3, "each new step is reported while the run is written"
    frames = client.get("/api/frames", params={"start": 0, "end": 10}).json()
    assert frames["end"] == 7 and frames["complete"] is True


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


# ------------------------------------------------------------------ command line


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    viewer_commands.register(app)
    return app


def test_serve_binds_loopback_and_guards_hosts(
    cli: typer.Typer, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    result = CliRunner().invoke(cli, ["serve", str(run_dir), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8123
    assert "http://127.0.0.1:8123/" in result.output
    guarded = TestClient(calls[0]["app"], base_url="http://127.0.0.1")
    assert guarded.get("/api/run", headers={"host": "evil.example"}).status_code == 400


def test_serve_refuses_bad_directories_and_ports(cli: typer.Typer, tmp_path: Path) -> None:
    # A wide terminal, so the error panel never cuts the message (the temporary path varies).
    runner = CliRunner(env={"COLUMNS": "400"})
    empty = runner.invoke(cli, ["serve", str(tmp_path)])
    assert empty.exit_code == 2 and "no run.sqlite" in empty.output
    assert runner.invoke(cli, ["serve", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(cli, ["serve", str(tmp_path), "--port", "70000"]).exit_code == 2


def test_loopback_detection() -> None:
    assert viewer_commands.is_loopback("127.0.0.1")
    assert viewer_commands.is_loopback("::1")
    assert not viewer_commands.is_loopback("0.0.0.0")
    assert not viewer_commands.is_loopback("example.org")


def test_files_that_are_not_run_stores_are_refused(tmp_path: Path) -> None:
    (tmp_path / "run.sqlite").write_bytes(b"this is not a database at all, just text" * 20)
    with pytest.raises(RunNotFoundError, match="not a readable SQLite file"):
        create_app(tmp_path)
    (tmp_path / "run.sqlite").unlink()
    with sqlite3.connect(tmp_path / "run.sqlite") as conn:
        conn.execute("CREATE TABLE other(x)")
    with pytest.raises(RunNotFoundError, match="missing tables: events, meta"):
        create_app(tmp_path)
