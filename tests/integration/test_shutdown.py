"""SIGTERM on `confsfu serve`: pages are told, sockets close GOING_AWAY, reports stay on disk."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.raw_ws import next_json
from tests.integration.serve_process import start_serve

pytestmark = pytest.mark.loopback


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """`confsfu serve` in a subprocess on a free port, loopback ICE, reports into tmp_path."""
    env = {
        **os.environ,
        "CONFSFU_ICE__CANDIDATES": "loopback",
        "CONFSFU_REPORT_DIR": str(tmp_path / "reports"),
    }
    proc, port = await start_serve(env=env, log=tmp_path / "server.log")
    try:
        yield proc, port
    finally:
        if proc.returncode is None:  # only the process this fixture started
            proc.kill()
            await proc.wait()


async def test_sigterm_pauses_the_meeting_and_keeps_the_report(
    serve: tuple[asyncio.subprocess.Process, int], tmp_path: Path
) -> None:
    proc, port = serve
    async with aiohttp.ClientSession() as session:
        joined = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
        lobby = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")  # connected, never joined
        for ws in (joined, lobby):
            assert (await next_json(ws))["type"] == "hello"
        await joined.send_str(json.dumps({"type": "join", "room": "demo", "name": "Oslo"}))
        me = await next_json(joined)
        assert me["type"] == "joined", me
        while (await next_json(joined))["type"] != "subscribe_offer":
            pass

        proc.send_signal(signal.SIGTERM)
        for ws in (joined, lobby):
            message = await next_json(ws)
            while message["type"] != "notice":  # room updates may still be on their way
                message = await next_json(ws)
            assert message["code"] == "server_stopping", message
            bye = await next_json(ws)
            assert bye == {
                "type": "bye",
                "reason": "the server is restarting; the meeting will resume",
            }
            frame = await ws.receive(timeout=10)
            assert frame.type == aiohttp.WSMsgType.CLOSE, frame
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
            await ws.close()

    assert await asyncio.wait_for(proc.wait(), 5) == 0

    reports = sorted((tmp_path / "reports").iterdir())
    assert [p.suffix for p in reports] == [".csv", ".json"], reports
    assert all(p.name.startswith("demo-") for p in reports)
    report = json.loads(reports[1].read_text())
    assert "Oslo" in json.dumps(report)
    assert "Oslo" in reports[0].read_text()

    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    assert all({"ts", "level", "room", "participant", "msg"} <= set(line) for line in lines)
    joined_line = next(line for line in lines if line["msg"].startswith("Oslo joined"))
    assert joined_line["room"] == "demo" and joined_line["participant"] == me["participant_id"]
    assert any(line["msg"].startswith("meeting report written") for line in lines)


async def test_a_page_that_never_answers_does_not_hold_the_process(
    serve: tuple[asyncio.subprocess.Process, int], tmp_path: Path
) -> None:
    proc, port = serve
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 101")
    try:
        proc.send_signal(signal.SIGTERM)  # the client reads nothing more and never closes
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        writer.close()


async def test_an_unwritable_report_directory_does_not_stop_the_shutdown(
    serve: tuple[asyncio.subprocess.Process, int], tmp_path: Path
) -> None:
    proc, port = serve
    (tmp_path / "reports").write_text("a file where the directory should be")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
        assert (await next_json(ws))["type"] == "hello"
        await ws.send_str(json.dumps({"type": "join", "room": "demo", "name": "Oslo"}))
        assert (await next_json(ws))["type"] == "joined"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    failed = next(line for line in lines if "report directory" in line["msg"])
    assert failed["level"] == "error" and "exc" in failed
