"""An audience through the real server: two speakers, listeners who receive the stage and the
room's audio byte for byte, publish nothing, are nobody in the speakers' lists, and whom the
chair counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from confsfu.settings import RoomSettings
from confsfu.tokens import make_token
from tests.conftest import SECRET
from tests.integration.listeners import assert_told_of_none, counts, join_listeners, refused_as_full

pytestmark = pytest.mark.loopback

ROOM = RoomSettings(name="council", watch_link=True, max_listeners=3)


def token(name: str, role: str) -> str:
    return make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def speaker(url: str, made: list[LoopbackPeer], name: str, role: str) -> LoopbackPeer:
    peer = LoopbackPeer(url, name=name, token=token(name, role), keep_payloads=True)
    made.append(peer)
    await peer.join()
    video = vp8_frames(320, 180, bitrate_bps=200_000)
    peer.start_media(opus_frames(variant=len(made)), video, level_dbov=30, duration_s=40)
    return peer


def received(peer: LoopbackPeer, name: str, kind: str, purpose: str) -> int:
    stream = peer.streams_showing(kind, purpose).get(name)
    return stream.packets if stream is not None else 0


def stage_of(peer: LoopbackPeer) -> dict[str, Any]:
    return next(s for s in peer.slots.values() if s["purpose"] == "stage")


async def test_listeners_watch_the_stage_hear_the_room_and_do_nothing_else(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(rooms=[ROOM])
    url = server.ws_url
    chair = await speaker(url, peers, "Los Angeles", "chair")
    seoul = await speaker(url, peers, "Seoul", "participant")
    grant = {"type": "chair", "action": "grant_floor", "participant_id": seoul.participant_id}
    await chair.send(grant)
    listeners = await join_listeners(url, "council", token("Accra", "listener"), peers)
    ids = {listener.participant_id for listener in listeners}

    # A fourth is one too many (max_listeners: 3); the speakers' limit is not theirs.
    extra = LoopbackPeer(url, name="late", room="council", watch=True)
    peers.append(extra)
    await refused_as_full(extra)

    sent = {p.name: p.sent for p in (chair, seoul)}
    for listener in listeners:
        # Subscribe only: the audio slots and the stage, no grid.
        assert sorted(s["purpose"] for s in listener.slots.values()) == ["audio"] * 3 + ["stage"]
        await listener.wait_for(lambda li=listener: received(li, "Seoul", "video", "stage") >= 40)
        await listener.wait_for(lambda li=listener: received(li, "Seoul", "audio", "audio") >= 40)
        await listener.wait_for(
            lambda li=listener: received(li, "Los Angeles", "audio", "audio") >= 40
        )
        video = listener.streams_showing("video", "stage")["Seoul"]
        # The stage starts on a keyframe: the first packet forwarded (the lowest sequence
        # number; on a busy machine it may arrive after the next, or by RTX).
        base = video.seqs[0]
        first = min(range(len(video.seqs)), key=lambda i: (video.seqs[i] - base + 32768) % 65536)
        assert parse_vp8(video.payloads[first]).is_keyframe, (first, video.seqs[:5])
        assert set(video.payloads) <= set(sent["Seoul"].video_payloads)  # byte for byte
        for name in ("Seoul", "Los Angeles"):
            audio = listener.streams_showing("audio", "audio")[name]
            assert set(audio.payloads) <= set(sent[name].audio_payloads)
        assert stage_of(listener)["name"] == "Seoul"

    # The chair sees how many are watching; a participant is told no such thing.
    await chair.wait_for(lambda: counts(chair)[-1:] == [3])
    assert not counts(seoul)

    # A listener's requests are refused, and nothing of the meeting changes.
    first = listeners[0]
    requests: list[dict[str, Any]] = [
        {"type": "publish_offer", "sdp": "v=0\r\n", "purpose": "camera"},
        {"type": "publish_offer", "sdp": "v=0\r\n", "purpose": "screen"},
        {"type": "raise_hand"},
        {"type": "media_state", "audio": True, "video": True},
        {"type": "chat_send", "text": "hello"},
        {"type": "chair", "action": "grant_floor", "participant_id": first.participant_id},
        {"type": "get_report"},
    ]
    for request in requests:
        await first.send(request)
    await first.wait_for(lambda: len(first.errors) == len(requests))
    assert [(e["code"], e["in_reply_to"], e["fatal"]) for e in first.errors] == [
        ("forbidden", r["type"], False) for r in requests
    ]
    assert "a listener may not publish" in first.errors[0]["message"]
    assert first.publish_pc is None  # nothing was set up to receive from it
    state = [m for m in chair.messages if m["type"] == "room_state"][-1]
    assert (state["floor_holder"], state["hands"]) == (seoul.participant_id, [])
    assert not any(m["type"] == "chat" for m in chair.messages)

    # Nobody in the room is told of a listener: not at join, not in any list or slot.
    for p in (chair, seoul):
        assert_told_of_none(p, ids)
    # ... and a listener is told of nobody either: it knows who it sees by its slots.
    joined = next(m for m in first.messages if m["type"] == "joined")
    assert (joined["role"], joined["participants"]) == ("listener", [])
    assert not any(m["type"].startswith("participant_") for m in first.messages)

    # One leaving lowers the count (and makes room for another).
    await first.close()
    peers.remove(first)
    await chair.wait_for(lambda: counts(chair)[-1:] == [2], timeout=5)
    await extra.close()
    peers.remove(extra)
    again = LoopbackPeer(url, name="late", room="council", watch=True)
    peers.append(again)
    await again.join()
    await chair.wait_for(lambda: counts(chair)[-1:] == [3], timeout=5)
    rooms = list(server.app[HUB].rooms.values())
    assert [(len(r.listeners), len(r.room.participants)) for r in rooms] == [(3, 2)]


async def test_a_room_without_a_watch_link_admits_listeners_only_by_token(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(rooms=[RoomSettings(name="council", max_listeners=1)])
    by_link = LoopbackPeer(server.ws_url, name="x", room="council", watch=True)
    peers.append(by_link)
    with pytest.raises(RuntimeError, match="only with an invitation token"):
        await by_link.join()
    assert by_link.errors[-1]["code"] == "no_watch_link"
    invited = LoopbackPeer(server.ws_url, name="Accra", token=token("Accra", "listener"))
    peers.append(invited)
    await invited.join()
    assert invited.participant_id


async def test_a_light_listener_counts_sealed_packets(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    """The load generator's light listener takes SRTP unopened: the header's sequence numbers
    run on, and no payload is the publisher's (it was never decrypted)."""
    server = await server_factory(rooms=[ROOM])
    seoul = await speaker(server.ws_url, peers, "Seoul", "chair")
    light = LoopbackPeer(
        server.ws_url, name="w", room="council", watch=True, sealed=True, keep_payloads=True
    )
    peers.append(light)
    await light.join()
    await light.wait_for(lambda: received(light, "Seoul", "video", "stage") >= 60, timeout=15)
    video = light.streams_showing("video", "stage")["Seoul"]
    steps = [(b - a) % 65536 for a, b in zip(video.seqs, video.seqs[1:], strict=False)]
    assert sum(steps) < len(steps) + 5  # next to no gaps on loopback
    assert set(video.payloads).isdisjoint(seoul.sent.video_payloads)
    assert light.subscribe_pc is not None and light.subscribe_pc.sealed_rtp
