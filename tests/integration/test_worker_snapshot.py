"""`confsfu serve --workers 2`: a room's worker killed mid-meeting; the participants come back
on its next home to the same meeting (floor, hands, mutes, lock, chat, the report so far),
carried over by the meeting snapshot the front kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from tests.integration.test_workers import front, health, health_when, token, until

pytestmark = pytest.mark.loopback
CHATS = ["before the crash", "noted, Kyiv"]
LAST = "locked now"  # a change after everything the test checks survives
__all__ = ["front"]  # the fixture, from test_workers


def latest(peer: LoopbackPeer, kind: str) -> dict[str, Any] | None:
    return next((m for m in reversed(peer.messages) if m["type"] == kind), None)


def info(peer: LoopbackPeer, pid: str) -> dict[str, Any] | None:
    """The latest a peer heard of participant `pid` (joined, participant_joined/updated)."""
    for m in reversed(peer.messages):
        if m["type"] in ("participant_joined", "participant_updated"):
            if m["participant"]["id"] == pid:
                return dict(m["participant"])
        elif m["type"] == "joined":
            for p in [*m["participants"], m.get("you") or {}]:
                if p.get("id") == pid:
                    return dict(p)
    return None


async def join(port: int, made: list[LoopbackPeer], name: str, tok: str) -> LoopbackPeer:
    peer = LoopbackPeer(f"ws://127.0.0.1:{port}/ws", name=name, token=tok)
    made.append(peer)
    await peer.join(publish=False)
    return peer


async def test_the_meeting_survives_a_killed_worker(
    front: tuple[int, asyncio.subprocess.Process], peers: list[LoopbackPeer]
) -> None:
    port, _proc = front
    tokens = {
        "Osaka": token("east", "Osaka", "chair"),
        "Kyiv": token("east", "Kyiv"),
        "Lima": token("east", "Lima"),
    }
    first = {name: await join(port, peers, name, tok) for name, tok in tokens.items()}
    chair, kyiv, lima = first["Osaka"], first["Kyiv"], first["Lima"]
    ids = {name: peer.participant_id for name, peer in first.items()}

    def state(peer: LoopbackPeer) -> dict[str, Any]:
        return latest(peer, "room_state") or {}

    await chair.send(
        {"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"], "limit_s": 900}
    )
    await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
    await lima.send({"type": "raise_hand"})
    await chair.wait_for(lambda: state(chair).get("hands") == [ids["Lima"]], 30)
    await chair.send(
        {"type": "chair", "action": "mute", "participant_id": ids["Lima"], "kind": "audio"}
    )
    await chair.wait_for(lambda: (info(chair, ids["Lima"]) or {}).get("chair_muted_audio"), 30)

    def chat(peer: LoopbackPeer) -> list[str]:
        told = latest(peer, "chat_history") or {"messages": []}
        history = [m["text"] for m in told["messages"]]
        posted = [m["message"]["text"] for m in peer.messages if m["type"] == "chat"]
        return history + [t for t in posted if t not in history]

    await kyiv.send({"type": "chat_send", "text": "before the crash"})
    await chair.wait_for(lambda: chat(chair) == ["before the crash"], 30)
    await chair.send({"type": "chat_send", "text": "noted, Kyiv"})
    await chair.wait_for(lambda: chat(chair) == ["before the crash", "noted, Kyiv"], 30)
    await chair.send({"type": "chair", "action": "lock"})
    await chair.wait_for(lambda: state(chair).get("locked") is True, 30)
    before = state(chair)
    seen_ms = time.time() * 1000  # everything above happened before this
    # Snapshots are taken when a room changes: the lock's may have been taken just before
    # `seen_ms`, so one more change makes sure one comes after (it may or may not be in it).
    await chair.send({"type": "chat_send", "text": LAST})
    await chair.wait_for(lambda: chat(chair)[-1:] == [LAST], 30)

    body = await health_when(
        port,
        lambda b: b["snapshots"].get("east", {}).get("taken_unix_ms", 0) > seen_ms,
        "the front holds a snapshot taken after the last change",
    )
    worker = body["workers"][body["homes"]["east"]]
    os.kill(worker["pid"], signal.SIGKILL)
    for peer in first.values():
        await peer.wait_for(lambda peer=peer: peer.closed, 30)  # type: ignore[misc]
        await peer.close(goodbye=False)

    async def waiting() -> bool:
        body = await health(port)
        return bool(body["snapshots"].get("east", {}).get("state") == "waiting")

    await until(waiting, 60, "the snapshot waits for east's next home")

    back = {name: await join(port, peers, name, tok) for name, tok in tokens.items()}
    for name, peer in back.items():
        joined = latest(peer, "joined")
        assert joined is not None and joined["resumed"], joined
        assert peer.participant_id == ids[name], "came back as the same participant"
    chair = back["Osaka"]
    await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
    after = state(chair)
    assert after["hands"] == [ids["Lima"]] and after["locked"] is True, after
    assert abs(after["floor_until_ms"] - before["floor_until_ms"]) < 1000, (before, after)
    assert after["scheduled_end_ms"] == before["scheduled_end_ms"]
    lima_now = info(back["Kyiv"], ids["Lima"]) or {}
    assert lima_now.get("chair_muted_audio") and lima_now.get("hand_raised"), lima_now
    for peer in back.values():
        assert chat(peer) in (CHATS, [*CHATS, LAST]), chat(peer)

    await chair.send({"type": "get_report", "format": "json"})
    await chair.wait_for(lambda: latest(chair, "report") is not None, 30)
    report = json.loads((latest(chair, "report") or {})["content"])
    assert [p["name"] for p in report["participants"]] == ["Osaka", "Kyiv", "Lima"]
    assert all(p["left"] is None for p in report["participants"])
    actions = [a["action"] for a in report["chair_actions"]]
    assert actions == ["grant_floor", "mute_audio", "lock_room"], actions
    assert [g["holder"] for g in report["floor_grants"]] == [ids["Kyiv"]]
    assert report["floor_grants"][0]["end"] is None
    assert [c["text"] for c in report["chat"]] in (CHATS, [*CHATS, LAST])

    # the meeting goes on where it was: the chair gives the floor to the raised hand
    await chair.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Lima"]})
    await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Lima"], 30)
    assert state(chair)["hands"] == []
    body = await health(port)
    assert body["workers"][body["homes"]["east"]]["pid"] != worker["pid"]
    assert body["snapshots"]["east"]["state"] == "kept"
