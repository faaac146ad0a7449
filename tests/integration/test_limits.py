"""Hostile input limits: a flood, an oversized message, a full room; the others never notice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB, SESSIONS
from confsfu.settings import RoomSettings
from tests.integration.raw_ws import next_json

pytestmark = pytest.mark.loopback

LIMITS: dict[str, Any] = {"messages_per_s": 5, "message_burst": 10, "max_message_bytes": 16384}


class Rogue:
    """A bare WebSocket client that joins the demo room and then misbehaves."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws

    @classmethod
    async def join(cls, url: str, name: str = "Rogue") -> Rogue:
        session = aiohttp.ClientSession()
        rogue = cls(session, await session.ws_connect(url))
        assert (await rogue.receive())["type"] == "hello"
        await rogue.ws.send_str(json.dumps({"type": "join", "room": "demo", "name": name}))
        assert (await rogue.receive())["type"] == "joined"
        while (await rogue.receive())["type"] != "subscribe_offer":
            pass
        return rogue

    async def receive(self) -> dict[str, Any]:
        return await next_json(self.ws)

    async def until(self, kind: str) -> dict[str, Any]:
        message = await self.receive()
        while message["type"] != kind:
            message = await self.receive()
        return message

    async def closed_with(self) -> int | None:
        """Read to the end of the connection; the close code the server sent."""
        while True:
            frame = await self.ws.receive(timeout=10)
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return self.ws.close_code
            assert frame.type == aiohttp.WSMsgType.TEXT, frame

    async def close(self) -> None:
        """Say goodbye (a connection closed without one is waited for) and close."""
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps({"type": "leave"}))
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def limited_pair(
    server_factory: Callable[..., Any],
) -> AsyncIterator[tuple[Any, LoopbackPeer, LoopbackPeer]]:
    server = await server_factory(
        rooms=[RoomSettings(name="demo", open=True, max_participants=3)], **LIMITS
    )
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=300_000)
    a = LoopbackPeer(server.ws_url, name="Seoul")
    b = LoopbackPeer(server.ws_url, name="Lima")
    for peer in (a, b):
        await peer.join()
        peer.start_media(audio, video, duration_s=30)
    for peer, other in ((a, "Lima"), (b, "Seoul")):
        await peer.wait_for(lambda p=peer, o=other: o in p.streams_showing("video"), timeout=15)
    yield server, a, b
    for peer in (a, b):
        await peer.close()


def received(peer: LoopbackPeer) -> int:
    return sum(s.packets for s in peer.received.values())


async def assert_rogue_gone_and_media_flowing(
    server: Any, a: LoopbackPeer, b: LoopbackPeer
) -> None:
    room = server.app[HUB].rooms["demo"].room
    for _ in range(200):
        if len(room.participants) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(p.name for p in room.participants.values()) == ["Lima", "Seoul"]
    before = received(a), received(b)
    await a.wait_for(lambda: received(a) > before[0] + 50 and received(b) > before[1] + 50)
    assert not a.errors and not b.errors


async def test_a_flood_is_refused_with_rate_limited_and_closed(
    limited_pair: tuple[Any, LoopbackPeer, LoopbackPeer],
) -> None:
    server, a, b = limited_pair
    rogue = await Rogue.join(server.ws_url)
    try:
        for _ in range(60):
            await rogue.ws.send_str('{"type": "ping"}')
        replies = []
        reply = await rogue.receive()
        while reply["type"] != "error":
            replies.append(reply["type"])
            reply = await rogue.receive()
        assert reply["code"] == "rate_limited" and reply["fatal"] is True, reply
        assert 5 <= replies.count("pong") < 60
        assert (await rogue.receive()) == {"type": "bye", "reason": reply["message"]}
        assert await rogue.closed_with() == aiohttp.WSCloseCode.POLICY_VIOLATION
    finally:
        await rogue.close()
    await assert_rogue_gone_and_media_flowing(server, a, b)


@pytest.mark.parametrize(
    "padding",
    ["x" * 17_000, "é" * 8500],  # the second is 8500 characters but 17000 bytes
    ids=["ascii", "two-byte-characters"],
)
async def test_an_oversized_message_is_refused_with_too_large_and_closed(
    limited_pair: tuple[Any, LoopbackPeer, LoopbackPeer], padding: str
) -> None:
    server, a, b = limited_pair
    rogue = await Rogue.join(server.ws_url)
    try:
        await rogue.ws.send_str(json.dumps({"type": "ping", "pad": padding}, ensure_ascii=False))
        reply = await rogue.until("error")
        assert reply["code"] == "too_large" and reply["fatal"] is True, reply
        assert "16384" in reply["message"]
        assert (await rogue.receive())["type"] == "bye"
        assert await rogue.closed_with() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    finally:
        await rogue.close()
    await assert_rogue_gone_and_media_flowing(server, a, b)


async def test_a_message_just_under_the_limit_is_handled(
    limited_pair: tuple[Any, LoopbackPeer, LoopbackPeer],
) -> None:
    server, _a, _b = limited_pair
    rogue = await Rogue.join(server.ws_url)
    try:
        text = json.dumps({"type": "ping", "pad": "x" * 16_000})
        assert len(text) <= 16384
        await rogue.ws.send_str(text)
        reply = await rogue.until("error")
        assert reply["code"] == "bad_message" and not reply["fatal"], reply  # not too_large
        await rogue.ws.send_str('{"type": "ping"}')
        await rogue.until("pong")
    finally:
        await rogue.close()


async def test_a_frame_beyond_the_hard_limit_ends_the_session_cleanly(
    limited_pair: tuple[Any, LoopbackPeer, LoopbackPeer],
) -> None:
    server, a, b = limited_pair
    rogue = await Rogue.join(server.ws_url)
    try:
        await rogue.ws.send_str("x" * 100_000)  # aiohttp refuses it unread: close 1009
        assert await rogue.closed_with() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    finally:
        await rogue.close()
    await assert_rogue_gone_and_media_flowing(server, a, b)
    assert any(
        m["type"] == "participant_left" and m["participant_id"] != b.participant_id
        for m in a.messages
    )


async def test_a_full_room_refuses_the_next_participant(
    limited_pair: tuple[Any, LoopbackPeer, LoopbackPeer],
) -> None:
    server, a, b = limited_pair
    third = await Rogue.join(server.ws_url, name="Third")  # max_participants=3
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(server.ws_url)
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "join", "room": "demo", "name": "Fourth"}))
        reply = json.loads((await ws.receive(timeout=10)).data)
        assert reply["code"] == "room_full" and reply["fatal"] is True, reply
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "bye"
        await ws.close()
    finally:
        await session.close()
        await third.close()
    await assert_rogue_gone_and_media_flowing(server, a, b)


async def test_a_second_publish_offer_while_the_first_is_handled_is_busy(
    server_factory: Callable[..., Any],
) -> None:
    # Sessions read one message at a time, so the page cannot make two offers overlap; the
    # guard is for handlers running side by side: drive two of them at once from here.
    server = await server_factory()
    rogue = await Rogue.join(server.ws_url)
    try:
        (session,) = server.app[SESSIONS]
        offer = (Path(__file__).parents[1] / "fixtures" / "chromium_offer.sdp").read_text()
        text = json.dumps({"type": "publish_offer", "sdp": offer, "purpose": "camera"})
        await asyncio.gather(session._on_text(text), session._on_text(text))
        replies = [await rogue.receive(), await rogue.receive()]
        while not {"error", "publish_answer"} <= {r["type"] for r in replies}:
            replies.append(await rogue.receive())
        busy = next(r for r in replies if r["type"] == "error")
        assert busy["code"] == "busy" and busy["in_reply_to"] == "publish_offer", busy
        assert busy["fatal"] is False
        assert sum(r["type"] == "publish_answer" for r in replies) == 1
        await session._on_text(text)  # once the first is done, another offer is taken
        await rogue.until("publish_answer")
    finally:
        await rogue.close()
