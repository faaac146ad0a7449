"""Hostile or broken signalling gets a clear error and never disturbs the others' media."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.conftest import SECRET
from tests.integration.raw_ws import next_json

pytestmark = pytest.mark.loopback


class RawClient:
    """A bare WebSocket client that says whatever the test wants."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url)
        client = cls(session, ws)
        hello = await client.receive()
        assert hello["type"] == "hello" and hello["protocol_version"] == 1
        return client

    async def receive(self) -> dict[str, Any]:
        return await next_json(self.ws)

    async def ask(self, text: str) -> dict[str, Any]:
        await self.ws.send_str(text)
        return await self.receive()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def talking_pair(server: Any) -> AsyncIterator[tuple[LoopbackPeer, LoopbackPeer]]:
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=300_000)
    a = LoopbackPeer(server.ws_url, name="Seoul")
    b = LoopbackPeer(server.ws_url, name="Lima")
    for peer in (a, b):
        await peer.join()
        peer.start_media(audio, video, duration_s=30)
    for peer, other in ((a, "Lima"), (b, "Seoul")):
        await peer.wait_for(lambda p=peer, o=other: o in p.streams_showing("video"), timeout=15)
    yield a, b
    for peer in (a, b):
        await peer.close()


def received(peer: LoopbackPeer) -> int:
    return sum(s.packets for s in peer.received.values())


def token(secret: str = SECRET, **claims: Any) -> str:
    base: dict[str, Any] = {
        "room": "council",
        "name": "Quito",
        "role": "participant",
        "now_s": int(time.time()),
    }
    base.update(claims)
    return make_token(secret, **base)


BAD_BEFORE_JOIN = [
    ("{not json", "bad_json", False),
    ("[1, 2, 3]", "bad_json", False),
    ('{"type": "teleport"}', "unknown_type", False),
    ('{"no_type": 1}', "unknown_type", False),
    ('{"type": "publish_offer", "sdp": "v=0"}', "out_of_order", False),
    ('{"type": "join", "room": "demo", "name": "X", "colour": "red"}', "bad_message", False),
    ('{"type": "join", "room": "demo", "name": ""}', "bad_message", False),
    ('{"type": "join", "room": "council", "name": "Guest"}', "no_such_room", True),
    ('{"type": "join", "room": "nowhere", "name": "Guest"}', "no_such_room", True),
]


@pytest.mark.parametrize(("text", "code", "fatal"), BAD_BEFORE_JOIN)
async def test_bad_message_gets_its_error_and_others_keep_flowing(
    server: Any,
    talking_pair: tuple[LoopbackPeer, LoopbackPeer],
    text: str,
    code: str,
    fatal: bool,
) -> None:
    a, b = talking_pair
    client = await RawClient.connect(server.ws_url)
    try:
        reply = await client.ask(text)
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert reply["fatal"] is fatal
        if code == "bad_message":
            assert reply["field"], reply
        if fatal:
            assert (await client.receive())["type"] == "bye"
        else:  # the connection stays usable
            assert (await client.ask('{"type": "ping"}'))["type"] == "pong"
    finally:
        await client.close()
    before = received(a), received(b)
    await a.wait_for(lambda: received(a) > before[0] + 50 and received(b) > before[1] + 50)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: token(secret="another-secret-0123456789abcdef0123"), "bad_token"),
        (lambda: token(now_s=int(time.time()) - 7200, valid_s=60), "bad_token"),
        (lambda: token()[:-4] + "AAAA", "bad_token"),
        (lambda: "not.a.jwt", "bad_token"),
        (lambda: token(room="atlantis"), "no_such_room"),
    ],
    ids=["forged", "expired", "tampered", "garbage", "unknown-room"],
)
async def test_bad_token_is_refused(
    server: Any, talking_pair: tuple[LoopbackPeer, LoopbackPeer], make: Any, code: str
) -> None:
    a, _b = talking_pair
    client = await RawClient.connect(server.ws_url)
    try:
        reply = await client.ask(json.dumps({"type": "join", "token": make()}))
        assert reply["type"] == "error" and reply["code"] == code and reply["fatal"], reply
        assert (await client.receive())["type"] == "bye"
    finally:
        await client.close()
    before = received(a)
    await a.wait_for(lambda: received(a) > before + 50)


async def test_token_for_another_room_is_refused(server: Any) -> None:
    client = await RawClient.connect(server.ws_url)
    try:
        text = json.dumps({"type": "join", "token": token(), "room": "demo"})
        reply = await client.ask(text)
        assert reply["code"] == "wrong_room" and reply["field"] == "room", reply
    finally:
        await client.close()


async def test_valid_token_joins_invitation_only_room_with_its_role(server: Any) -> None:
    client = await RawClient.connect(server.ws_url)
    try:
        reply = await client.ask(json.dumps({"type": "join", "token": token(role="chair")}))
        assert reply["type"] == "joined", reply
        assert (reply["room"], reply["name"], reply["role"]) == ("council", "Quito", "chair")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("sdp", "code"),
    [
        ("garbage", "bad_sdp"),
        ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "bad_sdp"),
        ("v=0\r\n" + "a=x\r\n" * 1000, "sdp_limit"),  # beyond sdp.lines: refused unparsed
    ],
)
async def test_sdp_garbage_is_refused_and_the_participant_can_go_on(
    server: Any, talking_pair: tuple[LoopbackPeer, LoopbackPeer], sdp: str, code: str
) -> None:
    a, _b = talking_pair
    client = await RawClient.connect(server.ws_url)
    try:
        joined = await client.ask(json.dumps({"type": "join", "room": "demo", "name": "Rogue"}))
        assert joined["type"] == "joined"
        seen = [await client.receive()]
        while seen[-1]["type"] != "subscribe_offer":
            seen.append(await client.receive())
        for kind in ("publish_offer", "subscribe_answer"):
            await client.ws.send_str(json.dumps({"type": kind, "sdp": sdp}))
            reply = await client.receive()
            while reply["type"] != "error":
                reply = await client.receive()
            assert reply["code"] == code and reply["in_reply_to"] == kind, reply
        await client.ws.send_str('{"type": "ping"}')
        reply = await client.receive()
        while reply["type"] != "pong":
            reply = await client.receive()
    finally:
        await client.close()
    before = received(a)
    await a.wait_for(lambda: received(a) > before + 50)
