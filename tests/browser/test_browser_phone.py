"""The meeting page on a 390x844 phone and the chair panel for a large meeting (Chromium): the
control bar always on screen and usable, drawers that open and close (Escape gives the focus back),
a status line that is not cut off, toasts that cover no control, and the chair's compact rows
(raised hands first, filters, a menu per row) with "extend" explained where it is unavailable."""

from __future__ import annotations

import time
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, Page

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.browser.conftest import screenshot, wait_for
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# Each visible, enabled control of the bar: its box, whether it lies inside the viewport, and
# whether a tap at its centre reaches it (nothing drawn over it).
BAR = """
() => [...document.querySelectorAll(".controls button")]
  .filter((b) => b.offsetParent !== null)
  .map((b) => {
    const r = b.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    return {id: b.id, inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth &&
            r.bottom <= innerHeight && r.width > 0 && r.height > 0,
            reachable: Boolean(hit && b.contains(hit))};
  })
"""

# Every visible button's box that a visible toast overlaps (the toasts' own Dismiss excluded).
TOAST_OVER_BUTTONS = """
() => {
  const boxes = (sel) => [...document.querySelectorAll(sel)]
    .filter((e) => e.offsetParent !== null && e.getClientRects().length > 0)
    .map((e) => ({e, r: e.getBoundingClientRect()}));
  const toasts = boxes(".toast");
  const controls = boxes("button, input, select, textarea, a[href]")
    .filter(({e}) => !e.closest(".toast") && e.getBoundingClientRect().width > 0);
  const out = [];
  for (const t of toasts) for (const c of controls) {
    const a = t.r, b = c.r;
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
      out.push(c.e.id || c.e.className || c.e.textContent);
    }
  }
  // Each toast is seen: inside the viewport and drawn over whatever is under its centre.
  const seen = toasts.every(({e, r}) => r.top >= 0 && r.bottom <= innerHeight &&
    e.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)));
  return {toasts: toasts.length, over: out, seen};
}
"""

# The tallest band of the main column (px) that no visible content covers: the stage's tile or
# words, the grid's tiles and words, the floor banner, the pager.
EMPTY_BAND = """
() => {
  const column = document.querySelector(".main-column").getBoundingClientRect();
  const spans = [...document.querySelectorAll("#floor-banner, #stage-tile, #stage-empty, " +
      "#stage-self, #grid .tile, #empty-grid, #grid-pager")]
    .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")
    .map((e) => e.getBoundingClientRect())
    .filter((r) => r.height > 0)
    .map((r) => [Math.max(r.top, column.top), Math.min(r.bottom, column.bottom)])
    .sort((a, b) => a[0] - b[0]);
  let largest = 0, reached = column.top;
  for (const [top, bottom] of spans) {
    largest = Math.max(largest, top - reached);
    reached = Math.max(reached, bottom);
  }
  return Math.round(Math.max(largest, column.bottom - reached));
}
"""

ROW_NAMES = """
() => [...document.querySelectorAll("#chair-participants > li")]
  .filter((li) => !li.hidden).map((li) => li.querySelector(".name").textContent)
"""


def token(room: str, name: str, role: Literal["chair", "participant"]) -> str:
    return make_token(SECRET, room=room, name=name, role=role, now_s=int(time.time()))


async def open_as(
    browser: Browser, url: str, viewport: dict[str, int], *, mobile: bool = False
) -> Page:
    context = await browser.new_context(
        viewport=viewport,
        is_mobile=mobile,
        has_touch=mobile,
        device_scale_factor=2 if mobile else 1,
    )
    page = await context.new_page()
    page.on("console", lambda m: print(f"[{viewport['width']}] {m.type}: {m.text}"))
    await page.goto(url)
    await wait_for(
        lambda: page.evaluate("window.conference?.state === 'connected'"), "connected", 30
    )
    return page


async def check_bar(page: Page) -> list[str]:
    """Every control of the bar is on screen and reachable; returns their ids."""
    bar: list[dict[str, Any]] = await page.evaluate(BAR)
    assert bar and all(b["inside"] and b["reachable"] for b in bar), bar
    return [b["id"] for b in bar]


async def check_status_whole(page: Page) -> None:
    status = await page.evaluate(
        """() => {
          const s = document.getElementById("status");
          const r = s.getBoundingClientRect();
          return {sw: s.scrollWidth, cw: s.clientWidth, right: r.right, text: s.textContent};
        }"""
    )
    assert status["text"] and status["sw"] <= status["cw"], status
    assert status["right"] <= PHONE["width"], status


async def check_drawer(page: Page, toggle: str, panel: str) -> None:
    """The drawer opens from its button (aria-expanded), fits the screen, and Escape closes it
    with the focus back on the button."""
    await page.click(toggle)
    await page.wait_for_selector(f"{panel}", state="visible")
    assert await page.get_attribute(toggle, "aria-expanded") == "true"
    box = await page.evaluate(
        f"""() => {{ const r = document.querySelector("{panel}").getBoundingClientRect();
                     return [r.left, r.top, r.right, r.bottom]; }}"""
    )
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= PHONE["width"] and box[3] <= PHONE["height"]
    await check_bar(page)  # the bar stays reachable below the drawer
    await page.keyboard.press("Escape")
    await page.wait_for_selector(panel, state="hidden")
    assert await page.get_attribute(toggle, "aria-expanded") == "false"
    assert await page.evaluate("document.activeElement.id") == toggle.lstrip("#")


async def test_phone_bar_drawers_and_toasts(server: RunningServer, browser: Browser) -> None:
    base = server.http_url
    amara = await open_as(browser, f"{base}/?room=demo&name=Amara", PHONE, mobile=True)
    # Alone, the stage takes the room the grid would have: no empty grid space is kept.
    grid = await amara.evaluate("document.getElementById('grid').getBoundingClientRect().height")
    assert grid == 0, grid
    assert await amara.is_visible("#empty-grid")
    chair = await open_as(
        browser, f"{base}/?token={token('demo', 'Ines', 'chair')}", PHONE, mobile=True
    )

    # A participant's phone: the bar's controls all on screen and reachable, the status whole.
    ids = await check_bar(amara)
    for control in (
        "mic-toggle",
        "cam-toggle",
        "hand-toggle",
        "chat-toggle",
        "participants-toggle",
        "devices-toggle",
        "leave",
    ):
        assert control in ids, ids
    await check_status_whole(amara)

    # Mute and unmute from the bar.
    await amara.click("#mic-toggle")
    await wait_for(lambda: amara.evaluate("!window.conference.mediaState.audio"), "muted")
    assert (await amara.text_content("#mic-toggle") or "").strip() == "Unmute"
    await amara.click("#mic-toggle")
    await wait_for(lambda: amara.evaluate("window.conference.mediaState.audio"), "unmuted")
    await amara.click("#hand-toggle")
    await wait_for(lambda: amara.evaluate("window.conference.handRaised"), "hand raised")

    # The drawers: participants, chat and devices.
    await check_drawer(amara, "#participants-toggle", "#participant-list")
    await amara.click("#participants-toggle")
    await amara.wait_for_selector("#participant-list li:has-text('Ines')")
    await screenshot(amara, "phone-participants-drawer.png")
    # Opening another drawer closes this one: only one covers the meeting at a time.
    await amara.click("#chat-toggle")
    await amara.wait_for_selector("#chat-panel", state="visible")
    assert not await amara.is_visible("#participant-list")
    await amara.keyboard.press("Escape")
    await amara.wait_for_selector("#chat-panel", state="hidden")
    await check_drawer(amara, "#devices-toggle", "#devices-panel")
    await screenshot(amara, "phone-meeting.png")
    # The meeting's room goes to its content: no tall empty band (there were 300 px above and
    # below a 16:9 tile while Amara saw only "you are on the stage").
    band = await amara.evaluate(EMPTY_BAND)
    assert band < 100, (band, await amara.evaluate("document.getElementById('stage').dataset.why"))

    # The chair's phone: the chair panel is a drawer too, with "extend" explained in words.
    ids = await check_bar(chair)
    assert "chair-toggle" in ids and "participants-toggle" not in ids, ids
    await check_status_whole(chair)
    await check_drawer(chair, "#chair-toggle", "#chair-panel")
    await chair.click("#chair-toggle")
    why = chair.locator("#chair-extend-why")
    await why.wait_for(state="visible")
    assert "no scheduled end" in (await why.inner_text())
    assert await chair.is_disabled("#chair-extend")
    assert await chair.get_attribute("#chair-extend", "aria-describedby") == "chair-extend-why"
    # Amara's raised hand is first, with its quick "Give floor".
    await chair.wait_for_selector("#chair-participants > li.hand .hand-grant")
    assert (await chair.evaluate(ROW_NAMES))[0] == "Amara"

    # Toasts while the drawer is open (two refused chair actions): they show, over no control.
    await chair.evaluate('window.conference.chair("revoke_floor")')
    await chair.wait_for_selector(".toast")
    await chair.evaluate('window.conference.chair("extend", {minutes: 15})')
    # The newest comes first; an older one that no longer fits above the drawer is dropped.
    await chair.wait_for_selector(".toast:first-child:has-text('extend')")
    result = await chair.evaluate(TOAST_OVER_BUTTONS)
    assert result["toasts"] >= 1 and result["seen"] and result["over"] == [], result
    await screenshot(chair, "phone-chair-panel.png")
    ids = await check_bar(chair)  # still all reachable with toasts and the drawer
    await chair.keyboard.press("Escape")
    await chair.wait_for_selector("#chair-panel", state="hidden")


async def test_desktop_toasts_cover_no_control(server: RunningServer, browser: Browser) -> None:
    chair = await open_as(
        browser, f"{server.http_url}/?token={token('demo', 'Ines', 'chair')}", DESKTOP
    )
    await chair.wait_for_selector("#chair-panel", state="visible")
    assert not await chair.is_visible("#chair-toggle")  # the sidebar shows the panel here
    await check_bar(chair)
    for _ in range(3):
        await chair.evaluate('window.conference.chair("revoke_floor")')
        await chair.evaluate('window.conference.chair("extend", {minutes: 15})')
    await chair.wait_for_selector(".toast")
    result = await chair.evaluate(TOAST_OVER_BUTTONS)
    assert result["toasts"] >= 1 and result["seen"] and result["over"] == [], result
    assert await chair.is_visible("#chair-extend-why")
    await screenshot(chair, "desktop-chair-toasts.png")


async def test_chair_panel_for_many(server: RunningServer, browser: Browser) -> None:
    chair = await open_as(
        browser, f"{server.http_url}/?token={token('council', 'Ines Chair', 'chair')}", DESKTOP
    )
    amara = await open_as(
        browser, f"{server.http_url}/?token={token('council', 'Amara', 'participant')}", DESKTOP
    )
    peers: list[LoopbackPeer] = []
    try:
        for name in ("Bashir", "Dakar", "Elbasan", "Freetown"):
            peer = LoopbackPeer(
                server.ws_url, name=name, token=token("council", name, "participant")
            )
            await peer.join(publish=False)
            await peer.send({"type": "media_state", "audio": name != "Freetown", "video": False})
            peers.append(peer)
        by_name = {p.name: p for p in peers}
        await chair.wait_for_selector("#chair-participants > li:nth-child(6)")

        # Hands: Elbasan first, then Bashir: the rows follow the queue, not the alphabet.
        await by_name["Elbasan"].send({"type": "raise_hand"})
        await wait_for(
            lambda: chair.evaluate(
                "document.querySelectorAll('#chair-participants > li.hand').length === 1"
            ),
            "one hand",
        )
        await by_name["Bashir"].send({"type": "raise_hand"})

        async def hands_first() -> Any:
            names: list[str] = await chair.evaluate(ROW_NAMES)
            return names if names[:3] == ["Elbasan", "Bashir", "Ines Chair"] else None

        names = await wait_for(hands_first, "raised hands first")
        assert names[3:] == ["Amara", "Dakar", "Freetown"], names
        badges = await chair.eval_on_selector_all(
            "#chair-participants .badge.hand", "els => els.map(e => e.textContent)"
        )
        assert badges == ["hand raised #1", "hand raised #2"], badges

        # The chair mutes Amara from her row's menu, from the keyboard: Enter opens the menu on
        # its first item, Escape closes it with the focus back on the menu button.
        amara_id = await amara.evaluate("window.conference.self.id")
        row = f'#chair-participants [data-participant-id="{amara_id}"]'
        await chair.focus(f"{row} .row-menu-button")
        await chair.keyboard.press("Enter")
        await chair.wait_for_selector(f"{row} .row-menu", state="visible")
        assert await chair.get_attribute(f"{row} .row-menu-button", "aria-expanded") == "true"
        assert await chair.evaluate("document.activeElement.getAttribute('role')") == "menuitem"
        await chair.keyboard.press("Escape")
        await chair.wait_for_selector(f"{row} .row-menu", state="hidden")
        assert await chair.evaluate("document.activeElement.classList.contains('row-menu-button')")
        await chair.click(f"{row} .row-menu-button")
        await screenshot(chair, "chair-row-menu.png")
        await chair.click(f"{row} .chair-mute")
        await amara.wait_for_selector('#self-tile .marker.chair-muted:has-text("muted by chair")')
        await chair.wait_for_selector(f"{row} .row-state .chair-muted")

        # Filters: each narrows the list to whom it names; pressed again, everyone is back.
        async def shown_with(filter_name: str) -> list[str]:
            await chair.click(f'#chair-filters button[data-filter="{filter_name}"]')
            assert (
                await chair.get_attribute(
                    f'#chair-filters button[data-filter="{filter_name}"]', "aria-pressed"
                )
                == "true"
            )
            return sorted(await chair.evaluate(ROW_NAMES))

        assert await shown_with("hands") == ["Bashir", "Elbasan"]
        assert "(2)" in (
            await chair.text_content('#chair-filters button[data-filter="hands"]') or ""
        )
        assert "Showing 2 of 6" in (await chair.text_content("#chair-showing") or "")
        await screenshot(chair, "chair-panel-filter-hands.png")
        assert await shown_with("muted") == ["Amara", "Freetown"]
        # Speaking: whatever the moment's count, exactly the rows marked speaking show.
        await chair.click('#chair-filters button[data-filter="speaking"]')
        consistent = await chair.evaluate(
            """() => [...document.querySelectorAll("#chair-participants > li")]
                 .every((li) => li.hidden !== li.classList.contains("speaking"))"""
        )
        assert consistent
        await chair.click('#chair-filters button[data-filter="speaking"]')  # off again
        assert len(await chair.evaluate(ROW_NAMES)) == 6
        # The name search narrows within the filter.
        await chair.click('#chair-filters button[data-filter="hands"]')
        await chair.fill("#chair-filter", "bash")
        assert await chair.evaluate(ROW_NAMES) == ["Bashir"]
        await chair.fill("#chair-filter", "nobody-like-this")
        assert await chair.evaluate(ROW_NAMES) == []
        assert await chair.is_visible("#chair-no-match")
        await chair.fill("#chair-filter", "")
        await chair.click('#chair-filters button[data-filter="hands"]')
        assert len(await chair.evaluate(ROW_NAMES)) == 6

        # The quick "Give floor" on a raised hand gives it, and the hand goes down.
        elbasan = by_name["Elbasan"].participant_id
        await chair.click(f'#chair-participants [data-participant-id="{elbasan}"] .hand-grant')
        await chair.mouse.move(0, 0)  # rows stand still under the pointer (web/rowfreeze.js)
        await wait_for(
            lambda: chair.evaluate(
                f"document.getElementById('floor-banner').dataset.holderId === '{elbasan}'"
            ),
            "Elbasan holding the floor",
        )

        async def bashir_first() -> Any:
            names: list[str] = await chair.evaluate(ROW_NAMES)
            return names if names[0] == "Bashir" else None

        # (once the rows are free again, SETTLE_MS after the pointer left them)
        await wait_for(bashir_first, "Bashir's hand first once Elbasan's went down")
        await screenshot(chair, "chair-panel-many.png")
    finally:
        for peer in peers:
            await peer.close()
