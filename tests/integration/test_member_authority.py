"""A room spanning two workers has one meeting that decides (docs/scale-out.md, "Who decides for a
room"): a participant on the relay member raises a hand, chats, is given the floor and muted by
the chair on the home, and every page sees the same room; the home killed, the member's
participant stays: its worker takes the meeting over (test_home_worker_takeover.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.integration.test_relay import health
from tests.integration.test_workers import serving, until

pytestmark = pytest.mark.loopback
SECRET = "member-authority-secret-0123456789ab"
JOIN_WAIT_S = 60.0


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[int]:
    """`confsfu serve --workers 2` with `worker_max_connections: 1`: its port."""
    config = {
        "token_secret": SECRET,
        "rooms": [{"name": "east"}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        "worker_max_connections": 1,
        "reconnect_grace_s": 60,
    }
    async with serving(tmp_path, config) as (port, _proc):
        yield port


def token(name: str, role: str = "participant") -> str:
    return make_token(SECRET, room="east", name=name, role=role, now_s=int(time.time()))


async def join(
    port: int, made: list[LoopbackPeer], name: str, tok: str, publish: bool = False
) -> LoopbackPeer:
    peer = LoopbackPeer(f"ws://127.0.0.1:{port}/ws", name=name, token=tok, keep_payloads=True)
    # Each step of a join waited 10 s: a spilled join waits for the member worker, then the
    # home's answer over the link, then two offers, each behind the other pages' media on a
    # loaded machine (the join timed out at load 15-56). The test's waits are its own.
    peer.join_timeout_s = JOIN_WAIT_S
    made.append(peer)
    await peer.join(publish=publish)
    if publish:
        video = vp8_frames(320, 180, bitrate_bps=200_000)
        peer.start_media(opus_frames(variant=1), video, level_dbov=30, duration_s=120)
    return peer


def latest(peer: LoopbackPeer, kind: str) -> dict[str, Any]:
    return next((m for m in reversed(peer.messages) if m["type"] == kind), {})


def roster(peer: LoopbackPeer) -> dict[str, tuple[str, str]]:
    """The participants a page knows of now (id -> name, role), itself included."""
    known: dict[str, tuple[str, str]] = {}
    for m in peer.messages:
        if m["type"] == "joined":
            for p in [*m["participants"], m.get("you") or {}]:
                if p:
                    known[p["id"]] = (p["name"], p["role"])
        elif m["type"] in ("participant_joined", "participant_updated"):
            p = m["participant"]
            known[p["id"]] = (p["name"], p["role"])
        elif m["type"] == "participant_left":
            known.pop(m["participant_id"], None)
    return known


def info(peer: LoopbackPeer, pid: str) -> dict[str, Any]:
    for m in reversed(peer.messages):
        if m["type"] in ("participant_joined", "participant_updated"):
            if m["participant"]["id"] == pid:
                return dict(m["participant"])
        elif m["type"] == "joined":
            for p in [*m["participants"], m.get("you") or {}]:
                if p and p["id"] == pid:
                    return dict(p)
    return {}


def chats(peer: LoopbackPeer) -> list[str]:
    told = [m["text"] for m in latest(peer, "chat_history").get("messages", [])]
    return told + [m["message"]["text"] for m in peer.messages if m["type"] == "chat"]


async def placed(port: int) -> tuple[int, dict[str, Any]]:
    """The room's home and the front's /healthz, once the room spans both workers."""

    async def spans() -> bool:
        body = await health(port)
        return sorted(w["connections"] for w in body["workers"]) == [1, 2]

    await until(spans, 30, "east spans both workers")
    body = await health(port)
    return body["homes"]["east"], body


async def test_the_home_decides_for_the_member_s_participants(
    front: int, peers: list[LoopbackPeer]
) -> None:
    chair = await join(front, peers, "Osaka", token("Osaka", "chair"))  # the home
    kyiv = await join(front, peers, "Kyiv", token("Kyiv"), publish=True)  # the member
    lima = await join(front, peers, "Lima", token("Lima"))  # both full: the home again
    home, body = await placed(front)
    assert body["workers"][1 - home]["connections"] == 1
    ids = {p.name: p.participant_id for p in (chair, kyiv, lima)}
    assert len(set(ids.values())) == 3

    # Every page sees the same room: the same participants, with the same roles.
    everyone = {
        ids["Osaka"]: ("Osaka", "chair"),
        ids["Kyiv"]: ("Kyiv", "participant"),
        ids["Lima"]: ("Lima", "participant"),
    }
    for peer in (chair, kyiv, lima):
        await peer.wait_for(lambda peer=peer: roster(peer) == everyone, 30)  # type: ignore[misc]

    # A hand raised on the member is the home's meeting's.
    await kyiv.send({"type": "raise_hand"})
    for peer in (chair, kyiv, lima):
        check = lambda p=peer: latest(p, "room_state").get("hands") == [ids["Kyiv"]]  # noqa: E731
        await peer.wait_for(check, 30)

    # Chat both ways.
    await kyiv.send({"type": "chat_send", "text": "from the member"})
    await chair.wait_for(lambda: chats(chair) == ["from the member"], 30)
    await chair.send({"type": "chat_send", "text": "from the home"})
    for peer in (chair, kyiv, lima):
        check = lambda p=peer: chats(p) == ["from the member", "from the home"]  # noqa: E731
        await peer.wait_for(check, 30)

    # The chair gives the member's participant the floor (its hand goes down).
    await chair.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
    for peer in (chair, kyiv, lima):
        check = lambda p=peer: latest(p, "room_state").get("floor_holder") == ids["Kyiv"]  # noqa: E731
        await peer.wait_for(check, 30)
    assert latest(kyiv, "room_state")["hands"] == []

    # Its media reaches the home's subscriber until the chair mutes it there.
    def audio_of_kyiv() -> Any:
        return lima.streams_showing("audio").get("Kyiv")

    await lima.wait_for(lambda: (audio_of_kyiv() or _none()).packets >= 100, 60)
    await lima.wait_for(lambda: (lima.streams_showing("video").get("Kyiv") or _none()).packets > 0)
    stream = audio_of_kyiv()
    video = lima.streams_showing("video")["Kyiv"]
    await chair.send(
        {"type": "chair", "action": "mute", "participant_id": ids["Kyiv"], "kind": "audio"}
    )
    await kyiv.wait_for(lambda: info(kyiv, ids["Kyiv"]).get("chair_muted_audio") is True, 30)
    await lima.wait_for(lambda: info(lima, ids["Kyiv"]).get("chair_muted_audio") is True, 30)
    # The member's intake drops Kyiv's microphone: Lima's count of it stops (what was on the
    # way arrives first), while Kyiv's camera still comes.
    still_since, last = time.monotonic(), stream.packets
    deadline = time.monotonic() + 60
    while time.monotonic() - still_since < 3:
        assert time.monotonic() < deadline, "Kyiv's muted audio still reaches the home"
        await asyncio.sleep(0.25)
        if stream.packets != last:
            still_since, last = time.monotonic(), stream.packets
    video_then = video.packets
    await lima.wait_for(lambda: video.packets > video_then + 20, 30)
    assert stream.packets == last, "Kyiv's audio came back while muted"

    # The member's participant asks to be unmuted; the chair is told and lets it speak.
    await kyiv.send({"type": "request_unmute", "kind": "audio"})
    await chair.wait_for(lambda: info(chair, ids["Kyiv"]).get("unmute_requested") is True, 30)
    await chair.send(
        {"type": "chair", "action": "unmute", "participant_id": ids["Kyiv"], "kind": "audio"}
    )
    await lima.wait_for(lambda: stream.packets > last + 50, 60)

    # Counted once each, where connected.
    body = await health(front)
    assert body["participants"] == 3, body

    # The chair removes the member's participant: its page gets the authority's bye and is
    # closed, and every other page sees it go.
    await chair.send({"type": "chair", "action": "remove", "participant_id": ids["Kyiv"]})
    await kyiv.wait_for(lambda: kyiv.closed, 30)
    assert latest(kyiv, "bye"), kyiv.messages[-3:]
    for peer in (chair, lima):
        await peer.wait_for(lambda p=peer: ids["Kyiv"] not in roster(p), 30)  # type: ignore[misc]

    async def gone() -> bool:
        return bool((await health(front))["participants"] == 2)

    await until(gone, 30, "Kyiv gone from both workers")


def _none() -> Any:
    class Nothing:
        packets = 0

    return Nothing()


async def test_the_home_dies_and_the_member_s_participant_comes_back(
    front: int, peers: list[LoopbackPeer]
) -> None:
    tokens = {"Osaka": token("Osaka", "chair"), "Kyiv": token("Kyiv")}
    chair = await join(front, peers, "Osaka", tokens["Osaka"])  # the home
    kyiv = await join(front, peers, "Kyiv", tokens["Kyiv"])  # the member
    ids = {p.name: p.participant_id for p in (chair, kyiv)}

    async def spanning() -> bool:
        body = await health(front)
        return sorted(w["connections"] for w in body["workers"]) == [1, 1]

    await until(spanning, 30, "east spans both workers")
    await kyiv.send({"type": "raise_hand"})
    await chair.wait_for(lambda: latest(chair, "room_state").get("hands") == [ids["Kyiv"]], 30)
    # A snapshot taken after this holds the hand; the chat below makes sure one is taken.
    seen_ms = time.time() * 1000
    await kyiv.send({"type": "chat_send", "text": "hand up"})
    await chair.wait_for(lambda: chats(chair) == ["hand up"], 30)

    async def snapshot_taken() -> bool:
        body = await health(front)
        return bool(body["snapshots"].get("east", {}).get("taken_unix_ms", 0) > seen_ms)

    await until(snapshot_taken, 30, "the front holds a snapshot with the hand")
    body = await health(front)
    home = body["homes"]["east"]
    os.kill(body["workers"][home]["pid"], signal.SIGKILL)

    # The member worker takes the meeting over: its participant stays; the home's page comes
    # again, into the new home, `resumed` as itself.
    await chair.wait_for(lambda: chair.closed, 30)
    await chair.close(goodbye=False)
    chair = await join(front, peers, "Osaka", tokens["Osaka"])
    joined = latest(chair, "joined")
    assert joined.get("resumed") is True, joined
    assert chair.participant_id == ids["Osaka"], "came back as the same participant"
    await chair.wait_for(lambda: latest(chair, "room_state").get("hands") == [ids["Kyiv"]], 30)
    await chair.wait_for(lambda: chats(chair) == ["hand up"], 30)
    assert not kyiv.closed, "the member's participant stayed connected"
