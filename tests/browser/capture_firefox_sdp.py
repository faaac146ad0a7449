"""Captures Firefox's SDP for tests/fixtures: its simulcast publish offer, the server's subscribe
offer and Firefox's answer to it, from a real page joined to a real server (as root:
`.venv/bin/python -m tests.browser.capture_firefox_sdp`)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.browser.firefox import launch_firefox
from tests.browser.netns import namespace
from tests.conftest import start_server
from tests.conftest import test_settings as make_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

DESCRIPTIONS = """
() => {
  const c = window.conference;
  return {publish: c.publishPc.localDescription.sdp,
          subscribeOffer: c.subscribePc.remoteDescription.sdp,
          subscribeAnswer: c.subscribePc.localDescription.sdp};
}
"""


async def capture() -> None:
    runner, server = await start_server(make_settings(ice={"candidates": "host"}), host="0.0.0.0")
    try:
        with namespace("cffx", "10.213.78") as ns, tempfile.TemporaryDirectory() as tmp:
            async with launch_firefox(ns, Path(tmp) / "profile") as firefox:
                url = f"http://{ns.host_ip}:{server.port}/?room=demo&name=Lima"
                page = await firefox.new_page(url, "Lima")
                await page.wait_for_function(
                    "window.conference && window.conference.state === 'connected'"
                )
                sdp = await page.evaluate(DESCRIPTIONS)
    finally:
        await runner.cleanup()
    for name, key in (
        ("firefox_offer_simulcast.sdp", "publish"),
        ("aiortc_subscribe_offer.sdp", "subscribeOffer"),
        ("firefox_subscribe_answer.sdp", "subscribeAnswer"),
    ):
        (FIXTURES / name).write_bytes(sdp[key].encode())
        print(f"wrote {FIXTURES / name}")


if __name__ == "__main__":
    asyncio.run(capture())
