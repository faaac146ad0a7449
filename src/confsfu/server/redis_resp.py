"""A small Redis client (RESP2 over asyncio streams): the few commands the front's snapshot
mirror needs, one at a time, with bounded replies; reconnects on the next command after a
failure. (No dependency for a handful of commands.)"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import unquote, urlsplit

Reply = bytes | int | str | list["Reply"] | None
MAX_BULK_BYTES = 16 << 20  # a reply's string: a meeting snapshot is at most 4 MiB
MAX_ARRAY = 10_000
TIMEOUT_S = 10.0


class RedisError(Exception):
    """Redis answered with an error, or could not be reached or read (the message says)."""


def _encode(args: tuple[str | bytes | int, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Redis:
    """One connection to the server at `url` (`redis://[:password@]host[:port][/db]`)."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"a Redis URL is redis://host:port/db, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 6379
        self.db = int(parts.path.strip("/") or 0)
        self.password = unquote(parts.password) if parts.password else None
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def command(self, *args: str | bytes | int) -> Reply:
        """Send one command, return its reply; RedisError for an error reply or a failure."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._command(args), self.timeout_s)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                await self._drop()
                raise RedisError(f"redis at {self.host}:{self.port}: {exc!r}") from exc

    async def _command(self, args: tuple[str | bytes | int, ...]) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            if self.password is not None:
                await self._send(("AUTH", self.password))
            if self.db:
                await self._send(("SELECT", self.db))
        return await self._send(args)

    async def _send(self, args: tuple[str | bytes | int, ...]) -> Reply:
        assert self._reader is not None and self._writer is not None
        self._writer.write(_encode(args))
        await self._writer.drain()
        reply = await _read(self._reader, 0)
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def _read(reader: asyncio.StreamReader, depth: int) -> Reply | RedisError:
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        return RedisError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        if size > MAX_BULK_BYTES:
            raise ValueError(f"a reply of {size} bytes")
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None
        if count > MAX_ARRAY or depth > 4:
            raise ValueError(f"an array of {count} at depth {depth}")
        items: list[Reply] = []
        for _ in range(count):
            item = await _read(reader, depth + 1)
            if isinstance(item, RedisError):
                raise item
            items.append(item)
        return items
    raise ValueError(f"not a RESP reply: {line[:40]!r}")
