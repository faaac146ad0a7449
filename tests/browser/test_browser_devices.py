"""The pre-join screen and the devices during a meeting, in Chromium with two fake cameras and a
beeping fake microphone: the preview plays, the level meter moves, joining with the camera off shows
a name card to the others, a camera switched mid-meeting keeps reaching them, and speaking while
muted brings up "You are muted"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from confsfu.tokens import make_token
from tests.browser.conftest import (
    CHROMIUM_FLAGS,
    chromium_path,
    open_page,
    page_screenshot,
    screenshot,
)
from tests.browser.firefox import Firefox
from tests.browser.netns import Namespace
from tests.browser.test_browser_conference import tile_markers, wait_until
from tests.browser.test_browser_identity import hold_estimate
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

# Three fake cameras instead of one: fake_device_0 (I420) and fake_device_2 (MJPEG) are ordinary
# cameras; fake_device_1 is a Y16 depth camera whose frames the VP8 encoder never gets.
FLAGS = [
    "--use-fake-device-for-media-stream=device-count=3"
    if f == "--use-fake-device-for-media-stream"
    else f
    for f in CHROMIUM_FLAGS
]

# A tile of the page's, by the name it is labelled with: its name card's initials (null while the
# card is not drawn) and the words under it.
TILE_OF = """
(name) => {
  const video = document.querySelector(`video[data-participant="${name}"]`);
  const tile = video && video.closest(".tile");
  if (!tile || tile.hidden) return null;
  const avatar = tile.querySelector(".avatar");
  const card = getComputedStyle(avatar).display !== "none" ? avatar.textContent : null;
  return {card, why: tile.querySelector(".why")?.textContent ?? ""};
}
"""

# Counts the frames the preview presents from now on, in window.previewFrames (Firefox's
# getVideoPlaybackQuality() counts none for a camera).
COUNT_PREVIEW_FRAMES = """
(() => {
  const video = document.querySelector('#preview-video');
  window.previewFrames = 0;
  const count = () => {
    window.previewFrames += 1;
    video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  return true;
})()
"""

# The page's camera sender: its track's device, whether it is the sender first seen, its rids.
CAMERA_SENDER = """
() => {
  const pc = window.conference.publishPc;
  const t = pc.getTransceivers().find((t) => t.receiver.track.kind === "video");
  window.__cameraSender ??= t.sender;
  window.__firstCamera ??= t.sender.track;
  const track = t.sender.track;
  return {
    device: track ? track.getSettings().deviceId : null,
    state: track ? track.readyState : null,
    same: window.__cameraSender === t.sender,
    first: window.__firstCamera.readyState,
    rids: (t.sender.getParameters().encodings || []).map((e) => e.rid),
  };
}
"""


@pytest.fixture
async def fake_cameras() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield b
        finally:
            await b.close()


async def meter_values(page: Page, seconds: float) -> list[int]:
    values = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values.append(int(await page.get_attribute("#join-level", "aria-valuenow") or 0))
        await asyncio.sleep(0.05)
    return values


# Frames decoded per video slot (by mid) now labelled with the name: the stage and the grid each
# have their own counter, and a participant moves between them.
FRAMES_BY_MID = """
async (name) => {
  const c = window.conference;
  const stats = await c.subscribePc.getStats();
  const byMid = {};
  stats.forEach((s) => { if (s.type === "inbound-rtp") byMid[s.mid] = s.framesDecoded || 0; });
  const out = {};
  for (const slot of c.slots) {
    if (slot.kind === "video" && slot.name === name) out[slot.mid] = byMid[slot.mid] || 0;
  }
  return out;
}
"""


async def hold_estimate_of(server: RunningServer, page: Page, name: str) -> None:
    """Holds the page's bandwidth estimate at 5 Mbit/s: on a busy machine a browser's first
    reports can be low enough to pause a tile for seconds (the weak-links issue), which is not
    what these tests are about."""

    async def held() -> Any:
        try:
            hold_estimate(server, name, 5_000_000)
        except AssertionError as not_yet:  # the server has not subscribed the page yet
            return str(not_yet)
        return True

    await wait_until(page, held, 30)


def muted_notice(page: Page, *, shown: bool) -> Callable[[], Awaitable[Any]]:
    """A check that "You are muted" is shown (or not); what the page has otherwise."""

    async def check() -> Any:
        state = await page.evaluate(
            """() => ({
              hidden: document.querySelector('#muted-notice').hidden,
              level: document.querySelector('#meeting-level').ariaValueNow,
              media: window.conference && window.conference.mediaState,
            })"""
        )
        return state["hidden"] is not shown or state

    return check


class FrameCounter:
    """Frames of one participant's decoded on a page since the counter was made, across slots."""

    def __init__(self, page: Page, name: str) -> None:
        self.page, self.name = page, name
        self.last: dict[str, int] | None = None
        self.total = 0

    async def __call__(self) -> int:
        now = await self.page.evaluate(FRAMES_BY_MID, self.name)
        if self.last is not None:
            self.total += sum(max(0, f - self.last.get(mid, f)) for mid, f in now.items())
        self.last = now
        return self.total


async def test_prejoin_camera_off_switch_and_muted_notice(
    server: Any, fake_cameras: Browser
) -> None:
    ana = await open_page(fake_cameras, f"{server.http_url}/?room=demo")
    # The bare page (no name) shows the pre-join screen, with the three cameras in the picker.
    await ana.wait_for_selector("#join-view:not([hidden])")
    assert await ana.is_hidden("#meeting-view")
    await ana.wait_for_function("document.querySelector('#join-camera').options.length === 3")
    assert await ana.is_visible("#join-speaker")  # Chromium can choose a speaker

    # The preview plays: frames advance.
    await ana.wait_for_function("document.querySelector('#preview-video').videoWidth > 0")
    await ana.evaluate(COUNT_PREVIEW_FRAMES)
    await ana.wait_for_function("window.previewFrames > 10")
    assert await ana.is_hidden("#preview-off")

    # The level meter follows the fake microphone's beeps: up and down, not stuck.
    values = await meter_values(ana, 3)
    assert max(values) >= 20 and min(values) < max(values) - 10, values
    assert await ana.is_hidden("#join-level-waits")  # Web Audio runs: no "click or type"
    await screenshot(ana, "devices-prejoin.png")

    # A page opened with a name joins straight away, as before.
    bo = await open_page(fake_cameras, f"{server.http_url}/?room=demo&name=Bo")
    await bo.wait_for_function("window.conference && window.conference.subscribePc")
    assert await bo.is_hidden("#join-view")

    await hold_estimate_of(server, bo, "Bo")

    # Ana joins with the camera and the microphone off, from the keyboard.
    await ana.fill("#join-name", "Ana")
    await ana.check("#join-camera-off")
    await ana.check("#join-mic-off")
    await ana.wait_for_selector("#preview-off:not([hidden])")
    await ana.press("#join-name", "Enter")
    await ana.wait_for_function("window.conference && window.conference.self")
    assert await ana.evaluate("window.conference.mediaState") == {"audio": False, "video": False}

    async def card_shown() -> Any:
        tile = await bo.evaluate(TILE_OF, "Ana")
        return (tile is not None and tile["card"] == "A" and tile["why"] == "camera off") or tile

    await wait_until(bo, card_shown, 30)

    async def marked_muted() -> Any:
        markers = await tile_markers(bo, "Ana")
        return "muted" in markers or markers

    await wait_until(bo, marked_muted, 10)
    await screenshot(bo, "devices-camera-off-card.png")

    # Ana's microphone hears the beep while muted: the notice says so, in words.
    await wait_until(ana, muted_notice(ana, shown=True), 15)
    assert await ana.text_content("#muted-notice-text") == "You are muted. Others cannot hear you."
    await screenshot(ana, "devices-muted-notice.png")
    # Unmute in the notice turns the microphone on, and the notice goes.
    await ana.click("#muted-notice-unmute")
    await ana.wait_for_selector("#muted-notice", state="hidden")
    assert await ana.evaluate("window.conference.mediaState.audio") is True

    # Ana starts the camera: Bo receives it.
    await ana.click("#cam-toggle")

    frames = FrameCounter(bo, "Ana")

    async def receiving() -> Any:
        return await frames() > 20 or frames.total

    await wait_until(bo, receiving, 30)

    # Ana switches to the other camera from the device menu, without leaving.
    before = await ana.evaluate(CAMERA_SENDER)
    assert before["rids"] == ["q", "h", "f"], before
    await ana.click("#devices-toggle")
    await ana.wait_for_selector("#devices-panel:not([hidden])")
    assert await ana.evaluate("document.activeElement.id") == "meeting-camera"
    cameras = await ana.eval_on_selector_all(
        "#meeting-camera option", "os => Object.fromEntries(os.map(o => [o.text, o.value]))"
    )
    assert cameras["fake_device_0"] == before["device"], (cameras, before)
    other = cameras["fake_device_2"]
    await ana.select_option("#meeting-camera", other)

    async def switched() -> Any:
        now = await ana.evaluate(CAMERA_SENDER)
        return now["device"] == other or now

    await wait_until(ana, switched, 10)
    after = await ana.evaluate(CAMERA_SENDER)
    # The same sender, its simulcast encodings kept, the new camera live and the old one stopped.
    assert after == {
        "device": other,
        "state": "live",
        "same": True,
        "first": "ended",
        "rids": ["q", "h", "f"],
    }
    # Bo keeps receiving Ana's video: frames from the new camera.
    at_switch = await frames()

    async def still_receiving() -> Any:
        return await frames() > at_switch + 40 or (at_switch, frames.total)

    await wait_until(bo, still_receiving, 30)

    # The speaker: the meeting's audio plays on the chosen one.
    speakers = await ana.eval_on_selector_all(
        "#meeting-speaker option", "os => os.map(o => o.value)"
    )
    speaker = next(s for s in speakers if s != "default")
    await ana.select_option("#meeting-speaker", speaker)

    async def on_speaker() -> Any:
        sinks = await ana.eval_on_selector_all("#audio-sinks audio", "as => as.map(a => a.sinkId)")
        return (bool(sinks) and all(s == speaker for s in sinks)) or sinks

    await wait_until(ana, on_speaker, 10)
    await screenshot(ana, "devices-menu.png")

    # Speaking (the beep) with the microphone on: no notice.
    for _ in range(20):
        assert await ana.is_hidden("#muted-notice")
        await asyncio.sleep(0.1)
    # Muted with the Mute button (from the keyboard): the notice again; unmuted: gone.
    await ana.focus("#mic-toggle")
    await ana.keyboard.press("Enter")
    await wait_until(ana, muted_notice(ana, shown=True), 15)
    await ana.keyboard.press("Enter")
    await wait_until(ana, muted_notice(ana, shown=False), 5)
    assert await ana.evaluate("window.conference.mediaState.audio") is True

    # The microphone stops by itself (as when unplugged; here its "ended" event): said in words.
    await ana.evaluate(
        "window.conference.localStream.getAudioTracks()[0].dispatchEvent(new Event('ended'))"
    )
    notice = await ana.text_content("#notice") or ""
    assert "Your microphone stopped working" in notice, notice


async def test_denied_camera_is_said_and_joining_still_works(server: Any, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    # The browser refuses the camera (as after "Block") until window.allowCamera is set; the
    # microphone works.
    await context.add_init_script(
        """
        const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = (c) => c && c.video && !window.allowCamera
          ? Promise.reject(new DOMException("Permission denied", "NotAllowedError"))
          : original(c);
        """
    )
    ana = await context.new_page()
    # An invitation link with prejoin=1: the pre-join screen first, without name and room fields.
    token = make_token(SECRET, room="demo", name="Ana", role="participant", now_s=int(time.time()))
    await ana.goto(f"{server.http_url}/?token={token}&prejoin=1")
    await ana.wait_for_selector("#device-problems:not([hidden])")
    problem = await ana.text_content("#device-problems") or ""
    assert "blocked the camera" in problem and "others will hear you but not see you" in problem
    assert await ana.is_disabled("#join-camera-off") and await ana.is_checked("#join-camera-off")
    assert await ana.text_content("#preview-off") == "Camera not available"
    values = await meter_values(ana, 2)  # the microphone works
    assert max(values) >= 20, values
    assert await ana.is_hidden("#join-name")
    await screenshot(ana, "devices-camera-denied.png")

    bo = await open_page(browser, f"{server.http_url}/?room=demo&name=Bo")
    await hold_estimate_of(server, bo, "Bo")
    await ana.click("#join-form button[type=submit]")
    await ana.wait_for_function("window.conference && window.conference.self")
    assert await ana.evaluate("window.conference.self.name") == "Ana"

    async def card_shown() -> Any:
        tile = await bo.evaluate(TILE_OF, "Ana")
        return (tile is not None and tile["why"] == "camera off") or tile

    await wait_until(bo, card_shown, 30)
    assert await ana.evaluate("window.conference.mediaState") == {"audio": True, "video": False}

    # Ana allows the camera and picks it under Devices: it goes out on the empty video sender,
    # and Bo sees it.
    await ana.evaluate("window.allowCamera = true")
    await ana.click("#devices-toggle")
    camera = await ana.eval_on_selector_all("#meeting-camera option", "os => os[0].value")
    await ana.select_option("#meeting-camera", camera)
    await ana.wait_for_function("window.conference.mediaState.video === true")
    assert await ana.is_hidden("#notice")  # the camera's problem is gone
    frames = FrameCounter(bo, "Ana")

    async def receiving() -> Any:
        return await frames() > 20 or frames.total

    await wait_until(bo, receiving, 30)


async def test_firefox_prejoin_preview_and_join(
    open_server: RunningServer, firefox: Firefox, firefox_ns: Namespace
) -> None:
    """The pre-join screen in Firefox ESR: the preview plays, the speaker picker is shown only
    where the browser can send audio to a chosen speaker, and joining works."""
    url = f"http://{firefox_ns.host_ip}:{open_server.port}/?room=demo"
    lima = await firefox.new_page(url, "Lima")
    await lima.wait_for_function(
        "document.querySelector('#preview-video') && "
        "document.querySelector('#preview-video').videoWidth > 0"
    )
    await lima.evaluate(COUNT_PREVIEW_FRAMES)
    await lima.wait_for_function("window.previewFrames > 10")
    # Web Audio is held back here (headless Firefox without a sound device keeps every
    # AudioContext suspended, even after a real click): the page says the level is not shown yet
    # instead of showing a dead meter as silence.
    await lima.wait_for_selector("#join-level-waits:not([hidden])")
    assert "click or type" in (await lima.text_content("#join-level-waits") or "")
    speaker = await lima.evaluate(
        """async () => ({
          shown: document.querySelector('#join-speaker').offsetParent !== null,
          sinks: 'setSinkId' in HTMLMediaElement.prototype,
          outputs: (await navigator.mediaDevices.enumerateDevices())
            .filter((d) => d.kind === 'audiooutput').length,
        })"""
    )
    assert speaker["shown"] == (speaker["sinks"] and speaker["outputs"] > 0), speaker
    await page_screenshot(lima, "devices-prejoin-firefox.png")
    await lima.fill("#join-name", "Lima")
    await lima.click("#join-form button[type=submit]")
    await lima.wait_for_function("window.conference && window.conference.state === 'connected'")
    print("Firefox speaker picker:", speaker)
