"""A participant page reloads and comes back as the same participant, in the same tile and state."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from confsfu.tokens import make_token
from tests.browser.conftest import open_page, screenshot
from tests.browser.test_browser_chair import wait_for
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

# The tile (stage or grid) showing `name` at this page: its slot, markers and decoded frames.
TILE = """
async (name) => {
  const v = [...document.querySelectorAll('#grid video, #stage-video')].find(
    (el) => el.dataset.participant === name && !el.closest('.tile').hidden);
  if (!v) return null;
  const stats = await window.conference.subscribePc.getStats();
  let frames = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.mid === v.dataset.mid) frames = s.framesDecoded || 0;
  });
  const markers = [...v.closest('.tile').querySelectorAll('.marker')].map((m) => m.textContent);
  return {mid: v.dataset.mid, id: v.dataset.participantId, markers, frames};
}
"""


async def join(browser: Browser, server: RunningServer, name: str, role: str) -> Page:
    token = make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]
    return await open_page(browser, f"{server.http_url}/?token={token}")


async def test_a_reloaded_page_comes_back_in_the_same_tile_still_muted(
    server: RunningServer, browser: Browser
) -> None:
    chair = await join(browser, server, "Ines Chair", "chair")
    lima = await join(browser, server, "Lima", "participant")
    await lima.wait_for_function("window.conference && window.conference.self")
    lima_id = await lima.evaluate("window.conference.self.id")
    # The chair holds the floor, so the stage is theirs and Lima's place at the chair is a grid
    # tile whoever speaks (the mute below would otherwise move the stage from Lima to the chair).
    await chair.wait_for_function("window.conference && window.conference.self")
    chair_id = await chair.evaluate("window.conference.self.id")
    await chair.evaluate(
        "(id) => window.conference.chair('grant_floor', {participant_id: id})", chair_id
    )
    await chair.wait_for_function(
        "(id) => window.conference.room?.floor_holder === id", arg=chair_id
    )

    async def tile() -> Any:
        found = await chair.evaluate(TILE, "Lima")
        return found if found and found["frames"] > 10 else None

    first = await wait_for(tile, "Lima's tile decoding at the chair", 30)
    await chair.evaluate(
        "(id) => window.conference.chair('mute', {participant_id: id, kind: 'audio'})", lima_id
    )
    await wait_for(
        lambda: lima.evaluate("window.conference.self.chair_muted_audio"), "Lima muted", 10
    )

    await lima.reload()
    await lima.wait_for_function("window.conference && window.conference.self")
    assert await lima.evaluate("window.conference.self.id") == lima_id, "the same participant"
    assert await lima.evaluate("window.conference.self.resumed")
    assert await lima.evaluate("window.conference.self.chair_muted_audio"), "still muted"
    assert await lima.evaluate("window.conference.setMicrophone(true)") is False

    async def back() -> Any:
        found = await chair.evaluate(TILE, "Lima")
        return found if found and found["frames"] > first["frames"] + 20 else None

    again = await wait_for(back, "Lima's video decoding again in the same tile", 30)
    assert again["mid"] == first["mid"] and again["id"] == lima_id
    assert "muted by chair" in again["markers"]
    assert "reconnecting…" not in again["markers"]
    names = await chair.evaluate("Object.values(window.conference.participants).map((p) => p.name)")
    assert names.count("Lima") == 1
    await screenshot(chair, "reload-same-tile.png")
