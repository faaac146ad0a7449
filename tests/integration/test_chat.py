"""Room chat through the real server: two (and a late third) signalling clients, no media."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.conftest import SECRET

pytestmark = pytest.mark.loopback


async def join(url: str, made: list[LoopbackPeer], name: str, role: str = "participant") -> Any:
    tok = make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]
    peer = LoopbackPeer(url, name=name, token=tok)
    made.append(peer)
    await peer.join(publish=False)
    return peer


def of_type(peer: LoopbackPeer, kind: str) -> list[dict[str, Any]]:
    return [m for m in peer.messages if m["type"] == kind]


def chats(peer: LoopbackPeer) -> list[dict[str, Any]]:
    return [m["message"] for m in of_type(peer, "chat")]


async def refusal(peer: LoopbackPeer, before: int) -> dict[str, Any]:
    await peer.wait_for(lambda: len(peer.errors) > before)
    return peer.errors[before]


async def test_chat_reaches_everyone_as_text_and_late_joiners_get_the_history(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    chair = await join(server.ws_url, peers, "Los Angeles", "chair")
    seoul = await join(server.ws_url, peers, "Seoul")
    assert of_type(seoul, "chat_history") == [{"type": "chat_history", "messages": []}]
    assert all(s["chat_enabled"] for s in of_type(seoul, "room_state"))

    text = "Agenda: <b>x</b> https://example.org/a?b=1&c=2\x07\u202e"
    await seoul.send({"type": "chat_send", "text": text})
    for peer in (chair, seoul):
        await peer.wait_for(lambda p=peer: len(chats(p)) == 1)
    [got] = chats(chair)
    assert got["text"] == "Agenda: <b>x</b> https://example.org/a?b=1&c=2"  # controls gone
    assert (got["sender"], got["name"], got["role"]) == (
        seoul.participant_id,
        "Seoul",
        "participant",
    )
    assert abs(got["sent_ms"] - time.time() * 1000) < 5_000
    assert chats(seoul) == [got]  # the sender sees it as everyone does

    await chair.send({"type": "chat_send", "text": "Welcome, Seoul"})
    await seoul.wait_for(lambda: len(chats(seoul)) == 2)

    # A participant may not remove a message; the chair may, and every page hears it.
    before = len(seoul.errors)
    await seoul.send({"type": "chair", "action": "remove_chat", "message_id": got["id"]})
    assert (await refusal(seoul, before))["code"] == "forbidden"
    await chair.send({"type": "chair", "action": "remove_chat", "message_id": got["id"]})
    for peer in (chair, seoul):
        await peer.wait_for(lambda p=peer: bool(of_type(p, "chat_removed")))
        assert of_type(peer, "chat_removed") == [{"type": "chat_removed", "message_id": got["id"]}]

    lima = await join(server.ws_url, peers, "Lima")
    [history] = of_type(lima, "chat_history")
    assert [m["text"] for m in history["messages"]] == ["Welcome, Seoul"]
    assert history["messages"][0]["role"] == "chair"
    order = [m["type"] for m in lima.messages]
    assert order.index("room_state") < order.index("chat_history") < order.index("subscribe_offer")


async def test_rate_limit_and_bad_text_are_refused_without_closing(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    seoul = await join(server.ws_url, peers, "Seoul")
    lima = await join(server.ws_url, peers, "Lima")
    for i in range(5):
        await seoul.send({"type": "chat_send", "text": f"message {i}"})
    await lima.wait_for(lambda: len(chats(lima)) == 5)
    before = len(seoul.errors)
    await seoul.send({"type": "chat_send", "text": "one too many"})
    error = await refusal(seoul, before)
    assert error["code"] == "rate_limited" and not error["fatal"], error
    assert error["in_reply_to"] == "chat_send" and "wait" in error["message"]
    assert error["reason"] == "too_many"

    for text, reason in (("\x00\x01 \n", "empty"), ("x" * 1001, "too_long")):
        before = len(seoul.errors)
        await seoul.send({"type": "chat_send", "text": text})
        error = await refusal(seoul, before)
        assert (error["code"], error["field"], error["fatal"]) == ("bad_message", "text", False)
        assert error["reason"] == reason

    pongs = len(of_type(seoul, "pong"))
    await seoul.send({"type": "ping"})
    await seoul.wait_for(lambda: len(of_type(seoul, "pong")) > pongs)
    assert not seoul.closed and not of_type(seoul, "bye")
    assert len(chats(lima)) == 5


async def test_chair_turns_chat_off_for_participants_and_the_report_has_it(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    chair = await join(server.ws_url, peers, "Los Angeles", "chair")
    seoul = await join(server.ws_url, peers, "Seoul")
    await seoul.send({"type": "chat_send", "text": "=1+1 before the vote"})
    await chair.wait_for(lambda: len(chats(chair)) == 1)

    await chair.send({"type": "chair", "action": "chat_off"})
    await seoul.wait_for(lambda: any(m.get("code") == "chat_off" for m in of_type(seoul, "notice")))
    await seoul.wait_for(lambda: not of_type(seoul, "room_state")[-1]["chat_enabled"])
    before = len(seoul.errors)
    await seoul.send({"type": "chat_send", "text": "may I?"})
    error = await refusal(seoul, before)
    assert (error["code"], error["fatal"]) == ("refused", False)
    assert "chat off" in error["message"] and error["reason"] == "chat_off"
    await chair.send({"type": "chat_send", "text": "Chairs still may"})
    await seoul.wait_for(lambda: len(chats(seoul)) == 2)
    await chair.send({"type": "chair", "action": "remove_chat", "message_id": 1})
    await chair.send({"type": "chair", "action": "chat_on"})
    await seoul.wait_for(lambda: of_type(seoul, "room_state")[-1]["chat_enabled"])

    await chair.send({"type": "get_report", "format": "json"})
    await chair.send({"type": "get_report", "format": "csv"})
    await chair.wait_for(lambda: len(of_type(chair, "report")) == 2)
    by_format = {r["format"]: r["content"] for r in of_type(chair, "report")}
    report = json.loads(by_format["json"])
    assert [(c["name"], c["text"], c["removed"]) for c in report["chat"]] == [
        ("Seoul", "=1+1 before the vote", True),
        ("Los Angeles", "Chairs still may", False),
    ]
    assert [a["detail"] for a in report["chair_actions"]] == [
        "chat_off",
        "remove_chat 1",
        "chat_on",
    ]
    tables = by_format["csv"].split("\r\n\n")
    assert [t.split(",", 1)[0] for t in tables] == ["id", "holder", "at", "id"]
    chat_rows = list(csv.reader(io.StringIO(tables[3])))
    assert chat_rows[1][3:6] == ["Seoul", "'=1+1 before the vote", "yes"]
    action_rows = list(csv.reader(io.StringIO(tables[2])))
    assert [row[6] for row in action_rows[1:]] == ["chat_off", "remove_chat 1", "chat_on"]
