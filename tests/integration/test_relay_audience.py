"""`confsfu serve --workers 2`, an audience spread over both workers: a speaker and a chair on
the room's home, listeners placed on the home and on the other worker (which becomes a relay
member for them alone); every listener gets the stage's video and the room's audio byte for
byte, the same packets the home's subscriber gets; the chair counts them all; no listener is
in anyone's list."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.loadgen.receiving import ReceivedStream
from confsfu.tokens import make_token
from tests.integration.listeners import (
    assert_told_of_none,
    audience_config,
    counts,
    join_listeners,
    refused_as_full,
    refused_as_removed,
)
from tests.integration.test_relay import continuous, health, positions
from tests.integration.test_workers import serving

pytestmark = pytest.mark.loopback
SECRET = "audience-workers-secret-0123456789ab"


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[int]:
    """Two workers, no per-worker bound: only listeners make the room span them."""
    config = audience_config(SECRET, tmp_path)
    async with serving(tmp_path, config) as (port, _proc):
        yield port


def token(name: str, role: str) -> str:
    return make_token(SECRET, room="east", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def spanned(front: int, worker: int) -> bool:
    """`worker` holds its part of room east as a relay member."""
    body = await health(front)
    relay = (body["workers"][worker]["health"] or {}).get("relay", {})
    return "east" in relay.get("rooms", {})


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def lima(peer: LoopbackPeer, kind: str) -> ReceivedStream | None:
    """What `peer` received of Lima's: the stage's video, or the audio."""
    return peer.streams_showing(kind, "stage" if kind == "video" else "audio").get("Lima")


def got(peer: LoopbackPeer, kind: str, n: int) -> bool:
    stream = lima(peer, kind)
    return stream is not None and stream.packets >= n


async def test_listeners_spread_over_workers_and_the_chair_counts_them_all(
    front: int, peers: list[LoopbackPeer]
) -> None:
    url = f"ws://127.0.0.1:{front}/ws"
    speaker = LoopbackPeer(url, name="Lima", token=token("Lima", "participant"), keep_payloads=True)
    chair = LoopbackPeer(url, name="Chair", token=token("Chair", "chair"), keep_payloads=True)
    peers += [speaker, chair]
    await speaker.join()
    speaker.start_media(
        opus_frames(variant=1),
        vp8_frames(320, 180, bitrate_bps=200_000),
        level_dbov=30,
        duration_s=120,
    )
    await chair.join(publish=False)
    await chair.send(
        {"type": "chair", "action": "grant_floor", "participant_id": speaker.participant_id}
    )
    # Three listeners: the other worker (no connection), again (1 against 2), then the home
    # (2 against 2: among equals the home, no relay needed for it).
    listeners = await join_listeners(url, "east", token("Accra", "listener"), peers)
    ids = {listener.participant_id for listener in listeners}
    body = await health(front)
    home = body["homes"]["east"]
    assert [w["connections"] for w in body["workers"]][home] == 3, body["workers"]
    assert [w["connections"] for w in body["workers"]][1 - home] == 2, body["workers"]

    # The room's limit holds across the workers: a fifth listener is one too many.
    extra = LoopbackPeer(url, name="x", room="east", watch=True)
    fourth = LoopbackPeer(url, name="y", room="east", watch=True)
    peers += [fourth, extra]
    await fourth.join()
    await refused_as_full(extra)
    await fourth.close()
    peers.remove(fourth)

    for peer in (*listeners, chair):
        for kind in ("video", "audio"):
            check = lambda p=peer, k=kind: got(p, k, 150)  # noqa: E731
            await peer.wait_for(check, 90)

    # The chair sees the room's count: the home's listener and the member's two.
    await chair.wait_for(lambda: counts(chair)[-1:] == [3], 30)

    sent = {"video": speaker.sent.video_payloads, "audio": speaker.sent.audio_payloads}
    for listener in listeners:
        for kind in ("video", "audio"):
            stream = lima(listener, kind)
            home_stream = lima(chair, kind)
            assert stream is not None and home_stream is not None
            strangers = [p for p in stream.payloads if p not in set(sent[kind])]
            assert not strangers, f"{listener.name}: {len(strangers)} {kind} not Lima's"
            assert continuous(stream) == [], f"{kind}: gaps {continuous(stream)[:5]}"
            # The same packets as the home's subscriber, while both received.
            there = positions(stream.payloads, sent[kind])
            here = positions(home_stream.payloads, sent[kind])
            low, high = max(there[0], here[0]), min(there[-1], here[-1])
            both = [i for i in there if low <= i <= high]
            assert len(both) > 100 and both == [i for i in here if low <= i <= high], kind

    # Listeners are in no participant list: not the speakers', not the authority's meeting.
    body = await health(front)
    assert (body["participants"], body["listeners"]) == (2, 3), body
    rooms = [(w["health"] or {}).get("relay", {}).get("rooms", {}) for w in body["workers"]]
    assert rooms[home]["east"]["authority"] and not rooms[1 - home]["east"]["authority"]
    assert ids.isdisjoint(rooms[home]["east"]["mirrored"]), rooms
    for p in (chair, speaker):
        assert_told_of_none(p, ids)

    # A member's listener leaving lowers the count.
    await listeners[0].close()
    peers.remove(listeners[0])
    await chair.wait_for(lambda: counts(chair)[-1:] == [2], 30)


async def test_a_member_s_listeners_hear_the_end_and_a_removed_token_is_refused_there(
    front: int, peers: list[LoopbackPeer]
) -> None:
    """The other worker's listener is closed when the chair ends the meeting on the home, as
    the home's are; a participant the chair removed cannot come back as a listener there."""
    url = f"ws://127.0.0.1:{front}/ws"
    chair = LoopbackPeer(url, name="Chair", token=token("Chair", "chair"))
    lima = LoopbackPeer(url, name="Lima", token=token("Lima", "participant"))
    kyiv_token = token("Kyiv", "participant")
    kyiv = LoopbackPeer(url, name="Kyiv", token=kyiv_token)
    peers += [chair, lima, kyiv]
    for peer in (chair, lima, kyiv):
        await peer.join(publish=False)
    # 0 against 3: the other worker; then, Kyiv removed, 1 against 2: the other worker again.
    accra = LoopbackPeer(url, name="Accra", room="east", watch=True)
    peers.append(accra)
    await accra.join()
    body = await health(front)
    member = 1 - body["homes"]["east"]
    assert [w["connections"] for w in body["workers"]][member] == 1, body["workers"]
    await until(lambda: spanned(front, member), 30)  # the front tells the span at its poll
    await chair.send({"type": "chair", "action": "remove", "participant_id": kyiv.participant_id})
    await kyiv.wait_for(lambda: kyiv.closed, 30)

    # The removal reaches the member at its next relay tick (100 ms; a lost datagram: 1 s):
    # until then a join there is let in. Tried again until refused.
    await refused_as_removed(url, kyiv_token, peers, "the member")
    body = await health(front)
    assert [w["connections"] for w in body["workers"]][member] == 1, body["workers"]

    await chair.send({"type": "chair", "action": "end"})
    await accra.wait_for(lambda: accra.closed, 30)
    byes = [m for m in accra.messages if m["type"] == "bye"]
    assert byes and byes[-1]["reason"] == "the chair ended the meeting", accra.messages[-3:]

    async def member_forgot() -> bool:  # its part of the ended room: not kept asleep
        body = await health(front)
        return (body["workers"][member]["health"] or {}).get("rooms") == 0

    await until(member_forgot, 30)
