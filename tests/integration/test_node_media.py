"""A room spanning two nodes (`node_spill`): each node in a network namespace of its own, joined
by a veth, one deployment through a redis-server this test starts (tests/integration/nodes.py).
A join on node B for the room node A holds is served on B's worker as a relay member: its media
stays on B, the publishers' packets cross between the nodes over the sealed UDP relay, its
meeting messages go to A's home worker over the authority link carried by A's front. A
publisher on A reaches a subscriber on B byte for byte with continuous sequence numbers, a
publisher on B reaches A's subscriber, a hand raised on B shows at A's chair; a stranger
without the member key is refused at A's /member. Then node A is killed (SIGKILL): B's pages
are closed with 1012, everyone comes back on B (which claims the room once A's lease lapsed)
as themselves, the hand still raised; how long B's media stopped is printed. Needs root,
iproute2 and Debian's redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aioice.ice
import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.conference.snapshot_model import parse
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.scale import node_spans as ns
from confsfu.scale.directory import ROOM_KEY
from confsfu.server.aiortc_setup import configure_aiortc
from confsfu.server.front_redis import KEY
from confsfu.server.redis_resp import Redis
from tests.integration.nodes import LEASE_S, PORT, Net, close_all, health, start_node
from tests.integration.test_relay import continuous
from tests.integration.test_worker_snapshot import latest
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


async def test_a_room_spans_two_nodes_and_its_media_is_relayed_between_them(
    nodes_net: Net, nodes_redis: int, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    net, redis = nodes_net, nodes_redis
    a_ip, b_ip = net.a.inner_ip, net.b.inner_ip
    TOKENS.clear()
    node_a = await start_node(net.a, "node-a", net.link_a, redis, tmp_path, spill(net.link_a))
    node_b = await start_node(net.b, "node-b", net.link_b, redis, tmp_path, spill(net.link_b))
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

        # One meeting: a hand raised on B is in the chair's room_state on A.
        ids = {p.name: p.participant_id for p in (osaka, kyiv, lima)}
        await lima.send({"type": "raise_hand"})

        def hands(peer: LoopbackPeer) -> list[str]:
            return list((latest(peer, "room_state") or {}).get("hands", []))

        await osaka.wait_for(lambda: hands(osaka) == [ids["Lima"]], 30)
        await kyiv.wait_for(lambda: hands(kyiv) == [ids["Lima"]], 30)

        # A stranger without the deployment's member key is refused at A's /member.
        assert await asyncio.to_thread(stranger_status, a_ip, "") == 403
        assert await asyncio.to_thread(stranger_status, a_ip, "0" * 64) == 403

        # Node A killed (SIGKILL) once Redis holds its snapshot with the hand: B's members'
        # links end, B closes their pages with 1012; A's page drops. Everyone comes again on
        # B: joins there are tried at A until its lease lapses, then B claims the room and
        # carries the meeting on from the snapshot. How long B's participants' media stops
        # is measured (printed; the test asserts no figure).
        async def hand_in_redis() -> bool:
            text = await client.command("GET", KEY.format(room="east"))
            return isinstance(text, bytes) and [h.pid for h in parse(text).floor.hands] == [
                ids["Lima"]
            ]

        await until(hand_in_redis, 60, "Redis holds node A's snapshot with the hand")
        killed = time.monotonic()
        os.killpg(node_a.pid, signal.SIGKILL)
        await node_a.wait()
        for peer in (kyiv, lima):  # on B: closed by B when the authority went
            await peer.wait_for(lambda peer=peer: peer.closed, 30)  # type: ignore[misc]
            assert peer._ws is not None and peer._ws.close_code == 1012, peer.name
        closed_s = time.monotonic() - killed
        for peer in (osaka, kyiv, lima):
            await peer.wait_for(lambda peer=peer: peer.closed, 30)  # type: ignore[misc]
            await peer.close(goodbye=False)
        back = {
            "Lima": await join(b_ip, peers, "Lima", "participant", publish=True),
            "Kyiv": await join(b_ip, peers, "Kyiv", "participant", publish=False),
            "Osaka": await join(b_ip, peers, "Osaka", "chair", publish=True),
        }
        for name, peer in back.items():
            assert (latest(peer, "joined") or {}).get("resumed"), name
            assert peer.participant_id == ids[name], "came back as the same participant"
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-b"
        kyiv = back["Kyiv"]
        await kyiv.wait_for(lambda: got(kyiv, "Lima", "video", 1), 90)
        media_s = time.monotonic() - killed
        await kyiv.wait_for(lambda: hands(kyiv) == [ids["Lima"]], 30)
        print(f"node A killed: B's pages closed after {closed_s:.1f} s, Lima's video at Kyiv "
              f"again after {media_s:.1f} s (lease {LEASE_S} s)")  # fmt: skip
    finally:
        await close_all(client, peers, node_b, node_a)
