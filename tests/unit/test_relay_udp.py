"""A worker's relay link over UDP (server/relay_udp.py): frames sealed with the room's key go
both ways; a stranger's datagrams (valid frames, a wrong key), replays and garbage change
nothing and are counted; the addresses the front passes are parsed, bad ones skipped."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confsfu.rtp.packet import build_rtp
from confsfu.scale import relay_auth as ra
from confsfu.scale import relay_frame as rf
from confsfu.server.hub import Hub
from confsfu.server.live_room import LiveRoom
from confsfu.server.relay_link import RelayLink
from confsfu.server.relay_udp import UdpRelay, format_address, parse_address
from confsfu.settings import Settings

ROOM = 3
SECRET = "udp-relay-secret-0123456789abcdef0123"
KEY = ra.RoomKey(ra.room_key(SECRET.encode(), "east"))


class Peer:
    """Worker 1, by hand: a UDP socket sealing as sender 1 and opening what worker 0 sends."""

    def __init__(self, key: ra.RoomKey = KEY, sender: int = 1) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.sealer = ra.Sealer(sender, int(time.time()))
        self.opener = ra.Opener(sender, int(time.time()))
        self.key = key
        self.sent: list[bytes] = []

    @property
    def address(self) -> str:
        return format_address(*self.sock.getsockname())

    def send(self, link: RelayLink, frame: bytes) -> None:
        data = self.sealer.seal(self.key, frame, 0)
        self.sent.append(data)
        self.sock.sendto(data, parse_address(link.health()["address"]))

    def received(self) -> list[rf.RelayFrame]:
        out = []
        while True:
            try:
                data = self.sock.recv(ra.MAX_SEALED_BYTES)
            except BlockingIOError:
                return out
            opened = self.opener.open(data, {ROOM: self.key})
            assert opened is not None and opened[0] == 0, self.opener.counts
            out.append(rf.decode(opened[1]))


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[tuple[RelayLink, LiveRoom, Peer]]:
    """Worker 0's link over UDP holding room "east" (its home), and worker 1 by hand."""
    hub = Hub(Settings(relay_transport="udp", relay_secret=SECRET))
    live = hub.room("east")
    link = RelayLink(hub)
    peer = Peer()
    spans = {"east": {"index": ROOM, "workers": [0, 1]}}
    link.configure(0, tmp_path, spans, {"1": peer.address, "2": "nonsense", "x": "1.2.3.4:5"})
    try:
        yield link, live, peer
    finally:
        link.close()
        peer.sock.close()
        await hub.close()


def source_frame(index: int, kind: str) -> bytes:
    info = rf.SourceInfo("bob", "camera", kind, 1 if kind == "audio" else 0, "Bob")
    return rf.encode(rf.RelayFrame(rf.SOURCE, ROOM, index, 0, 0, rf.source_payload(info)))


async def until(check: object, what: str) -> None:
    for _ in range(250):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


async def test_frames_go_both_ways_sealed(linked: tuple[RelayLink, LiveRoom, Peer]) -> None:
    link, live, peer = linked
    assert link.health()["counts"]["relay_bad_address"] == 2
    peer.send(link, source_frame(1, "audio"))
    await until(lambda: ("bob", "camera") in live.media.publishers, "a relayed publisher")
    got: list[rf.RelayFrame] = []
    await until(lambda: got.extend(peer.received()) or any(f.kind == rf.LAYER_NEED for f in got),
                "a need, sealed by worker 0")  # fmt: skip
    packet = build_rtp(payload_type=111, sequence_number=9, timestamp=0, ssrc=77, payload=b"a")
    peer.send(link, rf.rtp(ROOM, 1, 0, packet))
    relay = link.relays["east"]
    await until(lambda: relay.delivered == 1, "the packet delivered")
    # The same datagram again (a replay) is refused.
    peer.sock.sendto(peer.sent[-1], parse_address(link.health()["address"]))
    await until(lambda: link.health()["counts"].get("auth_replayed") == 1, "the replay counted")
    assert relay.delivered == 1


async def test_a_stranger_with_a_wrong_key_changes_nothing(
    linked: tuple[RelayLink, LiveRoom, Peer],
) -> None:
    link, live, peer = linked
    wrong = ra.RoomKey(ra.room_key(b"another deployment's secret 0123", "east"))
    stranger = Peer(wrong, sender=1)  # claims to be worker 1, with valid frames
    try:
        stranger.send(link, source_frame(1, "audio"))
        stranger.send(link, source_frame(2, "video"))
        stranger.sock.sendto(source_frame(3, "video"), parse_address(link.health()["address"]))
        await until(lambda: sum(link.health()["counts"].values()) >= 5, "all three counted")
        counts = link.health()["counts"]
        assert counts["auth_bad_tag"] == 2 and counts["auth_bad_length"] == 1, counts
        assert counts.get("relay_frames_in", 0) == 0
        assert not link.relays["east"].core.remote_sources()
        assert ("bob", "camera") not in live.media.publishers
        assert "bob" not in live.meeting.room.participants
        # Worker 1 itself is still heard (its window was not moved by the stranger).
        peer.send(link, source_frame(1, "audio"))
        await until(lambda: ("bob", "camera") in live.media.publishers, "worker 1 heard")
    finally:
        stranger.sock.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=80)), max_size=20))
async def test_nothing_sent_raises(
    linked: tuple[RelayLink, LiveRoom, Peer], steps: list[tuple[bool, bytes]]
) -> None:
    link, _live, peer = linked
    udp = link._udp
    assert udp is not None
    for sealed, tail in steps:  # sealed or not, with the room's key: frames or garbage
        data = rf.rtp(ROOM, 1, 0, bytes([0x80]) + tail.ljust(11, b"\0")) if sealed else tail
        udp.receive(peer.sealer.seal(KEY, data, 0) if sealed else data, 0)
    link._tick()
    assert link.health()["counts"].get("relay_frame_failed", 0) == 0


ADDRESSES = [
    ("127.0.0.1:5000", ("127.0.0.1", 5000)),
    ("[::1]:5000", ("::1", 5000)),
    ("::1:5000", ("::1", 5000)),
]


@pytest.mark.parametrize(("text", "address"), ADDRESSES)
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address
    assert parse_address(format_address(*address)) == address


@pytest.mark.parametrize("text", ["", "127.0.0.1", "host:5000", "127.0.0.1:0", "1.2.3.4:x"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_udp_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="relay_secret"):
        Settings(relay_transport="udp")
    assert "udp-relay-secret" not in repr(Settings(relay_transport="udp", relay_secret=SECRET))


def free_udp_ports(n: int) -> int:
    """A port p with p .. p + n - 1 free on 127.0.0.1 just now (the test binds them next)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + n > 65535:
            continue
        held = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no free ports")


async def test_worker_i_binds_relay_port_plus_i(tmp_path: Path) -> None:
    base = free_udp_ports(3)
    hub = Hub(Settings(relay_transport="udp", relay_secret=SECRET, relay_port=base))
    link = RelayLink(hub)
    try:
        link.configure(2, tmp_path, {})
        assert link.health()["address"] == f"127.0.0.1:{base + 2}"
    finally:
        link.close()
        await hub.close()


async def test_over_ipv6() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    got: list[tuple[int, bytes]] = []
    now = int(time.time())
    a = UdpRelay(0, SECRET.encode(), lambda p, f, n: None, now)
    b = UdpRelay(1, SECRET.encode(), lambda p, f, n: got.append((p, f)), now)
    try:
        a.open("::1", 0)
        b.open("::1", 0)
        assert b.address.startswith("[::1]:")
        for relay in (a, b):
            relay.set_rooms({"east": ROOM})
        a.set_peers({"1": b.address})
        frame = source_frame(1, "video")
        a.send(1, frame)
        await until(lambda: got == [(0, frame)], "the frame over IPv6")
    finally:
        a.close()
        b.close()
