"""The viewer API fuzzed from its own OpenAPI schema, plus explicit path and size attacks.

The run directory is a real one: a copy of the town as the engine recorded it with the scripted
``fake:`` model (the ``recorded_town`` fixture).
Schemathesis generates valid and invalid requests for every operation (in-process, over ASGI); no
request may make the server fail (5xx). Then hand-written requests try to leave the run
directory (``..``, encoded dots, absolute paths, symlinks) and to send oversized requests.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from societas.viewer.app import create_app, router
from societas.viewer.guards import MAX_URL_BYTES

EXAMPLES = int(os.environ.get("SOCIETAS_FUZZ_EXAMPLES", "30"))
SECRET = "top-secret-content-outside-the-run"
AGENT = "Rosa Alvarez"  # one of the town's people


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, recorded_town: Path) -> Path:
    root = tmp_path_factory.mktemp("viewer")
    (root / "secret.txt").write_text(SECRET, encoding="utf-8")
    (root / "secret.json").write_text(json.dumps({"secret": SECRET}), encoding="utf-8")
    run = root / "run"
    shutil.copytree(recorded_town, run, ignore=shutil.ignore_patterns("summary.json"))
    # Links that point out of the run: a viewer must never follow them.
    (run / "escape.txt").symlink_to(root / "secret.txt")
    (run / "summary.json").symlink_to(root / "secret.json")
    return run


@pytest.fixture(scope="module")
def app(run_dir: Path) -> Any:
    return create_app(run_dir, allowed_hosts=["127.0.0.1", "localhost", "testserver"])


@pytest.fixture(scope="module")
def client(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    # The server publishes no schema (openapi_url=None); FastAPI still builds it in-process.
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    return schema


def _api_operations() -> dict[str, Any]:
    """The GET operations of the viewer's API by path, read from its router (no run needed)."""
    bare = FastAPI()
    bare.include_router(router)
    return {path: item["get"] for path, item in sorted(bare.openapi()["paths"].items())}


OPERATIONS = _api_operations()
API_PATHS = list(OPERATIONS)
# Invalid requests need a parameter to get wrong; agent routes also run with a real agent's name,
# since generated names are nearly always unknown (404) and reach no query.
CASES = (
    [(path, GenerationMode.POSITIVE, None) for path in API_PATHS]
    + [
        (path, GenerationMode.NEGATIVE, None)
        for path in API_PATHS
        if OPERATIONS[path].get("parameters")
    ]
    + [(path, GenerationMode.POSITIVE, AGENT) for path in API_PATHS if "{name}" in path]
)


def test_the_schema_covers_every_api_route() -> None:
    assert {"/api/run", "/api/frames", "/api/events", "/api/agents/{name}/memories"} <= set(
        API_PATHS
    )
    assert all(path.startswith("/api/") for path in API_PATHS)


@pytest.mark.parametrize(("path", "mode", "agent"), CASES)
def test_no_generated_request_makes_the_server_fail(
    api_schema: Any, path: str, mode: GenerationMode, agent: str | None
) -> None:
    operation = api_schema[path]["GET"]
    fixed = {"name": agent} if agent else None

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def check(case: Any) -> None:
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.path, case.query, response.text[:200])

    check()


# --- leaving the run directory ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/static/../../secret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/..%5c..%5csecret.txt",
        "/static/%252e%252e/%252e%252e/secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/escape.txt",
        "/escape.txt",
        "/run.sqlite",
        "/api/agents/..%2f..%2fsecret.txt",
        "/api/agents/%2e%2e/memories",
        "/api/agents/..%2fescape.txt/memories",
        "/api/agents/%2Fetc%2Fpasswd",
    ],
)
def test_no_path_reaches_outside_the_static_folder(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    for leaked in (SECRET, "root:", "SQLite format"):
        assert leaked not in response.text


def test_a_symlinked_summary_pointing_outside_is_not_served(client: TestClient) -> None:
    body = client.get("/api/summary").json()
    assert body["summary"] is None
    assert "outside the run directory" in body["problem"]
    assert SECRET not in str(body)


def test_agent_names_that_look_like_paths_are_just_unknown(client: TestClient) -> None:
    for name in ("../../etc/passwd", "/etc/passwd", "..", "Rosa Alvarez/../Tomas Alvarez"):
        response = client.get("/api/agents/" + name.replace("/", "%2F"))
        assert response.status_code in (404, 422), name
        assert "root:" not in response.text


# --- oversized requests -------------------------------------------------------------------------


def test_oversized_urls_and_parameters_are_refused(client: TestClient) -> None:
    long = "x" * (MAX_URL_BYTES + 1)
    assert client.get("/api/events", params={"kind": long}).status_code == 414
    assert client.get("/api/agents/" + long).status_code == 414
    assert (
        client.get("/api/agents/Rosa%20Alvarez/memories", params={"q": "x" * 201}).status_code
        == 422
    )
    assert client.get("/api/agents/" + "y" * 121).status_code == 422
    assert client.get("/api/events", params={"limit": 10**6}).status_code == 422
    assert client.get("/api/frames", params={"start": 0, "end": 10**12}).status_code == 422
    assert client.get("/api/events", params={"after_id": "9" * 400}).status_code == 422


def test_oversized_headers_and_bodies_are_refused(client: TestClient) -> None:
    assert client.request("GET", "/api/run", content=b"x" * 10_000_000).status_code == 413
    chunked = client.request(
        "GET", "/api/run", content=iter([b"x" * 1024] * 4), headers={"transfer-encoding": "chunked"}
    )
    assert chunked.status_code == 413
    assert client.post("/api/run", content=b"{}").status_code in (405, 413)
    assert client.get("/api/run", headers={"x-pad": "z" * 20_000}).status_code == 431
