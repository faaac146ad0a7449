"""A worker's relay socket over UDP (docs/scale-out.md, "The relay over UDP"): relay frames
sealed with the room's key (`scale/relay_auth.py`) so they can cross a network. The IO shell
of `RelayLink` when `relay_transport: udp`; the Unix socket stays the default.

A peer is known by the sender id its datagrams authenticate, not by the address they come
from (a node behind NAT or with several addresses answers from another): a datagram from
anyone is opened, and only an authentic fresh one for a room this worker shares is taken.
UDP does not refuse a datagram the way a full Unix socket does: what the kernel cannot take is
dropped and counted (NACKs recover media), so there is no retry queue here."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confsfu.scale import relay_auth as ra
from confsfu.server.clock import clock_ms

log = logging.getLogger(__name__)
READ_LIMIT = 256  # datagrams read per wake-up: the loop's other work is not held up
SOCKET_BUFFER_BYTES = 4 << 20
MAX_PEERS = 1024
MAX_KEYS = 4096  # derived room keys kept (a room's key is derived once)
_ROOM = struct.Struct(">I")  # a frame's room index, at `relay_auth.ROOM_AT`
Take = Callable[[int, bytes, int], None]  # (peer, frame, now_ms), guarded by the caller


def parse_address(text: str) -> tuple[str, int]:
    """`host:port` or `[v6 host]:port` to (host, port); ValueError when it is not one (the
    host an IP literal: nothing is resolved on the relay's path)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        raise ValueError(f"not host:port: {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range: {text!r}")
    return str(ipaddress.ip_address(host)), number


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class UdpRelay:
    """This worker's UDP relay socket: seals what it sends, opens what it reads."""

    def __init__(self, index: int, secret: bytes, take: Take, now_s: int) -> None:
        self.index = index
        self._secret = secret
        self._take = take
        self.sealer = ra.Sealer(index, now_s)
        self.opener = ra.Opener(index, now_s)
        self.counts: Counter[str] = Counter()
        self.address = ""  # host:port, once bound
        self._sock: socket.socket | None = None
        self._peers: dict[int, tuple[str, int]] = {}  # by index
        self._keys: dict[int, ra.RoomKey] = {}  # by room index, the rooms shared
        self._derived: dict[str, ra.RoomKey] = {}  # by room name

    def open(self, host: str, port: int) -> None:
        """Bind `host:port` (port 0: any free one) and start reading."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.address = format_address(host, sock.getsockname()[1])
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        log.info("relay over UDP on %s", self.address)

    def set_peers(self, addresses: Mapping[Any, Any]) -> None:
        """The other workers' addresses, by index (the front's map; bad entries skipped)."""
        peers = {}
        for index, text in list(addresses.items())[:MAX_PEERS]:
            try:
                peer = int(index)
                if peer != self.index:
                    peers[peer] = parse_address(str(text))
            except ValueError:
                self.counts["relay_bad_address"] += 1
        self._peers = peers

    def set_rooms(self, rooms: Mapping[str, int]) -> None:
        """The rooms shared (name -> room index): whose keys seal and open."""
        if len(self._derived) > MAX_KEYS:
            self._derived.clear()
        keys = {}
        for name, index in rooms.items():
            key = self._derived.get(name)
            if key is None:
                key = self._derived[name] = ra.RoomKey(ra.room_key(self._secret, name))
            keys[index] = key
        self._keys = keys

    def tick(self, now_s: int) -> None:
        self.sealer.tick(now_s)
        self.opener.tick(now_s)

    def send(self, peer: int, frame: bytes) -> None:
        """One frame to a peer, sealed with its room's key; dropped (counted) when the peer's
        address or the room's key is unknown, or the kernel takes no more."""
        sock = self._sock
        address = self._peers.get(peer)
        key = self._keys.get(_ROOM.unpack_from(frame, ra.ROOM_AT)[0])
        if sock is None or address is None or key is None:
            self.counts["relay_no_address" if key is not None else "relay_no_key"] += 1
            return
        try:
            sock.sendto(self.sealer.seal(key, frame, peer), address)
            self.counts["relay_frames_out"] += 1
        except BlockingIOError:  # the send buffer is full
            self.counts["relay_send_dropped"] += 1
        except OSError:
            self.counts["relay_send_failed"] += 1

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        now_ms = clock_ms()
        for _ in range(READ_LIMIT):
            try:
                data = sock.recv(ra.MAX_SEALED_BYTES + 1)
            except OSError:  # BlockingIOError: read them all (an ICMP error: read on)
                break
            self.receive(data, now_ms)

    def receive(self, data: bytes, now_ms: int) -> None:
        """One datagram: to `take` when authentic and fresh; else counted. Never raises."""
        try:
            opened = self.opener.open(data, self._keys)
            if opened is not None:
                self._take(opened[0], opened[1], now_ms)
        except Exception:  # nothing a peer sends stops the reading
            self.counts["relay_frame_failed"] += 1
            log.exception("a relay datagram failed")

    def health(self) -> dict[str, int]:
        counts = Counter(self.counts)
        counts.update(self.opener.counts)
        return dict(counts)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
