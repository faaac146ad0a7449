"""Chromium publishes three simulcast layers; another Chromium gets the stage at 1280x720."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from confsfu.server.app import HUB
from tests.browser.conftest import open_page
from tests.browser.test_browser_conference import wait_until

pytestmark = pytest.mark.browser

STAGE_VIDEO = """
async () => {
  const c = window.conference;
  if (!c || !c.subscribePc) return null;
  const slot = c.slots.find((s) => s.purpose === "stage" && s.name);
  if (!slot) return null;
  const stats = await c.subscribePc.getStats();
  let found = null;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.mid === slot.mid) found = s;
  });
  return found && {name: slot.name, width: found.frameWidth, height: found.frameHeight,
                   decoded: found.framesDecoded, spatial: slot.spatial, reason: slot.reason};
}
"""


async def test_stage_arrives_at_full_resolution_from_simulcast(
    server: Any, browser: Browser
) -> None:
    seoul = await open_page(browser, f"{server.http_url}/?room=demo&name=Seoul")
    lima = await open_page(browser, f"{server.http_url}/?room=demo&name=Lima")
    # Both fake microphones beep: Lima stays silent so that Seoul is the speaker she sees (the
    # dominant speaker's own stage is empty).
    await lima.wait_for_function("window.conference && window.conference.localStream")
    await lima.evaluate("window.conference.setMicrophone(false)")

    def layers_published(name: str) -> set[str]:
        live = server.app[HUB].rooms.get("demo")
        pid = (
            next((p.id for p in live.room.participants.values() if p.name == name), None)
            if live
            else None
        )
        pub = live.media.publishers.get((pid, "camera")) if live and pid else None
        if pub is None or pub.router is None:
            return set()
        return {
            s.section.rids[s.layer]
            for s in pub.router.streams.values()
            if s.repairs is None and s.section.rids
        }

    async def three_layers() -> Any:
        return layers_published("Seoul") == {"q", "h", "f"} or layers_published("Seoul")

    await wait_until(seoul, three_layers, 20)

    async def full_resolution(page: Page = lima) -> Any:
        stage = await page.evaluate(STAGE_VIDEO)
        ok = stage and stage["name"] == "Seoul" and stage["width"] == 1280 and stage["decoded"] > 10
        return ok or stage

    stage = await wait_until(lima, full_resolution, 30)
    assert stage is True
    final = await lima.evaluate(STAGE_VIDEO)
    assert (final["width"], final["height"], final["spatial"]) == (1280, 720, 2)
    # The connection details say what the tile gets and why: the full layer, nothing held back.
    badge = await lima.get_attribute("#stage-tile", "data-layer")
    assert badge == "high", badge
