"""Headless Firefox (Debian's firefox-esr) driven over WebDriver BiDi, in a network namespace.

Firefox's remote agent speaks W3C WebDriver BiDi on a WebSocket; aiohttp's client is all this
driver needs (no geckodriver, no npm). Firefox runs in a namespace of its own: it gathers no
127.0.0.1 candidate, so it reaches the server at the namespace's host-side address, and nothing it
tries to reach beyond that can leave the machine. Its agent listens on the namespace's loopback
only, so a small relay inside the namespace carries the driver's WebSocket in.

`FirefoxPage` offers the part of Playwright's `Page` the browser tests use (`evaluate`, `click`,
`goto`, `reload`, `wait_for_function`, `screenshot`, ...), so the tests' helpers take either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.netns import Namespace

AGENT_PORT = 9222  # the namespace is the browser's own: no other listener
RELAY_PORT = 9223

# English; fake camera and microphone, no prompts; a page on http:// at the namespace's address
# may use them; ICE shows real host addresses; nothing updates, reports or phones home.
PREFS: dict[str, bool | int | str] = {
    "media.navigator.streams.fake": True,
    "intl.accept_languages": "en-US",  # the page speaks the browser's language: English
    "media.navigator.permission.disabled": True,
    "media.devices.insecure.enabled": True,
    "media.getusermedia.insecure.enabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-gmpopenh264.enabled": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.newtabpage.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.search.update": False,
    "browser.download.dir": "/tmp",
    "browser.download.folderList": 2,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "dom.push.connection.enabled": False,
    "extensions.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "services.settings.server": "data:,",
    "geo.provider.network.url": "",
    "browser.region.network.url": "",
}

# Carries TCP from the namespace's address to the agent on its loopback (run inside it).
RELAY = """
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    agent_r, agent_w = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(reader, agent_w), pipe(agent_r, writer))
async def main():
    server = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[3]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def firefox_path() -> str:
    path = shutil.which("firefox-esr") or shutil.which("firefox")
    if not path:
        pytest.fail("Firefox is not installed: apt-get install firefox-esr (see scripts/test.sh)")
    return path


VISIBLE = "(sel) => { const e = document.querySelector(sel); return !!(e && e.offsetParent); }"


# The element, scrolled into view, once its box is the same over two animation frames (at most
# 60 frames of at most 50 ms: a box that never stands still is clicked where it is then).
STILL_ELEMENT = """async (sel) => {
  const e = document.querySelector(sel);
  e.scrollIntoView({block: 'center'});
  const frame = () => new Promise((r) => { requestAnimationFrame(r); setTimeout(r, 50); });
  const box = () => JSON.stringify(e.getBoundingClientRect());
  let last = box(), still = 0;
  for (let i = 0; i < 60 && still < 2; i++) {
    await frame();
    const now = box();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return e;
}"""


class BidiError(Exception):
    pass


class Firefox:
    """One Firefox process and its BiDi session; pages are tabs in user contexts of their own."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._labels: dict[str, str] = {}  # browsing context -> label for console lines
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "event":
                self._on_event(data["method"], data["params"])
                continue
            waiter = self._waiting.pop(data.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(BidiError("the BiDi connection closed"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "log.entryAdded":
            label = self._labels.get(params.get("source", {}).get("context", ""), "?")
            print(f"[{label}] {params.get('level')}: {params.get('text')}")

    async def send(self, method: str, params: dict[str, Any], timeout_s: float = 30) -> Any:
        command_id = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = waiter
        await self._ws.send_str(json.dumps({"id": command_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(waiter, timeout_s)
        if reply.get("type") != "success":
            raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return reply["result"]

    async def new_page(self, url: str, label: str) -> FirefoxPage:
        user_context = (await self.send("browser.createUserContext", {}))["userContext"]
        context = (
            await self.send(
                "browsingContext.create", {"type": "window", "userContext": user_context}
            )
        )["context"]
        self._labels[context] = label
        await self.send(
            "browsingContext.setViewport",
            {"context": context, "viewport": {"width": 1280, "height": 800}},
        )
        page = FirefoxPage(self, context, user_context)
        await page.goto(url)
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("browser.close", {}, timeout_s=10)
        await self._ws.close()
        self._reader.cancel()


class FirefoxPage:
    """The subset of Playwright's Page the browser tests use, over BiDi."""

    def __init__(self, firefox: Firefox, context: str, user_context: str) -> None:
        self.firefox = firefox
        self.context = context
        self.user_context = user_context

    async def goto(self, url: str) -> None:
        await self.firefox.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def reload(self) -> None:
        await self.firefox.send(
            "browsingContext.reload", {"context": self.context, "wait": "complete"}
        )

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Like Playwright: a function expression is called with `arg`, anything else evaluated;
        promises are awaited and the result comes back through JSON."""
        wrapper = (
            "async (argJson) => { const f = (" + expression + ");"
            " const v = await (typeof f === 'function' ? f(JSON.parse(argJson)) : f);"
            " return JSON.stringify(v === undefined ? null : v); }"
        )
        result = await self.firefox.send(
            "script.callFunction",
            {
                "functionDeclaration": wrapper,
                "arguments": [{"type": "string", "value": json.dumps(arg)}],
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"page threw: {details.get('text')}")
        return json.loads(result["result"]["value"])

    async def wait_for_function(
        self, expression: str, *, arg: Any = None, timeout: float = 30_000
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout / 1000
        while True:
            with contextlib.suppress(BidiError):  # e.g. a navigation under way
                value = await self.evaluate(expression, arg)
                if value:
                    return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.1)

    async def wait_for_selector(self, selector: str, timeout: float = 30_000) -> bool:
        return bool(await self.wait_for_function(VISIBLE, arg=selector, timeout=timeout))

    async def is_visible(self, selector: str) -> bool:
        return bool(await self.evaluate(VISIBLE, selector))

    async def text_content(self, selector: str) -> str | None:
        text: str | None = await self.evaluate(
            "(sel) => document.querySelector(sel)?.textContent ?? null", selector
        )
        return text

    async def eval_on_selector_all(self, selector: str, expression: str) -> Any:
        return await self.evaluate(
            "(sel) => (" + expression + ")([...document.querySelectorAll(sel)])", selector
        )

    async def click(self, selector: str) -> None:
        """A real pointer click at the element's centre (after scrolling it into view, once it
        stands still for two frames, as Playwright's clicks wait: a list reordered by who speaks
        must not move it from under the pointer)."""
        await self.wait_for_selector(selector, timeout=10_000)
        found = await self.firefox.send(
            "script.callFunction",
            {
                "functionDeclaration": STILL_ELEMENT,
                "arguments": [{"type": "string", "value": selector}],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "root",
            },
        )
        el = {"sharedId": found["result"]["sharedId"]}
        pointer = [
            {"type": "pointerMove", "x": 0, "y": 0, "origin": {"type": "element", "element": el}},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        await self.firefox.send(
            "input.performActions",
            {
                "context": self.context,
                "actions": [
                    {
                        "type": "pointer",
                        "id": "mouse",
                        "parameters": {"pointerType": "mouse"},
                        "actions": pointer,
                    }
                ],
            },
        )

    async def fill(self, selector: str, value: str) -> None:
        await self.evaluate(
            """([sel, value]) => { const e = document.querySelector(sel); e.value = value;
               e.dispatchEvent(new Event('input', {bubbles: true}));
               e.dispatchEvent(new Event('change', {bubbles: true})); }""",
            [selector, value],
        )

    async def screenshot(self, *, path: str) -> None:
        result = await self.firefox.send(
            "browsingContext.captureScreenshot", {"context": self.context}
        )
        Path(path).write_bytes(base64.b64decode(result["data"]))

    async def close(self) -> None:
        await self.firefox.send("browsingContext.close", {"context": self.context})
        await self.firefox.send("browser.removeUserContext", {"userContext": self.user_context})


def write_profile(profile: Path, prefs: Mapping[str, bool | int | str] | None = None) -> None:
    """The profile's user.js: PREFS, with `prefs` over them (a test's own, e.g. its language)."""
    profile.mkdir(parents=True, exist_ok=True)
    merged = {**PREFS, **(prefs or {})}
    lines = [f"user_pref({json.dumps(k)}, {json.dumps(v)});" for k, v in merged.items()]
    (profile / "user.js").write_text("\n".join(lines) + "\n")


async def _wait_for_line(stream: asyncio.StreamReader, needle: str, timeout_s: float) -> str:
    seen: list[str] = []

    async def scan() -> str:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            seen.append(text)
            if needle in text:
                return text
        raise AssertionError(f"exited before {needle!r}: {seen[-20:]}")

    try:
        return await asyncio.wait_for(scan(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} after {timeout_s} s: {seen[-20:]}") from None


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@contextlib.asynccontextmanager
async def launch_firefox(
    ns: Namespace, profile: Path, prefs: Mapping[str, bool | int | str] | None = None
) -> AsyncIterator[Firefox]:
    """Firefox headless inside `ns`, with a BiDi session open (`prefs` over the usual ones)."""
    write_profile(profile, prefs)
    inside = ns.exec_prefix()
    browser = await asyncio.create_subprocess_exec(
        *inside, firefox_path(), "--headless", "--no-remote", "--profile", str(profile),
        "--remote-debugging-port", str(AGENT_PORT),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(profile), "PATH": "/usr/bin:/bin", "MOZ_HEADLESS": "1"},
    )  # fmt: skip
    relay = await asyncio.create_subprocess_exec(
        *inside, sys.executable, "-c", RELAY, ns.inner_ip, str(AGENT_PORT), str(RELAY_PORT),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    drains: list[asyncio.Task[None]] = []
    try:
        assert browser.stderr is not None and relay.stdout is not None
        await _wait_for_line(browser.stderr, "WebDriver BiDi listening", 30)
        await _wait_for_line(relay.stdout, "ready", 10)
        drains.append(asyncio.get_running_loop().create_task(_drain(browser.stderr)))
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"ws://{ns.inner_ip}:{RELAY_PORT}/session",
                headers={"Host": f"127.0.0.1:{AGENT_PORT}"},
                max_msg_size=0,
            )
            firefox = Firefox(ws)
            await firefox.send("session.new", {"capabilities": {}})
            await firefox.send("session.subscribe", {"events": ["log.entryAdded"]})
            try:
                yield firefox
            finally:
                await firefox.close()
    finally:
        if browser.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(browser.wait(), 5)
        for proc in (browser, relay):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for task in drains:
            task.cancel()
