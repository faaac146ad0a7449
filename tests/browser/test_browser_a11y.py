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

from confsfu.tokens import make_token
from tests.browser.conftest import PageDriver, page_screenshot, screenshot, wait_for
from tests.conftest import SECRET, RunningServer

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
    return await axe_violations(page, where)


async def axe_violations(page: PageDriver, where: str) -> list[dict[str, Any]]:
    """`violations` on a page of either browser that has axe in it already."""
    assert await page.evaluate("axe.version") == AXE_VERSION
    found: list[dict[str, Any]] = await page.evaluate(AXE_RUN)
    for v in found:
        print(f"axe {where}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
    await page_screenshot(page, f"a11y-{where}.png")
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
    # The chair's chat is shut: the arrival is said aloud all the same (a live region in view).
    live = await chair.evaluate(
        """() => { const e = document.getElementById("chat-live");
                   return {text: e.textContent, live: e.getAttribute("aria-live"),
                           shown: e.getClientRects().length > 0}; }"""
    )
    assert live["live"] == "polite" and live["shown"] and "Amara: Hello" in live["text"], live
    bad["meeting-chat"] = await violations(amara, "meeting-chat")
    await amara.click("#devices-toggle")
    await amara.wait_for_selector("#devices-panel", state="visible")
    bad["meeting-devices"] = await violations(amara, "meeting-devices")

    await chair.click("#chair-participants > li.hand .row-menu-button")
    await chair.wait_for_selector("#chair-participants .row-menu:not([hidden])")
    bad["chair"] = await violations(chair, "chair")
    await chair.keyboard.press("Escape")
    await chair.evaluate('window.conference.chair("extend", {minutes: 15})')  # refused: a toast
    await chair.wait_for_selector(".toast")
    await chair.click("#devices-toggle")
    await chair.click("#details-toggle")
    await chair.wait_for_selector(".meeting.details-open")
    bad["chair-toast-details"] = await violations(chair, "chair-toast-details")

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


# The focused element: what it is, whether it lies inside the viewport with nothing drawn over its
# centre, and whether a focus ring is drawn around it (computed style, from the keyboard).
FOCUSED = """
() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const r = e.getBoundingClientRect();
  const s = getComputedStyle(e);
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {
    key: e.id || `${e.className}: ${e.getAttribute("aria-label") || e.textContent.trim()}`,
    inside: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 &&
      r.right <= innerWidth && r.bottom <= innerHeight,
    reachable: Boolean(hit && (hit === e || e.contains(hit))),
    ring: e.matches(":focus-visible") && s.outlineStyle !== "none" &&
      parseFloat(s.outlineWidth) >= 2 && s.outlineColor !== "rgba(0, 0, 0, 0)",
  };
}
"""


async def tab_through(page: Page, limit: int = 80) -> list[dict[str, Any]]:
    """Presses Tab from the top of the page until the focus comes round again."""
    await page.evaluate("document.activeElement?.blur()")
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            continue
        if seen and focused["key"] == seen[0]["key"]:
            break
        seen.append(focused)
    return seen


async def test_keyboard_reaches_and_operates_every_control(
    server: RunningServer, browser: Browser
) -> None:
    base = server.http_url
    join = await open_as(browser, f"{base}/", DESKTOP)
    await join.wait_for_selector("#join-form", state="visible")
    focused = await tab_through(join)
    keys = [f["key"] for f in focused]
    for control in ("join-name", "join-room", "join-camera", "join-microphone", "join-mic-off"):
        assert control in keys, keys
    bad = [f for f in focused if not (f["ring"] and f["inside"] and f["reachable"])]
    assert not bad, bad

    chair = await open_as(browser, f"{base}/?token={token('demo', 'Ines Chair', 'chair')}", DESKTOP)
    await connected(chair)
    amara = await open_as(browser, f"{base}/?room=demo&name=Amara", DESKTOP)
    await connected(amara)
    await amara.wait_for_selector("#stage-tile .pin-toggle, #grid .pin-toggle")

    focused = await tab_through(amara)
    keys = [f["key"] for f in focused]
    print("tab order:", keys)
    bar = await amara.eval_on_selector_all(
        ".controls button", "bs => bs.filter((b) => b.offsetParent !== null).map((b) => b.id)"
    )
    assert set(bar) <= set(keys), (bar, keys)
    assert any("pin-toggle" in k for k in keys), keys  # a tile's Pin button too
    hidden = [f for f in focused if not (f["inside"] and f["reachable"])]
    assert not hidden, hidden
    ringless = [f["key"] for f in focused if not f["ring"]]
    assert not ringless, ringless
    await screenshot(amara, "a11y-keyboard-focus.png")
    # The chair's page: the panel's buttons, fields, filters and row menus too.
    await chair.wait_for_selector("#chair-participants .row-menu-button")
    focused = await tab_through(chair, limit=120)
    keys = [f["key"] for f in focused]
    print("chair tab order:", keys)
    for control in ("chair-mute-all", "chair-floor-limit", "chair-filter", "chair-report-csv"):
        assert control in keys, keys
    assert any("row-menu-button" in k for k in keys), keys
    bad = [f for f in focused if not (f["ring"] and f["inside"] and f["reachable"])]
    assert not bad, bad

    # Space and Enter operate the bar's buttons.
    await amara.focus("#mic-toggle")
    await amara.keyboard.press("Space")
    await wait_for(lambda: amara.evaluate("!window.conference.mediaState.audio"), "muted")
    await amara.keyboard.press("Enter")
    await wait_for(lambda: amara.evaluate("window.conference.mediaState.audio"), "unmuted")
    await amara.focus("#layout-toggle")
    await amara.keyboard.press("Enter")
    assert await amara.get_attribute("#layout-toggle", "aria-pressed") == "true"
    await amara.keyboard.press("Space")
    assert await amara.get_attribute("#layout-toggle", "aria-pressed") == "false"

    # Chat and devices opened from the keyboard: their fields and buttons in the tab order too.
    for toggle, panel in (("#chat-toggle", "#chat-panel"), ("#devices-toggle", "#devices-panel")):
        await amara.focus(toggle)
        await amara.keyboard.press("Enter")
        await amara.wait_for_selector(panel, state="visible")
    focused = await tab_through(amara, limit=120)
    keys = [f["key"] for f in focused]
    for control in ("chat-input", "meeting-camera", "devices-close"):
        assert control in keys, keys
    bad = [f for f in focused if not (f["ring"] and f["inside"] and f["reachable"])]
    assert not bad, bad

    # On a phone the people drawer opens from the keyboard, its controls in the tab order, and
    # Escape gives the focus back to its button.
    phone = await open_as(browser, f"{base}/?room=demo&name=Oda", PHONE)
    await connected(phone)
    await phone.focus("#participants-toggle")
    await phone.keyboard.press("Enter")
    await phone.wait_for_selector("#participant-list", state="visible")
    assert await phone.evaluate("document.activeElement.id") == "participants-close"
    assert (await phone.evaluate(FOCUSED))["ring"]
    assert await violations(phone, "phone-participant-list") == []
    await phone.keyboard.press("Escape")
    await phone.wait_for_selector("#participant-list", state="hidden")
    assert await phone.evaluate("document.activeElement.id") == "participants-toggle"
    await phone.keyboard.press("Space")
    await phone.wait_for_selector("#participant-list", state="visible")
    await phone.keyboard.press("Enter")  # on its Close button
    await phone.wait_for_selector("#participant-list", state="hidden")
    focused = await tab_through(phone)
    ringless = [f["key"] for f in focused if not (f["ring"] and f["inside"] and f["reachable"])]
    assert not ringless, focused
