"""`confsfu serve --workers 2` with one connection per worker: a room spills onto the second
worker, which gets the publisher's media over the relay; subscribers on both workers receive
its payloads byte for byte, with continuous sequence numbers. Over the Unix sockets (the
default) and over UDP (`relay_transport: udp`), where a stranger's datagrams are refused."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.loadgen.receiving import ReceivedStream
from confsfu.scale import relay_auth as ra
from confsfu.scale import relay_frame as rf
from confsfu.server.relay_udp import parse_address
from confsfu.tokens import make_token
from tests.integration.test_workers import serving

pytestmark = pytest.mark.loopback
SECRET = "relay-test-secret-0123456789abcdef0"
RELAY_SECRET = "relay-udp-test-secret-0123456789abcdef"


@pytest.fixture
async def front(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """`confsfu serve --workers 2` with `worker_max_connections: 1`: its port. The relay's
    transport: the test's parameter ("unix" unless it says)."""
    transport = getattr(request, "param", "unix")
    udp = {"relay_transport": "udp", "relay_secret": RELAY_SECRET} if transport == "udp" else {}
    config = {
        **udp,
        "token_secret": SECRET,
        "rooms": [{"name": "east"}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        "worker_max_connections": 1,
    }
    async with serving(tmp_path, config) as (port, _proc):
        yield port


async def health(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    def get() -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=10) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body

    return await asyncio.to_thread(get)


async def join(port: int, made: list[LoopbackPeer], name: str, publish: bool) -> LoopbackPeer:
    tok = make_token(SECRET, room="east", name=name, role="participant", now_s=int(time.time()))
    peer = LoopbackPeer(f"ws://127.0.0.1:{port}/ws", name=name, token=tok, keep_payloads=True)
    made.append(peer)
    await peer.join(publish=publish)
    if publish:
        video = vp8_frames(320, 180, bitrate_bps=200_000)
        peer.start_media(opus_frames(variant=len(made)), video, level_dbov=30, duration_s=120)
    return peer


def continuous(stream: ReceivedStream) -> list[int]:
    """The steps between the sequence numbers as they arrived, other than +1 (RTX repairs and
    the first packet aside)."""
    seqs = [s for s in stream.seqs if s not in set(stream.recovered)]
    return [(b - a) % 65536 for a, b in itertools.pairwise(seqs) if (b - a) % 65536 != 1]


@pytest.mark.parametrize("front", ["unix", "udp"], indirect=True)
async def test_a_room_spills_and_its_media_is_relayed(
    front: int, peers: list[LoopbackPeer], request: pytest.FixtureRequest
) -> None:
    lima = await join(front, peers, "Lima", publish=True)
    oslo = await join(front, peers, "Oslo", publish=False)  # the home is full: worker 1
    pune = await join(front, peers, "Pune", publish=False)  # both full: the home again
    body = await health(front)
    home = body["homes"]["east"]
    connections = sorted(w["connections"] for w in body["workers"])
    assert connections == [1, 2], body["workers"]
    assert body["workers"][1 - home]["connections"] == 1

    def got(peer: LoopbackPeer, kind: str, n: int) -> bool:
        stream = peer.streams_showing(kind).get("Lima")
        return stream is not None and stream.packets >= n

    for peer in (oslo, pune):
        await peer.wait_for(lambda peer=peer: got(peer, "video", 150), 60)  # type: ignore[misc]
        await peer.wait_for(lambda peer=peer: got(peer, "audio", 150), 60)  # type: ignore[misc]

    # One decision point: the home is the room's authority and knows Oslo (the member's
    # link speaks for it there); the member applies the home's plan and holds Lima (whose
    # media it relays).
    def relay_state(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        rooms = [(w["health"] or {}).get("relay", {}).get("rooms", {}) for w in body["workers"]]
        if not all("east" in r for r in rooms):
            return None
        return rooms[home]["east"], rooms[1 - home]["east"]

    deadline = time.monotonic() + 60
    while True:
        body = await health(front)
        state = relay_state(body)
        if state is not None:
            authority, member = state
            if (
                authority["authority"]
                and oslo.participant_id in authority["remote"]
                and member["applies_plan"]
                and lima.participant_id in member["mirrored"]
                and authority["relaying"]
            ):
                break
        assert time.monotonic() < deadline, body["workers"]
        await asyncio.sleep(0.5)
    assert body["participants"] == 3, "each counted once, where connected"

    sent = {"video": set(lima.sent.video_payloads), "audio": set(lima.sent.audio_payloads)}
    for peer in (oslo, pune):
        for kind in ("video", "audio"):
            stream = peer.streams_showing(kind)["Lima"]
            strangers = [p for p in stream.payloads if p not in sent[kind]]
            assert not strangers, f"{peer.name}: {len(strangers)} {kind} payloads not Lima's"
            assert continuous(stream) == [], f"{peer.name} {kind}: gaps {continuous(stream)[:5]}"
    # The relayed worker's subscriber got the same packets as the home's while both received.
    for kind in ("video", "audio"):
        sent_list = lima.sent.video_payloads if kind == "video" else lima.sent.audio_payloads
        there = positions(oslo.streams_showing(kind)["Lima"].payloads, sent_list)
        here = positions(pune.streams_showing(kind)["Lima"].payloads, sent_list)
        low, high = max(there[0], here[0]), min(there[-1], here[-1])
        both = [i for i in there if low <= i <= high]
        assert len(both) > 100 and both == [i for i in here if low <= i <= high], kind
    udp = request.node.callspec.params["front"] == "udp"
    assert all(bool(w["health"]["relay"]["address"]) == udp for w in body["workers"])
    if udp:
        await strangers_refused(front)


async def strangers_refused(port: int) -> None:
    """Over UDP: a stranger sends each worker's relay port valid frames for the room, sealed
    with a key of the wrong secret (as worker 1 and 0), and a bare frame; each worker counts
    them refused and takes none of them in."""
    body = await health(port)
    relays = [w["health"]["relay"] for w in body["workers"]]
    before = [r["counts"].get("auth_bad_tag", 0) for r in relays]
    index = 1  # the room's place among the configured rooms
    key = ra.RoomKey(ra.room_key(b"not this deployment's secret 0123", "east"))
    info = rf.source_payload(rf.SourceInfo("mallory", "camera", "video", 0, "Mallory"))
    packet = bytes([0x80, 96]) + bytes(10) + b"forged"
    frames = [rf.encode(rf.RelayFrame(rf.SOURCE, index, 900, 0, 0, info)),
              rf.rtp(index, 900, 0, packet)]  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        for worker, relay in enumerate(relays):
            sealer = ra.Sealer(1 - worker, int(time.time()) + 1)
            address = parse_address(relay["address"])
            for frame in frames:
                stranger.sendto(sealer.seal(key, frame, worker), address)
            stranger.sendto(frames[0], address)
    deadline = time.monotonic() + 60
    while True:
        body = await health(port)
        relays = [w["health"]["relay"] for w in body["workers"]]
        counts = [
            r["counts"].get("auth_bad_tag", 0) - b for r, b in zip(relays, before, strict=True)
        ]
        if all(c >= 2 for c in counts):
            break
        assert time.monotonic() < deadline, relays
        await asyncio.sleep(0.5)
    for relay in relays:
        assert "mallory" not in relay["rooms"]["east"]["mirrored"], relay
    assert body["participants"] == 3

    # The front's /metrics has each worker's relay counts.
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return str(r.read().decode())

    text = await asyncio.to_thread(get)
    refused = [
        line
        for line in text.splitlines()
        if line.startswith("confsfu_relay_events_total{") and 'event="auth_bad_tag"' in line
    ]
    assert len(refused) == 2, refused  # one per worker


async def test_both_ways_a_member_s_publisher_reaches_the_home(
    front: int, peers: list[LoopbackPeer]
) -> None:
    lima = await join(front, peers, "Lima", publish=True)  # the home
    oslo = await join(front, peers, "Oslo", publish=True)  # the member
    pune = await join(front, peers, "Pune", publish=False)  # the home again
    body = await health(front)
    assert sorted(w["connections"] for w in body["workers"]) == [1, 2], body["workers"]

    def got(peer: LoopbackPeer, name: str, kind: str, n: int) -> bool:
        stream = peer.streams_showing(kind).get(name)
        return stream is not None and stream.packets >= n

    pairs = [(lima, oslo), (pune, oslo), (oslo, lima)]
    for viewer, source in pairs:
        for kind in ("video", "audio"):
            check = lambda v=viewer, s=source.name, k=kind: got(v, s, k, 150)  # noqa: E731
            await viewer.wait_for(check, 60)
    by_name = {p.name: p for p in (lima, oslo)}

    def sent_by(names: tuple[str, ...], kind: str) -> set[bytes]:
        media = [by_name[n].sent for n in names if n in by_name]
        if kind == "audio":
            return {p for m in media for p in m.audio_payloads}
        return {frame(p) for m in media for p in m.video_payloads}

    def frame(payload: bytes) -> bytes:
        """A VP8 payload without its descriptor: a slot that changed hands rewrites the
        picture ids there (so its pictures number on), never the frame."""
        return payload[parse_vp8(payload).size :]

    for viewer, source in pairs:
        for kind in ("video", "audio"):
            # A slot changes hands as the speaker does: each payload is checked against whom
            # the slot showed as it arrived (its first holder before the slot map came).
            stream = viewer.streams_showing(kind)[source.name]
            first = next(lb for lb in stream.labels if lb[0])
            strangers = [
                p
                for p, shown in zip(stream.payloads, stream.labels, strict=True)
                if (frame(p) if kind == "video" else p)
                not in sent_by(shown if shown[0] else first, kind)
            ]
            assert not strangers, f"{viewer.name}: {len(strangers)} {kind} payloads of nobody"
            gaps = continuous(stream)
            assert gaps == [], f"{viewer.name} {kind} of {source.name}: steps {gaps[:5]}"


def positions(received: list[bytes], sent: list[bytes]) -> list[int]:
    """Where each received payload is in what was sent, in order (the earliest after the
    previous one's)."""
    out: list[int] = []
    for payload in received:
        out.append(sent.index(payload, out[-1] + 1 if out else 0))
    return out
