"""The room's one timer runs when its cores have something to do (issue 18), not on a 20 ms
poll: a silent room wakes for its periodic passes only, and a gap in a publisher's packets or
a floor's time limit brings the timer forward."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from confsfu.server.live_room import REASSIGN_EVERY_MS

pytestmark = pytest.mark.loopback


def count_runs(live: Any) -> list[int]:
    runs: list[int] = []
    tick = live._tick

    def counted() -> None:
        runs.append(1)
        tick()

    live._tick = counted
    return runs


async def test_a_silent_room_wakes_for_its_periodic_passes_only(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    for name in ("Oslo", "Dakar", "Quito"):
        peer = LoopbackPeer(server.ws_url, name=name)
        peers.append(peer)
        await peer.join(publish=False)  # listening only
    live = server.app[HUB].rooms["demo"]
    await asyncio.sleep(0.5)  # joins settled
    runs = count_runs(live)
    await asyncio.sleep(2.0)
    periodic = 2000 // REASSIGN_EVERY_MS  # 8; a 20 ms poll ran 100 times
    assert periodic - 2 <= len(runs) <= periodic + 4, len(runs)


async def test_a_gap_brings_the_timer_forward_for_the_upstream_nack(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    from .test_hostile_media import audio_packet, hostile  # a publisher sending by hand

    talker = await hostile(server.ws_url, peers)
    assert talker.publish_pc is not None
    live = server.app[HUB].rooms["demo"]
    media = live.media
    for seq in range(100, 110):
        assert talker.publish_pc.send_rtp(audio_packet(talker, seq, b"x"))
    await asyncio.sleep(0.3)
    nacks = media.counters["nacks_sent"]
    assert talker.publish_pc.send_rtp(audio_packet(talker, 112, b"y"))  # 110, 111 lost
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    while media.counters["nacks_sent"] == nacks and loop.time() - sent_at < 1.0:
        await asyncio.sleep(0.002)
    waited_ms = (loop.time() - sent_at) * 1000
    assert media.counters["nacks_sent"] > nacks
    # Due 10 ms after the gap; the periodic passes alone would have taken up to 250 ms.
    assert waited_ms < REASSIGN_EVERY_MS / 2, waited_ms
