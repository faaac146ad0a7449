"""Three Chromium pages meet in the demo room: tiles with names, decoded video, received audio."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import PageDriver, open_page, screenshot

pytestmark = pytest.mark.browser

# Per remote participant (by the name on its tile): frames decoded and audio packets received.
MEDIA_FROM_OTHERS = """
async () => {
  const c = window.conference;
  if (!c || !c.subscribePc) return {};
  const stats = await c.subscribePc.getStats();
  const byMid = {};
  stats.forEach((s) => { if (s.type === "inbound-rtp") byMid[s.mid] = s; });
  const out = {};
  for (const slot of c.slots) {
    if (!slot.name) continue;
    const s = byMid[slot.mid] || {};
    const entry = out[slot.name] || (out[slot.name] = {frames: 0, audio: 0});
    if (slot.kind === "video") entry.frames = s.framesDecoded || 0;
    else entry.audio = s.packetsReceived || 0;
  }
  return out;
}
"""

# The SRTP cipher of the page's publishing and subscribing connections, as the browser reports.
SRTP_CIPHERS = """
async () => {
  const c = window.conference;
  const ciphers = [];
  for (const pc of [c.publishPc, c.subscribePc]) {
    const stats = await pc.getStats();
    stats.forEach((s) => { if (s.type === "transport") ciphers.push(s.srtpCipher); });
  }
  return ciphers;
}
"""

TILE_VIDEOS = ", ".join(
    f'video[data-participant][data-purpose="{purpose}"]' for purpose in ("grid", "stage")
)


async def tile_names(page: Page) -> list[str]:
    """Names on the visible video tiles: the stage (the speaker) and the grid (the others)."""
    names: list[str] = await page.eval_on_selector_all(
        TILE_VIDEOS,
        "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.participant)",
    )
    return sorted(names)


async def tile_markers(page: Page, name: str) -> list[str]:
    markers: list[str] = await page.evaluate(
        """(name) => {
          const video = document.querySelector(`video[data-participant="${name}"]`);
          const tile = video && video.closest(".tile");
          if (!tile) return [];
          return [...tile.querySelectorAll(".marker")].flatMap((m) => [...m.classList]);
        }""",
        name,
    )
    return markers


async def wait_until(page: PageDriver, check: Any, timeout_s: float = 30.0) -> Any:
    """Poll `check` until it returns True; anything else it returns is shown on time-out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = None
    while loop.time() < deadline:
        last = await check()
        if last is True:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out; last seen {last!r}")


async def test_three_browsers_see_and_hear_each_other(server: Any, browser: Browser) -> None:
    names = ["Seoul", "Lima", "Nairobi"]
    pages = [await open_page(browser, f"{server.http_url}/?room=demo&name={n}") for n in names]

    for page, me in zip(pages, names, strict=True):
        others = sorted(n for n in names if n != me)

        async def media_ok(page: Page = page, others: list[str] = others) -> Any:
            media = await page.evaluate(MEDIA_FROM_OTHERS)
            ok = all(
                media.get(n, {}).get("frames", 0) > 5 and media.get(n, {}).get("audio", 0) > 20
                for n in others
            )
            return ok or media

        await wait_until(page, media_ok, 45)

        async def tiles_ok(page: Page = page, others: list[str] = others) -> Any:
            return await tile_names(page) == others

        await wait_until(page, tiles_ok, 10)
    await screenshot(pages[0], "three-participants.png")
    # The page receives over AES-256-GCM (sealed by confsfu's own Sealer): on the connection the
    # server offers, Chromium is the DTLS client and aiortc, the server, picks GCM. On the one
    # Chromium offers (its camera's), Chromium picks as the DTLS server, AES-CM first.
    publish_cipher, subscribe_cipher = await pages[0].evaluate(SRTP_CIPHERS)
    assert subscribe_cipher == "SRTP_AEAD_AES_256_GCM"
    assert publish_cipher in ("SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_256_GCM")

    # Lima turns the microphone and the camera off: the others see both markers on Lima's tile.
    await pages[1].click("#mic-toggle")
    await pages[1].click("#cam-toggle")
    for page in (pages[0], pages[2]):

        async def marked(page: Page = page) -> Any:
            markers = await tile_markers(page, "Lima")
            return {"muted", "camera-off"} <= set(markers) or markers

        await wait_until(page, marked, 10)
    await screenshot(pages[0], "lima-muted.png")
    await pages[1].click("#mic-toggle")
    await pages[1].click("#cam-toggle")

    async def unmarked() -> Any:
        markers = await tile_markers(pages[0], "Lima")
        return not ({"muted", "camera-off"} & set(markers)) or markers

    await wait_until(pages[0], unmarked, 10)

    # Nairobi leaves: the others' tiles for Nairobi go away within seconds.
    await pages[2].click("#leave")
    for page in pages[:2]:

        async def gone(page: Page = page) -> Any:
            return "Nairobi" not in await tile_names(page)

        await wait_until(page, gone, 10)

    # Lima closes the tab: Seoul's tile for Lima goes away too.
    await pages[1].context.close()

    async def lima_gone() -> Any:
        return "Lima" not in await tile_names(pages[0])

    await wait_until(pages[0], lima_gone, 10)
