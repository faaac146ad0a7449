"""A worker's control routes (server/worker_control.py): its rooms' meeting snapshots on the
control WebSocket as they change, `POST /restore` for a room's next home; neither exists on a
server that is not a front's worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from confsfu.conference.meeting import Meeting
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.snapshot import capture_json
from confsfu.conference.snapshot_model import parse
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from confsfu.server.worker_control import OUTLET
from confsfu.settings import RoomSettings
from tests import conftest

pytestmark = [pytest.mark.loopback, pytest.mark.timeout(120)]


async def start(worker: bool) -> tuple[web.AppRunner, web.Application, str]:
    rooms = [RoomSettings(name="demo", open=True), RoomSettings(name="council")]
    rooms.append(RoomSettings(name="annex"))
    runner, running = await conftest.start_server(
        conftest.test_settings(reconnect_grace_s=60, rooms=rooms), worker=worker
    )
    return runner, running.app, running.http_url


@pytest.fixture
async def worker() -> AsyncIterator[tuple[web.Application, str]]:
    runner, app, base = await start(worker=True)
    yield app, base
    await runner.cleanup()


async def next_snapshot(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], str]:
    frame = await ws.receive(timeout=30)
    assert frame.type == aiohttp.WSMsgType.TEXT, frame
    header, _, body = frame.data.partition("\n")
    return json.loads(header), body


async def test_snapshots_follow_the_meeting_and_a_next_home_starts_from_one(
    worker: tuple[web.Application, str], peers: list[LoopbackPeer]
) -> None:
    app, base = worker
    async with aiohttp.ClientSession() as http:
        control = await http.ws_connect(f"{base}/control", max_msg_size=8 << 20)
        peer = LoopbackPeer(f"{base.replace('http', 'ws')}/ws", name="Dakar", room="demo")
        peers.append(peer)
        await peer.join(publish=False)
        await peer.send({"type": "raise_hand"})
        while True:  # snapshots as the meeting changes, until one has the hand
            header, body = await next_snapshot(control)
            assert header["type"] == "meeting_snapshot" and header["room"] == "demo"
            snap = parse(body)
            if [h.pid for h in snap.floor.hands] == [peer.participant_id]:
                break

        # the room is live here: a snapshot for it changes nothing
        async with http.post(f"{base}/restore", params={"room": "demo"}, data=body) as r:
            assert (r.status, (await r.json())["result"]) == (200, "held")
        # another room's next home: starts from it, participants away until they come back
        other = Meeting(Room("council"), now_ms=0, unix_ms=1_700_000_000_000)
        other.join(0, "x1", "Quito", Role.CHAIR, "t-quito")
        other.chair(1, "x1", "lock")
        text = capture_json(other)
        async with http.post(f"{base}/restore", params={"room": "council"}, data=text) as r:
            assert (r.status, (await r.json())["result"]) == (200, "restored")
        live = app[HUB].rooms["council"]
        assert live.meeting.moderation.locked and live.meeting.presence.is_away("x1")
        header, body = await next_snapshot(control)  # its new home's own, at once
        assert header["room"] == "council" and parse(body).locked

        for room, data, status in [
            ("council", text, 200),  # held now
            ("nowhere", text, 400),  # not a configured room
            ("annex", text, 400),  # another room's
            ("annex", "{garbled", 400),
            ("annex", "x" * (4 << 20) + "x", 413),
        ]:
            async with http.post(f"{base}/restore", params={"room": room}, data=data) as r:
                assert r.status == status, (room, await r.text())
        await control.close()


async def test_a_server_not_a_worker_has_no_control_routes() -> None:
    runner, _app, base = await start(worker=False)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/restore", params={"room": "demo"}, data="{}") as r:
                assert r.status in (404, 405)
            async with http.get(f"{base}/control") as r:
                assert r.status in (404, 405)
    finally:
        await runner.cleanup()


async def test_a_stopping_worker_closes_the_control_connection() -> None:
    """Else the connection would hold the worker's stop until aiohttp's shutdown timeout."""
    runner, _app, base = await start(worker=True)
    async with aiohttp.ClientSession() as http:
        control = await http.ws_connect(f"{base}/control")
        stopping = asyncio.ensure_future(runner.cleanup())
        frame = await control.receive(timeout=60)
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), frame
        await stopping


async def test_a_room_let_go_while_no_front_listened_is_told_when_one_connects(
    worker: tuple[web.Application, str],
) -> None:
    app, base = worker
    app[OUTLET].forgotten("annex")  # as the hub does when an ended meeting's room goes
    async with aiohttp.ClientSession() as http:
        control = await http.ws_connect(f"{base}/control")
        frame = await control.receive(timeout=30)
        assert json.loads(frame.data) == {"type": "room_forgotten", "room": "annex"}
        await control.close()
