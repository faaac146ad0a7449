"""A room's authority link across nodes (`node_spill`; docs/scale-out.md, "A room spanning
nodes"): a member worker on another node opens its participant's link at this front's
`/member?room=<room>&pid=<id>`, showing the deployment's member key (derived from the shared
relay secret; compared in constant time: a stranger is refused with 403 before any
WebSocket), and the front carries it, frames unchanged both ways, to the room's home worker's
own `/member` route (server/member_session.py), as it pipes a page to a worker."""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp
from aiohttp import WSCloseCode, web

from confsfu.scale.directory import Remote
from confsfu.scale.node_spans import MEMBER_KEY_HEADER, member_key_ok

log = logging.getLogger(__name__)
MEMBER_MESSAGE_BYTES = 8 << 20  # another node's worker is ours: a bound, not a limit on pages


def member_url(remote: Remote, room: str) -> str:
    """Where a member worker of this node opens links for `room`, held by `remote`."""
    return f"http://{remote.address}/member?room={quote(room, safe='')}"


async def member_websocket(request: web.Request) -> web.StreamResponse:
    from confsfu.server.front import FRONT, pipe  # the same pipe as to a worker

    front = request.app[FRONT]
    secret = front.settings.relay_secret
    shown = request.headers.get(MEMBER_KEY_HEADER, "")
    if secret is None or not member_key_ok(secret.get_secret_value().encode(), shown):
        log.warning("a /member link from %s refused: no valid member key", request.remote)
        raise web.HTTPForbidden(text="not a node of this deployment")
    room, pid = request.query.get("room", ""), request.query.get("pid", "")
    home = front.placement.home(room)
    if home is None or not front.placement.alive(home) or len(pid) > 100:
        raise web.HTTPServiceUnavailable(text="the room has no home here")
    worker = front.pool.workers[home]
    client = worker.client
    if client is None:
        raise web.HTTPServiceUnavailable(text="the room's home is not up")
    ws = web.WebSocketResponse(max_msg_size=MEMBER_MESSAGE_BYTES, autoping=True)
    await ws.prepare(request)
    code, message = int(WSCloseCode.SERVICE_RESTART), b"authority"
    try:
        async with client.ws_connect(
            worker.url("/member"),
            params={"pid": pid},
            max_msg_size=MEMBER_MESSAGE_BYTES,
            autoping=True,
        ) as wws:
            code, message = await pipe(ws, wws)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("room %s: a member's link not carried to worker %d: %r", room, home, exc)
    await ws.close(code=code, message=message)
    return ws
