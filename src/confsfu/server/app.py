"""The aiohttp application: the page, the WebSocket, health; startup and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import WSCloseCode, web
from prometheus_client.registry import CollectorRegistry

from confsfu.server import gc_policy
from confsfu.server.aiortc_setup import configure_aiortc
from confsfu.server.heap import HeapGauge
from confsfu.server.hub import Hub
from confsfu.server.live_room import LiveRoom
from confsfu.server.loop_lag import LagProbe, LoopLag
from confsfu.server.member_session import MemberSession, member_pid
from confsfu.server.metrics import exposition, make_registry
from confsfu.server.relay_link import add_relay_routes, member_rooms, mirrored, relay_health
from confsfu.server.reports import write_reports
from confsfu.server.session import Session
from confsfu.server.worker_control import OUTLET, SnapshotOutlet, add_worker_routes
from confsfu.settings import Settings
from confsfu.signalling.messages import Bye, Notice

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", CollectorRegistry)
KEEP_REPORTS = web.AppKey("keep_reports", bool)
LOOP_LAG = web.AppKey("loop_lag", LoopLag)
WORKER = web.AppKey("worker", bool)
HEAP = web.AppKey("heap", HeapGauge)


class OpenSessions(dict[Session, asyncio.Event]):
    """The open sessions, each with an event set once its handler has finished."""


SESSIONS = web.AppKey("sessions", OpenSessions)
WEB_DIR = Path(__file__).resolve().parents[3] / "web"

# Frames up to this many times max_message_bytes are read and refused with `too_large`;
# beyond it aiohttp closes the connection itself (1009) without reading the frame.
FRAME_HARD_LIMIT_FACTOR = 2
STOP_GRACE_S = 2.0  # at shutdown: how long pages get to take their bye and close
STOPPING_TEXT = "The server is restarting; the meeting will resume in a moment."
STOPPING_REASON = "the server is restarting; the meeting will resume"


def create_app(
    settings: Settings,
    web_dir: Path = WEB_DIR,
    *,
    keep_reports: bool = False,
    worker: bool = False,
) -> web.Application:
    """The app; with `keep_reports`, live rooms' reports go to `settings.report_dir` at cleanup.
    A front's `worker` also has the front's control routes (server/worker_control.py)."""
    configure_aiortc(settings.ice.candidates)
    app = web.Application(client_max_size=settings.max_message_bytes)
    app[SETTINGS] = settings
    app[KEEP_REPORTS] = keep_reports
    app[LOOP_LAG] = lag = LoopLag()
    app[HEAP] = HeapGauge()
    app[SESSIONS] = sessions = OpenSessions()
    app[METRICS] = make_registry(
        lambda: _rooms(app), lambda: len(sessions), lag, lambda: _overflows(app)
    )
    app.cleanup_ctx.append(_hub_lifecycle)
    app.on_shutdown.append(_stop_sessions)
    app.router.add_get("/ws", _websocket)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics)
    if worker:  # routes only the front reaches, over the worker's Unix socket
        app[WORKER] = True
        add_worker_routes(app)
        add_relay_routes(app, HUB, app[METRICS])  # used when a front's room spans workers
        app.router.add_get("/member", _member_websocket)  # a relay member's participant
    app.router.add_get("/", index_handler(web_dir))
    app.router.add_static("/static/", web_dir, show_index=False)
    return app


def _rooms(app: web.Application) -> Mapping[str, LiveRoom]:
    hub = app.get(HUB)
    return hub.rooms if hub is not None else {}


def _overflows(app: web.Application) -> int:
    hub = app.get(HUB)
    return hub.send_queue_overflows if hub is not None else 0


async def _hub_lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub = Hub(settings, report_dir=settings.report_dir if app[KEEP_REPORTS] else None)
    app[HUB] = hub
    if app.get(WORKER):
        app[OUTLET] = outlet = SnapshotOutlet(hub)
        hub.on_change, hub.on_forget = outlet.changed, outlet.forgotten
    probe = LagProbe(app[LOOP_LAG])
    probe.start()
    yield
    probe.stop()
    if app[KEEP_REPORTS]:  # a relay member's meeting is not the room's: its authority reports
        members = member_rooms(app)
        rooms = {
            name: live
            for name, live in hub.rooms.items()
            if name not in members and not live.reports_elsewhere
        }
        write_reports(rooms, app[SETTINGS].report_dir)
    await hub.close()
    gc_policy.flush()  # the rooms' garbage, while nobody's media can stall


async def _stop_sessions(app: web.Application) -> None:
    """Tell every page the meeting is pausing, close with GOING_AWAY, wait for the handlers."""
    sessions = app[SESSIONS]
    if not sessions:
        return
    log.info("server stopping: closing %d connections", len(sessions))
    stops = [asyncio.ensure_future(_stop(session)) for session in list(sessions)]
    finished = [asyncio.ensure_future(done.wait()) for done in sessions.values()]
    _, pending = await asyncio.wait([*stops, *finished], timeout=STOP_GRACE_S)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("server stopping: %d connections did not close in time", len(pending))


async def _stop(session: Session) -> None:
    session.leave_reason = "server_stopping"
    await session.send(Notice(code="server_stopping", text=STOPPING_TEXT))
    await session.send(Bye(reason=STOPPING_REASON))
    session.close_when_sent(WSCloseCode.GOING_AWAY, b"server restarting")


def index_handler(
    web_dir: Path,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(web_dir / "index.html", headers={"Cache-Control": "no-cache"})

    return index


async def _health(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    # Another worker's participants held here for a room both share are that worker's.
    participants = sum(len(r.room.participants) - len(r.remote) for r in hub.rooms.values())
    participants -= mirrored(request.app)
    listeners = sum(len(r.listeners) for r in hub.rooms.values())
    counters: dict[str, int] = {}
    drops: dict[str, int] = {}
    estimators: dict[str, int] = {}  # subscribers by the estimator in use
    for live in hub.rooms.values():
        for sub in live.media.subscribers.values():
            kind = sub.estimator_kind
            estimators[kind] = estimators.get(kind, 0) + 1
        for key, value in live.media.counters.items():
            counters[key] = counters.get(key, 0) + value
        for key, value in live.media.drops.items():
            drops[key] = drops.get(key, 0) + value
    body = {
        "status": "ok",
        "rooms": len(hub.rooms),
        "room_names": sorted(hub.rooms),  # a front places rooms by them (docs/scale-out.md)
        "pid": os.getpid(),
        "participants": participants,
        "listeners": listeners,
        "counters": counters,
        "drops": drops,
        "estimators": estimators,
        "loop_lag": request.app[LOOP_LAG].snapshot(),
        "relay": relay_health(request.app),
    }
    if request.query.get("heap") == "1":  # costly: only when asked (server/heap.py)
        body["heap_in_use_bytes"] = request.app[HEAP].value(time.monotonic())
    return web.json_response(body)


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = exposition(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def open_websocket(request: web.Request, settings: Settings) -> web.WebSocketResponse:
    """The page's WebSocket, opened: refused (403) from an origin not allowed."""
    if not origin_allowed(request, settings):
        log.warning("refused a WebSocket from origin %s", request.headers.get("Origin"))
        raise web.HTTPForbidden(text="origin not allowed")
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s,
        max_msg_size=settings.max_message_bytes * FRAME_HARD_LIMIT_FACTOR,
    )
    await ws.prepare(request)
    return ws


def origin_allowed(request: web.Request, settings: Settings) -> bool:
    """Browsers send Origin; it must be this server itself or a configured public origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (tests, benchmarks, tools)
    if origin in settings.public_origin:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _websocket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    ws = await open_websocket(request, settings)
    sessions = request.app[SESSIONS]
    # A connection the front spilled onto this worker names its room's authority (a worker's
    # socket, beside this one): its meeting is decided there (server/authority_link.py).
    authority = request.query.get("authority") if request.app.get(WORKER) else None
    session = Session(request.app[HUB], ws, request.transport, authority)
    sessions[session] = done = asyncio.Event()
    try:
        await session.run()
    finally:
        await ws.close()
        sessions.pop(session, None)
        done.set()
    return ws


async def _member_websocket(request: web.Request) -> web.StreamResponse:
    """The room authority's end of a relay member's participant's link (worker only)."""
    pid = member_pid(request.query.get("pid", ""))
    if pid is None:
        raise web.HTTPBadRequest(text="a participant id expected")
    ws = web.WebSocketResponse(max_msg_size=request.app[SETTINGS].max_message_bytes * 2)
    await ws.prepare(request)
    sessions = request.app[SESSIONS]
    session = MemberSession(request.app[HUB], ws, pid)
    sessions[session] = done = asyncio.Event()
    try:
        await session.run()
    finally:
        await ws.close()
        sessions.pop(session, None)
        done.set()
    return ws
