"""Issue 20: a subscriber whose first estimate is low (Firefox's first REMB was 47-83 kbit/s)
never loses its thumbnails for good. Its audio is budgeted at what it costs, and probing pads
its downlink towards the next tile even while no video at all goes to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB

pytestmark = pytest.mark.loopback


async def test_a_low_first_estimate_does_not_starve_a_subscriber(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(bandwidth={"warmup_ms": 1000})
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=100_000)
    for name in ("Oslo", "Dakar"):
        talker = LoopbackPeer(server.ws_url, name=name)
        peers.append(talker)
        await talker.join()
        # Silent: nobody is on the stage (a floor tile would always get some video through)
        # and no audio flows; only the two thumbnails could.
        talker.start_media(audio, video, duration_s=40, talking=lambda t: False)
    # Its receiver-side estimate is 60 kbit/s at first and stays there (Firefox's, with nothing
    # it receives carrying a send time), then follows what arrives (1.5 x at most).
    viewer = LoopbackPeer(server.ws_url, name="Quito", remb_bps=60_000)
    peers.append(viewer)
    await viewer.join(publish=False)
    media = server.app[HUB].rooms["demo"].media

    def grid(state: str) -> Callable[[], bool]:
        def check() -> bool:
            tiles = [s for s in viewer.slots.values() if s.get("purpose") == "grid"]
            shown = [s for s in tiles if s.get("participant_id")]
            return len(shown) == 2 and all(s.get("state") == state for s in shown)

        return check

    await viewer.wait_for(grid("paused"), timeout=10)  # 60 kbit/s: not one thumbnail fits
    viewer.remb_follows = True
    await viewer.wait_for(grid("live"), timeout=30)
    streams = viewer.streams_showing("video")
    before = {n: streams[n].packets for n in ("Oslo", "Dakar")}
    await viewer.wait_for(
        lambda: all(viewer.streams_showing("video")[n].packets > before[n] + 20 for n in before)
    )
    assert media.counters["probes_started"] >= 1
    assert media.counters["padding_packets_out"] > 0
