"""Before a connection has a worker the front answers it as a worker would: the same replies
to pings, bad frames, out-of-order messages and refused joins; a valid join names its room."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from confsfu.server.front_join import hello, read_join
from confsfu.settings import Settings
from confsfu.tokens import make_token
from tests import conftest
from tests.conftest import SECRET, RunningServer

Step = str | bytes


@pytest.fixture
async def front_join() -> AsyncIterator[str]:
    """An app that only reads the join, as the front does, and says which room it placed."""
    settings: Settings = conftest.test_settings(max_message_bytes=2048)

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4096)
        await ws.prepare(request)
        await ws.send_str(hello())
        join = await read_join(ws, settings)
        if join is not None:
            await ws.send_json({"type": "placed", "room": join.room, "join": join.text})
            await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"ws://127.0.0.1:{port}/ws"
    await runner.cleanup()


async def exchange(
    url: str, steps: list[Step], sentinel: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Send the steps, then read every reply until the server closes. With `sentinel`, a ping
    follows the steps (which hold none) and its pong ends an exchange the server kept open."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        replies: list[dict[str, Any]] = []
        for step in [*steps, PING] if sentinel else steps:
            if isinstance(step, bytes):
                await ws.send_bytes(step)
            else:
                await ws.send_str(step)
        while True:
            frame = await ws.receive(timeout=20)
            if frame.type != aiohttp.WSMsgType.TEXT:
                return replies, ws.close_code
            reply = json.loads(frame.data)
            if sentinel and reply == {"type": "pong"}:
                return replies, None
            replies.append(reply)


PING = json.dumps({"type": "ping"})


def guest(room: str) -> str:
    return json.dumps({"type": "join", "room": room, "name": "Lima"})


def with_token(room: str, secret: str = SECRET) -> str:
    token = make_token(secret, room=room, name="Lima", role="participant", now_s=int(time.time()))
    return json.dumps({"type": "join", "token": token})


REFUSED: dict[str, list[Step]] = {
    "not json": ["{"],
    "an unknown type": ['{"type": "dance"}'],
    "a binary frame": [b"\x00\x01"],
    "out of order": ['{"type": "raise_hand"}'],
    "a bad join": ['{"type": "join", "room": ""}'],
    "a forged token": [with_token("council", "another-secret-0123456789abcdef0123")],
    "no such room": [guest("nowhere")],
    "a closed room without a token": [guest("council")],
    "too large": [json.dumps({"type": "ping", "pad": "x" * 3000})],
    "a leave": ['{"type": "leave"}'],
}


@pytest.mark.parametrize("steps", list(REFUSED.values()), ids=list(REFUSED))
async def test_the_front_answers_as_a_worker_before_the_join(
    front_join: str, server_factory: Any, steps: list[Step]
) -> None:
    server: RunningServer = await server_factory(max_message_bytes=2048)
    assert PING not in steps
    theirs, their_code = await exchange(server.ws_url, steps, sentinel=True)
    ours, our_code = await exchange(front_join, steps, sentinel=True)
    assert ours[0]["type"] == "hello" and ours[0] == theirs[0]
    assert ours[1:] == theirs[1:]
    assert our_code == their_code


@pytest.mark.parametrize(
    ("steps", "room", "replies"),
    [
        ([guest("demo")], "demo", []),
        (['{"type": "ping"}', b"\x00", guest("demo")], "demo", ["pong", "error"]),
        (['{"type": "raise_hand"}', with_token("council")], "council", ["error"]),
    ],
    ids=["a guest", "a ping and a binary frame first", "a token after a refusal"],
)
async def test_a_valid_join_names_its_room(
    front_join: str, steps: list[Step], room: str, replies: list[str]
) -> None:
    ours, _ = await exchange(front_join, steps)
    assert [m["type"] for m in ours[1:-1]] == replies
    assert ours[-1]["type"] == "placed" and ours[-1]["room"] == room
    assert ours[-1]["join"] == steps[-1], "the join goes to the worker as the page sent it"
