"""Issue 21: a participant's connection quality reaches every page when it changes, not only
with other news about them."""

from __future__ import annotations

from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.rtp import rtcp
from confsfu.rtp.rtcp_build import serialize_rtcp

pytestmark = pytest.mark.loopback


def quality_of(peer: LoopbackPeer, pid: str) -> list[str]:
    """The qualities `peer` was told `pid` has, in order."""
    return [
        m["participant"]["quality"]
        for m in peer.messages
        if m["type"] == "participant_updated" and m["participant"]["id"] == pid
    ]


def report_loss(peer: LoopbackPeer, highest: int, lost: int) -> None:
    """A receiver report of one stream: `highest` received so far and `lost` of them, in all."""
    block = rtcp.ReportBlock(
        ssrc=1, fraction_lost=0, packets_lost=lost, highest_sequence=highest, jitter=0,
        lsr=0, dlsr=0,
    )  # fmt: skip
    assert peer.subscribe_pc is not None
    peer.subscribe_pc.send_rtcp(serialize_rtcp([rtcp.ReceiverReport(ssrc=1, reports=(block,))]))


async def test_quality_is_told_when_it_changes(server: Any, peers: list[LoopbackPeer]) -> None:
    made = []
    for name in ("Oslo", "Dakar"):
        peer = LoopbackPeer(server.ws_url, name=name)
        peers.append(peer)
        await peer.join(publish=False)
        made.append(peer)
    oslo, dakar = made
    await oslo.wait_for(lambda: oslo.subscribe_pc is not None and oslo.subscribe_pc.refresh_route())
    pid = oslo.participant_id
    report_loss(oslo, 1000, 0)  # where the counts start
    report_loss(oslo, 1100, 0)
    await dakar.wait_for(lambda: quality_of(dakar, pid)[-1:] == ["good"])
    report_loss(oslo, 1200, 25)  # a quarter of the last 100 lost
    await dakar.wait_for(lambda: quality_of(dakar, pid)[-1:] == ["poor"])
    report_loss(oslo, 1300, 48)  # still poor: nobody is told again
    report_loss(oslo, 1400, 48)
    await dakar.wait_for(lambda: quality_of(dakar, pid)[-1:] == ["good"])
    assert quality_of(dakar, pid)[-3:] == ["good", "poor", "good"]
    assert quality_of(oslo, pid)[-3:] == ["good", "poor", "good"]
