"""The meeting page's features with Firefox (ESR, over WebDriver BiDi) as one participant and
Chromium as another: chat (markup stays text, a safe link, the unread count), name cards, the
speaker/grid switch and pinning (a picture counts only by its colour matching the name), the page
in Spanish then Korean, and axe-core on the meeting and the chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import page_screenshot, screenshot, wait_for
from tests.browser.firefox import Firefox, FirefoxPage
from tests.browser.netns import Namespace
from tests.browser.test_browser_a11y import axe_source, axe_violations
from tests.browser.test_browser_chat import SHOWN
from tests.browser.test_browser_firefox import connected, firefox_url, token
from tests.browser.test_browser_identity import TILES as CARDS
from tests.browser.test_browser_identity import coloured_cameras, initials
from tests.browser.test_browser_languages import text, why_of
from tests.browser.test_browser_layout import (
    TILES,
    hold_when_subscribed,
    picture_of,
    truthful,
    until,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

CHAT_ITEM = '#chat-messages li[data-message-id="{}"]'
Role = Literal["chair", "participant"]
JOINED = "window.conference?.state === 'connected'"
PANEL_SHUT = "() => document.getElementById('chat-panel').offsetParent === null"


async def chromium_in(
    browser: Browser, server: RunningServer, name: str, role: Role | None = None
) -> Page:
    """A Chromium page joined as `name`: to "council" with a token for `role`, else to the open
    room "demo". Another test run's network namespace coming or going on this machine makes
    Chromium fail what it has in flight (net::ERR_NETWORK_CHANGED, seen here on a page's scripts
    at a load average of 28): a page that lost a request so and has not joined is loaded again,
    twice at most; any other failure to join fails the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    query = f"token={token(name, role)}" if role else f"room=demo&name={name}"
    page.on("console", lambda m: print(f"[{name}] {m.type}: {m.text}"))
    changed: list[str] = []
    page.on(
        "requestfailed",
        lambda r: changed.append(r.url) if "ERR_NETWORK_CHANGED" in (r.failure or "") else None,
    )
    await page.goto(f"{server.http_url}/?{query}")
    for _ in range(2):
        try:
            await page.wait_for_function(JOINED, timeout=30_000)
            return page
        except PlaywrightTimeoutError:
            if not changed:
                raise
            print(f"[{name}] loaded again: the network changed under {changed}")
            changed.clear()
            await page.reload()
    await page.wait_for_function(JOINED, timeout=30_000)
    return page


async def lima_in(
    firefox: Firefox, server: RunningServer, ns: Namespace, query: str
) -> FirefoxPage:
    return await firefox.new_page(firefox_url(server, ns, query), "Lima")


async def test_chat_between_firefox_and_chromium(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    amara = await chromium_in(browser, open_server, "Amara", "participant")
    dialogs: list[str] = []
    amara.on("dialog", lambda d: dialogs.append(d.message))
    lima = await lima_in(firefox, open_server, firefox_ns, f"token={token('Lima', 'participant')}")
    await connected(amara)
    await connected(lima)
    link = f"{open_server.http_url}/healthz"
    sent = f'Hi <script>alert(1)</script> <img src=x onerror="window.__xss=1"> see {link}.'

    # Lima (Firefox) opens the chat and sends; her own page shows it as text.
    await lima.click("#chat-toggle")
    await lima.wait_for_selector("#chat-input")
    await lima.fill("#chat-input", sent)
    await lima.click("#chat-send")
    await lima.wait_for_selector(CHAT_ITEM.format(1))
    own = await lima.evaluate(SHOWN, CHAT_ITEM.format(1))
    assert own["text"] == sent and own["elements"] == ["A"], own
    assert await lima.evaluate("document.querySelectorAll('#chat-messages script').length") == 0

    # Amara's (Chromium) closed panel counts it; opened, it is text with a safe link.
    await amara.wait_for_selector("#chat-unread:not([hidden])")
    assert (await amara.text_content("#chat-unread")) == "1"
    await amara.click("#chat-toggle")
    await amara.wait_for_selector(CHAT_ITEM.format(1))
    shown = await amara.evaluate(SHOWN, CHAT_ITEM.format(1))
    assert shown["name"] == "Lima" and shown["text"] == sent, shown
    assert shown["elements"] == ["A"], shown  # no <script>, no <img>: only the link
    assert (shown["href"], shown["rel"], shown["target"]) == (link, "noopener noreferrer", "_blank")
    assert await amara.evaluate("document.querySelectorAll('#chat-messages script').length") == 0
    assert await amara.evaluate("window.__xss === undefined")
    await screenshot(amara, "firefox-page-chat-chromium.png")
    async with amara.context.expect_page() as popup_info:
        await amara.click(f"{CHAT_ITEM.format(1)} a")
    popup = await popup_info.value
    await popup.wait_for_load_state()
    assert popup.url == link
    assert await popup.evaluate("window.opener === null")
    await popup.close()
    assert dialogs == [], dialogs

    # Lima shuts her panel; Amara's reply is counted there, and shown once she opens it.
    await lima.click("#chat-close")
    await lima.wait_for_function(PANEL_SHUT)
    await amara.fill("#chat-input", "Got it, Lima")
    await amara.press("#chat-input", "Enter")
    await lima.wait_for_selector("#chat-unread:not([hidden])")
    assert (await lima.text_content("#chat-unread")) == "1"
    label = await lima.evaluate("document.getElementById('chat-toggle').getAttribute('aria-label')")
    assert label == "Chat, 1 unread", label
    await page_screenshot(lima, "firefox-page-chat-unread.png")
    await lima.click("#chat-toggle")
    await lima.wait_for_selector(CHAT_ITEM.format(2))
    reply = await lima.evaluate(SHOWN, CHAT_ITEM.format(2))
    assert (reply["name"], reply["text"], reply["elements"]) == ("Amara", "Got it, Lima", [])
    await lima.wait_for_function("document.getElementById('chat-unread').hidden")
    await page_screenshot(lima, "firefox-page-chat.png")


async def tile_in(page: FirefoxPage, name: str) -> dict[str, Any] | None:
    """`name`'s tile on the page: its name card (identity's TILES) and caption (layout's)."""
    cards = [t for t in await page.evaluate(CARDS) if t["name"] == name]
    tiles = [t for t in await page.evaluate(TILES) if t["name"] == name]
    return {**cards[0], "caption": tiles[0]["caption"]} if cards and tiles else None


async def test_firefox_shows_name_cards_layouts_and_pins_truly(
    open_server: RunningServer, firefox: Firefox, firefox_ns: Namespace, tmp_path: Path
) -> None:
    async with coloured_cameras(tmp_path, ["Seoul", "Milan"]) as cameras:
        seoul = await chromium_in(cameras["Seoul"], open_server, "Seoul", "chair")
        milan = await chromium_in(cameras["Milan"], open_server, "Milan", "participant")
        seoul_id, milan_id = await connected(seoul), await connected(milan)
        await milan.evaluate("window.conference.setCamera(false)")
        lima = await lima_in(
            firefox, open_server, firefox_ns, f"token={token('Lima', 'participant')}"
        )
        await connected(lima)
        await lima.wait_for_function("!!window.conference.subscribePc")
        await hold_when_subscribed(open_server, "Lima")  # no pause for a low first estimate

        # Milan's camera is off: his tile in Firefox is his name card, his name under it.
        async def milan_card() -> Any:
            tile = await tile_in(lima, "Milan")
            ok = tile and not tile["shown"] and tile["card"] == initials("Milan") and tile["why"]
            return tile if ok else None

        card = await until(milan_card, 30, "Milan's name card in Firefox")
        assert card["caption"].startswith("Milan"), card  # "Milan", or "Milan speaking" on stage
        await page_screenshot(lima, "firefox-page-name-card.png")

        # The chair (Seoul) takes the floor: Seoul on Firefox's stage; Milan's camera back on.
        await seoul.evaluate(
            "id => window.conference.chair('grant_floor', {participant_id: id})", seoul_id
        )
        await milan.evaluate("window.conference.setCamera(true)")
        await until(lambda: picture_of(lima, "Seoul", stage=True), 60, "Seoul on the stage")
        await until(lambda: picture_of(lima, "Milan", stage=False), 30, "Milan in the strip")
        await page_screenshot(lima, "firefox-page-speaker-view.png")

        # Grid view: both equal tiles in the grid, each showing its own person.
        await lima.click("#layout-toggle")
        pressed = "document.getElementById('layout-toggle').getAttribute('aria-pressed')"
        assert await lima.evaluate(pressed) == "true"

        async def grid_of_two() -> Any:
            tiles = await lima.evaluate(TILES)
            assert truthful(tiles), tiles
            named = {t["name"] for t in tiles if t["rgb"] and t["inGrid"]}
            return tiles if named == {"Seoul", "Milan"} else None

        tiles = await until(grid_of_two, 30, "two tiles in Firefox's grid")
        widths = [t["width"] for t in tiles]
        assert max(widths) - min(widths) <= 2, tiles
        await page_screenshot(lima, "firefox-page-grid-view.png")
        await lima.click("#layout-toggle")  # back to speaker view
        assert await lima.evaluate(pressed) == "false"
        await until(lambda: picture_of(lima, "Seoul", stage=True), 30, "Seoul back on stage")

        # Pin Milan: his picture on Firefox's stage, captioned so; Seoul in the strip.
        await until(lambda: picture_of(lima, "Milan", stage=False), 30, "Milan in the strip")
        await lima.click(f"#grid .tile:has(video[data-participant-id='{milan_id}']) .pin-toggle")
        stage = await until(lambda: picture_of(lima, "Milan", stage=True), 30, "Milan pinned")
        assert stage["caption"].startswith("Milan") and "pinned by you" in stage["caption"], stage
        await until(lambda: picture_of(lima, "Seoul", stage=False), 30, "Seoul in the strip")
        pin = "document.querySelector('#stage-tile .pin-toggle').getAttribute('aria-pressed')"
        assert await lima.evaluate(pin) == "true"
        await page_screenshot(lima, "firefox-page-pinned.png")
        await lima.click("#stage-tile .pin-toggle")  # unpin
        await until(lambda: picture_of(lima, "Seoul", stage=True), 30, "Seoul back after unpin")


@pytest.mark.parametrize("firefox", [{"intl.accept_languages": "es"}], indirect=True)
async def test_firefox_in_spanish_then_korean(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    lima = await lima_in(firefox, open_server, firefox_ns, "room=demo")
    assert await lima.evaluate("navigator.language") == "es"
    await lima.wait_for_selector("#join-form")
    assert await lima.evaluate("document.documentElement.lang") == "es"
    assert await text(lima, "#join-form h2") == "Entrar a una reunión"
    assert await text(lima, "#join-form button[type=submit]") == "Entrar"
    assert await text(lima, "label[for=join-name]") == "Tu nombre"
    await page_screenshot(lima, "firefox-page-es-join.png")
    await lima.fill("#join-name", "Ana")
    await lima.click("#join-form button[type=submit]")
    await connected(lima)
    assert (await text(lima, "#status")).startswith("Conectado a la sala «demo» como Ana")
    assert await text(lima, "#mic-toggle") == "Silenciar"
    assert await text(lima, "#hand-toggle") == "Levantar la mano"

    # Bashir (Chromium, English) with his camera off: his name card's reason in Spanish.
    bashir = await chromium_in(browser, open_server, "Bashir")
    await connected(bashir)
    assert await text(bashir, "#mic-toggle") == "Mute"
    await bashir.evaluate("window.conference.setCamera(false)")
    await wait_for(lambda: _is(why_of(lima, "Bashir"), "cámara apagada"), "the card in Spanish", 30)
    await page_screenshot(lima, "firefox-page-es-meeting.png")

    # Korean, picked on the page: the same document and connection, the words change.
    await lima.evaluate("() => { window.__sameDocument = true; }")
    before = await lima.evaluate("window.conference.self.id")
    await lima.fill("#language", "ko")
    await lima.wait_for_function("document.documentElement.lang === 'ko'")
    assert await lima.evaluate("window.__sameDocument") is True
    assert await lima.evaluate("window.conference.state") == "connected"
    assert await lima.evaluate("window.conference.self.id") == before
    assert await lima.evaluate("localStorage.getItem('confsfu.lang')") == "ko"
    assert await text(lima, "#mic-toggle") == "음소거"
    assert await text(lima, "#hand-toggle") == "손 들기"
    assert await text(lima, "#leave") == "나가기"
    assert (await text(lima, "#status")).startswith("“demo” 회의실에 Ana(으)로 연결됨")
    await wait_for(lambda: _is(why_of(lima, "Bashir"), "카메라 꺼짐"), "the card in Korean", 15)
    await page_screenshot(lima, "firefox-page-ko-meeting.png")


async def _is(found: Any, wanted: str) -> bool:
    return bool(await found == wanted)


async def test_axe_in_firefox_on_the_meeting_and_the_chat(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    chair = await chromium_in(browser, open_server, "Ines Chair", "chair")
    await connected(chair)
    lima = await lima_in(firefox, open_server, firefox_ns, f"token={token('Lima', 'participant')}")
    await connected(lima)
    await lima.wait_for_function(
        "[...document.querySelectorAll('#participants li')]"
        ".some((li) => li.textContent.includes('Ines Chair'))"
    )
    await lima.wait_for_selector("#stage-tile:not([hidden]), #grid .tile:not([hidden])")
    # axe-core as the test extra ships it, run as a script of the page's (indirect eval).
    loaded = await lima.evaluate("(src) => { (0, eval)(src); return typeof axe; }", axe_source())
    assert loaded == "object", loaded
    bad = {"meeting": await axe_violations(lima, "firefox-meeting")}

    await lima.click("#chat-toggle")
    await lima.fill("#chat-input", "Hello <b>all</b> https://example.org")
    await lima.click("#chat-send")
    await chair.click("#chat-toggle")
    await chair.fill("#chat-input", "Welcome, Lima")
    await chair.press("#chat-input", "Enter")
    await lima.wait_for_selector(CHAT_ITEM.format(2))
    bad["chat"] = await axe_violations(lima, "firefox-chat")
    assert all(not v for v in bad.values()), {k: v for k, v in bad.items() if v}
