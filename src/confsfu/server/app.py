"""The aiohttp application: the page, the WebSocket, health; startup and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import WSCloseCode, web

from confsfu.server.hub import Hub
from confsfu.server.rtc_adapter import configure_aiortc
from confsfu.server.session import Session
from confsfu.settings import Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)


class OpenSockets(set[web.WebSocketResponse]):
    """The WebSockets to close with GOING_AWAY at shutdown."""


SOCKETS = web.AppKey("sockets", OpenSockets)
WEB_DIR = Path(__file__).resolve().parents[3] / "web"


def create_app(settings: Settings, web_dir: Path = WEB_DIR) -> web.Application:
    configure_aiortc(settings.ice.candidates)
    app = web.Application(client_max_size=settings.max_message_bytes)
    app[SETTINGS] = settings
    app[SOCKETS] = OpenSockets()
    app.cleanup_ctx.append(_hub_lifecycle)
    app.router.add_get("/ws", _websocket)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/", _index_handler(web_dir))
    app.router.add_static("/static/", web_dir, show_index=False)
    return app


async def _hub_lifecycle(app: web.Application) -> AsyncIterator[None]:
    hub = Hub(app[SETTINGS])
    app[HUB] = hub
    yield
    sockets: OpenSockets = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
    await hub.close()


def _index_handler(
    web_dir: Path,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(web_dir / "index.html", headers={"Cache-Control": "no-cache"})

    return index


async def _health(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    participants = sum(len(r.room.participants) for r in hub.rooms.values())
    counters: dict[str, int] = {}
    drops: dict[str, int] = {}
    for live in hub.rooms.values():
        for key, value in live.media.counters.items():
            counters[key] = counters.get(key, 0) + value
        for key, value in live.media.drops.items():
            drops[key] = drops.get(key, 0) + value
    body = {
        "status": "ok",
        "rooms": len(hub.rooms),
        "participants": participants,
        "counters": counters,
        "drops": drops,
    }
    return web.json_response(body)


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
    if not origin_allowed(request, settings):
        log.warning("refused a WebSocket from origin %s", request.headers.get("Origin"))
        raise web.HTTPForbidden(text="origin not allowed")
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s, max_msg_size=settings.max_message_bytes
    )
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        await Session(request.app[HUB], ws).run()
    finally:
        sockets.discard(ws)
        await ws.close()
    return ws
