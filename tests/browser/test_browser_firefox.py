"""Firefox (Debian's firefox-esr, over WebDriver BiDi, in a network namespace of its own) as a
first-class participant: it meets Chromium, publishes simulcast whose layers the server turns off
and on, runs the chair panel, and comes back into its tile after a reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import PageDriver, open_page, page_screenshot
from tests.browser.firefox import Firefox
from tests.browser.netns import Namespace
from tests.browser.test_browser_conference import MEDIA_FROM_OTHERS, wait_until
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


def firefox_url(server: RunningServer, ns: Namespace, query: str) -> str:
    """The page as Firefox reaches it: at the server's address on Firefox's namespace link."""
    return f"http://{ns.host_ip}:{server.port}/?{query}"


async def sees_and_hears(page: PageDriver, others: list[str], timeout_s: float = 30) -> None:
    async def media_ok() -> Any:
        media = await page.evaluate(MEDIA_FROM_OTHERS)
        ok = all(
            media.get(n, {}).get("frames", 0) > 5 and media.get(n, {}).get("audio", 0) > 20
            for n in others
        )
        return ok or media

    await wait_until(page, media_ok, timeout_s)


async def test_firefox_and_chromium_see_and_hear_each_other(
    open_server: RunningServer, browser: Browser, firefox: Firefox, firefox_ns: Namespace
) -> None:
    lima = await firefox.new_page(firefox_url(open_server, firefox_ns, "room=demo&name=Lima"), "Lima")
    seoul = await open_page(browser, f"{open_server.http_url}/?room=demo&name=Seoul")
    await sees_and_hears(lima, ["Seoul"])
    await sees_and_hears(seoul, ["Lima"])
    await page_screenshot(lima, "firefox-meets-chromium.png")
    await page_screenshot(seoul, "chromium-meets-firefox.png")
