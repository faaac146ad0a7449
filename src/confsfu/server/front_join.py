"""The front's side of a connection before it has a worker: hello, then the first `join` read
with the limits and answers a worker gives (pings answered, a leave or a refusal closes)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import WSCloseCode, WSMsgType, web

from confsfu import __version__
from confsfu.conference.permissions import Role
from confsfu.server.clock import clock_ms
from confsfu.server.joining import admit_join
from confsfu.settings import Settings
from confsfu.signalling.connection import (
    ConnectionPhase,
    SignallingError,
    parse_client_message,
)
from confsfu.signalling.messages import Bye, Error, Hello, Join, Leave, Message, Ping, Pong
from confsfu.signalling.ratelimit import TokenBucket, utf8_longer_than

JOIN_WITHIN_S = 60.0  # a connection that has not sent a valid join by then is closed


@dataclass(frozen=True, slots=True)
class JoinRead:
    room: str
    text: str  # the join as the page sent it, for the worker
    listener: bool = False  # joins the room's audience (placed as one: Placement.place_listener)


def hello() -> str:
    return Hello(server=f"confsfu {__version__}").model_dump_json()


async def read_join(ws: web.WebSocketResponse, settings: Settings) -> JoinRead | None:
    """The room the page's first valid join asks for, or None once the connection is answered
    and closing (it left, was refused, sent too much, or took too long)."""
    try:
        return await asyncio.wait_for(_read_join(ws, settings), JOIN_WITHIN_S)
    except TimeoutError:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no join")
        return None


async def _read_join(ws: web.WebSocketResponse, settings: Settings) -> JoinRead | None:
    phase = ConnectionPhase()
    bucket = TokenBucket(settings.messages_per_s, settings.message_burst)
    async for frame in ws:
        if frame.type == WSMsgType.BINARY:
            await _refuse(ws, SignallingError("bad_json", "binary frames are not used"))
            continue
        if frame.type != WSMsgType.TEXT:
            continue
        text: str = frame.data
        if not bucket.allow(clock_ms()):
            why = f"more than {settings.messages_per_s:g} messages a second"
            await _close(ws, SignallingError("rate_limited", why), WSCloseCode.POLICY_VIOLATION)
            return None
        if utf8_longer_than(text, settings.max_message_bytes):
            why = f"a message may be at most {settings.max_message_bytes} bytes"
            await _close(ws, SignallingError("too_large", why), WSCloseCode.MESSAGE_TOO_BIG)
            return None
        try:
            message = parse_client_message(text)
            phase.accept(message.type)
            if isinstance(message, Join):
                admission = admit_join(message, settings)
                return JoinRead(admission.room, text, admission.role == Role.LISTENER)
        except SignallingError as exc:
            if exc.fatal:
                await _close(ws, exc, WSCloseCode.OK)
                return None
            await _refuse(ws, exc)
            continue
        if isinstance(message, Ping):
            await _send(ws, Pong())
        elif isinstance(message, Leave):
            await _send(ws, Bye(reason="you left the meeting"))
            await ws.close()
            return None
    return None


async def _send(ws: web.WebSocketResponse, message: Message) -> None:
    if not ws.closed:
        await ws.send_str(message.model_dump_json())


async def _refuse(ws: web.WebSocketResponse, exc: SignallingError, *, fatal: bool = False) -> None:
    await _send(
        ws,
        Error(
            code=exc.code,
            message=exc.message,
            field=exc.field,
            in_reply_to=exc.in_reply_to,
            fatal=fatal,
            reason=exc.reason,
        ),
    )


async def _close(ws: web.WebSocketResponse, exc: SignallingError, code: int) -> None:
    """A fatal refusal, as a worker says it: error, bye, close."""
    await _refuse(ws, exc, fatal=True)
    await _send(ws, Bye(reason=exc.message))
    await ws.close(code=code, message=exc.code.encode() if code != WSCloseCode.OK else b"")


async def refuse_listener(ws: web.WebSocketResponse, max_listeners: int) -> None:
    """The room's audience is full across its workers: refused as a worker refuses a listener
    beyond its room's limit (conference/audience.py), and closed."""
    why = (
        "this meeting has no audience"
        if max_listeners == 0
        else f"the audience is full ({max_listeners} listeners)"
    )
    exc = SignallingError("audience_full", why, in_reply_to="join", fatal=True)
    await _close(ws, exc, WSCloseCode.OK)


async def refuse_unplaced(ws: web.WebSocketResponse, reason: str) -> None:
    """No worker can take the room now: closed as "try again later" (a page that had joined
    reconnects by itself; the protocol has no message for it)."""
    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=reason.encode())
