"""The front (`confsfu serve --workers N`, N > 1): serves the page and /healthz, reads each
connection's first join, places its room on a worker (confsfu.scale.placement) and pipes the
connection's messages both ways to that worker's own app on a Unix socket. Media never passes
here: each worker binds its own UDP ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from confsfu.scale.directory import Remote, Wait
from confsfu.scale.placement import Placement, Refused, Ticket
from confsfu.server.app import WEB_DIR, index_handler, open_websocket
from confsfu.server.clock import clock_ms
from confsfu.server.front_join import (
    JoinRead,
    hello,
    read_join,
    refuse_listener,
    refuse_unplaced,
)
from confsfu.server.front_member import member_url, member_websocket
from confsfu.server.front_metrics import WorkerScrape, front_exposition
from confsfu.server.front_node_spans import NodeSpans
from confsfu.server.front_nodes import HOP_HEADER, FrontNodes
from confsfu.server.front_relay import tell_spans
from confsfu.server.front_snapshots import FrontSnapshots
from confsfu.server.front_takeover import (
    promote_member,
    promoted,
    take_over_members,
    take_over_worker,
)
from confsfu.server.redis_resp import Redis
from confsfu.server.workers import WorkerPool
from confsfu.settings import Settings

log = logging.getLogger(__name__)
WorkerCommand = Callable[[Path], Sequence[str]]  # how to start a worker on a socket

POLL_S = 1.0  # how often the front asks each worker which rooms it holds
HEALTH_TIMEOUT_S = 10.0  # a loaded worker answers late; missing, its counts are missing
LINGER_MS = 5_000  # a room no worker reports and nobody is connected to: forgotten after this
WAIT_FOR_WORKER_S = 15.0  # a join while no worker is up waits this long for one
WORKER_HELLO_S = 10.0
WORKER_MESSAGE_BYTES = 8 << 20  # the worker is ours: a bound, not a limit on pages


class Front:
    """The placement core and the worker pool, and the connections piped to each worker."""

    def __init__(
        self, settings: Settings, count: int, directory: Path, command: WorkerCommand
    ) -> None:
        self.settings = settings
        max_rooms = max(1, len(settings.rooms))  # joins name configured rooms only
        self.placement = Placement(
            count,
            max_rooms=max_rooms,
            linger_ms=LINGER_MS,
            per_worker=settings.worker_max_connections,
        )
        self.pool = WorkerPool(count, directory, command, self._ready, self._died)
        self.pipes: list[set[web.WebSocketResponse]] = [set() for _ in range(count)]
        self.health: list[dict[str, Any] | None] = [None] * count
        self.lost_rooms: list[str] = []  # rooms that went with a worker, latest last (bounded)
        self._some_ready = asyncio.Event()
        self._spanning = False  # some room spanned workers at the last poll
        self._closing: set[asyncio.Future[bool]] = set()
        self.snapshots = FrontSnapshots(settings, self._current, self.placement.home, self._owns)
        self.nodes: FrontNodes | None = None  # a node of a deployment (front_nodes.py)
        self.node_spans: NodeSpans | None = None  # a room's media across nodes (node_spill)
        # Rooms this node serves as a relay member of another node's authority (node_spill):
        # their local home follows; a claim of one here starts from Redis's snapshot.
        self.member_rooms: set[str] = set()
        self.member_of: dict[str, str] = {}  # such a room: the node its part here follows
        # Rooms whose home worker died, being promoted on a member (front_takeover.py).
        self.promoting: dict[str, asyncio.Future[None]] = {}
        if settings.node_id is not None:
            store = self.snapshots.store
            self.nodes = FrontNodes(settings, store, self._in_use, self._own_home)
            if settings.node_spill:
                # Its own connection: the lease's renewals never wait behind the spans.
                redis = Redis(settings.redis_url or "", timeout_s=settings.node_lease_s / 2)
                self.node_spans = NodeSpans(redis, self.nodes.node_id, self.nodes.lease_ms)

    def _own_home(self, room: str) -> int | None:
        """The room's home here, if it is the room's meeting (not another node's follower)."""
        return None if room in self.member_rooms else self.placement.home(room)

    def _owns(self, room: str) -> bool:
        """Whether this front writes `room`'s snapshot to Redis: as a node, while it holds it."""
        return self.nodes is None or self.nodes.directory.holds(room)

    def _in_use(self, room: str) -> bool:
        """As a node: the room is still this front's (its claim is kept)."""
        return self.placement.home(room) is not None or self.snapshots.has(room)

    def _current(self, index: int, epoch: int) -> bool:
        return self.placement.alive(index) and self.placement.epoch(index) == epoch

    def _ready(self, index: int) -> None:
        epoch = self.placement.worker_started(index)
        self.snapshots.worker_ready(self.pool.workers[index], epoch)
        self._some_ready.set()

    def _died(self, index: int) -> None:
        moved = take_over_worker(self, index)  # its rooms with a live member: promoted there
        lost = self.placement.worker_died(index)
        kept = self.snapshots.worker_died(index, moved + lost)
        if kept:
            log.info("rooms whose next home starts from a snapshot: %s", ", ".join(kept))
        self.health[index] = None
        self.lost_rooms = (self.lost_rooms + lost)[-64:]
        if not any(self.placement.alive(i) for i in range(len(self.pipes))):
            self._some_ready.clear()
        log.warning("worker %d died; rooms to place again: %s", index, ", ".join(lost) or "none")
        for ws in list(self.pipes[index]):  # the pages reconnect by themselves
            closing = asyncio.ensure_future(ws.close(code=WSCloseCode.SERVICE_RESTART))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def place(self, join: JoinRead) -> Ticket | Refused:
        placed = self._place(join)
        if isinstance(placed, Refused) and placed.reason == "no_worker":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._some_ready.wait(), WAIT_FOR_WORKER_S)
            placed = self._place(join)
        return placed

    def _place(self, join: JoinRead) -> Ticket | Refused:
        if join.listener:  # the audience spreads over the workers (docs/scale-out.md)
            return self.placement.place_listener(
                join.room, clock_ms(), self.max_listeners(join.room)
            )
        return self.placement.place(join.room, clock_ms())

    def max_listeners(self, room: str) -> int:
        config = self.settings.room(room)
        return 0 if config is None else config.max_listeners

    async def worker_health(self, index: int, *, heap: bool = False) -> dict[str, Any] | None:
        worker = self.pool.workers[index]
        client = worker.client
        if client is None or not worker.ready.is_set():
            return None
        timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
        try:
            url = worker.url("/healthz?heap=1" if heap else "/healthz")
            async with client.get(url, timeout=timeout) as response:
                body: dict[str, Any] = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None
        self.health[index] = body
        if self.placement.epoch(index) and worker.ready.is_set():
            self.placement.reported(index, body.get("room_names", []), clock_ms())
        return body

    async def worker_metrics(self, index: int) -> WorkerScrape:
        worker = self.pool.workers[index]
        client = worker.client
        text = None
        if client is not None and worker.ready.is_set():
            timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
            try:
                async with client.get(worker.url("/metrics"), timeout=timeout) as response:
                    text = await response.text() if response.status == 200 else None
            except (aiohttp.ClientError, OSError, TimeoutError, UnicodeDecodeError):
                text = None
        return WorkerScrape(
            index=index,
            alive=self.placement.alive(index) and worker.ready.is_set(),
            restarts=worker.restarts,
            connections=self.placement.connections(index),
            rooms=len(self.placement.rooms_on(index)),
            text=text,
        )

    async def poll(self) -> None:
        """Keep the room map in step with what the workers hold."""
        while True:
            await asyncio.gather(*(self.worker_health(i) for i in range(len(self.pipes))))
            spanning = bool(self.placement.spans())
            if (
                self.placement.per_worker
                or spanning
                or self._spanning
                or self.node_spans is not None
            ):
                await tell_spans(self)  # the rooms spanning workers (server/front_relay.py)
            self._spanning = spanning
            if self.member_rooms:  # another node's rooms: taken over if it died
                await take_over_members(self)
            for room in self.placement.expire(clock_ms()):
                log.info("room %s has no home any more", room)
            self.snapshots.expire()
            await asyncio.sleep(POLL_S)


FRONT = web.AppKey("front", Front)


def create_front_app(
    settings: Settings, count: int, command: WorkerCommand, web_dir: Path = WEB_DIR
) -> web.Application:
    app = web.Application(client_max_size=settings.max_message_bytes)
    directory = Path(_socket_dir())
    app[FRONT] = Front(settings, count, directory, command)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(stop_workers)
    app.router.add_get("/ws", _websocket)
    if settings.node_spill:  # other nodes' members reach a room's authority (front_member.py)
        app.router.add_get("/member", member_websocket)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/", index_handler(web_dir))
    app.router.add_static("/static/", web_dir, show_index=False)
    return app


def _socket_dir() -> str:
    return tempfile.mkdtemp(prefix="confsfu-workers-")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    front = app[FRONT]
    await front.snapshots.start()
    if front.nodes is not None:
        await front.nodes.start()
    await front.pool.start()
    poll = asyncio.create_task(front.poll())
    yield
    poll.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poll
    await front.snapshots.freeze()
    if front.nodes is not None:
        await front.nodes.stop()
    if front.node_spans is not None:
        await front.node_spans.redis.close()
    await front.pool.stop()
    with contextlib.suppress(OSError):
        os.rmdir(front.pool.workers[0].socket.parent)


async def stop_workers(app: web.Application) -> None:
    """At a stop signal, before the app's own cleanup: the workers tell their pages first
    (the meetings' snapshots as they were before that)."""
    front = app[FRONT]
    await front.snapshots.freeze()
    if front.nodes is not None:  # the rooms' claims released: other nodes take them now
        await front.nodes.stop()
    await front.pool.stop()


async def _health(request: web.Request) -> web.Response:
    front = request.app[FRONT]
    count = len(front.pipes)
    heap = request.query.get("heap") == "1"
    bodies = await asyncio.gather(*(front.worker_health(i, heap=heap) for i in range(count)))
    workers = []
    for i, body in enumerate(bodies):
        worker = front.pool.workers[i]
        workers.append(
            {
                "index": i,
                "pid": worker.pid,
                "alive": front.placement.alive(i) and body is not None,
                "restarts": worker.restarts,
                "connections": front.placement.connections(i),
                "rooms": front.placement.rooms_on(i),
                "health": body,
            }
        )
    live = [b for b in bodies if b is not None]
    summed = {key: sum(int(b.get(key) or 0) for b in live) for key in _SUMMED}
    if not heap:
        del summed["heap_in_use_bytes"]
    merged = {key: _merge([b.get(key, {}) for b in live]) for key in _MERGED}
    body = {
        "status": "ok" if len(live) == count else "degraded",
        "front_pid": os.getpid(),
        **summed,
        **merged,
        "loop_lag": _merge_lag([b["loop_lag"] for b in live if "loop_lag" in b]),
        "homes": front.placement.homes(),
        "lost_rooms": front.lost_rooms,
        "snapshots": front.snapshots.store.rooms(),
        "workers": workers,
    }
    if front.nodes is not None:
        body["node"] = front.nodes.health()
        if front.node_spans is not None:  # node_spill: its relay indices are ordinal x 64 + i
            body["node"]["relay_ordinal"] = front.node_spans.ordinal
    return web.json_response(body)


async def _metrics(request: web.Request) -> web.Response:
    front = request.app[FRONT]
    scrapes = await asyncio.gather(*(front.worker_metrics(i) for i in range(len(front.pipes))))
    extra = front.nodes.metrics() if front.nodes is not None else []
    body, content_type = front_exposition(scrapes, extra)
    return web.Response(body=body, headers={"Content-Type": content_type})


_SUMMED = ("rooms", "participants", "listeners", "heap_in_use_bytes")
_MERGED = ("counters", "drops", "estimators")


def _merge(parts: Sequence[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def _merge_lag(parts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The workers' loop lateness as one: bins and totals added, the worst of the maxima."""
    if not parts:
        return None
    return {
        "every_ms": parts[0]["every_ms"],
        "bins": _merge([p["bins"] for p in parts]),
        "max_ms": max(p["max_ms"] for p in parts),
        "max_cpu_ms": max(p["max_cpu_ms"] for p in parts),
        "late_ms_total": round(sum(p["late_ms_total"] for p in parts), 1),
    }


async def _websocket(request: web.Request) -> web.StreamResponse:
    front = request.app[FRONT]
    ws = await open_websocket(request, front.settings)
    with contextlib.suppress(ConnectionError):  # the page went while the front wrote to it
        await _serve_connection(front, ws, hop=HOP_HEADER in request.headers)
    return ws


async def _serve_connection(front: Front, ws: web.WebSocketResponse, *, hop: bool) -> None:
    await ws.send_str(hello())
    join = await read_join(ws, front.settings)
    if join is None:
        return
    if front.nodes is None:
        await _serve_here(front, ws, join)
        return
    route = await front.nodes.route(join.room, hop=hop)  # the room directory (front_nodes.py)
    if isinstance(route, Remote) and front.node_spans is not None:
        # Served here as a relay member of the room: its meeting at the authority node.
        front.member_rooms.add(join.room)  # a configured room (route said so): bounded
        front.member_of.setdefault(join.room, route.node)  # (a takeover's Lost: front_step)
        with front.nodes.serving(join.room, ws):  # (closed if this node's claim is lost later)
            await _serve_here(front, ws, join, authority=member_url(route, join.room))
    elif isinstance(route, Remote):
        await front.nodes.pipe_to(ws, route, join.text)
    elif isinstance(route, Wait):
        log.info("room %s: a join waits: %s", join.room, route.reason)
        await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"node")
    else:  # this node's meeting now: a member part of it here is promoted first
        await promote_member(front, join.room)
        with front.nodes.serving(join.room, ws):
            await _serve_here(front, ws, join)


async def _serve_here(
    front: Front, ws: web.WebSocketResponse, join: JoinRead, authority: str | None = None
) -> None:
    placed = await front.place(join)
    if isinstance(placed, Refused):
        if placed.reason == "audience_full":
            await refuse_listener(ws, front.max_listeners(join.room))
        else:
            await refuse_unplaced(ws, placed.reason)
        return
    front.pipes[placed.worker].add(ws)
    try:
        await promoted(front, join.room)  # a takeover under way first
        if not await front.snapshots.restore_at(join.room, front.pool.workers[placed.worker]):
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"worker")
            return
        await _pipe_to_worker(front, placed, ws, join.text, authority)
    finally:
        front.pipes[placed.worker].discard(ws)
        front.placement.left(placed, clock_ms())
        await ws.close()


async def _pipe_to_worker(
    front: Front,
    placed: Ticket,
    ws: web.WebSocketResponse,
    join_text: str,
    authority: str | None = None,
) -> None:
    worker = front.pool.workers[placed.worker]
    client = worker.client
    if client is None or front.placement.epoch(placed.worker) != placed.epoch:
        await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"worker")
        return
    # A spilled connection's meeting is decided by the room's home (server/authority_link.py).
    params = {"authority": str(front.pool.workers[placed.home].socket)} if placed.spilled else {}
    if authority is not None:  # a room another node holds: its authority is there
        params = {"authority": authority}
    try:
        async with client.ws_connect(
            worker.url("/ws"), params=params, max_msg_size=WORKER_MESSAGE_BYTES, autoping=True
        ) as wws:
            first = await wws.receive(timeout=WORKER_HELLO_S)  # its hello: the page had ours
            if first.type != WSMsgType.TEXT:
                raise ConnectionError(f"worker {placed.worker} said {first.type!r}")
            await wws.send_str(join_text)
            code, message = await pipe(ws, wws)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("lost worker %d for a connection: %r", placed.worker, exc)
        code, message = WSCloseCode.SERVICE_RESTART, b"worker"
    await ws.close(code=code, message=message)


async def pipe(
    ws: web.WebSocketResponse, wws: aiohttp.ClientWebSocketResponse
) -> tuple[int, bytes]:
    """Frames both ways until one side closes; the close code (and reason) the page gets."""
    closing: list[tuple[int, bytes]] = []

    async def up() -> None:  # page -> worker
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                await wws.send_str(frame.data)
            elif frame.type == WSMsgType.BINARY:
                await wws.send_bytes(frame.data)

    async def down() -> None:  # worker -> page
        while True:
            frame = await wws.receive()
            if frame.type == WSMsgType.TEXT:
                if not ws.closed:
                    await ws.send_str(frame.data)
            elif frame.type == WSMsgType.CLOSE:
                closing.append((int(frame.data), (frame.extra or "").encode()[:120]))
                return
            elif frame.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await wws.close()
    if closing:
        return closing[0]
    if ws.closed:  # the page went first
        return WSCloseCode.OK, b""
    return WSCloseCode.SERVICE_RESTART, b"worker"  # the worker vanished without a close
