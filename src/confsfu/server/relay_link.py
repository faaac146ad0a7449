"""A worker's relay socket (docs/scale-out.md, "The relay"): a Unix datagram socket at
`<directory>/relay<index>.sock`, the front's directory, over which the worker exchanges relay
frames with the other workers of the rooms it shares with them. The front says which rooms
span which workers (POST /relay); each such room the worker holds gets a `RoomRelay`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter, deque
from pathlib import Path
from typing import Any

from aiohttp import web

from confsfu.scale import relay_frame as rf
from confsfu.server.clock import clock_ms
from confsfu.server.hub import Hub
from confsfu.server.relay import RoomRelay

log = logging.getLogger(__name__)
TICK_S = 0.1  # needs, announcements and expiry; a new need waits at most this long
READ_LIMIT = 256  # datagrams read per wake-up: the loop's other work is not held up
SOCKET_BUFFER_BYTES = 4 << 20
MAX_ROOMS = 1024
# A Unix datagram socket's queue holds net.unix.max_dgram_qlen datagrams (10 by default): a
# peer busy for a moment refuses more. What it refuses waits here, in order, and is sent again
# RETRY_S later; beyond MAX_QUEUED a peer's frames are dropped (NACKs recover media).
MAX_QUEUED = 4096
RETRY_S = 0.002


def relay_path(directory: Path, index: int) -> Path:
    return directory / f"relay{index}.sock"


class RelayLink:
    """This worker's end of the relay: the socket, the rooms it shares, their relays."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.index = -1
        self.directory: Path | None = None
        # room -> (its index, the other workers holding it, its home: -1 when it is this one)
        self.spans: dict[str, tuple[int, frozenset[int], int]] = {}
        self.relays: dict[str, RoomRelay] = {}
        self.counts: Counter[str] = Counter()
        self._sock: socket.socket | None = None
        self._peers: dict[str, int] = {}  # a peer's socket path -> its index
        self._by_index: dict[int, RoomRelay] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._paths: dict[int, str] = {}  # a peer's socket path, by its index
        self._queued: dict[int, deque[bytes]] = {}  # by peer: frames its socket refused
        self._retry: asyncio.TimerHandle | None = None

    # ---- the front's word -------------------------------------------------------------------

    def configure(self, index: int, directory: Path, rooms: dict[str, Any]) -> None:
        """This worker is `index`; `rooms` maps each room it shares to its front index and its
        workers (this one among them)."""
        if self._sock is None:
            self.index, self.directory = index, directory
            self._open()
        spans = {}
        for name, span in list(rooms.items())[:MAX_ROOMS]:
            order = [int(w) for w in span["workers"]][:64]  # the home first
            workers = frozenset(order)
            if self.index in workers:
                home = -1 if order[0] == self.index else order[0]
                spans[str(name)] = (int(span["index"]), workers - {self.index}, home)
        self.spans = spans
        self._sync()

    def _open(self) -> None:
        assert self.directory is not None
        path = relay_path(self.directory, self.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        sock.bind(str(path))
        sock.setblocking(False)
        self._sock = sock
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._readable)
        self._timer = loop.call_later(TICK_S, self._tick)

    def _sync(self) -> None:
        """A relay for each shared room this worker holds; the others closed."""
        now_ms = clock_ms()
        for name in list(self.relays):
            relay = self.relays[name]
            span = self.spans.get(name)
            if (
                span is None
                or self.hub.rooms.get(name) is not relay.live
                or (span[0], span[2]) != (relay.core.room, relay.home)
            ):
                relay.close(now_ms)
                del self.relays[name]
        for name, (index, peers, home) in self.spans.items():
            live = self.hub.rooms.get(name)
            if live is None:
                continue
            found = self.relays.get(name)
            if found is None:
                found = self.relays[name] = RoomRelay(index, peers, live, self.send, home)
                log.info("room %s relayed with workers %s", name, sorted(peers))
            found.core.peers = peers
        self._by_index = {r.core.room: r for r in self.relays.values()}
        if self.directory is not None:
            every = {p for _, ps, _ in self.spans.values() for p in ps}
            self._peers = {str(relay_path(self.directory, p)): p for p in every}

    # ---- datagrams --------------------------------------------------------------------------

    def send(self, peer: int, frame: bytes) -> None:
        """One frame to a peer worker, after those still waiting for it; dropped (counted) when
        too many wait or the peer is gone."""
        if self._sock is None or self.directory is None:
            return
        path = self._paths.get(peer)
        if path is None:
            if not 0 <= peer < 64:  # settings.workers' bound
                return
            path = self._paths[peer] = str(relay_path(self.directory, peer))
        queued = self._queued.get(peer)
        if queued:
            if len(queued) < MAX_QUEUED:
                queued.append(frame)
            else:
                self.counts["relay_queue_full"] += 1
            return
        try:
            self._sock.sendto(frame, path)
            self.counts["relay_frames_out"] += 1
        except BlockingIOError:  # its queue is full: wait for it
            self._queued.setdefault(peer, deque()).append(frame)
            self._retry_soon()
        except OSError:  # the peer is gone
            self.counts["relay_send_failed"] += 1

    def _retry_soon(self) -> None:
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._send_queued)

    def _send_queued(self) -> None:
        self._retry = None
        sock, directory = self._sock, self.directory
        if sock is None or directory is None:
            return
        for peer, queued in list(self._queued.items()):
            path = str(relay_path(directory, peer))
            while queued:
                try:
                    sock.sendto(queued[0], path)
                except BlockingIOError:
                    break
                except OSError:
                    self.counts["relay_send_failed"] += len(queued)
                    queued.clear()
                    break
                queued.popleft()
                self.counts["relay_frames_out"] += 1
            if not queued:
                del self._queued[peer]
        if self._queued:
            self.counts["relay_retries"] += 1
            self._retry_soon()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        now_ms = clock_ms()
        for _ in range(READ_LIMIT):
            try:
                data, addr = sock.recvfrom(rf.MAX_FRAME_BYTES + 1)
            except OSError:  # BlockingIOError: read them all
                break
            try:
                self._frame(data, addr, now_ms)
            except Exception:  # nothing a peer sends stops the reading
                self.counts["relay_frame_failed"] += 1
                log.exception("a relay frame failed")

    def _frame(self, data: bytes, addr: Any, now_ms: int) -> None:
        peer = self._peers.get(addr) if isinstance(addr, str) else None
        if peer is None:
            self.counts["relay_stranger"] += 1
            return
        try:
            frame = rf.decode(data)
        except rf.RelayFrameError:
            self.counts["relay_bad_frame"] += 1
            return
        relay = self._by_index.get(frame.room)
        if relay is None:
            self.counts["relay_unknown_room"] += 1
            return
        self.counts["relay_frames_in"] += 1
        relay.on_frame(peer, frame, now_ms)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()  # called early (tests): still one timer
        self._timer = loop.call_later(TICK_S, self._tick)
        try:
            self._sync()
            now_ms = clock_ms()
            for relay in list(self.relays.values()):
                relay.tick(now_ms)
        except Exception:  # a timer's work must never stop the relay
            log.exception("relay tick failed")

    def close(self) -> None:
        for timer in (self._timer, self._retry):
            if timer is not None:
                timer.cancel()
        self._queued.clear()
        now_ms = clock_ms()
        for relay in self.relays.values():
            relay.close(now_ms)
        self.relays.clear()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            if self.directory is not None:
                with contextlib.suppress(OSError):
                    os.unlink(relay_path(self.directory, self.index))

    def health(self) -> dict[str, Any]:
        drops: Counter[str] = Counter(self.counts)
        for relay in self.relays.values():
            drops.update(relay.core.drops)
        rooms = {}
        for name, r in self.relays.items():
            applied = r.decisions is not None and r.decisions.applier.plan is not None
            rooms[name] = {
                "peers": sorted(r.core.peers),
                "authority": r.home < 0,
                "applies_plan": applied,
                "mirrored": sorted(r.mirrors),
                "relaying": sorted(str(k) for k in r._relaying),
            }
        return {
            "rooms": rooms,
            "delivered": sum(r.delivered for r in self.relays.values()),
            "counts": dict(drops),
        }

    @property
    def mirrored(self) -> int:
        """Other workers' participants in this worker's meetings (counted where connected)."""
        return sum(len(r.mirrors) for r in self.relays.values())


RELAY_LINKS = web.AppKey("relay_links", list)  # this worker's RelayLink, once the front spoke


def relay_health(app: web.Application) -> dict[str, Any]:
    """For /healthz: the relay's state ({} before the front spoke of one)."""
    links: list[RelayLink] = app.get(RELAY_LINKS, [])  # a worker's only
    return links[0].health() if links else {}


def mirrored(app: web.Application) -> int:
    links: list[RelayLink] = app.get(RELAY_LINKS, [])  # a worker's only
    return links[0].mirrored if links else 0


def member_rooms(app: web.Application) -> set[str]:
    """The rooms this worker holds as a relay member (another worker is their authority, whose
    meeting and report are the room's)."""
    links: list[RelayLink] = app.get(RELAY_LINKS, [])  # a worker's only
    return {name for name, span in links[0].spans.items() if span[2] >= 0} if links else set()


def add_relay_routes(app: web.Application, hub_key: web.AppKey[Hub]) -> None:
    """POST /relay (from the front: this worker's index, the directory, the shared rooms) and
    GET /relay; the link is made on the front's first word and closes with the app."""
    links: list[RelayLink] = []
    app[RELAY_LINKS] = links

    async def configure(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            index, directory = int(body["index"]), Path(body["directory"])
            rooms = dict(body["rooms"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text="index, directory and rooms expected") from None
        if not links:
            links.append(RelayLink(request.app[hub_key]))
        links[0].configure(index, directory, rooms)
        return web.json_response(links[0].health())

    async def health(request: web.Request) -> web.Response:
        return web.json_response(links[0].health() if links else {})

    async def close(app: web.Application) -> None:
        for link in links:
            link.close()

    app.router.add_post("/relay", configure)
    app.router.add_get("/relay", health)
    app.on_shutdown.append(close)
