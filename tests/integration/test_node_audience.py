"""An audience spread over nodes (`node_spill`; the namespaces of tests/integration/nodes.py,
the joins of test_node_media.py): node A holds the room, a listener joining on node B is served
on B's worker as a relay member, not piped to A: it gets the speaker's video and audio over the
sealed UDP relay between the nodes, the room state A's meeting decides (the floor), and A's
chair counts it. Needs root, iproute2 and Debian's redis-server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from tests.integration.listeners import refused_as_removed
from tests.integration.nodes import Net, health, stop_node
from tests.integration.test_node_media import (  # noqa: F401 (a fixture)
    PORT,
    TOKENS,
    host_candidates,
    join,
    spill,
    spilling_nodes,
)

pytestmark = pytest.mark.loopback


def audience(link_ip: str) -> dict[str, Any]:
    return {**spill(link_ip), "rooms": [{"name": "east", "max_listeners": 4}]}


def counts(chair: LoopbackPeer) -> list[int]:
    return [m["listeners"] for m in chair.messages if m["type"] == "audience"]


def floor_holder(peer: LoopbackPeer) -> Any:
    states = [m for m in peer.messages if m["type"] == "room_state"]
    return states[-1]["floor_holder"] if states else None


async def test_a_listener_on_another_node_is_served_there(
    nodes_net: Net, nodes_redis: int, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    net, redis = nodes_net, nodes_redis
    a_ip, b_ip = net.a.inner_ip, net.b.inner_ip
    TOKENS.clear()
    node_a, node_b = await spilling_nodes(net, redis, tmp_path, audience)
    try:
        osaka = await join(a_ip, peers, "Osaka", "chair", publish=True)  # the authority: A
        accra = await join(b_ip, peers, "Accra", "listener", publish=False)
        assert accra.watch

        for kind, purpose in (("video", "stage"), ("audio", "audio")):
            check = lambda k=kind, p=purpose: (  # noqa: E731
                (s := accra.streams_showing(k, p).get("Osaka")) is not None and s.packets >= 100
            )
            await accra.wait_for(check, 90)

        # Served on B, not piped; counted by A's chair.
        body_b, body_a = await health(b_ip), await health(a_ip)
        assert body_b["node"]["piped_out"] == 0 and body_b["node"]["held"] == []
        assert body_b["listeners"] == 1 and body_a["listeners"] == 0, (body_a, body_b)
        await osaka.wait_for(lambda: counts(osaka)[-1:] == [1], 30)

        # The room state A's meeting decides reaches B's listener.
        await osaka.send(
            {"type": "chair", "action": "grant_floor", "participant_id": osaka.participant_id}
        )
        await accra.wait_for(lambda: floor_holder(accra) == osaka.participant_id, 30)
        assert not any(m["type"] == "participant_joined" for m in accra.messages)

        # A participant the chair removes on A cannot come back as a listener on B (the
        # removal reaches B at its next relay tick: until then a join there is let in).
        kyiv = await join(a_ip, peers, "Kyiv", "participant", publish=False)
        await osaka.send(
            {"type": "chair", "action": "remove", "participant_id": kyiv.participant_id}
        )
        await kyiv.wait_for(lambda: kyiv.closed, 30)
        await refused_as_removed(f"ws://{b_ip}:{PORT}/ws", TOKENS["Kyiv"], peers, "on B")

        # The chair ends the meeting on A: B's listener is told and closed, as A's would be.
        await osaka.send({"type": "chair", "action": "end"})
        await accra.wait_for(lambda: accra.closed, 30)
        byes = [m["reason"] for m in accra.messages if m["type"] == "bye"]
        assert byes == ["the chair ended the meeting"], accra.messages[-3:]
    finally:
        await stop_node(node_b)
        await stop_node(node_a)
