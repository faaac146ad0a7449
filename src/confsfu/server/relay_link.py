"""A worker's relay socket (docs/scale-out.md, "The relay"): a Unix datagram socket at
`<directory>/relay<index>.sock`, the front's directory, over which the worker exchanges relay
frames with the other workers of the rooms it shares with them; or, with `relay_transport:
udp`, a UDP socket whose datagrams are authenticated (`server/relay_udp.py`). The front says
which rooms span which workers, and where the workers' sockets are (POST /relay); each such
room the worker holds gets a `RoomRelay`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from confsfu.scale import relay_frame as rf
from confsfu.scale.node_spans import STRIDE
from confsfu.server.clock import clock_ms
from confsfu.server.hub import Hub
from confsfu.server.relay import RoomRelay
from confsfu.server.relay_udp import UdpRelay

log = logging.getLogger(__name__)
TICK_S = 0.1  # needs, announcements and expiry; a new need waits at most this long
READ_LIMIT = 256  # datagrams read per wake-up: the loop's other work is not held up
SOCKET_BUFFER_BYTES = 4 << 20
MAX_ROOMS = 1024
# A Unix datagram socket's queue holds net.unix.max_dgram_qlen datagrams (10 by default): a
# peer busy for a moment refuses more. What it refuses waits here, in order, and is sent again
# RETRY_S later; beyond MAX_QUEUED_BYTES in all, frames are dropped (NACKs recover media).
MAX_QUEUED_BYTES = 8 << 20
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
        # by peer: datagrams its socket refused, each with the count of frames in it
        self._queued: dict[int, deque[tuple[bytes, int]]] = {}
        self._queued_bytes = 0
        # by peer: this turn's frames and their bundle's size so far (a one-item list)
        self._pending: dict[int, tuple[list[bytes], list[int]]] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._udp: UdpRelay | None = None  # relay_transport: udp

    # ---- the front's word -------------------------------------------------------------------

    def configure(
        self,
        index: int,
        directory: Path,
        rooms: dict[str, Any],
        peers: dict[str, Any] | None = None,
    ) -> None:
        """This worker is `index`; `rooms` maps each room it shares to its front index and its
        workers (this one among them); `peers`, over UDP, each worker's `host:port`."""
        if self._sock is None and self._udp is None:
            self.index, self.directory = index, directory
            self._open()
        if self._udp is not None and peers is not None:
            self._udp.set_peers(peers)
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
        loop = asyncio.get_running_loop()
        settings = self.hub.settings
        secret = settings.relay_secret
        if settings.relay_transport == "udp" and secret is not None:
            udp = UdpRelay(self.index, secret.get_secret_value().encode(), self._take, _now_s())
            udp.open(
                str(settings.relay_host),
                settings.relay_port and settings.relay_port + self.index % STRIDE,
            )
            self._udp = udp
            self._timer = loop.call_later(TICK_S, self._tick)
            return
        path = relay_path(self.directory, self.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        sock.bind(str(path))
        sock.setblocking(False)
        self._sock = sock
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
        if self._udp is not None:
            self._udp.set_rooms({name: span[0] for name, span in self.spans.items()})
        if self.directory is not None:
            every = {p for _, ps, _ in self.spans.values() for p in ps}
            self._peers = {str(relay_path(self.directory, p)): p for p in every}

    # ---- datagrams --------------------------------------------------------------------------

    def send(self, peer: int, frame: bytes) -> None:
        """One frame to a peer worker: bundled with the others it gets in this turn of the event
        loop and sent at the turn's end (at once when the bundle is full)."""
        if self._udp is not None:
            self._udp.send(peer, frame)
            return
        if self._sock is None or self.directory is None or not 0 <= peer < 64:  # workers' bound
            return
        size = rf.bundled_size(frame)
        pending = self._pending.get(peer)
        if pending is None:
            pending = self._pending[peer] = ([], [len(rf.BUNDLE_MAGIC)])
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        elif pending[1][0] + size > rf.MAX_BUNDLE_BYTES:
            self._send_datagram(peer, pending[0])
            pending[0].clear()
            pending[1][0] = len(rf.BUNDLE_MAGIC)
        pending[0].append(frame)
        pending[1][0] += size

    def _flush(self) -> None:
        """The frames of this turn of the loop, one datagram per peer."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()  # when called before its turn (close)
            self._flush_handle = None
        pending, self._pending = self._pending, {}
        for peer, (frames, _) in pending.items():
            if frames:
                self._send_datagram(peer, frames)

    def _send_datagram(self, peer: int, frames: list[bytes]) -> None:
        """After those still waiting for the peer; dropped (counted) when too much waits or the
        peer is gone."""
        if self._sock is None or self.directory is None:
            return
        data = frames[0] if len(frames) == 1 else rf.bundle(frames)
        path = self._paths.get(peer)
        if path is None:
            path = self._paths[peer] = str(relay_path(self.directory, peer))
        queued = self._queued.get(peer)
        if queued:
            if self._queued_bytes + len(data) <= MAX_QUEUED_BYTES:
                queued.append((data, len(frames)))
                self._queued_bytes += len(data)
            else:
                self.counts["relay_queue_full"] += len(frames)
            return
        try:
            self._sock.sendto(data, path)
            self.counts["relay_frames_out"] += len(frames)
            self.counts["relay_datagrams_out"] += 1
        except BlockingIOError:  # its queue is full: wait for it
            self._queued.setdefault(peer, deque()).append((data, len(frames)))
            self._queued_bytes += len(data)
            self._retry_soon()
        except OSError:  # the peer is gone
            self.counts["relay_send_failed"] += len(frames)

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
                data, count = queued[0]
                try:
                    sock.sendto(data, path)
                except BlockingIOError:
                    break
                except OSError:
                    self.counts["relay_send_failed"] += sum(c for _, c in queued)
                    self._queued_bytes -= sum(len(d) for d, _ in queued)
                    queued.clear()
                    break
                queued.popleft()
                self._queued_bytes -= len(data)
                self.counts["relay_frames_out"] += count
                self.counts["relay_datagrams_out"] += 1
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
                data, addr = sock.recvfrom(rf.MAX_BUNDLE_BYTES + 1)
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
            frames = rf.unbundle(data)
        except rf.RelayFrameError:
            self.counts["relay_bad_frame"] += 1
            return
        for frame in frames:
            self._take(peer, frame, now_ms)

    def _take(self, peer: int, data: bytes, now_ms: int) -> None:
        """A frame from a peer worker (known by its Unix socket's path, or authenticated)."""
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
            if self._udp is not None:
                self._udp.tick(_now_s())
            now_ms = clock_ms()
            for relay in list(self.relays.values()):
                relay.tick(now_ms)
        except Exception:  # a timer's work must never stop the relay
            log.exception("relay tick failed")

    def close(self) -> None:
        now_ms = clock_ms()
        for relay in self.relays.values():
            relay.close(now_ms)
        self.relays.clear()
        self._flush()  # what this turn had for the peers
        for timer in (self._timer, self._retry):
            if timer is not None:
                timer.cancel()
        self._queued.clear()
        self._queued_bytes = 0
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            if self.directory is not None:
                with contextlib.suppress(OSError):
                    os.unlink(relay_path(self.directory, self.index))

    def event_counts(self) -> Counter[str]:
        """Frames in and out, and what was dropped or refused and why."""
        drops: Counter[str] = Counter(self.counts)
        if self._udp is not None:
            drops.update(self._udp.health())
        for relay in self.relays.values():
            drops.update(relay.core.drops)
        return drops

    def health(self) -> dict[str, Any]:
        drops = self.event_counts()
        rooms = {}
        for name, r in self.relays.items():
            applied = r.decisions is not None and r.decisions.applier.plan is not None
            rooms[name] = {
                "peers": sorted(r.core.peers),
                "authority": r.home < 0,
                "applies_plan": applied,
                "mirrored": sorted(r.mirrors),
                "remote": sorted(r.live.remote),  # spoken for by a member (authority_link.py)
                "relaying": sorted(str(k) for k in r._relaying),
            }
        return {
            "index": self.index,
            "address": self._udp.address if self._udp is not None else None,
            "rooms": rooms,
            "delivered": sum(r.delivered for r in self.relays.values()),
            "counts": dict(drops),
        }

    @property
    def mirrored(self) -> int:
        """Other workers' participants in this worker's meetings (counted where connected)."""
        return sum(len(r.mirrors) for r in self.relays.values())


def _now_s() -> int:
    """The wall clock's seconds: a UDP relay counter's high half (`scale/relay_auth.py`)."""
    return int(time.time())


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


class RelayCollector(Collector):
    """/metrics: `confsfu_relay_events_total{event}`, the link's counts (none before the front
    spoke of a relay)."""

    def __init__(self, links: list[RelayLink]) -> None:
        self._links = links

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        for link in self._links:
            for event, value in sorted(link.event_counts().items()):
                family.add_metric([event], value)
        return [family]

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "confsfu_relay_events",
            "The relay between workers: frames in and out, dropped and refused ones, by event.",
            labels=["event"],
        )


def add_relay_routes(
    app: web.Application, hub_key: web.AppKey[Hub], registry: CollectorRegistry | None = None
) -> None:
    """POST /relay (from the front: this worker's index, the directory, the shared rooms) and
    GET /relay; the link is made on the front's first word and closes with the app. Its counts
    go to `registry` (/metrics)."""
    links: list[RelayLink] = []
    app[RELAY_LINKS] = links
    if registry is not None:
        registry.register(RelayCollector(links))

    async def configure(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            index, directory = int(body["index"]), Path(body["directory"])
            rooms = dict(body["rooms"])
            peers = dict(body["peers"]) if body.get("peers") is not None else None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise web.HTTPBadRequest(text="index, directory and rooms expected") from None
        if not links:
            links.append(RelayLink(request.app[hub_key]))
        links[0].configure(index, directory, rooms, peers)
        return web.json_response(links[0].health())

    async def health(request: web.Request) -> web.Response:
        return web.json_response(links[0].health() if links else {})

    async def close(app: web.Application) -> None:
        for link in links:
            link.close()

    app.router.add_post("/relay", configure)
    app.router.add_get("/relay", health)
    app.on_shutdown.append(close)
