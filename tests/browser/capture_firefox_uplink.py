"""What Firefox's uplink carries while it publishes q/h/f (on a Chromium chair's stage): every
RTP packet it sends out of its namespace, read off the link's host side (SRTP leaves the RTP
header in the clear), by SSRC, payload type and padding bit, with the server's drops per minute
(as root: `.venv/bin/python -m tests.browser.capture_firefox_uplink [seconds]`)."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from confsfu.server.app import HUB
from confsfu.server.media_handles import Publisher
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path, open_page
from tests.browser.firefox import Firefox, launch_firefox
from tests.browser.netns import Namespace, namespace
from tests.browser.test_browser_conference import wait_until
from tests.browser.test_browser_firefox import (
    GRANT,
    connected,
    every_layer_on,
    token,
    uplink_bytes,
)
from tests.conftest import RunningServer, start_server
from tests.conftest import test_settings as make_settings

ETH_P_ALL = 3
Key = tuple[int, int, bool]  # SSRC, payload type, padding bit


def capture(interface: str, seconds: float, packets: Counter[Key], sizes: Counter[Key]) -> None:
    """RTP packets arriving at the host from `interface` for `seconds` (RTCP left out)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL)) as s:
        s.bind((interface, 0))
        s.settimeout(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                frame, address = s.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == socket.PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            if ip[9] != socket.IPPROTO_UDP:
                continue
            rtp = ip[(ip[0] & 15) * 4 + 8 :]
            if len(rtp) < 12 or rtp[0] >> 6 != 2 or 192 <= rtp[1] <= 223:
                continue
            key = (struct.unpack("!I", rtp[8:12])[0], rtp[1] & 0x7F, bool(rtp[0] & 0x20))
            packets[key] += 1
            sizes[key] += len(rtp)


def stream_names(pub: Publisher) -> dict[int, str]:
    """SSRC -> `q`, `rtx of q`, ... as the server routed them."""
    if pub.router is None:
        return {}
    names = {}
    for ssrc, stream in pub.router.streams.items():
        section = stream.section
        name = section.rids[stream.layer] if section.rids else section.kind
        names[ssrc] = name if stream.repairs is None else f"rtx of {name}"
    return names


async def measure(
    server: RunningServer, ns: Namespace, firefox: Firefox, browser: Browser, seconds: float
) -> None:
    chair = await open_page(browser, f"{server.http_url}/?token={token('Seoul', 'chair')}")
    url = f"http://{ns.host_ip}:{server.port}/?token={token('Lima', 'participant')}"
    lima = await firefox.new_page(url, "Lima")
    await connected(chair)
    lima_id = await connected(lima)
    await chair.evaluate(GRANT, lima_id)
    await wait_until(lima, every_layer_on(server, lima, lima_id), 30)
    await asyncio.sleep(5)
    live = server.app[HUB].rooms["council"]
    drops, sent = live.media.drops, uplink_bytes(ns)
    packets: Counter[Key] = Counter()
    sizes: Counter[Key] = Counter()
    await asyncio.to_thread(capture, ns.host_if, seconds, packets, sizes)
    total = (uplink_bytes(ns) - sent) * 8 / seconds / 1000
    dropped = live.media.drops
    names = stream_names(live.media.publishers[lima_id, "camera"])
    print(f"uplink {total:.0f} kbit/s over {seconds:.0f} s (link bytes, everything)")
    for reason in sorted(dropped):
        print(f"drops {reason}: {(dropped[reason] - drops[reason]) * 60 / seconds:.0f}/min")
    for key, count in sorted(sizes.items(), key=lambda kv: -kv[1]):
        ssrc, pt, padding = key
        print(
            f"ssrc {ssrc:>10} {names.get(ssrc, ''):>8} pt {pt:>3}"
            f"{' padding' if padding else '        '}"
            f" {packets[key] / seconds:6.1f} packets/s {count * 8 / seconds / 1000:7.1f} kbit/s"
            f" {count / packets[key]:5.0f} bytes each"
        )


async def main(seconds: float) -> None:
    settings = make_settings(ice={"candidates": "host"}, bandwidth={"layer_off_delay_ms": 1000})
    runner, server = await start_server(settings, host="0.0.0.0")
    try:
        with namespace("cffx", "10.213.78") as ns, tempfile.TemporaryDirectory() as tmp:
            async with (
                launch_firefox(ns, Path(tmp) / "profile") as firefox,
                async_playwright() as p,
            ):
                browser = await p.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_FLAGS
                )
                try:
                    await measure(server, ns, firefox, browser, seconds)
                finally:
                    await browser.close()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 15))
