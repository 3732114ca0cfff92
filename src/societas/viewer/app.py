"""The viewer's web application: a JSON API over one run directory plus the static front end.

Example::

    app = create_app(Path("runs/town"), allowed_hosts=["127.0.0.1", "localhost"])
    uvicorn.run(app, host="127.0.0.1", port=8765)

Endpoints (all GET; every parameter validated, every page bounded):

- ``/api/run``: scenario, clock, status, agents, limits.
- ``/api/map``: the tile map.
- ``/api/frames?start=&end=``: agents' tiles, actions and speech over a step range.
- ``/api/seek?time=``: the step at a game time.
- ``/api/events?after_id=&limit=&kind=&agent=&step_min=&step_max=``: the raw log, paged.
- ``/api/agents/{name}?step=``, ``.../memories``, ``.../conversations``: the agent panel.
- ``/api/town/diffusion|network|usage?step=``, ``/api/summary``: the town panel.
- ``/api/live?after_id=``: server-sent ``progress`` events while the run is being written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from societas.engine.events import EVENT_KINDS
from societas.viewer.agent_view import agent_conversations, agent_detail, agent_memories
from societas.viewer.cache import ResponseCache
from societas.viewer.guards import RequestGuard
from societas.viewer.live import progress_stream
from societas.viewer.store import (
    SUMMARY_NAME,
    AgentInfo,
    RunDataError,
    RunView,
    parse_json,
)
from societas.viewer.timeline import MAX_FRAME_SPAN, frame_range, seek_step, time_at_step
from societas.viewer.town_view import diffusion, network, usage

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_STEP = 10**9
MAX_ID = 2**62
MAX_PAGE = 500

StepQuery = Annotated[int | None, Query(ge=0, le=MAX_STEP, description="Step; default: last.")]
AgentName = Annotated[str, PathParam(min_length=1, max_length=120)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
MemoryKind = Literal["observation", "reflection", "plan", "dialogue"]


class _Context:
    """What every API route needs: the reader, the response cache and one connection."""

    def __init__(self, reader: RunView, cache: ResponseCache, conn: sqlite3.Connection) -> None:
        self.reader, self.cache, self.conn = reader, cache, conn
        self.meta = reader.meta(conn)
        self.progress = reader.progress(conn)

    def step_or_last(self, step: int | None) -> int:
        return self.progress.last_step if step is None else step

    def settled(self, step: int) -> bool:
        """Whether everything up to ``step`` is written for good (so answers can be cached)."""
        return self.progress.status != "running" or step < self.progress.last_step

    def cached_json(self, key: tuple[Any, ...], step: int, compute: Callable[[], Any]) -> Response:
        """The JSON answer for ``key``, from the cache when the steps it covers are settled."""
        body = self.cache.get(key)
        if body is None:
            body = json.dumps(compute()).encode()
            if self.settled(step):
                self.cache.put(key, body)
        return Response(body, media_type="application/json")

    def agent(self, name: str) -> AgentInfo:
        found = self.meta.agent(name)
        if found is None:
            raise HTTPException(404, f"unknown agent: {name!r}")
        return found


def _context(request: Request) -> Iterator[_Context]:
    reader: RunView = request.app.state.reader
    with reader.connect() as conn:
        yield _Context(reader, request.app.state.cache, conn)


Ctx = Annotated[_Context, Depends(_context)]
router = APIRouter()


def create_app(
    run_dir: Path,
    *,
    allowed_hosts: Sequence[str] | None = None,
    poll_s: float = 0.5,
    heartbeat_s: float = 15.0,
) -> FastAPI:
    """Build the viewer for ``run_dir`` (must hold ``run.sqlite``; raises RunNotFoundError).

    ``allowed_hosts`` limits the Host header (guards a loopback server against DNS rebinding);
    None accepts any host. ``poll_s`` is how often the live stream polls the store.
    """
    app = FastAPI(title="societas viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = RunView(run_dir)
    app.state.cache = ResponseCache()
    app.state.poll_s, app.state.heartbeat_s = poll_s, heartbeat_s
    app.add_middleware(RequestGuard)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_exception_handler(sqlite3.OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _database_error(request: Request, exc: Exception) -> Response:
    if "locked" in str(exc) or "busy" in str(exc):
        return JSONResponse({"error": "the run store is busy; try again"}, status_code=503)
    log.error("database error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error reading the run store"}, status_code=500)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


def _json(content: Any) -> Response:
    # json.dumps directly: frame ranges are large and need no jsonable_encoder pass.
    return Response(json.dumps(content).encode(), media_type="application/json")


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/run")
def run_info(ctx: Ctx) -> Response:
    """Scenario, clock, status and agents of the run, and the API's size limits."""
    meta, progress = ctx.meta, ctx.progress
    return _json(
        {
            "scenario": meta.scenario,
            "seed": meta.seed,
            "model": meta.model,
            "start_time": meta.start_time.isoformat() if meta.start_time else None,
            "minutes_per_step": meta.minutes_per_step,
            "status": progress.status,
            "last_step": progress.last_step,
            "last_event_id": progress.last_event_id,
            "agents": [_agent_brief(agent) for agent in meta.agents],
            "has_summary": (ctx.reader.run_dir / SUMMARY_NAME).is_file(),
            "limits": {"frame_span": MAX_FRAME_SPAN, "page": MAX_PAGE},
        }
    )


def _agent_brief(agent: AgentInfo) -> dict[str, Any]:
    persona = agent.persona
    return {"name": agent.name, "occupation": persona.get("occupation"), "age": persona.get("age")}


@router.get("/api/map")
def run_map(ctx: Ctx) -> Response:
    """The tile map: size, place index per tile, places and objects."""
    if not ctx.meta.map:
        raise HTTPException(404, "this run has not recorded its map yet")
    return _json(ctx.meta.map)


@router.get("/api/frames")
def frames(
    ctx: Ctx,
    start: Annotated[int, Query(ge=0, le=MAX_STEP)],
    end: Annotated[int, Query(ge=0, le=MAX_STEP)],
) -> Response:
    """Agents' tiles and actions at ``start`` and every change up to ``end`` (see timeline)."""
    if end < start or end - start > MAX_FRAME_SPAN:
        raise HTTPException(422, f"need start <= end <= start + {MAX_FRAME_SPAN}")
    return ctx.cached_json(
        ("frames", start, end),
        end,
        lambda: frame_range(ctx.conn, ctx.meta, start, end, ctx.progress),
    )


@router.get("/api/seek")
def seek(ctx: Ctx, time: Annotated[datetime, Query()]) -> Response:
    """The last step at or before a game time (ISO, e.g. ``2024-02-13T14:00``)."""
    step = seek_step(ctx.conn, ctx.meta, time, ctx.progress.last_step)
    moment = time_at_step(ctx.conn, ctx.meta, step)
    return _json({"step": step, "time": moment.isoformat() if moment else None})


@router.get("/api/events")
def events(
    ctx: Ctx,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Limit = 100,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    agent: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    step_min: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
    step_max: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
) -> Response:
    """The raw event log in id order, one page after ``after_id``."""
    if kind is not None and kind not in EVENT_KINDS:
        raise HTTPException(422, f"unknown kind {kind!r}; one of {sorted(EVENT_KINDS)}")
    if agent is not None and ctx.meta.agent(agent) is None:
        raise HTTPException(422, f"unknown agent: {agent!r}")
    filters = (
        ("kind", "=", kind),
        ("agent", "=", agent),
        ("step", ">=", step_min),
        ("step", "<=", step_max),
    )
    sql = ["SELECT id, step, time, kind, agent, data FROM events WHERE id > ?"]
    params: list[Any] = [after_id]
    for column, op, value in filters:
        if value is not None:
            sql.append(f"AND {column} {op} ?")
            params.append(value)
    sql.append("ORDER BY id LIMIT ?")
    rows = ctx.conn.execute(" ".join(sql), [*params, limit + 1]).fetchall()
    page = [
        {"id": i, "step": s, "time": t, "kind": k, "agent": a, "data": parse_json(d, {})}
        for i, s, t, k, a, d in rows[:limit]
    ]
    return _json(
        {
            "events": page,
            "next_after_id": page[-1]["id"] if page else after_id,
            "has_more": len(rows) > limit,
        }
    )


@router.get("/api/summary")
def summary(ctx: Ctx) -> Response:
    """``summary.json`` of a finished run; ``problem`` says why it cannot be shown."""
    try:
        content = ctx.reader.summary()
    except RunDataError as exc:
        return _json({"summary": None, "problem": str(exc)})
    if content is None:
        raise HTTPException(404, "this run has no summary.json yet")
    return _json({"summary": content, "problem": None})


@router.get("/api/agents/{name}")
def agent(ctx: Ctx, name: AgentName, step: StepQuery = None) -> Response:
    """Persona, place, action, today's plan and relationships of an agent at a step."""
    return _json(agent_detail(ctx.conn, ctx.meta, ctx.agent(name), ctx.step_or_last(step)))


@router.get("/api/agents/{name}/memories")
def memories(
    ctx: Ctx,
    name: AgentName,
    step: StepQuery = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    kind: MemoryKind | None = None,
) -> Response:
    """An agent's memories up to a step, newest first; ``q`` filters by text."""
    page = agent_memories(
        ctx.conn,
        ctx.meta,
        ctx.agent(name).name,
        ctx.step_or_last(step),
        limit=limit,
        before_id=before_id,
        text=q.strip() if q and q.strip() else None,
        memory_kind=kind,
    )
    return _json(page)


@router.get("/api/agents/{name}/conversations")
def conversations(
    ctx: Ctx,
    name: AgentName,
    step: StepQuery = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    before_id: BeforeId = None,
) -> Response:
    """Conversations an agent took part in up to a step, newest first, with utterances."""
    page = agent_conversations(
        ctx.conn,
        ctx.meta,
        ctx.agent(name).name,
        ctx.step_or_last(step),
        limit=limit,
        before_id=before_id,
    )
    return _json(page)


@router.get("/api/town/diffusion")
def town_diffusion(ctx: Ctx, step: StepQuery = None) -> Response:
    """How many agents had heard each news item, over steps."""
    at = ctx.step_or_last(step)
    return ctx.cached_json(
        ("diffusion", at), at, lambda: diffusion(ctx.conn, ctx.meta, at, ctx.reader.scenario())
    )


@router.get("/api/town/network")
def town_network(ctx: Ctx, step: StepQuery = None) -> Response:
    """The conversation network up to a step."""
    at = ctx.step_or_last(step)
    return ctx.cached_json(("network", at), at, lambda: network(ctx.conn, ctx.meta, at))


@router.get("/api/town/usage")
def town_usage(ctx: Ctx, step: StepQuery = None) -> Response:
    """Model calls and tokens up to a step, in total, per purpose and per agent-hour."""
    at = ctx.step_or_last(step)
    return ctx.cached_json(
        ("usage", at), at, lambda: usage(ctx.conn, ctx.meta, at, ctx.reader.scenario())
    )


@router.get("/api/live")
async def live(
    request: Request, after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
) -> StreamingResponse:
    """Server-sent ``progress`` events while the run is written; ends when it stops running."""
    state = request.app.state
    stream = progress_stream(
        state.reader,
        request.is_disconnected,
        after_id=after_id,
        poll_s=state.poll_s,
        heartbeat_s=state.heartbeat_s,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
