"""A browser that may only use TURN (coturn on loopback, REST-API secret) joins through it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Browser

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from tests.browser.conftest import open_page, screenshot
from tests.browser.test_browser_chair import wait_for

pytestmark = pytest.mark.browser

TURN_SECRET = "turn-secret-0123456789abcdef"

# The subscribe PeerConnection's selected candidate pair, and frames decoded on it.
MEDIA_PATH = """
async () => {
  const pc = window.conference && window.conference.subscribePc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null, frames = 0;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  const local = pair && stats.get(pair.localCandidateId);
  return {local: local ? local.candidateType : null, frames};
}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def coturn() -> Iterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is not installed: apt-get install coturn (see scripts/test.sh)")
    port = free_udp_port()
    process = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
         "--realm=confsfu", "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli",
         "--fingerprint", "--min-port=49160", "--max-port=49200", "--log-file=stdout",
         "--simple-log"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield port
    finally:
        process.terminate()
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        print(out.decode(errors="replace")[-3000:])


async def test_a_relay_only_browser_joins_through_coturn(
    server_factory: Any, browser: Browser, coturn: int
) -> None:
    server = await server_factory(
        ice={
            "candidates": "loopback",
            "turn_servers": [
                {"urls": [f"turn:127.0.0.1:{coturn}?transport=udp"], "secret": TURN_SECRET}
            ],
            "browser_transport_policy": "relay",
        }
    )
    publisher = LoopbackPeer(server.ws_url, name="Accra")
    try:
        await publisher.join()
        publisher.start_media(
            opus_frames(), vp8_frames(320, 180, bitrate_bps=300_000), duration_s=30
        )
        page = await open_page(browser, f"{server.http_url}/?room=demo&name=Lima")

        async def relayed() -> Any:
            path = await page.evaluate(MEDIA_PATH)
            return path if path and path["local"] == "relay" and path["frames"] > 20 else None

        path = await wait_for(relayed, "video decoded over a TURN relay", 45)
        servers = await page.evaluate("window.conference._pcConfig.iceServers")
        assert servers[0]["username"].endswith(
            ":" + await page.evaluate("window.conference.self.id")
        )
        assert path["local"] == "relay"
        await screenshot(page, "turn-relay.png")
        await asyncio.sleep(0)
    finally:
        await publisher.close()
