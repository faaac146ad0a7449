"""A Chromium subscriber behind a rate-limited link (its own network namespace, tc tbf) goes
down a simulcast layer while frames keep being decoded, and back up when the limit is lifted."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from confsfu.tokens import make_token
from tests.browser.conftest import open_page, screenshot
from tests.browser.netns import Namespace, namespace, run
from tests.browser.test_browser_simulcast import STAGE_VIDEO
from tests.browser.weak_link import chromium_in
from tests.conftest import SECRET, start_server
from tests.conftest import test_settings as make_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A network namespace of this test's own, joined to this host by a veth pair."""
    if not shutil.which("tc"):
        pytest.fail("this test needs iproute2's tc: run it as CI does")
    with namespace("confsfu", "10.213.77") as ns:
        yield ns


@pytest.fixture
async def inner_browser(netns: Namespace, tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium started inside the namespace (Playwright drives it over pipes)."""
    async with chromium_in(netns, tmp_path) as browser:
        yield browser


def limit(ns: Namespace, rate: str | None) -> None:
    """Shape what the server sends into the namespace (the subscriber's downlink)."""
    subprocess.run(["tc", "qdisc", "del", "dev", ns.host_if, "root"], capture_output=True)
    if rate is not None:
        run("tc", "qdisc", "add", "dev", ns.host_if, "root", "tbf", "rate", rate,
            "burst", "20kb", "latency", "150ms")  # fmt: skip


async def watch(page: Page, done: Any, timeout_s: float) -> tuple[float, dict[str, Any]]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    last: dict[str, Any] = {}
    while loop.time() - start < timeout_s:
        last = await page.evaluate(STAGE_VIDEO) or {}
        if last and done(last):
            return loop.time() - start, last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s; last seen {last}")


async def test_weak_downlink_gets_a_lower_layer_then_recovers(
    netns: Namespace, browser: Browser, inner_browser: Browser
) -> None:
    settings = make_settings(ice={"candidates": "host"}, bandwidth={"upgrade_hold_ms": 3000})
    runner, server = await start_server(settings, host="0.0.0.0")
    try:
        chair = make_token(
            SECRET, room="council", name="Seoul", role="chair", now_s=int(time.time())
        )
        presenter = await open_page(browser, f"{server.http_url}/?token={chair}")
        viewer = await open_page(
            inner_browser, f"http://{netns.host_ip}:{server.port}/?room=demo&name=Kinshasa"
        )
        guest = make_token(
            SECRET, room="council", name="Kinshasa", role="participant", now_s=int(time.time())
        )
        await viewer.goto(f"http://{netns.host_ip}:{server.port}/?token={guest}")
        # Seoul takes the floor, so Seoul is on the stage whatever the fake microphones do.
        await presenter.wait_for_function("window.conference && window.conference.self")
        await presenter.evaluate(
            "window.conference.chair('grant_floor', {participant_id: window.conference.self.id})"
        )
        _, full = await watch(viewer, lambda s: s["width"] == 1280 and s["decoded"] > 20, 45)

        limit(netns, "350kbit")
        took_down, low = await watch(viewer, lambda s: s["width"] < 1280, 45)
        await asyncio.sleep(2)  # the shaper's queue drains
        before = await viewer.evaluate(STAGE_VIDEO)
        await asyncio.sleep(4)
        after = await viewer.evaluate(STAGE_VIDEO)
        fps = (after["decoded"] - before["decoded"]) / 4
        print(f"on the weak link: {after}, {fps:.1f} frames/s decoded")
        assert fps >= 3, "the picture froze on the weak link"
        await screenshot(viewer, "weak-downlink.png")

        limit(netns, None)
        # Without bandwidth probing the climb follows the browser's REMB: tens of seconds.
        took_up, _high = await watch(viewer, lambda s: s["width"] == 1280, 120)
        print(f"down a layer after {took_down:.1f} s ({low}), back up after {took_up:.1f} s")
        assert presenter is not None and full["name"] == "Seoul"
    finally:
        limit(netns, None)
        await runner.cleanup()
