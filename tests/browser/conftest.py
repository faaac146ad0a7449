"""Headless Chromium (Debian's package) driven by Playwright, and Firefox (Debian's firefox-esr)
driven over WebDriver BiDi in a network namespace, both with a fake camera and microphone."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.firefox import Firefox, launch_firefox
from tests.browser.netns import Namespace, kill_left, namespace, unshape
from tests.conftest import RunningServer, start_server
from tests.conftest import test_settings as make_settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--lang=en-US",  # the page speaks the browser's language: English unless a test asks otherwise
]


def chromium_path() -> str:
    path = os.environ.get("CONFSFU_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: apt-get install chromium (see .ci/run)")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.on("console", lambda m: print(f"[{url.split('name=')[-1]}] {m.type}: {m.text}"))
    await page.goto(url)
    return page


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path))
    return path


class PageDriver(Protocol):
    """What the browser tests ask of a page: Playwright's `Page` (Chromium) and `FirefoxPage`
    (WebDriver BiDi) both answer it, so one helper serves either browser."""

    async def goto(self, url: str) -> Any: ...
    async def reload(self) -> Any: ...
    async def evaluate(self, expression: str, arg: Any = None) -> Any: ...
    async def wait_for_function(self, expression: str, *, arg: Any = None) -> Any: ...
    async def click(self, selector: str) -> None: ...
    async def fill(self, selector: str, value: str) -> None: ...
    async def text_content(self, selector: str) -> str | None: ...
    async def is_visible(self, selector: str) -> bool: ...
    async def eval_on_selector_all(self, selector: str, expression: str) -> Any: ...
    async def screenshot(self, *, path: str) -> Any: ...


async def page_screenshot(page: PageDriver, name: str) -> Path:
    """`screenshot` for either browser's page."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path))
    return path


@pytest.fixture(scope="session")
def firefox_namespace() -> Iterator[Namespace]:
    """Firefox's own network namespace (Firefox will not use loopback ICE candidates), made once
    a session: each new one cost its set-up and the wait for Chromium to take the change in."""
    with namespace("cffx", "10.213.78") as ns:
        yield ns


@pytest.fixture
def firefox_ns(firefox_namespace: Namespace) -> Iterator[Namespace]:
    """Firefox's namespace for one test: its link unshaped after it, nothing left running."""
    try:
        yield firefox_namespace
    finally:
        unshape(firefox_namespace)
        kill_left(firefox_namespace)


@pytest.fixture
async def firefox(
    firefox_ns: Namespace, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Firefox]:
    """Firefox in its namespace; an indirect parameter, if any, is prefs over the usual ones
    (`{"intl.accept_languages": "es"}`)."""
    prefs: dict[str, bool | int | str] = getattr(request, "param", {})
    async with launch_firefox(firefox_ns, tmp_path / "firefox-profile", prefs) as browser:
        yield browser


@pytest.fixture
async def open_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    """The server on every address with `ice.candidates: host`, so that a Firefox in its
    namespace reaches it at the namespace's host-side address and a Chromium here at 127.0.0.1
    (settings overridden by an indirect parameter, if any)."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = make_settings(**{"ice": {"candidates": "host"}, **overrides})
    runner, running = await start_server(settings, host="0.0.0.0")
    try:
        yield running
    finally:
        await runner.cleanup()


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 15.0) -> Any:
    """Polls `check` until it returns something truthy; fails naming `what` and the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last seen {last!r}")
