"""A meeting nobody has been in for `empty_meeting_end_s` ends: its report is written and the
room forgotten, so a server hosting meeting after meeting keeps nothing of them for good; the
next to join starts a new meeting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB, create_app
from tests import conftest

pytestmark = [pytest.mark.loopback, pytest.mark.timeout(60)]

EMPTY_END_S = 0.5
# A return must come within the wait however busy the machine: a wait this long is not missed.
LONG_EMPTY_END_S = 6.0


@pytest.fixture
async def app(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[web.Application, str]]:
    empty_end_s = getattr(request, "param", EMPTY_END_S)
    settings = conftest.test_settings(
        empty_meeting_end_s=empty_end_s, report_dir=tmp_path / "reports"
    )
    application = create_app(settings, keep_reports=True)
    runner = web.AppRunner(application, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]
    yield application, f"ws://127.0.0.1:{port}/ws"
    await runner.cleanup()


async def until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_an_emptied_meeting_ends_with_its_report_and_the_next_join_starts_anew(
    app: tuple[web.Application, str], tmp_path: Path
) -> None:
    application, url = app
    hub = application[HUB]
    first = LoopbackPeer(url, name="Dakar", room="demo")
    await first.join()
    await asyncio.sleep(EMPTY_END_S * 2)  # someone is in: nothing ends
    assert "demo" in hub.rooms and not hub.rooms["demo"].meeting.moderation.ended
    await first.close()

    await until(lambda: "demo" not in hub.rooms)
    reports = sorted((tmp_path / "reports").glob("demo-*.json"))
    assert len(reports) == 1
    written = json.loads(reports[0].read_text())
    assert written["ended"] is not None
    assert [p["name"] for p in written["participants"]] == ["Dakar"]

    second = LoopbackPeer(url, name="Oslo", room="demo")
    await second.join()  # a new meeting, not "the meeting has ended"
    meeting = hub.rooms["demo"].meeting
    assert not meeting.moderation.ended
    assert [p["name"] for p in json.loads(meeting.report.to_json(0))["participants"]] == ["Oslo"]
    await second.close()


@pytest.mark.parametrize("app", [LONG_EMPTY_END_S], indirect=True)
async def test_a_return_within_the_wait_keeps_the_meeting(
    app: tuple[web.Application, str],
) -> None:
    application, url = app
    hub = application[HUB]
    loop = asyncio.get_running_loop()
    first = LoopbackPeer(url, name="Dakar", room="demo")
    await first.join()
    meeting = hub.rooms["demo"].meeting
    await first.close()
    emptied = loop.time()
    back = LoopbackPeer(url, name="Dakar", room="demo")
    await back.join()
    assert loop.time() - emptied < LONG_EMPTY_END_S, "the return came too late to test it"
    await asyncio.sleep(LONG_EMPTY_END_S + 1.0 - (loop.time() - emptied))  # past the wait
    assert hub.rooms["demo"].meeting is meeting and not meeting.moderation.ended
    await back.close()
