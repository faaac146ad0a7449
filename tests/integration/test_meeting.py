"""The chaired meeting through loopback peers: mutes stop media at the server, the floor takes
the stage, and a subscriber hears only the few loudest of many open microphones."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.conftest import SECRET

pytestmark = pytest.mark.loopback


def token(name: str, role: str = "participant") -> str:
    return make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def join(
    url: str,
    made: list[LoopbackPeer],
    name: str,
    *,
    role: str = "participant",
    variant: int = 0,
    level_dbov: int = 30,
    video: bool = True,
    publish: bool = True,
) -> LoopbackPeer:
    peer = LoopbackPeer(url, name=name, token=token(name, role), keep_payloads=True)
    made.append(peer)
    await peer.join(publish=publish)
    if publish:
        frames = vp8_frames(320, 180, bitrate_bps=200_000) if video else []
        peer.start_media(opus_frames(variant=variant), frames, level_dbov=level_dbov, duration_s=40)
    return peer


def heard_from(listener: LoopbackPeer, talker: LoopbackPeer, since: int = 0) -> int:
    """How many of `talker`'s audio payloads reached `listener` (after the first `since`)."""
    theirs = set(talker.sent.audio_payloads)
    return sum(
        1
        for s in listener.received.values()
        if s.kind == "audio"
        for p in s.payloads[since:]
        if p in theirs
    )


def audio_payload_counts(listener: LoopbackPeer) -> list[int]:
    return [len(s.payloads) for s in listener.received.values() if s.kind == "audio"]


def audio_since(listener: LoopbackPeer, marks: list[int]) -> list[list[bytes]]:
    """Per audio stream, the payloads received after `marks` (audio_payload_counts then)."""
    streams = [s for s in listener.received.values() if s.kind == "audio"]
    return [s.payloads[n:] for s, n in zip(streams, marks + [0] * len(streams), strict=False)]


def heard_since(listener: LoopbackPeer, talker: LoopbackPeer, marks: list[int]) -> int:
    """How many of `talker`'s audio payloads reached `listener` after `marks`."""
    theirs = set(talker.sent.audio_payloads)
    return sum(1 for stream in audio_since(listener, marks) for p in stream if p in theirs)


async def test_chair_mute_stops_forwarding_whatever_the_client_sends(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    chair = await join(server.ws_url, peers, "Los Angeles", role="chair", variant=0)
    seoul = await join(server.ws_url, peers, "Seoul", variant=1)
    lima = await join(server.ws_url, peers, "Lima", variant=2)
    for listener in (chair, lima):
        await listener.wait_for(lambda lst=listener: heard_from(lst, seoul) > 20, timeout=15)

    await chair.send(
        {"type": "chair", "action": "mute", "participant_id": seoul.participant_id, "kind": "audio"}
    )
    await seoul.wait_for(
        lambda: any(m["type"] == "notice" and m["code"] == "chair_muted" for m in seoul.messages)
    )
    # The server stops Seoul's audio before it sends the notice, so nothing Seoul sends from
    # now on may reach anyone; what it sent before may still be in flight (no sleep to guess).
    marks = {p.name: audio_payload_counts(p) for p in (chair, lima)}
    sent_before = seoul.sent.audio_packets
    seoul_at_notice = len(seoul.sent.audio_payloads)
    await asyncio.sleep(1.5)
    seoul_after_notice = set(seoul.sent.audio_payloads[seoul_at_notice:])
    assert seoul.sent.audio_packets > sent_before + 40, "Seoul's client kept sending"
    for listener in (chair, lima):
        streams = [s for s in listener.received.values() if s.kind == "audio"]
        later = [
            p for s, n in zip(streams, marks[listener.name], strict=False) for p in s.payloads[n:]
        ]
        later += [p for s in streams[len(marks[listener.name]) :] for p in s.payloads]
        assert not set(later) & seoul_after_notice, f"{listener.name} still hears Seoul"
        assert set(later) & set(
            lima.sent.audio_payloads if listener is chair else chair.sent.audio_payloads
        )
    # ... stopped where the packets come in, not only by the slots no longer carrying Seoul.
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/healthz") as r:
        assert (await r.json())["drops"].get("chair_muted", 0) > 40

    # Only the chair can lift it; a participant's attempt is refused.
    await seoul.send(
        {
            "type": "chair",
            "action": "unmute",
            "participant_id": seoul.participant_id,
            "kind": "audio",
        }
    )
    await seoul.wait_for(lambda: any(m.get("code") == "forbidden" for m in seoul.errors))
    await chair.send(
        {
            "type": "chair",
            "action": "unmute",
            "participant_id": seoul.participant_id,
            "kind": "audio",
        }
    )
    marks = audio_payload_counts(lima)
    await lima.wait_for(lambda: heard_since(lima, seoul, marks) > 20)  # heard again


async def test_floor_holder_is_on_every_stage_and_always_heard(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    chair = await join(server.ws_url, peers, "Los Angeles", role="chair", variant=0)
    seoul = await join(server.ws_url, peers, "Seoul", variant=1, level_dbov=127)  # silent
    lima = await join(server.ws_url, peers, "Lima", variant=2)
    await chair.send(
        {
            "type": "chair",
            "action": "grant_floor",
            "participant_id": seoul.participant_id,
            "limit_s": 60,
        }
    )
    for viewer in (chair, lima):

        def on_stage(v: LoopbackPeer = viewer) -> bool:
            stage = [s for s in v.slots.values() if s["purpose"] == "stage"]
            if not stage or stage[0]["name"] != "Seoul":
                return False
            stream = next((r for r in v.received.values() if r.mid == stage[0]["mid"]), None)
            return stream is not None and stream.packets > 20

        await viewer.wait_for(on_stage, timeout=15)
        # Seoul is silent, yet as floor holder holds an audio slot: its packets arrive.
        await viewer.wait_for(lambda v=viewer: heard_from(v, seoul) > 10, timeout=10)
    state = [m for m in lima.messages if m["type"] == "room_state"][-1]
    assert state["floor_holder"] == seoul.participant_id and state["stage_kind"] == "floor"
    assert state["floor_until_ms"] > state["server_time_ms"]


async def test_many_open_microphones_only_the_loudest_few_are_forwarded(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(slots={"audio": 3, "video": 2})
    listener = await join(server.ws_url, peers, "Listener", publish=False)
    talkers = []
    for i in range(10):
        # Talker 0 is the loudest (-10 dBov), talker 9 the quietest (-55 dBov).
        talkers.append(
            await join(
                server.ws_url, peers, f"City {i}", variant=i, level_dbov=10 + 5 * i, video=False
            )
        )
    expected = {"City 0", "City 1", "City 2"}
    heard: set[str] = set()
    for _ in range(10):  # until the ranking has settled; never more than 3 streams at once
        mark = audio_payload_counts(listener)
        await asyncio.sleep(1.0)
        recent = {p for stream in audio_since(listener, mark) for p in stream}
        heard = {t.name for t in talkers if recent & set(t.sent.audio_payloads)}
        # Three slots; a talker heard keeps its slot: no more than three talkers in a second.
        assert len(heard) <= 3, heard
        if heard == expected:
            break
    assert heard == expected, heard


async def test_grid_pages_through_everyone_without_renegotiation(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(slots={"audio": 2, "video": 2})
    viewer = await join(server.ws_url, peers, "Viewer", publish=False)
    names = [f"City {i}" for i in range(5)]
    for i, name in enumerate(names):
        await join(server.ws_url, peers, name, variant=i, level_dbov=127)  # all silent

    def grid() -> list[str]:
        return sorted(
            s["name"] for s in viewer.slots.values() if s["purpose"] == "grid" and s["name"]
        )

    offers = sum(1 for m in viewer.messages if m["type"] == "subscribe_offer")
    for page, expected in ((0, names[0:2]), (1, names[2:4]), (2, names[4:5]), (0, names[0:2])):
        await viewer.send({"type": "view_page", "page": page})
        await viewer.wait_for(lambda e=expected: grid() == e, timeout=10)
    assert sum(1 for m in viewer.messages if m["type"] == "subscribe_offer") == offers


async def test_a_pin_puts_that_participant_on_the_pinners_stage_only(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    chair = await join(server.ws_url, peers, "Los Angeles", role="chair", variant=0)
    seoul = await join(server.ws_url, peers, "Seoul", variant=1)
    lima = await join(server.ws_url, peers, "Lima", variant=2)
    await chair.send(
        {"type": "chair", "action": "grant_floor", "participant_id": seoul.participant_id}
    )

    def stage_of(v: LoopbackPeer) -> str | None:
        stage = [s for s in v.slots.values() if s["purpose"] == "stage"]
        return stage[0]["name"] if stage else None

    def grid_of(v: LoopbackPeer) -> set[str]:
        return {s["name"] for s in v.slots.values() if s["purpose"] == "grid" and s["name"]}

    await lima.wait_for(lambda: stage_of(lima) == "Seoul", timeout=15)
    await lima.send({"type": "pin", "participant_id": chair.participant_id})
    await lima.wait_for(lambda: stage_of(lima) == "Los Angeles", timeout=10)
    # The floor holder comes into Lima's grid; the chair is not in it twice.
    await lima.wait_for(lambda: grid_of(lima) == {"Seoul"}, timeout=10)
    await asyncio.sleep(0.5)
    assert stage_of(chair) == "Seoul"  # nobody else's stage follows Lima's pin

    # Refused: oneself, someone not in the room; the pin stays.
    await lima.send({"type": "pin", "participant_id": lima.participant_id})
    await lima.send({"type": "pin", "participant_id": "nobody"})
    await lima.wait_for(lambda: len([m for m in lima.messages if m["type"] == "error"]) >= 2, 5)
    errors = [m for m in lima.messages if m["type"] == "error"]
    assert [(e["code"], e["in_reply_to"], e["fatal"]) for e in errors] == [
        ("refused", "pin", False),
        ("no_such_participant", "pin", False),
    ]
    assert stage_of(lima) == "Los Angeles"

    await lima.send({"type": "pin", "participant_id": None})  # unpinned: the room's stage again
    await lima.wait_for(lambda: stage_of(lima) == "Seoul", timeout=10)
