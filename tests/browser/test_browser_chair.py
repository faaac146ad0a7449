"""The chair's meeting in three Chromium pages: chair mute, floor on the stage, refusals, report."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, Page

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.browser.conftest import open_page, screenshot, wait_for
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

CHAIR, AMARA, BASHIR = "Ines Chair", "Amara", "Bashir"

# {mid: packetsReceived} of the audio slots that now carry `pid`.
AUDIO_FROM = """
async (pid) => {
  const c = window.conference;
  const stats = await c.subscribePc.getStats();
  const byMid = {};
  stats.forEach((s) => { if (s.type === "inbound-rtp") byMid[s.mid] = s.packetsReceived || 0; });
  const out = {};
  for (const s of c.slots) {
    if (s.kind === "audio" && s.participant_id === pid) out[s.mid] = byMid[s.mid] || 0;
  }
  return out;
}
"""

STAGE = """
() => {
  const v = document.querySelector('video[data-purpose="stage"]');
  if (!v || v.offsetParent === null) return null;
  return {name: v.dataset.participant || null, source: v.dataset.source || null,
          caption: v.closest(".tile").querySelector(".label").textContent};
}
"""


async def join(
    browser: Browser, server: RunningServer, name: str, role: Literal["chair", "participant"]
) -> Page:
    token = make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))
    return await open_page(browser, f"{server.http_url}/?token={token}")


async def row_action(chair: Page, pid: str, action: str) -> None:
    """Clicks `action` (a class) in the menu of `pid`'s row of the chair panel."""
    row = f'#chair-panel [data-participant-id="{pid}"]'
    await chair.click(f"{row} .row-menu-button")
    await chair.click(f"{row} .row-menu .{action}")


async def text_of(page: Page, selector: str) -> str:
    el = await page.query_selector(selector)
    return (await el.inner_text()) if el is not None and await el.is_visible() else ""


async def test_chair_mutes_grants_the_floor_and_refuses_others(
    server: RunningServer, browser: Browser
) -> None:
    chair = await join(browser, server, CHAIR, "chair")
    amara = await join(browser, server, AMARA, "participant")
    bashir = await join(browser, server, BASHIR, "participant")
    pages = {CHAIR: chair, AMARA: amara, BASHIR: bashir}
    for name, page in pages.items():

        async def connected(page: Page = page) -> bool:
            state: str = await page.evaluate("window.conference && window.conference.state")
            return state == "connected"

        await wait_for(connected, f"{name} connected", 20)
    ids = {name: await p.evaluate("window.conference.self.id") for name, p in pages.items()}

    # The chair's panel lists everyone; the participants have no panel.
    for name in pages:
        await chair.wait_for_selector(f'#chair-panel [data-participant-id="{ids[name]}"]')
    assert not await amara.is_visible("#chair-panel")

    # Bashir hears Amara before the chair steps in.
    async def amara_heard() -> Any:
        counts: dict[str, int] = await bashir.evaluate(AUDIO_FROM, ids[AMARA])
        return any(n > 20 for n in counts.values()) or False

    await wait_for(amara_heard, "Bashir receiving Amara's audio", 15)

    # The chair mutes Amara: her page says so, and Bashir stops receiving her audio.
    await row_action(chair, ids[AMARA], "chair-mute")
    await amara.wait_for_selector('#self-tile .marker.chair-muted:has-text("muted by chair")')
    await amara.wait_for_selector('.toast[data-code="chair_muted"]')
    assert await text_of(amara, "#mic-toggle") == "Ask to unmute"
    assert not await amara.evaluate("window.conference.localStream.getAudioTracks()[0].enabled")
    await chair.wait_for_selector(
        f'#chair-panel [data-participant-id="{ids[AMARA]}"] .row-state .chair-muted'
    )
    await chair.wait_for_selector(
        f'#chair-panel [data-participant-id="{ids[AMARA]}"] .row-menu .chair-unmute',
        state="attached",
    )

    async def amara_silent() -> Any:
        before: dict[str, int] = await bashir.evaluate(AUDIO_FROM, ids[AMARA])
        await asyncio.sleep(1.0)
        after: dict[str, int] = await bashir.evaluate(AUDIO_FROM, ids[AMARA])
        stalled = all(before.get(mid) == n for mid, n in after.items())
        return stalled or False

    await wait_for(amara_silent, "Amara's audio to stop reaching Bashir", 10)

    # Amara asks to be unmuted; the chair sees the request.
    await amara.click("#mic-toggle")
    await chair.wait_for_selector(f'#chair-panel [data-participant-id="{ids[AMARA]}"] .badge.asks')

    # Amara raises her hand; the chair's panel shows her first, with her place in the queue (once
    # the chair's pointer, left on the list by the menu, is away: rows stand still under it).
    await chair.mouse.move(0, 0)
    await amara.click("#hand-toggle")
    await chair.wait_for_selector(
        f'#chair-participants > li:first-child[data-participant-id="{ids[AMARA]}"] .badge.hand'
    )
    assert await text_of(amara, "#hand-toggle") == "Lower hand"

    # The chair gives Bashir the floor for two minutes: he is on everyone else's stage.
    await chair.fill("#chair-floor-limit", "2")
    await row_action(chair, ids[BASHIR], "chair-grant")
    for name in (CHAIR, AMARA):
        page = pages[name]

        # He may already be on stage as the speaker: wait for the floor, not just his name.
        async def bashir_on_stage(page: Page = page) -> Any:
            stage = await page.evaluate(STAGE)
            on_stage = stage and stage["name"] == BASHIR and "has the floor" in stage["caption"]
            return stage if on_stage else None

        await wait_for(bashir_on_stage, f"Bashir holding the floor on {name}'s stage", 10)
        banner = await text_of(page, "#floor-banner")
        assert banner.startswith(f"{BASHIR} has the floor") and "left" in banner, banner
    await bashir.wait_for_selector('#stage-self:has-text("You have the floor")')
    assert (await text_of(bashir, "#floor-banner")).startswith("You have the floor")
    await screenshot(amara, "chair-participant-view.png")

    # As the floor holder Bashir may share his screen (Amara may not): it takes the stage.
    assert not await amara.is_visible("#screen-toggle")
    await bashir.click("#screen-toggle")

    async def screen_on_stage() -> Any:
        stage = await amara.evaluate(STAGE)
        return stage if stage and stage["source"] == "screen" else None

    stage = await wait_for(screen_on_stage, "Bashir's screen on Amara's stage", 10)
    assert stage["name"] == BASHIR and "(screen)" in stage["caption"], stage
    assert await text_of(bashir, "#screen-toggle") == "Stop sharing"
    await bashir.click("#screen-toggle")

    async def camera_on_stage() -> Any:
        stage = await amara.evaluate(STAGE)
        return stage if stage and stage["source"] == "camera" else None

    stage = await wait_for(camera_on_stage, "Bashir's camera back on Amara's stage", 10)
    assert stage["name"] == BASHIR, stage
    assert await text_of(bashir, "#screen-toggle") == "Share screen"

    # Amara tries a chair action: refused, and her page says so in words.
    await amara.evaluate('window.conference.chair("mute_all")')
    toast = await amara.wait_for_selector('.toast[data-code="forbidden"]')
    assert toast is not None and "Only the chair" in await toast.inner_text()

    # The chair downloads the report as a file.
    async with chair.expect_download() as download_info:
        await chair.click("#chair-report-json")
    download = await download_info.value
    path = await download.path()
    assert path is not None and download.suggested_filename.endswith(".json")
    report = json.loads(Path(path).read_text())
    assert report, report
    await screenshot(chair, "chair-panel.png")


# The chair panel's rows, top to bottom, by participant id.
ROW_IDS = """() => [...document.querySelectorAll('#chair-participants > li')]
  .map((li) => li.dataset.participantId)"""


async def test_rows_hold_still_under_the_pointer(server: RunningServer, browser: Browser) -> None:
    chair = await join(browser, server, CHAIR, "chair")

    async def connected() -> bool:
        return bool(await chair.evaluate("window.conference?.state === 'connected'"))

    await wait_for(connected, "the chair connected", 60)  # a loaded machine: a generous wait
    chair_id = await chair.evaluate("window.conference.self.id")
    peers: list[LoopbackPeer] = []

    async def arrive(name: str, publish: bool = False) -> LoopbackPeer:
        token = make_token(SECRET, room="council", name=name, role="participant",
                           now_s=int(time.time()))  # fmt: skip
        peer = LoopbackPeer(server.ws_url, name=name, token=token)
        peers.append(peer)
        await peer.join(publish=publish)
        return peer

    try:
        bashir = await arrive("Bashir", publish=True)
        dakar, elbasan = [await arrive(n) for n in ("Dakar", "Elbasan")]
        ids = [chair_id, bashir.participant_id, dakar.participant_id, elbasan.participant_id]
        await wait_for(lambda: chair.evaluate(f"({ROW_IDS})().length === 4"), "four rows")
        assert await chair.evaluate(ROW_IDS) == ids
        # The chair aims at Dakar's row: Bashir starts talking, Elbasan raises a hand (hands go
        # first), Amara comes (by name, after the chair). Dakar's row stays put; Amara comes in
        # at the end.
        row = chair.locator(f'#chair-participants [data-participant-id="{dakar.participant_id}"]')
        await row.locator(".row-head").hover()
        box = await row.bounding_box()
        bashir.start_media(opus_frames(), vp8_frames(320, 180), level_dbov=20, duration_s=30)
        await elbasan.send({"type": "raise_hand"})
        amara = await arrive("Amara")
        await chair.wait_for_selector("#chair-participants > li.hand")
        await chair.wait_for_selector(
            f'#chair-participants [data-participant-id="{bashir.participant_id}"].speaking'
        )

        async def amara_in_still() -> bool:
            now = await row.bounding_box()
            # Within a pixel: the panel scrolls back by whole pixels what moved above the row.
            assert now and box and abs(now["y"] - box["y"]) < 1, f"Dakar's row moved: {box} {now}"
            return bool(await chair.evaluate(f"({ROW_IDS})().length === 5"))

        await wait_for(amara_in_still, "Amara's row")
        assert await chair.evaluate(ROW_IDS) == [*ids, amara.participant_id]
        # The chair opens Dakar's menu and moves the pointer away: the menu holds the rows.
        await row.locator(".row-menu-button").click()
        await chair.mouse.move(5, 5)
        await asyncio.sleep(1.5)  # longer than the hold lasts after the pointer left (0.7 s)
        assert await chair.evaluate(ROW_IDS) == [*ids, amara.participant_id]
        # The menu closed, the rows take the order wanted: the hand first, Amara by name.
        await chair.keyboard.press("Escape")
        wanted_ids = [elbasan.participant_id, chair_id, amara.participant_id, *ids[1:3]]

        async def reordered() -> bool:
            return bool(await chair.evaluate(ROW_IDS) == wanted_ids)

        await wait_for(reordered, "the rows reordered once the menu closed")
        # A person who leaves goes at once, held or not.
        await row.locator(".row-head").hover()
        await bashir.close()
        await wait_for(lambda: chair.evaluate(f"({ROW_IDS})().length === 4"), "Bashir gone")
    finally:
        for peer in peers:
            await peer.close()
