"""The watch page in Chromium: a listener by the room's watch link sees and hears the stage,
is never asked for a camera or microphone, has no control but leave, volume and full screen;
the chair's page counts it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from confsfu.settings import RoomSettings
from confsfu.tokens import make_token
from tests.browser.conftest import open_page, screenshot
from tests.browser.test_browser_a11y import violations
from tests.browser.test_browser_chair import text_of, wait_for
from tests.conftest import SECRET

pytestmark = pytest.mark.browser

CHAIR = "Ines Chair"

# What the listener's subscribe connection received, from getStats().
RECEIVED = """
async () => {
  const c = window.conference;
  if (!c || !c.subscribePc) return null;
  const stats = await c.subscribePc.getStats();
  let frames = 0, audio = 0;
  stats.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") frames += s.framesDecoded || 0;
    if (s.kind === "audio") audio += s.packetsReceived || 0;
  });
  const v = document.getElementById("stage-video");
  return {frames, audio, width: v.videoWidth, playing: !v.paused && v.offsetParent !== null,
          name: v.dataset.participant || null, publish: c.publishPc !== null,
          role: c.self && c.self.role};
}
"""

# Every button and input a participant's page has; the watch page must show none of them.
PUBLISH_CONTROLS = [
    "#mic-toggle", "#cam-toggle", "#hand-toggle", "#screen-toggle", "#devices-toggle",
    "#chat-toggle", "#leave", "#self-tile", "#join-form", "#grid", "#chair-panel",
    "#participants-toggle", "#chair-toggle", "#participant-list",
]  # fmt: skip


async def watch_page(browser: Browser, url: str) -> Page:
    """A page that counts every request for a camera or microphone it makes."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.add_init_script(
        """
        window.__mediaAsked = 0;
        const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = (c) => { window.__mediaAsked += 1; return gum(c); };
        """
    )
    page = await context.new_page()
    page.on("console", lambda m: print(f"[watch] {m.type}: {m.text}"))
    await page.goto(url)
    return page


async def test_the_watch_page_plays_the_stage_and_offers_nothing_to_publish(
    server_factory: Callable[..., Any], browser: Browser
) -> None:
    room = RoomSettings(name="council", watch_link=True, max_listeners=5)
    server = await server_factory(rooms=[room])
    token = make_token(SECRET, room="council", name=CHAIR, role="chair", now_s=int(time.time()))
    chair = await open_page(browser, f"{server.http_url}/?token={token}")
    await chair.wait_for_function("() => window.conference?.state === 'connected'")
    # The chair takes the floor: the stage is theirs for everyone.
    await chair.evaluate(
        """() => window.conference._send({type: "chair", action: "grant_floor",
                                           participant_id: window.conference.self.id})"""
    )

    watcher = await watch_page(browser, f"{server.http_url}/?room=council&watch=1")

    async def playing() -> Any:
        got = await watcher.evaluate(RECEIVED)
        ok = got and got["frames"] > 30 and got["audio"] > 50 and got["width"] > 0
        return got if ok and got["playing"] and got["name"] == CHAIR else None

    got = await wait_for(playing, "the stage's video and the room's audio", timeout_s=30)
    assert (got["role"], got["publish"]) == ("listener", False)
    assert await watcher.evaluate("window.__mediaAsked") == 0  # never asked for a camera
    for selector in PUBLISH_CONTROLS:
        assert not await watcher.is_visible(selector), f"{selector} is shown on the watch page"
    for selector in ("#watch-leave", "#watch-volume", "#watch-fullscreen", "#stage-video"):
        assert await watcher.is_visible(selector), f"{selector} is missing"
    assert CHAIR in await text_of(watcher, "#watch-text")
    assert "Nobody sees or hears you" in await text_of(watcher, "#watch-text")
    assert CHAIR in await text_of(watcher, "#stage-tile .label")
    # Plain words only: no layer the server sends ("high", "low: bandwidth") on the stage, nor in
    # its tooltips; those are for the meeting page's connection details.
    shown = await watcher.evaluate(
        """() => [document.body.innerText,
                  ...[...document.querySelectorAll("[title]")].map((e) => e.title)].join("\\n")"""
    )
    assert not re.search(r"\b(low|medium|high|paused)\b", shown, re.IGNORECASE), shown
    assert not await watcher.is_visible("#stage-tile .layer")
    assert await violations(watcher, "watch") == []  # axe-core: nothing serious or critical
    # The volume reaches the room's audio.
    await watcher.fill("#watch-volume", "40")
    volumes = await watcher.eval_on_selector_all(
        "#audio-sinks audio", "(sinks) => sinks.map((a) => a.volume)"
    )
    assert volumes and all(abs(v - 0.4) < 1e-6 for v in volumes)

    # The chair sees one watching, and nobody new in the participant list.
    async def counted(n: str) -> Any:
        return n in await text_of(chair, "#chair-audience")

    await wait_for(lambda: counted("1 person is watching (at most 5)."), "the chair's count")
    assert await chair.evaluate("Object.keys(window.conference.participants).length") == 0
    await screenshot(watcher, "watch-page.png")
    await screenshot(chair, "watch-chair-count.png")

    await watcher.click("#watch-leave")
    assert "You stopped watching" in await text_of(watcher, "#left-text")
    await wait_for(lambda: counted("Nobody is watching"), "the count after the listener left")
