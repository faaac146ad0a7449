"""Coming back: a dropped participant stays (reconnecting) for the grace period and returns as the
same person in the same state; one that never returns is removed with everything it held."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import psutil
import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from confsfu.tokens import make_token
from tests.conftest import SECRET

pytestmark = pytest.mark.loopback


def token(name: str, role: str = "participant") -> str:
    return make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def join(
    url: str, made: list[LoopbackPeer], name: str, tok: str, *, publish: bool = True
) -> LoopbackPeer:
    peer = LoopbackPeer(url, name=name, token=tok, keep_payloads=True)
    made.append(peer)
    await peer.join(publish=publish)
    if publish:
        frames = vp8_frames(320, 180, bitrate_bps=200_000)
        peer.start_media(opus_frames(variant=len(made)), frames, level_dbov=30, duration_s=40)
    return peer


def updates(peer: LoopbackPeer, pid: str) -> list[str]:
    return [
        m["participant"]["connection"]
        for m in peer.messages
        if m["type"] == "participant_updated" and m["participant"]["id"] == pid
    ]


def grid_mid_showing(peer: LoopbackPeer, name: str) -> str | None:
    return next(
        (mid for mid, s in peer.slots.items() if s["purpose"] == "grid" and s["name"] == name),
        None,
    )


async def test_a_dropped_participant_comes_back_in_its_tile_still_muted(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(reconnect_grace_s=20)
    chair = await join(server.ws_url, peers, "Los Angeles", token("Los Angeles", "chair"))
    seoul_token = token("Seoul")
    seoul = await join(server.ws_url, peers, "Seoul", seoul_token)
    await chair.wait_for(lambda: chair.streams_showing("video").get("Seoul") is not None, 15)
    mid = grid_mid_showing(chair, "Seoul")
    assert mid is not None
    pid = seoul.participant_id
    await chair.send({"type": "chair", "action": "mute", "participant_id": pid, "kind": "audio"})
    await seoul.wait_for(lambda: any(m.get("code") == "chair_muted" for m in seoul.messages))

    await seoul.close(goodbye=False)  # the network went: no leave message
    await chair.wait_for(lambda: "reconnecting" in updates(chair, pid), 10)
    assert grid_mid_showing(chair, "Seoul") == mid, "the tile stays while Seoul reconnects"

    back = await join(server.ws_url, peers, "Seoul", seoul_token)
    joined = next(m for m in back.messages if m["type"] == "joined")
    assert joined["resumed"] and back.participant_id == pid
    assert joined["you"]["chair_muted_audio"], "a reload does not lift the chair's mute"
    await chair.wait_for(lambda: updates(chair, pid)[-1:] == ["connected"], 10)
    before = {s.ssrc: s.packets for s in chair.received.values()}
    sent_video = back.sent.video_packets

    def seoul_video_again() -> bool:
        s = chair.streams_showing("video").get("Seoul")
        return s is not None and s.packets > before.get(s.ssrc, 0) + 20

    await chair.wait_for(seoul_video_again, 15)
    assert back.sent.video_packets > sent_video
    assert grid_mid_showing(chair, "Seoul") == mid, "same tile, no leave and join"
    assert not any(m["type"] == "participant_left" for m in chair.messages)
    joins = [m for m in chair.messages if m["type"] == "participant_joined"]
    assert [m["participant"]["id"] for m in joins] == [pid], "Seoul joined once"
    await asyncio.sleep(1.0)
    theirs = set(back.sent.audio_payloads)
    heard = [p for s in chair.received.values() if s.kind == "audio" for p in s.payloads]
    assert not theirs & set(heard), "the chair's mute holds after the comeback"


async def test_a_second_window_takes_over_and_the_first_is_told(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    tok = token("Quito")
    first = await join(server.ws_url, peers, "Quito", tok, publish=False)
    second = await join(server.ws_url, peers, "Quito", tok, publish=False)
    assert second.participant_id == first.participant_id
    await first.wait_for(lambda: first.closed, 10)
    byes = [m["reason"] for m in first.messages if m["type"] == "bye"]
    assert byes and "another window" in byes[0]
    live = server.app[HUB].rooms["council"]
    assert list(live.room.participants) == [second.participant_id]
    await second.send({"type": "raise_hand"})
    await second.wait_for(
        lambda: any(m["type"] == "room_state" and m["hands"] for m in second.messages)
    )


async def test_a_vanished_participant_is_removed_and_everything_it_held_released(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(heartbeat_s=1.0, reconnect_grace_s=2.0)
    process = psutil.Process()
    stayer = await join(server.ws_url, peers, "Accra", token("Accra"))
    live = server.app[HUB].rooms["council"]
    await asyncio.sleep(0.5)
    udp_before = len(process.net_connections(kind="udp"))
    tasks_before = len(asyncio.all_tasks())
    leaver = await join(server.ws_url, peers, "Quito", token("Quito"))
    await stayer.wait_for(lambda: stayer.streams_showing("video").get("Quito") is not None, 15)
    assert len(process.net_connections(kind="udp")) > udp_before

    start = asyncio.get_running_loop().time()
    await leaver.go_silent()  # stops answering pings and sending media; sockets stay open

    def left() -> bool:
        return any(
            m["type"] == "participant_left" and m["participant_id"] == leaver.participant_id
            for m in stayer.messages
        )

    await stayer.wait_for(left, timeout=15)
    took = asyncio.get_running_loop().time() - start
    assert took < 1.5 * 1.0 + 2.0 + 2.0, f"removed after {took:.1f} s"
    pid = leaver.participant_id
    await leaver.close(goodbye=False)  # the test's own end of the peer
    peers.remove(leaver)
    await asyncio.sleep(0.5)
    media = live.media
    assert pid not in live.room.participants and pid not in live.connections
    assert pid not in media.subscribers
    assert not [k for k in media.publishers if k[0] == pid]
    assert not [s for s in media._slots_by_key if s.startswith(f"{pid}/")]
    assert pid not in media._held
    assert not live.meeting.presence.is_away(pid)
    assert len(process.net_connections(kind="udp")) == udp_before, "its UDP sockets are closed"
    assert len(asyncio.all_tasks()) <= tasks_before + 2, "its tasks ended"
    assert stayer.streams_showing("video") == {} or "Quito" not in stayer.streams_showing("video")


async def guest_join(url: str, **fields: Any) -> tuple[aiohttp.ClientSession, Any, dict[str, Any]]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url)
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
    await ws.send_str(json.dumps({"type": "join", "room": "demo", **fields}))
    joined = json.loads((await ws.receive(timeout=10)).data)
    assert joined["type"] == "joined", joined
    return session, ws, joined


async def test_a_guest_comes_back_with_its_resume_key_and_only_with_it(server: Any) -> None:
    s1, ws1, first = await guest_join(server.ws_url, name="Nairobi")
    assert first["resume_key"] and not first["resumed"]
    await ws1.close()  # dropped without a goodbye
    await s1.close()
    s2, ws2, again = await guest_join(server.ws_url, name="Nairobi", resume=first["resume_key"])
    s3, ws3, other = await guest_join(server.ws_url, name="Nairobi", resume="not-a-real-key")
    try:
        assert again["resumed"] and again["participant_id"] == first["participant_id"]
        assert not other["resumed"] and other["participant_id"] != first["participant_id"]
        assert other["resume_key"] != first["resume_key"]
    finally:
        for ws, s in ((ws2, s2), (ws3, s3)):
            await ws.send_str(json.dumps({"type": "leave"}))
            await ws.close()
            await s.close()
