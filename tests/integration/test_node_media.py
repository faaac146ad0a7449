"""A room spanning two nodes (`node_spill`): each node in a network namespace of its own, joined
by a veth, one deployment through a redis-server this test starts (tests/integration/nodes.py).
A join on node B for the room node A holds is served on B's worker as a relay member: its media
stays on B, the publishers' packets cross between the nodes over the sealed UDP relay, its
meeting messages go to A's home worker over the authority link carried by A's front. A publisher
on A reaches a subscriber on B byte for byte with continuous sequence numbers, a publisher on B
reaches A's subscriber, a hand raised on B shows at A's chair; a stranger without the member key
is refused at A's /member. Then node A is killed (SIGKILL): B takes the meeting over live
(scale/takeover.py): once A's lease lapsed B claims the room and its worker's follower part
becomes the meeting, so B's pages stay connected and keep each other's media (the longest gap is
printed, a loose bound asserted); A's participant comes back on B as itself; floor, hand, mute
and report intact. And a B that loses the claim race to a third node never promotes: its held
page is closed with 1012. Needs root, iproute2 and Debian's redis-server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aioice.ice
import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.conference.snapshot_model import parse
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import parse_rtp
from confsfu.scale import node_spans as ns
from confsfu.scale.directory import NODE_KEY, ROOM_KEY
from confsfu.server.aiortc_setup import configure_aiortc
from confsfu.server.front_redis import KEY
from confsfu.server.redis_resp import Redis
from tests.integration.nodes import (
    LEASE_S,
    PORT,
    Net,
    close_all,
    health,
    start_node,
    stop_node,
)
from tests.integration.test_relay import continuous
from tests.integration.test_worker_snapshot import info, latest
from tests.integration.test_workers import token, until

pytestmark = pytest.mark.loopback
RELAY_SECRET = "node-media-test-secret-0123456789abcdef"
TOKENS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def host_candidates() -> Any:
    """This test's peers reach the nodes at their namespaces' addresses, so they offer the
    machine's addresses: an in-process server that an earlier test made (create_app) leaves
    aiortc offering 127.0.0.1 only, process-wide. Put back as it was after."""
    saved = aioice.ice.get_host_addresses
    configure_aiortc("host")
    yield
    aioice.ice.get_host_addresses = saved


def spill(link_ip: str) -> dict[str, Any]:
    return {
        "node_spill": True,
        "relay_transport": "udp",
        "relay_secret": RELAY_SECRET,
        "relay_host": link_ip,  # the veth between the nodes: the relay crosses it
    }


async def join(
    ip: str, made: list[LoopbackPeer], name: str, role: str, publish: bool
) -> LoopbackPeer:
    deadline = time.monotonic() + 60
    while True:
        tok = TOKENS.setdefault(name, token("east", name, role))  # the same: resumed as itself
        peer = LoopbackPeer(f"ws://{ip}:{PORT}/ws", name=name, token=tok, keep_payloads=True)
        made.append(peer)
        try:
            await _join_or_closed(peer, publish)
            break
        except (TimeoutError, RuntimeError, ConnectionError) as exc:
            await peer.close(goodbye=False)
            assert time.monotonic() < deadline, f"{name} could not join at {ip}: {exc!r}"
            await asyncio.sleep(0.5)
    if publish:
        video = vp8_frames(320, 180, bitrate_bps=200_000)
        peer.start_media(opus_frames(variant=len(made)), video, level_dbov=30, duration_s=180)
    return peer


async def _join_or_closed(peer: LoopbackPeer, publish: bool) -> None:
    """`peer.join`, given up as soon as the node closes the connection (a page reconnects at
    once; the load generator's join would wait out its own timeout)."""
    joining = asyncio.ensure_future(peer.join(publish=publish))
    while not joining.done():
        if peer._ws is not None and peer._ws.closed:  # its join ends on its own (timeout)
            joining.add_done_callback(lambda task: task.cancelled() or task.exception())
            raise ConnectionError(f"closed: {peer._ws.close_code}")
        await asyncio.sleep(0.05)
    await joining


def _bare(payload: bytes, kind: str) -> bytes:
    return payload[parse_vp8(payload).size :] if kind == "video" else payload


def _payloads(peer: LoopbackPeer, kind: str) -> list[bytes]:
    return peer.sent.audio_payloads if kind == "audio" else peer.sent.video_payloads


def _sent(by_name: dict[str, set[bytes]], names: tuple[str, ...]) -> set[bytes]:
    return set().union(*(by_name[n] for n in names if n in by_name))


class ArrivalGaps:
    """The longest time `viewer` went without a packet of `source`'s `kind`, whichever slot
    carried it: each packet's arrival is noted (payload and time) from now until `stop`, and
    a packet is the source's if its payload is one the source sent (VP8 without its
    descriptor, which a slot rewrites)."""

    def __init__(self, viewer: LoopbackPeer, source: LoopbackPeer, kind: str) -> None:
        self.source, self.kind = source, kind
        self.arrivals: list[tuple[float, bytes]] = []
        self.started = time.monotonic()
        self.stopped = 0.0
        receive = viewer._receive

        def noted(data: bytes, arrival_ms: int) -> None:
            if not self.stopped and len(data) > 12:
                self.arrivals.append((time.monotonic(), data))
            receive(data, arrival_ms)

        viewer._receive = noted  # type: ignore[method-assign]

    def stop(self) -> None:
        self.stopped = time.monotonic()

    def longest(self) -> tuple[float, float]:
        """(the longest gap, when it began after `started`), in seconds."""
        sent = {_bare(x, self.kind) for x in _payloads(self.source, self.kind)}
        times = [self.started]
        for at, data in self.arrivals:
            try:
                payload = parse_rtp(data).payload
                if _bare(payload, self.kind) in sent:
                    times.append(at)
            except (ParseError, ValueError, IndexError):
                continue
        times.append(self.stopped)
        gap, begun = max((b - a, a) for a, b in itertools.pairwise(times))
        return gap, begun - self.started


def stranger_status(ip: str, key: str) -> int:
    request = urllib.request.Request(
        f"http://{ip}:{PORT}/member?room=east&pid=p1",
        headers={
            ns.MEMBER_KEY_HEADER: key,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def spilling_nodes(
    net: Net, redis: int, tmp_path: Path, settings: Callable[[str], dict[str, Any]] = spill
) -> tuple[asyncio.subprocess.Process, asyncio.subprocess.Process]:
    """Nodes A and B, each with `settings` for its link address (`node_spill` by default)."""
    node_a = await start_node(net.a, "node-a", net.link_a, redis, tmp_path, settings(net.link_a))
    node_b = await start_node(net.b, "node-b", net.link_b, redis, tmp_path, settings(net.link_b))
    return node_a, node_b


async def test_a_room_spans_two_nodes_and_its_media_is_relayed_between_them(
    nodes_net: Net, nodes_redis: int, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    net, redis = nodes_net, nodes_redis
    a_ip, b_ip = net.a.inner_ip, net.b.inner_ip
    TOKENS.clear()
    node_a, node_b = await spilling_nodes(net, redis, tmp_path)
    client = Redis(f"redis://127.0.0.1:{redis}/0")
    try:
        osaka = await join(a_ip, peers, "Osaka", "chair", publish=True)  # the authority: A
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-a"
        kyiv = await join(b_ip, peers, "Kyiv", "participant", publish=False)
        lima = await join(b_ip, peers, "Lima", "participant", publish=True)

        def got(peer: LoopbackPeer, name: str, kind: str, n: int) -> bool:
            stream = peer.streams_showing(kind).get(name)
            return stream is not None and stream.packets >= n

        for viewer, source in ((kyiv, osaka), (osaka, lima), (kyiv, lima)):
            for kind in ("video", "audio"):
                check = lambda v=viewer, s=source.name, k=kind: got(v, s, k, 150)  # noqa: E731
                await viewer.wait_for(check, 90)

        # Media on B stays on B: B counts its two, A its one; nothing piped.
        body_b, body_a = await health(b_ip), await health(a_ip)
        assert body_b["node"]["piped_out"] == 0 and body_b["node"]["held"] == []
        assert body_b["participants"] == 2 and body_a["participants"] == 1
        # B's worker is a relay member of A's room: it applies the authority's plan and holds
        # Osaka's mirror; A's home is the authority, knowing B's two over their links.
        member = body_b["workers"][0]["health"]["relay"]["rooms"]["east"]
        authority = body_a["workers"][0]["health"]["relay"]["rooms"]["east"]
        assert member["applies_plan"] and osaka.participant_id in member["mirrored"], member
        assert authority["authority"], authority
        assert {kyiv.participant_id, lima.participant_id} <= set(authority["remote"]), authority
        index_a = body_a["workers"][0]["health"]["relay"]["index"]
        index_b = body_b["workers"][0]["health"]["relay"]["index"]
        assert index_a != index_b and min(index_a, index_b) >= ns.STRIDE  # unique, by ordinal
        assert index_b == body_b["node"]["relay_ordinal"] * ns.STRIDE  # its worker 0

        # Each payload byte for byte one its slot showed as it arrived (a slot changes hands
        # as the speaker does; VP8 compared without its descriptor, whose picture ids a slot
        # rewrites), in order without a hole: across the nodes both ways, and on B. The slot
        # map comes over the WebSocket and the packets over UDP, so a packet may arrive just
        # before the map that shows its source: a label two packets either side counts too.
        senders = (osaka, lima)
        for viewer, source in ((kyiv, osaka), (osaka, lima), (kyiv, lima)):
            for kind in ("video", "audio"):
                by_name = {p.name: {_bare(x, kind) for x in _payloads(p, kind)} for p in senders}
                stream = viewer.streams_showing(kind)[source.name]
                labels = stream.labels
                first = next(lb for lb in labels if lb[0])
                strangers = [
                    (i, labels[max(0, i - 2) : i + 3])
                    for i, p in enumerate(stream.payloads)
                    if not any(
                        _bare(p, kind) in _sent(by_name, shown if shown[0] else first)
                        for shown in labels[max(0, i - 2) : i + 3]
                    )
                ]
                assert not strangers, f"{viewer.name}: {kind} of nobody: {strangers[:3]}"
                gaps = continuous(stream)
                assert gaps == [], f"{viewer.name} {kind} of {source.name}: steps {gaps[:5]}"

        # One meeting: a hand raised on B is in the chair's room_state on A; the chair on A
        # gives Kyiv (on B) the floor and mutes its microphone.
        ids = {p.name: p.participant_id for p in (osaka, kyiv, lima)}
        await lima.send({"type": "raise_hand"})

        def state(peer: LoopbackPeer) -> dict[str, Any]:
            return latest(peer, "room_state") or {}

        def hands(peer: LoopbackPeer) -> list[str]:
            return list(state(peer).get("hands", []))

        await osaka.wait_for(lambda: hands(osaka) == [ids["Lima"]], 30)
        await kyiv.wait_for(lambda: hands(kyiv) == [ids["Lima"]], 30)
        await osaka.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
        await kyiv.wait_for(lambda: state(kyiv).get("floor_holder") == ids["Kyiv"], 30)
        mute = {"type": "chair", "action": "mute", "participant_id": ids["Kyiv"], "kind": "audio"}
        await osaka.send(mute)
        await kyiv.wait_for(lambda: (info(kyiv, ids["Kyiv"]) or {}).get("chair_muted_audio"), 30)

        # A stranger without the deployment's member key is refused at A's /member.
        assert await asyncio.to_thread(stranger_status, a_ip, "") == 403
        assert await asyncio.to_thread(stranger_status, a_ip, "0" * 64) == 403

        # Node A killed (SIGKILL) once Redis holds its snapshot with the floor, hand and mute.
        # B takes the meeting over live: once A's lease lapsed B's front claims the room and
        # its worker's follower part becomes the meeting, so Kyiv and Lima stay connected and
        # keep each other's media; Osaka's page comes again on B, `resumed` as itself.
        async def in_redis() -> bool:
            text = await client.command("GET", KEY.format(room="east"))
            if not isinstance(text, bytes):
                return False
            snap = parse(text)
            muted = [p.chair_muted for p in snap.participants if p.pid == ids["Kyiv"]]
            return (
                [h.pid for h in snap.floor.hands] == [ids["Lima"]]
                and snap.floor.holder == ids["Kyiv"]
                and muted == [["audio"]]
            )

        await until(in_redis, 60, "Redis holds node A's snapshot with floor, hand and mute")
        gaps = {kind: ArrivalGaps(kyiv, lima, kind) for kind in ("video", "audio")}
        killed = time.monotonic()
        os.killpg(node_a.pid, signal.SIGKILL)
        await node_a.wait()

        async def claimed() -> bool:
            return await client.command("GET", ROOM_KEY.format(room="east")) == b"node-b"

        await until(claimed, 30, "node B claims the room once A's lease lapsed")
        claimed_s = time.monotonic() - killed
        await osaka.wait_for(lambda: osaka.closed, 30)
        await osaka.close(goodbye=False)
        osaka = await join(b_ip, peers, "Osaka", "chair", publish=True)
        assert (latest(osaka, "joined") or {}).get("resumed"), "Osaka came back resumed"
        assert osaka.participant_id == ids["Osaka"], "Osaka came back as the same participant"
        back_s = time.monotonic() - killed
        await osaka.wait_for(lambda: state(osaka).get("floor_holder") == ids["Kyiv"], 30)
        assert hands(osaka) == [ids["Lima"]], state(osaka)
        assert (info(osaka, ids["Kyiv"]) or {}).get("chair_muted_audio"), info(osaka, ids["Kyiv"])
        # B answers the meeting now: Lima's hand lowered on B reaches everyone.
        await lima.send({"type": "lower_hand"})
        for peer in (kyiv, osaka):
            await peer.wait_for(lambda peer=peer: hands(peer) == [], 30)  # type: ignore[misc]
        await asyncio.sleep(2)  # media on B well after the takeover
        for watch in gaps.values():
            watch.stop()
        assert not kyiv.closed and not lima.closed, "B's pages stayed connected"
        await osaka.wait_for(lambda: got(osaka, "Lima", "video", 1), 60)

        await osaka.send({"type": "get_report", "format": "json"})
        await osaka.wait_for(lambda: latest(osaka, "report") is not None, 30)
        report = json.loads((latest(osaka, "report") or {})["content"])
        assert [p["name"] for p in report["participants"]] == ["Osaka", "Kyiv", "Lima"]
        assert [a["action"] for a in report["chair_actions"]] == ["grant_floor", "mute_audio"]
        body_b = await health(b_ip)
        assert body_b["node"]["held"] == ["east"] and body_b["participants"] == 3
        longest = {kind: watch.longest() for kind, watch in gaps.items()}
        before = gaps["video"].started - killed  # (negative: the watch began before the kill)
        video, audio = longest["video"], longest["audio"]
        print(
            f"node A killed: B claimed the room after {claimed_s:.1f} s, Osaka back after "
            f"{back_s:.1f} s; longest gap in Lima's media at Kyiv: video {video[0]:.2f} s "
            f"(from {video[1] + before:.1f} s), audio {audio[0]:.2f} s (from "
            f"{audio[1] + before:.1f} s) (lease {LEASE_S} s)"
        )
        assert audio[0] < 2.5 and video[0] < 2.5, longest
    finally:
        await client.close()
        for peer in peers:
            await peer.close(goodbye=False)
        await stop_node(node_b)
        await stop_node(node_a)


async def test_a_node_that_loses_the_claim_race_closes_its_held_pages(
    nodes_net: Net, nodes_redis: int, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    """Node A killed, and a third node (played in Redis) claims the room first: B never
    promotes (two meetings), so its held page is closed with 1012 and comes again, as soon
    as B's front sees the claim is another node's (not at the hold's end)."""
    net, redis = nodes_net, nodes_redis
    a_ip, b_ip = net.a.inner_ip, net.b.inner_ip
    TOKENS.clear()
    node_a, node_b = await spilling_nodes(net, redis, tmp_path)
    client = Redis(f"redis://127.0.0.1:{redis}/0")
    try:
        osaka = await join(a_ip, peers, "Osaka", "chair", publish=True)
        kyiv = await join(b_ip, peers, "Kyiv", "participant", publish=False)
        await kyiv.wait_for(lambda: "Osaka" in kyiv.streams_showing("video"), 90)
        os.killpg(node_a.pid, signal.SIGKILL)
        await node_a.wait()
        # Node C: a live lease and the room's claim, before A's lease lapsed.
        await client.command("SET", NODE_KEY.format(node="node-c"), "192.0.2.9:9", "PX", 120_000)
        await client.command("SET", ROOM_KEY.format(room="east"), "node-c", "PX", 120_000)
        claimed = time.monotonic()
        await kyiv.wait_for(lambda: kyiv.closed, 60)
        assert kyiv._ws is not None and kyiv._ws.close_code == 1012, kyiv._ws
        print(f"B's held page closed {time.monotonic() - claimed:.1f} s after C's claim")
        log_b = (tmp_path / "node-b.log").read_text()
        assert "node node-c took it over" in log_b, "released, not at the hold's end"
        body_b = await health(b_ip)
        assert body_b["node"]["held"] == [], body_b["node"]  # B never took the room
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-c"
        await osaka.close(goodbye=False)
    finally:
        await close_all(client, peers, node_b, node_a)
