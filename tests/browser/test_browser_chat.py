"""Room chat in two Chromium pages: markup stays text, a link is a safe working link, an unread
count, the chair removes a message and turns chat off."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

import pytest
from playwright.async_api import Browser, Page

from confsfu.tokens import make_token
from tests.browser.conftest import open_page, screenshot
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

JOINED = "window.conference && window.conference.self && window.conference.room !== null"
MESSAGE = '#chat-messages li[data-message-id="1"]'
# A chat message as the page shows it (by its selector): name, text, the elements in its text
# (only a link may be one), the link's address and how it opens, and its time.
SHOWN = """
(sel) => {
  const li = document.querySelector(sel);
  return {
    name: li.querySelector(".chat-name").textContent,
    text: li.querySelector(".chat-text").textContent,
    elements: [...li.querySelector(".chat-text").querySelectorAll("*")].map((e) => e.tagName),
    href: li.querySelector("a")?.href,
    rel: li.querySelector("a")?.rel,
    target: li.querySelector("a")?.target,
    time: li.querySelector("time").dateTime,
  };
}
"""


async def join(
    browser: Browser, server: RunningServer, name: str, role: Literal["chair", "participant"]
) -> Page:
    token = make_token(SECRET, room="council", name=name, role=role, now_s=int(time.time()))
    page = await open_page(browser, f"{server.http_url}/?token={token}")
    await page.wait_for_function(JOINED, timeout=20_000)
    return page


async def test_chat_shows_text_and_safe_links_and_the_chair_moderates(
    server: RunningServer, browser: Browser
) -> None:
    chair = await join(browser, server, "Ines Chair", "chair")
    amara = await join(browser, server, "Amara", "participant")
    link = f"{server.http_url}/healthz"
    text = f'Look <b>x</b> <img src=x onerror="window.__xss=1"> {link}.'

    # Amara opens the chat and sends with Enter.
    await amara.click("#chat-toggle")
    await amara.fill("#chat-input", text)
    await amara.press("#chat-input", "Enter")
    await amara.wait_for_selector(MESSAGE)
    assert await amara.input_value("#chat-input") == ""

    # The chair's closed panel counts it as unread.
    await chair.wait_for_selector("#chat-unread:not([hidden])")
    assert (await chair.text_content("#chat-unread")) == "1"
    assert await chair.get_attribute("#chat-toggle", "aria-label") == "Chat, 1 unread"
    assert not await chair.is_visible("#chat-panel")

    # Opened: the message is text (no element from it), with the address as a safe link.
    await chair.click("#chat-toggle")
    await chair.wait_for_selector("#chat-unread[hidden]", state="attached")
    shown = await chair.evaluate(SHOWN, MESSAGE)
    assert shown["name"] == "Amara"
    assert shown["text"] == text
    assert shown["elements"] == ["A"], shown
    assert (shown["href"], shown["rel"], shown["target"]) == (link, "noopener noreferrer", "_blank")
    assert abs(_iso_ms(shown["time"]) - time.time() * 1000) < 60_000
    assert await chair.evaluate("window.__xss === undefined")
    await screenshot(chair, "chat-chair-view.png")

    # The link works and opens without a handle on the meeting page.
    async with chair.context.expect_page() as popup_info:
        await chair.click(f"{MESSAGE} a")
    popup = await popup_info.value
    await popup.wait_for_load_state()
    assert popup.url == link
    assert await popup.evaluate("window.opener === null")
    await popup.close()

    # Amara may not remove it (no button); the chair removes it from both pages.
    assert not await amara.is_visible(f"{MESSAGE} .chat-remove")
    await chair.click(f"{MESSAGE} .chat-remove")
    for page in (chair, amara):
        await page.wait_for_selector(MESSAGE, state="detached")

    # Chat off: Amara can read but not write, and is told why.
    await chair.click("#chat-enabled")
    await amara.wait_for_selector("#chat-input:disabled")
    assert "turned chat off" in (await amara.text_content("#chat-state") or "")
    assert await amara.is_disabled("#chat-send")
    await chair.fill("#chat-input", "Chairs can still write")
    await chair.click("#chat-send")
    await amara.wait_for_selector('#chat-messages li[data-message-id="2"]')
    await screenshot(amara, "chat-participant-chat-off.png")


async def test_only_http_and_https_addresses_become_links(
    server: RunningServer, browser: Browser
) -> None:
    page = await open_page(browser, f"{server.http_url}/")  # the join form: no meeting
    parts = await page.evaluate(
        """async () => {
            const { splitLinks } = await import("/static/words.js");
            return [
                "javascript:alert(1) data:text/html,x",
                "see https://example.org/a_(b)), then",
                "xhttps://evil.example",
                "HTTPS://EXAMPLE.ORG/",
            ].map((t) => splitLinks(t).filter((p) => p.href).map((p) => p.href));
        }"""
    )
    assert parts == [[], ["https://example.org/a_(b)"], [], ["https://example.org/"]]


def _iso_ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000
