"""Time from a page's WebSocket opening to its first decoded remote video frame, in Chromium.

Starts a server in-process (loopback ICE), keeps one publishing page open, and joins a second
page five times. Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/first_frame.py
"""

from __future__ import annotations

import asyncio
import statistics

from playwright.async_api import async_playwright
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path
from tests.conftest import start_server
from tests.conftest import test_settings as make_settings

RECORD_OPEN = """
(() => {
  const Original = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Original(...args);
    ws.addEventListener("open", () => { window.__wsOpen = performance.now(); });
    return ws;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, Original);
})();
"""
FIRST_FRAME = """
async () => {
  const c = window.conference;
  if (!c || !c.subscribePc || !window.__wsOpen) return null;
  const stats = await c.subscribePc.getStats();
  let frames = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames > 0 ? performance.now() - window.__wsOpen : null;
}
"""


async def main(joins: int = 5) -> None:
    runner, server = await start_server(make_settings())
    results: list[float] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            host = await (await browser.new_context()).new_page()
            await host.goto(f"{server.http_url}/?room=demo&name=Host")
            await asyncio.sleep(3)
            for i in range(joins):
                context = await browser.new_context()
                page = await context.new_page()
                await page.add_init_script(RECORD_OPEN)
                await page.goto(f"{server.http_url}/?room=demo&name=Guest{i}")
                for _ in range(500):  # at most 10 s, polled every 20 ms
                    ms = await page.evaluate(FIRST_FRAME)
                    if ms:
                        results.append(ms)
                        print(f"join {i}: {ms:.0f} ms")
                        break
                    await asyncio.sleep(0.02)
                await context.close()
                await asyncio.sleep(1)
            await browser.close()
    finally:
        await runner.cleanup()
    if results:
        median = statistics.median(results)
        print(f"median {median:.0f} ms, min {min(results):.0f}, max {max(results):.0f}")


if __name__ == "__main__":
    asyncio.run(main())
