"""A redis-server of a test's own (Debian's), on a free port, stopped after."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from confsfu.server.redis_resp import Redis, RedisError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server(directory: Path, binds: Sequence[str] = ()) -> AsyncIterator[int]:
    """Its port, once it answers PING; it listens on 127.0.0.1 and `binds`, keeps nothing on
    disk (`directory` is its working one) and is stopped (killed if it hangs) after."""
    if shutil.which("redis-server") is None:
        pytest.fail("this test needs Debian's redis-server: run it as CI does (scripts/test.sh)")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1", *binds),
        *("--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(directory)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    client = Redis(f"redis://127.0.0.1:{port}/0")
    try:
        deadline = time.monotonic() + 30
        while not await _answers(client):
            assert time.monotonic() < deadline, "redis-server answers"
            await asyncio.sleep(0.1)
        yield port
    finally:
        await client.close()
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _answers(client: Redis) -> bool:
    with contextlib.suppress(RedisError):
        return await client.command("PING") == "PONG"
    return False
