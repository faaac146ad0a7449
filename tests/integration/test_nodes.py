"""Two `confsfu serve` nodes, each in a network namespace of its own (joined to this host by a
veth pair each, and to each other by a third), one deployment through a redis-server this test
starts (tests/integration/nodes.py): participants joining on either node are in one meeting
(the room's authority node, piped to from the other); node A killed (SIGKILL), its lease
lapses, everyone comes back on node B as themselves, the meeting (floor, hand, mute, report)
carried on from the snapshot in Redis; then A started again and B stopped in order (SIGTERM):
everyone back on A, as themselves. Needs root, iproute2 and Debian's redis-server (fails, as
CI has them)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from confsfu.conference.snapshot_model import parse
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.scale.directory import NODE_KEY, ROOM_KEY
from confsfu.server.front_redis import KEY
from confsfu.server.redis_resp import Redis
from tests.integration.nodes import PORT, Net, close_all, health, start_node, stop_node
from tests.integration.test_worker_snapshot import info, latest
from tests.integration.test_workers import token, until

pytestmark = pytest.mark.loopback


async def join(ip: str, made: list[LoopbackPeer], name: str, tok: str) -> LoopbackPeer:
    """Joined through the node at `ip` (tried again while the directory changes hands)."""
    deadline = time.monotonic() + 60
    while True:
        peer = LoopbackPeer(f"ws://{ip}:{PORT}/ws", name=name, token=tok)
        made.append(peer)
        try:
            await peer.join(publish=False)
            return peer
        except (TimeoutError, RuntimeError, ConnectionError) as exc:
            await peer.close(goodbye=False)
            assert time.monotonic() < deadline, f"{name} could not join at {ip}: {exc!r}"
            await asyncio.sleep(1)


async def test_two_nodes_hold_one_meeting_and_the_survivor_carries_it_on(
    nodes_net: Net, nodes_redis: int, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    net, redis = nodes_net, nodes_redis
    a_ip, b_ip = net.a.inner_ip, net.b.inner_ip
    node_a = await start_node(net.a, "node-a", net.link_a, redis, tmp_path)
    node_b = await start_node(net.b, "node-b", net.link_b, redis, tmp_path)
    client = Redis(f"redis://127.0.0.1:{redis}/0")
    try:
        tokens = {
            "Osaka": token("east", "Osaka", "chair"),
            "Kyiv": token("east", "Kyiv"),
            "Lima": token("east", "Lima"),
        }
        where = {"Osaka": a_ip, "Kyiv": b_ip, "Lima": b_ip}  # the chair on A, the others on B
        first = {name: await join(where[name], peers, name, tok) for name, tok in tokens.items()}
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-a"
        chair, lima = first["Osaka"], first["Lima"]
        ids = {name: peer.participant_id for name, peer in first.items()}
        joined = latest(lima, "joined") or {}
        assert {p["id"] for p in joined["participants"]} >= {ids["Osaka"], ids["Kyiv"]}
        for peer in first.values():  # one participant list, whichever node each joined on
            await peer.wait_for(lambda p=peer: all(info(p, i) for i in ids.values()), 30)  # type: ignore[misc]
        body_b = await health(b_ip)
        assert body_b["node"]["piped_out"] == 2 and body_b["node"]["held"] == []
        assert body_b["participants"] == 0  # B's worker holds nobody: the room is A's
        assert (await health(a_ip))["participants"] == 3

        def state(peer: LoopbackPeer) -> dict[str, Any]:
            return latest(peer, "room_state") or {}

        await chair.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
        await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
        await lima.send({"type": "raise_hand"})
        await chair.wait_for(lambda: state(chair).get("hands") == [ids["Lima"]], 30)
        await chair.send(
            {"type": "chair", "action": "mute", "participant_id": ids["Lima"], "kind": "audio"}
        )
        await chair.wait_for(lambda: (info(chair, ids["Lima"]) or {}).get("chair_muted_audio"), 30)
        await lima.wait_for(lambda: (info(lima, ids["Lima"]) or {}).get("chair_muted_audio"), 30)

        async def in_redis() -> bool:
            text = await client.command("GET", KEY.format(room="east"))
            if not isinstance(text, bytes):
                return False
            snap = parse(text)
            muted = [p.chair_muted for p in snap.participants if p.pid == ids["Lima"]]
            hands = [h.pid for h in snap.floor.hands]
            return (
                snap.floor.holder == ids["Kyiv"] and hands == [ids["Lima"]] and muted == [["audio"]]
            )

        await until(in_redis, 60, "Redis holds node A's latest snapshot of the meeting")

        os.killpg(node_a.pid, signal.SIGKILL)  # node A: its front and its worker
        await node_a.wait()
        for name, peer in first.items():
            await peer.wait_for(lambda peer=peer: peer.closed, 30)  # type: ignore[misc]
            if where[name] == b_ip:  # piped through B: told the service restarts
                assert peer._ws is not None and peer._ws.close_code == 1012, name
            await peer.close(goodbye=False)

        async def lapsed() -> bool:
            return await client.command("EXISTS", NODE_KEY.format(node="node-a")) == 0

        await until(lapsed, 30, "node A's lease lapses")
        back = {name: await join(b_ip, peers, name, tok) for name, tok in tokens.items()}
        for name, peer in back.items():
            joined = latest(peer, "joined") or {}
            assert joined.get("resumed"), (name, joined)
            assert peer.participant_id == ids[name], "came back as the same participant"
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-b"
        chair = back["Osaka"]
        await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
        assert state(chair)["hands"] == [ids["Lima"]]
        lima_now = info(back["Kyiv"], ids["Lima"]) or {}
        assert lima_now.get("chair_muted_audio") and lima_now.get("hand_raised"), lima_now

        await chair.send({"type": "get_report", "format": "json"})
        await chair.wait_for(lambda: latest(chair, "report") is not None, 30)
        report = json.loads((latest(chair, "report") or {})["content"])
        assert [p["name"] for p in report["participants"]] == ["Osaka", "Kyiv", "Lima"]
        assert all(p["left"] is None for p in report["participants"])
        assert [a["action"] for a in report["chair_actions"]] == ["grant_floor", "mute_audio"]
        assert [g["holder"] for g in report["floor_grants"]] == [ids["Kyiv"]]

        body_b = await health(b_ip)
        assert body_b["node"]["held"] == ["east"] and body_b["participants"] == 3

        # node A again (the same node_id); node B stopped in order (an upgrade): it writes its
        # last snapshots, releases its rooms and deletes its lease, so A takes them at once
        node_a = await start_node(net.a, "node-a", net.link_a, redis, tmp_path)
        await stop_node(node_b)
        assert await client.command("EXISTS", ROOM_KEY.format(room="east")) == 0
        assert await client.command("EXISTS", NODE_KEY.format(node="node-b")) == 0
        for peer in back.values():
            await peer.wait_for(lambda peer=peer: peer.closed, 30)  # type: ignore[misc]
            await peer.close(goodbye=False)
        again = {name: await join(a_ip, peers, name, tok) for name, tok in tokens.items()}
        for name, peer in again.items():
            assert (latest(peer, "joined") or {}).get("resumed") and peer.participant_id == ids[
                name
            ]
        chair = again["Osaka"]
        await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
        assert state(chair)["hands"] == [ids["Lima"]]
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-a"
    finally:
        await close_all(client, peers, node_b, node_a)
