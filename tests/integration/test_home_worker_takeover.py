"""A room's home *worker* killed (SIGKILL) while the room spans two workers of one node
(docs/scale-out.md, "A home worker taken over"): the front promotes the member worker's
follower part to the meeting at once, from the snapshot it holds. The member's participants
are never closed and keep each other's media (the longest gap measured by payload origin,
printed); floor, hand and the chair's mute stay; a chat sent while the page was held reaches
the meeting; the dead worker's participants come back `resumed` as themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from tests.integration.test_member_authority import SECRET, chats, info, join, latest, token
from tests.integration.test_node_media import ArrivalGaps
from tests.integration.test_relay import health
from tests.integration.test_workers import serving, until

pytestmark = pytest.mark.loopback
GAP_BOUND_S = 2.5


@pytest.fixture
async def front2(tmp_path: Path) -> AsyncIterator[int]:
    """`confsfu serve --workers 2` with `worker_max_connections: 2`: its port."""
    config = {
        "token_secret": SECRET,
        "rooms": [{"name": "east"}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        "worker_max_connections": 2,
        "reconnect_grace_s": 60,
    }
    async with serving(tmp_path, config) as (port, _proc):
        yield port


def state(peer: LoopbackPeer) -> dict[str, object]:
    return latest(peer, "room_state")


async def test_a_home_worker_killed_is_taken_over_by_the_member(
    front2: int, peers: list[LoopbackPeer]
) -> None:
    port = front2
    tokens = {
        n: token(n, "chair" if n == "Osaka" else "participant")
        for n in ("Osaka", "Paris", "Kyiv", "Lima")
    }
    osaka = await join(port, peers, "Osaka", tokens["Osaka"])  # the home
    paris = await join(port, peers, "Paris", tokens["Paris"])  # the home (full now)
    kyiv = await join(port, peers, "Kyiv", tokens["Kyiv"], publish=True)  # the member
    lima = await join(port, peers, "Lima", tokens["Lima"], publish=True)  # the member
    ids = {p.name: p.participant_id for p in (osaka, paris, kyiv, lima)}
    body = await health(port)
    home = body["homes"]["east"]
    assert sorted(w["connections"] for w in body["workers"]) == [2, 2], body["workers"]

    # Kyiv and Lima (on the member) get each other's media.
    def got(peer: LoopbackPeer, name: str, kind: str, n: int) -> bool:
        stream = peer.streams_showing(kind).get(name)
        return stream is not None and stream.packets >= n

    for viewer, source in ((kyiv, lima), (lima, kyiv)):
        for kind in ("video", "audio"):
            check = lambda v=viewer, s=source.name, k=kind: got(v, s, k, 100)  # noqa: E731
            await viewer.wait_for(check, 90)

    # The floor to Kyiv, Lima's hand, Kyiv's microphone muted by the chair.
    await osaka.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
    await lima.send({"type": "raise_hand"})
    mute = {"type": "chair", "action": "mute", "participant_id": ids["Kyiv"], "kind": "audio"}
    await osaka.send(mute)

    def decided(peer: LoopbackPeer) -> bool:
        return (
            state(peer).get("floor_holder") == ids["Kyiv"]
            and state(peer).get("hands") == [ids["Lima"]]
            and info(peer, ids["Kyiv"]).get("chair_muted_audio") is True
        )

    for peer in (osaka, kyiv, lima):
        await peer.wait_for(lambda p=peer: decided(p), 30)  # type: ignore[misc]
    # A snapshot taken after this holds them; the chat makes sure one is taken.
    seen_ms = time.time() * 1000
    await osaka.send({"type": "chat_send", "text": "before"})
    await lima.wait_for(lambda: chats(lima) == ["before"], 30)

    async def snapshot_taken() -> bool:
        got_ms = (await health(port))["snapshots"].get("east", {}).get("taken_unix_ms", 0)
        return bool(got_ms > seen_ms)

    await until(snapshot_taken, 60, "the front holds a snapshot with floor, hand and mute")

    gaps = {kind: ArrivalGaps(kyiv, lima, kind) for kind in ("video", "audio")}
    killed = time.monotonic()
    os.kill(body["workers"][home]["pid"], signal.SIGKILL)

    async def moved() -> bool:
        return bool((await health(port))["homes"].get("east") == 1 - home)

    await until(moved, 30, "the member worker is the room's home")
    moved_s = time.monotonic() - killed
    # Sent while held (or just promoted): it reaches the meeting either way.
    await lima.send({"type": "chat_send", "text": "while held"})

    back = {}
    for peer in (osaka, paris):
        await peer.wait_for(lambda p=peer: p.closed, 30)  # type: ignore[misc]
        await peer.close(goodbye=False)
    for name in ("Osaka", "Paris"):
        back[name] = await join(port, peers, name, tokens[name])
        joined = latest(back[name], "joined")
        assert joined.get("resumed") is True, joined
        assert back[name].participant_id == ids[name], f"{name} came back as itself"
    back_s = time.monotonic() - killed
    osaka = back["Osaka"]
    await osaka.wait_for(lambda: decided(osaka), 30)
    for peer in (osaka, kyiv):
        await peer.wait_for(lambda p=peer: "while held" in chats(p), 30)  # type: ignore[misc]
    # The member answers the meeting now: Lima's hand lowered reaches everyone.
    await lima.send({"type": "lower_hand"})
    for peer in (osaka, kyiv):
        await peer.wait_for(lambda p=peer: state(p).get("hands") == [], 30)  # type: ignore[misc]
    await asyncio.sleep(2)  # media well after the takeover
    for watch in gaps.values():
        watch.stop()
    assert not kyiv.closed and not lima.closed, "the member's pages stayed connected"
    for peer in (kyiv, lima):  # joined once: never came again
        assert sum(m["type"] == "joined" for m in peer.messages) == 1, peer.name
    longest = {kind: watch.longest() for kind, watch in gaps.items()}
    before = gaps["video"].started - killed
    video, audio = longest["video"], longest["audio"]
    print(
        f"home worker killed: the member was the home after {moved_s:.1f} s, Osaka and Paris "
        f"back after {back_s:.1f} s; longest gap in Lima's media at Kyiv: video "
        f"{video[0]:.2f} s (from {video[1] + before:.1f} s), audio {audio[0]:.2f} s (from "
        f"{audio[1] + before:.1f} s); load {os.getloadavg()[0]:.1f}"
    )
    assert audio[0] < GAP_BOUND_S and video[0] < GAP_BOUND_S, longest
