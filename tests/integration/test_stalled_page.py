"""A page that stops reading its WebSocket holds up nobody else, and is closed once its send
queue is full."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from confsfu.server.app import HUB, SESSIONS

pytestmark = pytest.mark.loopback

SETTINGS: dict[str, Any] = {
    "send_queue_messages": 64,
    "send_queue_bytes": 64 * 1024,
    "messages_per_s": 2000,
    "message_burst": 2000,
    "heartbeat_s": 30,  # the queue limit, not the heartbeat, must be what closes the page
}
NAME = "x" * 40  # long names: every participant_updated is a few hundred bytes


async def join(session: aiohttp.ClientSession, url: str, name: str) -> Any:
    ws = await session.ws_connect(url)
    await ws.send_str(json.dumps({"type": "join", "room": "demo", "name": name}))
    while True:
        message = json.loads((await ws.receive(timeout=10)).data)
        if message["type"] == "subscribe_offer":
            return ws, message


def shrink(sock: Any, option: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, option, 4096)


async def test_a_page_that_stops_reading_holds_up_nobody_and_is_closed(
    server_factory: Callable[..., Any],
) -> None:
    server = await server_factory(**SETTINGS)
    hub = server.app[HUB]
    async with aiohttp.ClientSession() as http:
        stalled, _ = await join(http, server.ws_url, "Stalled " + NAME)
        shrink(stalled.get_extra_info("socket"), socket.SO_RCVBUF)
        (stalled_session,) = list(server.app[SESSIONS])
        # The server's side of the stalled socket: a small kernel buffer, so it fills soon.
        shrink(stalled_session._writer.transport.get_extra_info("socket"), socket.SO_SNDBUF)
        observer, _ = await join(http, server.ws_url, "Observer " + NAME)
        driver, _ = await join(http, server.ws_url, "Driver " + NAME)
        drain = asyncio.ensure_future(read_all(driver))  # the driver reads, just not here
        participants = hub.rooms["demo"].room.participants
        driver_id = next(pid for pid, p in participants.items() if p.name.startswith("Driver"))
        worst_s, raised = 0.0, False
        for _ in range(3000):  # each round: a room_state and a participant_updated for everyone
            raised = not raised
            sent = time.monotonic()
            await driver.send_str(json.dumps({"type": "raise_hand" if raised else "lower_hand"}))
            while True:
                message = json.loads((await observer.receive(timeout=5)).data)
                if message["type"] == "room_state" and (driver_id in message["hands"]) == raised:
                    break
            worst_s = max(worst_s, time.monotonic() - sent)
            if hub.send_queue_overflows:
                break
        assert hub.send_queue_overflows == 1, "the stalled page was never closed"
        assert worst_s < 1.0, f"the observer waited {worst_s:.2f} s for a room_state"
        for _ in range(100):
            if stalled_session.live is None:
                break
            await asyncio.sleep(0.05)
        assert stalled_session.live is None  # its session ended: writer and reader both
        assert stalled_session._writer.task is not None and stalled_session._writer.task.done()
        async with http.get(server.http_url + "/metrics") as response:
            assert "confsfu_send_queue_overflows_total 1.0" in await response.text()
        for ws in (observer, driver, stalled):
            await ws.close()
        drain.cancel()


async def read_all(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass
