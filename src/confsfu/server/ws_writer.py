"""The one writer of a participant's WebSocket: a bounded queue, written in order, never awaited
by whoever queues; a page that stops reading has its socket cut, not the room held up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import WSCloseCode, web

from confsfu.signalling.outbox import Outbox

QUEUE_FULL = "send_queue_full"  # the close message when a page stopped reading
FLUSH_S = 2.0  # at the end of a session: how long its last messages (bye) get to go out
ABORT_S = 1.0  # a stalled page's close handshake gets this long before the socket is cut


class _CloseMark:
    """In the send queue: close the WebSocket once everything before it was written."""

    def __init__(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        self.code, self.message = code, message


_Out = str | _CloseMark | None  # None: the writer stops


class SocketWriter:
    """Queues text for `ws` within `outbox`'s limits; `on_overflow(why)` is told when a page
    let its queue fill, just before its socket is cut."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        outbox: Outbox,
        on_overflow: Callable[[str], None],
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self._outbox = outbox
        self._on_overflow = on_overflow
        self.transport = transport  # to cut a stalled page that does not take its close
        self._queue: asyncio.Queue[_Out] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self._cutting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._write())

    def put(self, text: str) -> None:
        """Queue `text`; never waits for the socket. Over the limits, the socket is cut."""
        if self.ws.closed or self._outbox.overflowed:
            return
        if self._outbox.admit(len(text)):  # characters: bytes for the JSON we send, near enough
            self._queue.put_nowait(text)
        else:
            self._overflowed()

    def close_when_sent(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        self._queue.put_nowait(_CloseMark(code, message))

    def _overflowed(self) -> None:
        """The page stopped reading: cut its socket now (a close handshake would wait behind
        what it does not read); the reader then ends the session as a dropped connection."""
        self._on_overflow(self._outbox.why())
        if self.task is not None:
            self.task.cancel()  # it may be stuck in a send that will not finish
        if self.transport is not None:
            self.transport.abort()
        else:
            self._cutting = asyncio.ensure_future(self._close_now())

    async def _close_now(self) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=QUEUE_FULL.encode()),
                ABORT_S,
            )

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, _CloseMark):
                    await self.ws.close(code=item.code, message=item.message)
                    return
                await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return
            self._outbox.written(len(item))

    async def finish(self) -> None:
        """Let the last messages go out (briefly), then end the writer: no task outlives it."""
        writer = self.task
        if writer is None:
            return
        self._queue.put_nowait(None)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(writer), FLUSH_S)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        if self._cutting is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._cutting
