"""The room authority's end of a relay member's participant (server/member_session.py), on one
worker app: the link's join is checked as a page's (the token decides the role, a forged one is
refused), it joins under the id the member gave, its meeting messages are the meeting's and its
media messages refused; the route exists only on a front's worker."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from confsfu.tokens import make_token
from tests import conftest

pytestmark = [pytest.mark.loopback, pytest.mark.timeout(120)]
PID = "member0000ab"


async def start(worker: bool) -> tuple[web.AppRunner, web.Application, str]:
    runner, running = await conftest.start_server(
        conftest.test_settings(reconnect_grace_s=60), worker=worker
    )
    return runner, running.app, f"127.0.0.1:{running.port}"


@pytest.fixture
async def worker() -> AsyncIterator[tuple[web.Application, str]]:
    runner, app, base = await start(worker=True)
    yield app, base
    await runner.cleanup()


def token(name: str, role: str = "participant", secret: str = conftest.SECRET) -> str:
    return make_token(secret, room="council", name=name, role=role, now_s=int(time.time()))


class Link:
    """A member's link, as authority_link.py opens it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def next(self, kind: str) -> dict[str, Any]:
        while True:
            frame = await self.ws.receive(timeout=30)
            assert frame.type == aiohttp.WSMsgType.TEXT, frame
            message: dict[str, Any] = json.loads(frame.data)
            self.messages.append(message)
            if message["type"] == kind:
                return message


async def open_link(
    session: aiohttp.ClientSession, base: str, tok: str, pid: str = PID
) -> tuple[Link, dict[str, Any]]:
    ws = await session.ws_connect(f"http://{base}/member", params={"pid": pid})
    link = Link(ws)
    await link.next("hello")
    await ws.send_str(json.dumps({"type": "join", "room": "council", "token": tok}))
    frame = await ws.receive(timeout=30)
    first: dict[str, Any] = json.loads(frame.data)
    link.messages.append(first)
    return link, first


def latest(peer: LoopbackPeer, kind: str) -> dict[str, Any]:
    return next((m for m in reversed(peer.messages) if m["type"] == kind), {})


async def test_a_member_s_participant_is_decided_here(
    worker: tuple[web.Application, str], peers: list[LoopbackPeer]
) -> None:
    app, base = worker
    chair = LoopbackPeer(f"ws://{base}/ws", name="Osaka", token=token("Osaka", "chair"))
    peers.append(chair)
    await chair.join(publish=False)
    async with aiohttp.ClientSession() as session:
        # A token signed with another secret: refused, whatever role it claims.
        forged, first = await open_link(session, base, token("Mallory", "chair", "x" * 40))
        assert first["type"] == "error" and first["fatal"], first
        await forged.next("bye")

        link, joined = await open_link(session, base, token("Kyiv"))
        assert joined["type"] == "joined", joined
        assert (joined["participant_id"], joined["role"]) == (PID, "participant")
        assert [p["name"] for p in joined["participants"]] == ["Osaka"]
        await link.next("room_state")
        await link.next("chat_history")
        await chair.wait_for(
            lambda: any(
                m["type"] == "participant_joined" and m["participant"]["id"] == PID
                for m in chair.messages
            )
        )
        live = app[HUB].rooms["council"]
        assert live.remote == {PID}

        await link.ws.send_str(json.dumps({"type": "raise_hand"}))
        await chair.wait_for(lambda: latest(chair, "room_state").get("hands") == [PID])
        assert (await link.next("room_state"))["hands"] == [PID]

        # A participant's chair action is refused as on a page; media is not negotiated here.
        mute = {"type": "chair", "action": "mute", "participant_id": chair.participant_id}
        await link.ws.send_str(json.dumps({**mute, "kind": "audio"}))
        assert (await link.next("error"))["code"] == "forbidden"
        await link.ws.send_str(json.dumps({"type": "view_page", "page": 1}))
        assert (await link.next("error"))["code"] == "not_here"

        # The chair's orders reach the link, for the member to apply.
        mute_kyiv = {"type": "chair", "action": "mute", "participant_id": PID, "kind": "video"}
        await chair.send(mute_kyiv)
        while True:
            updated = await link.next("participant_updated")
            if updated["participant"]["id"] == PID and updated["participant"]["chair_muted_video"]:
                break

        async with session.get(f"http://{base}/healthz") as response:
            assert (await response.json())["participants"] == 1, "counted at the member"

        # The link dropped: the participant is away (it may come back), as a page would be.
        await link.ws.close()

        def away() -> bool:
            for m in reversed(chair.messages):
                if m["type"] == "participant_updated" and m["participant"]["id"] == PID:
                    return bool(m["participant"]["connection"] == "reconnecting")
            return False

        await chair.wait_for(away, 30)
        assert live.remote == set()

        async with session.get(f"http://{base}/member", params={"pid": "not a pid!"}) as bad:
            assert bad.status == 400


async def test_no_member_route_on_a_server_of_its_own() -> None:
    runner, _app, base = await start(worker=False)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{base}/member", params={"pid": PID}) as response,
        ):
            assert response.status == 404
    finally:
        await runner.cleanup()
