"""Firefox (Debian's firefox-esr, over WebDriver BiDi, in a network namespace of its own) as a
first-class participant: it meets Chromium, publishes simulcast whose layers the server turns off
and on, runs the chair panel, and comes back into its tile after a reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, Page

from confsfu.server.app import HUB
from confsfu.server.clock import clock_ms
from confsfu.tokens import make_token
from tests.browser import weak_link
from tests.browser.conftest import PageDriver, open_page, page_screenshot
from tests.browser.firefox import Firefox
from tests.browser.netns import Namespace
from tests.browser.test_browser_chair import STAGE, wait_for
from tests.browser.test_browser_conference import MEDIA_FROM_OTHERS, wait_until
from tests.browser.test_browser_reconnect import TILE
from tests.browser.test_browser_simulcast import STAGE_VIDEO
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser


def firefox_url(server: RunningServer, ns: Namespace, query: str) -> str:
    """The page as Firefox reaches it: at the server's address on Firefox's namespace link."""
    return f"http://{ns.host_ip}:{server.port}/?{query}"


async def sees_and_hears(page: PageDriver, others: list[str], timeout_s: float = 30) -> None:
    async def media_ok() -> Any:
        media = await page.evaluate(MEDIA_FROM_OTHERS)
        ok = all(
            media.get(n, {}).get("frames", 0) > 5 and media.get(n, {}).get("audio", 0) > 20
            for n in others
        )
        return ok or media

    await wait_until(page, media_ok, timeout_s)


def moving(page: PageDriver, names: list[str]) -> Callable[[], Awaitable[Any]]:
    """A check for `wait_until`: every one of `names` gained frames over two seconds."""

    async def check() -> Any:
        before = await page.evaluate(MEDIA_FROM_OTHERS)
        await asyncio.sleep(2)
        after = await page.evaluate(MEDIA_FROM_OTHERS)
        gained = all(
            after.get(n, {}).get("frames", 0) > before.get(n, {}).get("frames", 0) + 3
            for n in names
        )
        return gained or after

    return check


async def test_firefox_and_chromium_see_and_hear_each_other(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    lima = await firefox.new_page(
        firefox_url(open_server, firefox_ns, "room=demo&name=Lima"), "Lima"
    )
    seoul = await open_page(browser, f"{open_server.http_url}/?room=demo&name=Seoul")
    await sees_and_hears(lima, ["Seoul"])
    await sees_and_hears(seoul, ["Lima"])
    await page_screenshot(lima, "firefox-meets-chromium.png")
    await page_screenshot(seoul, "chromium-meets-firefox.png")


async def test_firefox_keeps_its_tiles_past_the_warm_up(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    """Issue 20: Firefox's first REMB (47-83 kbit/s) took over after the 6 s warm-up and paused
    its tiles for good in 4 runs of 7; it must keep (or get back) a picture of everyone."""
    lima = await firefox.new_page(
        firefox_url(open_server, firefox_ns, "room=demo&name=Lima"), "Lima"
    )
    for name in ("Seoul", "Quito"):
        await open_page(browser, f"{open_server.http_url}/?room=demo&name={name}")
    await sees_and_hears(lima, ["Seoul", "Quito"])
    await asyncio.sleep(8)  # past the warm-up: Firefox's own estimate rules now

    await wait_until(lima, moving(lima, ["Seoul", "Quito"]), 30)
    await page_screenshot(lima, "firefox-keeps-its-tiles.png")


async def test_firefox_on_a_link_weak_at_first_gets_its_tiles_back(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    """Issue 20: Firefox's first estimate can be low (47-83 kbit/s on a busy machine), low enough
    to pause both thumbnails past the warm-up; from there the server must find the link again.
    Here the link really is weak at first (what the server sends Firefox held to 120 kbit/s),
    so the paused path runs every time; once it is lifted both tiles must come back."""
    weak_link.shape(firefox_ns, 120)
    try:
        lima = await firefox.new_page(
            firefox_url(open_server, firefox_ns, "room=demo&name=Lima"), "Lima"
        )
        for name in ("Seoul", "Quito"):
            await open_page(browser, f"{open_server.http_url}/?room=demo&name={name}")
        await asyncio.sleep(12)  # past the warm-up, on the weak link
        await page_screenshot(lima, "firefox-weak-at-first.png")
    finally:
        weak_link.shape(firefox_ns, None)

    await wait_until(lima, moving(lima, ["Seoul", "Quito"]), 40)
    await page_screenshot(lima, "firefox-tiles-back.png")


GRANT = "(id) => window.conference.chair('grant_floor', {participant_id: id})"
PIN = "(id) => window.conference._send({type: 'pin', participant_id: id})"  # the page's pin


async def chromium_page(browser: Browser, server: RunningServer, join_token: str) -> Page:
    return await open_page(browser, f"{server.http_url}/?token={join_token}")


def token(name: str, role: Literal["chair", "participant"]) -> str:
    return make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))


async def connected(page: PageDriver) -> str:
    """Waits for both of the page's connections; returns its participant id."""
    await page.wait_for_function("window.conference && window.conference.state === 'connected'")
    pid: str = await page.evaluate("window.conference.self.id")
    return pid


# The page's simulcast encodings as Firefox's sender has them: {rid: active}.
ENCODINGS = """
() => {
  const out = {};
  for (const sender of window.conference.publishPc.getSenders()) {
    for (const e of sender.getParameters().encodings ?? []) if (e.rid) out[e.rid] = e.active;
  }
  return out;
}
"""


def camera_bytes(server: RunningServer, pid: str) -> dict[str, int]:
    """Bytes the server has received on each simulcast layer of `pid`'s camera, by rid."""
    live = server.app[HUB].rooms.get("council")
    pub = live.media.publishers.get((pid, "camera")) if live else None
    if pub is None or pub.router is None:
        return {}
    return {
        s.section.rids[s.layer]: pub.receptions[ssrc].bytes_received
        for ssrc, s in pub.router.streams.items()
        if s.repairs is None and s.section.rids and ssrc in pub.receptions
    }


async def layers_arriving(server: RunningServer, pid: str) -> set[str]:
    """The layers whose bytes grew at the server over the next second."""
    before = camera_bytes(server, pid)
    await asyncio.sleep(1.0)
    after = camera_bytes(server, pid)
    return {rid for rid, n in after.items() if n > before.get(rid, 0)}


def every_layer_on(
    server: RunningServer, page: PageDriver, pid: str
) -> Callable[[], Awaitable[Any]]:
    """A check for `wait_until`: q, h and f are on at Firefox and all arrive at the server."""

    async def check() -> Any:
        arriving = await layers_arriving(server, pid)
        encodings = await page.evaluate(ENCODINGS)
        ok = arriving == {"q", "h", "f"} and encodings == dict.fromkeys("qhf", True)
        return ok or (arriving, encodings)

    return check


QUICK_LAYER_OFF = {"bandwidth": {"layer_off_delay_ms": 1000}}


@pytest.mark.parametrize("open_server", [QUICK_LAYER_OFF], indirect=True)
async def test_firefox_simulcast_layers_go_off_and_on_as_the_server_asks(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    chair = await chromium_page(browser, open_server, token("Seoul", "chair"))
    lima = await firefox.new_page(
        firefox_url(open_server, firefox_ns, f"token={token('Lima', 'participant')}"), "Lima"
    )
    quito = await chromium_page(browser, open_server, token("Quito", "participant"))
    chair_id, lima_id = await connected(chair), await connected(lima)
    quito_id = await connected(quito)

    # Lima holds the floor: she is the chair's stage, and every layer is wanted.
    await chair.evaluate(GRANT, lima_id)

    all_on = every_layer_on(open_server, lima, lima_id)
    await wait_until(lima, all_on, 20)

    # The chair takes the floor and pins Quito on its own stage (else, on the stage itself, it
    # would see Lima there, the one before it): Lima is only a thumbnail everywhere, so h and f
    # are switched off at Firefox (publisher_layers) and stop arriving.
    await chair.evaluate(PIN, quito_id)
    await chair.evaluate(GRANT, chair_id)

    async def top_off() -> Any:
        encodings = await lima.evaluate(ENCODINGS)
        arriving = await layers_arriving(open_server, lima_id)
        ok = encodings == {"q": True, "h": False, "f": False} and arriving == {"q"}
        return ok or (arriving, encodings)

    await wait_until(lima, top_off, 20)
    await page_screenshot(chair, "firefox-simulcast-thumbnail.png")

    # Lima gets the floor back: h and f come back on, and the chair's stage decodes her again.
    await chair.evaluate(PIN, None)
    await chair.evaluate(GRANT, lima_id)
    await wait_until(lima, all_on, 20)

    async def on_stage() -> Any:
        stage = await chair.evaluate(STAGE_VIDEO)
        return (stage and stage["name"] == "Lima" and stage["spatial"] == 2) or stage

    await wait_until(chair, on_stage, 20)
    await page_screenshot(chair, "firefox-simulcast-stage.png")


async def test_the_chair_panel_driven_from_firefox(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    chair = await firefox.new_page(
        firefox_url(open_server, firefox_ns, f"token={token('Ines Chair', 'chair')}"), "Chair"
    )
    amara = await chromium_page(browser, open_server, token("Amara", "participant"))
    await connected(chair)
    amara_id = await connected(amara)
    row = f'#chair-panel [data-participant-id="{amara_id}"]'

    # Mute from the menu of Amara's row in the chair's panel: her microphone is stopped, her page
    # says so.
    await chair.click(f"{row} .row-menu-button")
    await chair.wait_for_function(
        "(sel) => document.querySelector(sel)?.getAttribute('aria-expanded') === 'true'",
        arg=f"{row} .row-menu-button",
    )
    await chair.click(f"{row} .chair-mute")
    await amara.wait_for_selector("#self-tile .marker.chair-muted")
    assert not await amara.evaluate("window.conference.localStream.getAudioTracks()[0].enabled")
    await chair.wait_for_selector(f"{row} .row-state .chair-muted")

    # Amara raises her hand: her row shows it; the chair gives her the floor from the row.
    await amara.click("#hand-toggle")
    await chair.wait_for_selector(f"{row} .badge.hand")
    await chair.click(f"{row} .hand-grant")

    async def amara_on_stage() -> Any:
        stage = await chair.evaluate(STAGE)
        return (stage and stage["name"] == "Amara" and "has the floor" in stage["caption"]) or stage

    await wait_until(chair, amara_on_stage, 15)
    # Her own page hears of the floor by its own room_state, maybe a moment after the chair's.
    await amara.wait_for_function(
        "(document.querySelector('#floor-banner')?.textContent ?? '')"
        ".startsWith('You have the floor')",
        timeout=10_000,
    )

    async def amara_seen() -> Any:
        media = await chair.evaluate(MEDIA_FROM_OTHERS)
        return media.get("Amara", {}).get("frames", 0) > 5 or media

    await wait_until(chair, amara_seen, 10)  # her microphone stays muted by the chair
    await page_screenshot(chair, "firefox-chair-panel.png")


async def test_a_reloaded_firefox_comes_back_in_its_tile(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    chair = await chromium_page(browser, open_server, token("Ines Chair", "chair"))
    lima = await firefox.new_page(
        firefox_url(open_server, firefox_ns, f"token={token('Lima', 'participant')}"), "Lima"
    )
    chair_id, lima_id = await connected(chair), await connected(lima)
    # The chair holds the floor, so Lima's place at the chair is a grid tile whoever speaks.
    await chair.evaluate(GRANT, chair_id)

    async def tile() -> Any:
        found = await chair.evaluate(TILE, "Lima")
        return found if found and found["frames"] > 10 else None

    first = await wait_for(tile, "Lima's tile decoding at the chair", 20)
    await chair.evaluate(
        "(id) => window.conference.chair('mute', {participant_id: id, kind: 'audio'})", lima_id
    )
    await lima.wait_for_function("window.conference.self.chair_muted_audio")

    await lima.reload()
    await connected(lima)
    assert await lima.evaluate("window.conference.self.id") == lima_id, "the same participant"
    assert await lima.evaluate("window.conference.self.resumed")
    assert await lima.evaluate("window.conference.self.chair_muted_audio"), "still muted"

    async def back() -> Any:
        found = await chair.evaluate(TILE, "Lima")
        return found if found and found["frames"] > first["frames"] + 20 else None

    again = await wait_for(back, "Lima's video decoding again in the same tile", 20)
    assert again["mid"] == first["mid"] and again["id"] == lima_id
    assert "muted by chair" in again["markers"]
    await sees_and_hears(lima, ["Ines Chair"])
    await page_screenshot(chair, "firefox-reload-same-tile.png")


def uplink_bytes(ns: Namespace) -> int:
    """Every byte Firefox has sent out of its namespace (the host side of its link received)."""
    return int(Path(f"/sys/class/net/{ns.host_if}/statistics/rx_bytes").read_text())


def camera_media_bps(server: RunningServer, pid: str) -> float:
    """The bitrate of `pid`'s camera as the server measures its layers (new packets only: no
    duplicates, no padding)."""
    live = server.app[HUB].rooms.get("council")
    pub = live.media.publishers.get((pid, "camera")) if live else None
    if pub is None:
        return 0.0
    now_ms = clock_ms()
    return sum(float(meter.layer_bitrates_bps(now_ms).sum()) for meter in pub.meters.values())


def duplicates(server: RunningServer) -> int:
    live = server.app[HUB].rooms.get("council")
    return live.media.drops.get("duplicate", 0) if live else 0


MEASURE_S = 12
# Beyond the camera: Firefox's Opus (about 47 kbit/s on the wire), RTCP of both connections and
# the signalling WebSocket (about 30 kbit/s together), and a margin for a busy machine.
UPLINK_BESIDES_CAMERA_KBPS = 250


async def test_firefox_pays_for_no_padding_while_its_top_layers_are_on(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    """Issue 21: with q/h/f on, Firefox topped its undershooting encoder up with RTX copies of
    old q packets (1.16 Mbit/s of a 2.4 Mbit/s uplink, 14,500 a minute dropped as duplicates).
    Its uplink must carry its media and little else."""
    chair = await chromium_page(browser, open_server, token("Seoul", "chair"))
    lima = await firefox.new_page(
        firefox_url(open_server, firefox_ns, f"token={token('Lima', 'participant')}"), "Lima"
    )
    lima_id = await connected(lima)
    await connected(chair)
    await chair.evaluate(GRANT, lima_id)  # Lima on the chair's stage: every layer wanted
    await wait_until(lima, every_layer_on(open_server, lima, lima_id), 30)
    await asyncio.sleep(3)  # past the layers' start, and the meter's window filling

    sent, dropped = uplink_bytes(firefox_ns), duplicates(open_server)
    media: list[float] = []
    for _ in range(MEASURE_S):
        await asyncio.sleep(1)
        media.append(camera_media_bps(open_server, lima_id))
    uplink_kbps = (uplink_bytes(firefox_ns) - sent) * 8 / MEASURE_S / 1000
    duplicates_per_min = (duplicates(open_server) - dropped) * 60 / MEASURE_S
    camera_kbps = sum(media) / len(media) / 1000
    figures = (
        f"Firefox uplink {uplink_kbps:.0f} kbit/s, camera {camera_kbps:.0f} kbit/s,"
        f" duplicates {duplicates_per_min:.0f}/min"
    )
    print(figures)
    assert await layers_arriving(open_server, lima_id) == {"q", "h", "f"}
    assert camera_kbps > 300, f"h and f carry media: {figures}"
    assert duplicates_per_min < 600, figures
    assert uplink_kbps < 1.3 * camera_kbps + UPLINK_BESIDES_CAMERA_KBPS, figures
