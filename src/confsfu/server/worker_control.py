"""A worker's control routes, for its front only (they exist only on a worker's Unix socket):
`/control`, a WebSocket on which the worker sends its rooms' meeting snapshots as they change
(paced by confsfu.scale.snapshots), `POST /restore?room=NAME`, a snapshot a room's next
home starts from, and `POST /release?room=NAME` (its pages held for a takeover go). Frames
on `/control`, worker to front (docs/scale-out.md):

    {"type":"meeting_snapshot","room":NAME,"taken_unix_ms":T}\\n<the snapshot's JSON>
    {"type":"room_forgotten","room":NAME}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import WSMsgType, web

from confsfu.conference.snapshot import SnapshotCache, capture_bytes
from confsfu.conference.snapshot_model import MAX_SNAPSHOT_BYTES, SnapshotError
from confsfu.scale.snapshots import SnapshotPacer
from confsfu.server.clock import clock_ms
from confsfu.server.hub import Hub

log = logging.getLogger(__name__)

CONTROL_HEADROOM_BYTES = 4096  # a frame's header beside its snapshot


def _snapshot_header(room: str, taken_unix_ms: int) -> str:
    header = {"type": "meeting_snapshot", "room": room, "taken_unix_ms": taken_unix_ms}
    return json.dumps(header) + "\n"


def snapshot_frame(room: str, text: str, taken_unix_ms: int) -> str:
    return _snapshot_header(room, taken_unix_ms) + text


def snapshot_frame_bytes(room: str, data: bytes, taken_unix_ms: int) -> bytes:
    """`snapshot_frame` as the UTF-8 of a text frame: the snapshot is never a str."""
    return _snapshot_header(room, taken_unix_ms).encode() + data


def forgotten_frame(room: str) -> str:
    return json.dumps({"type": "room_forgotten", "room": room})


class SnapshotOutlet:
    """The worker's rooms' snapshots to its front: taken when a room changed, at the pace the
    pacer allows, and sent on the front's control WebSocket (none connected: they wait)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.pacer = SnapshotPacer()
        self.control: web.WebSocketResponse | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at_ms = 0
        self._sending: asyncio.Task[None] | None = None
        self._untold: set[str] = set()  # rooms let go while no front was connected (configured)
        self._caches: dict[str, SnapshotCache] = {}  # a live room's records as last captured
        self.sent = 0
        self.failed = 0

    def changed(self, room: str) -> None:
        self.pacer.changed(room, clock_ms())
        self._arm()

    def forgotten(self, room: str) -> None:
        self.pacer.forget(room)
        self._caches.pop(room, None)
        control = self.control
        if control is None or control.closed:
            self._untold.add(room)  # told when the front connects again
            return
        task = asyncio.ensure_future(control.send_str(forgotten_frame(room)))
        task.add_done_callback(_quiet)

    def connected(self, control: web.WebSocketResponse) -> None:
        self.control = control
        untold, self._untold = self._untold, set()
        for room in sorted(untold - self.hub.rooms.keys()):
            self.forgotten(room)
        self.pacer.all_changed(self.hub.rooms, clock_ms())
        self._arm()

    def _arm(self) -> None:
        at_ms = self.pacer.next_deadline_ms()
        control = self.control
        if at_ms is None or control is None or control.closed or self._sending is not None:
            return  # nothing due, nobody to send to (they wait), or a pass is under way
        if self._timer is not None:
            if self._timer_at_ms <= at_ms:
                return
            self._timer.cancel()
        self._timer_at_ms = at_ms
        delay_s = max(0, at_ms - clock_ms()) / 1000
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._due)

    def _due(self) -> None:
        self._timer = None
        self._sending = asyncio.ensure_future(self._send_due())
        self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("meeting snapshots: %r", task.exception())
        self._arm()

    async def _send_due(self) -> None:
        for room in self.pacer.due(clock_ms()):
            control = self.control
            if control is None or control.closed:
                return  # they wait for the front's next control connection
            live = self.hub.rooms.get(room)
            started = time.perf_counter()
            taken_unix_ms = int(time.time() * 1000)
            data = None
            if live is None:
                self._caches.pop(room, None)
            elif not live.follows:  # (a relay member's part of a room: not the meeting)
                cache = self._caches.setdefault(room, SnapshotCache())
                try:
                    data = capture_bytes(live.meeting, cache)
                except SnapshotError as exc:  # cannot be over the bound; never stop the room
                    log.error("room %s: no meeting snapshot: %s", room, exc)
                    self.failed += 1
            cost_ms = (time.perf_counter() - started) * 1000
            self.pacer.sent(room, clock_ms(), cost_ms)
            if data is not None:
                frame = snapshot_frame_bytes(room, data, taken_unix_ms)
                await control.send_frame(frame, WSMsgType.TEXT)
                self.sent += 1


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # the front went: it will ask again when it comes back


OUTLET = web.AppKey("snapshot_outlet", SnapshotOutlet)


async def control(request: web.Request) -> web.StreamResponse:
    """The front's control WebSocket: every room's snapshot now, then as they change."""
    outlet = request.app[OUTLET]
    ws = web.WebSocketResponse(max_msg_size=CONTROL_HEADROOM_BYTES)
    await ws.prepare(request)
    outlet.connected(ws)
    async for _frame in ws:  # the front sends nothing; this waits for the close
        pass
    if outlet.control is ws:
        outlet.control = None
    return ws


async def restore(request: web.Request) -> web.Response:
    """A room's next home starts from the front's snapshot: 200 with `restored` (or `held`:
    the room is already live here; `ended`: its meeting had ended; `promoted`: this worker's
    follower part of it became the meeting, server/takeover.py), 400 for a snapshot that
    cannot be used, 413 beyond the bound."""
    outlet = request.app[OUTLET]
    room = request.query.get("room", "")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MAX_SNAPSHOT_BYTES:
            return web.json_response({"error": "too large"}, status=413)
    try:
        promote = request.query.get("promote") == "1"  # a takeover (server/front_takeover.py)
        result = outlet.hub.restore(room, bytes(body), takeover=promote)
    except SnapshotError as exc:
        log.warning("room %s: the front's meeting snapshot was refused: %s", room, exc)
        return web.json_response({"error": str(exc)}, status=400)
    log.info("room %s: meeting snapshot %s", room, result)
    if result in ("restored", "promoted"):
        outlet.changed(room)  # the front's copy is now this worker's
    return web.json_response({"result": result})


async def release(request: web.Request) -> web.Response:
    """`POST /release?room=NAME`: another node won the room's claim (front_takeover.py): the
    pages here held for a takeover of it are closed with 1012 now. 200 with their count."""
    live = request.app[OUTLET].hub.rooms.get(request.query.get("room", ""))
    conns = [] if live is None else list(live.connections.values())
    count = sum(1 for conn in conns if conn.release is not None and conn.release())
    return web.json_response({"released": count})


async def close_control(app: web.Application) -> None:
    """At a stop: the control connection would otherwise hold the worker's shutdown."""
    outlet = app.get(OUTLET)
    if outlet is not None and outlet.control is not None:
        await outlet.control.close()


def add_worker_routes(app: web.Application) -> None:
    app.router.add_get("/control", control)
    app.router.add_post("/restore", restore)
    app.router.add_post("/release", release)
    app.on_shutdown.append(close_control)
