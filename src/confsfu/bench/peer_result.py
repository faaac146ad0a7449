"""What a benchmark worker reports of each of its peers at the end of a run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from confsfu.bench.worker import BenchPeer


@dataclass(slots=True)
class _Totals:
    packets: int = 0
    octets: int = 0
    recovered: int = 0
    late: int = 0
    gaps: int = 0
    expected: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def peer_result(peer: BenchPeer) -> dict[str, Any]:
    """The peer's counts and histograms (JSON-ready); `name` is its label, unique in the run."""
    totals = _Totals()
    for ssrc, s in peer.stats.items():
        totals.packets += s.packets
        totals.octets += s.octets
        totals.recovered += s.recovered
        totals.late += s.late
        totals.gaps += s.gaps
        if s.first is not None:
            totals.expected += s.highest - s.first + 1
        kind = peer._ssrc_kind.get(ssrc, ("?", ""))[0]
        totals.by_kind[kind] = totals.by_kind.get(kind, 0) + s.packets
    return {
        "name": peer.label,
        "url": peer.url,
        "room": peer.room,
        "listener": peer.watch,
        "error": peer.error,
        "join_ms": peer.join_ms,
        "packets": totals.packets,
        "octets": totals.octets,
        "recovered": totals.recovered,
        "late": totals.late,
        "gaps": totals.gaps,
        "unrecovered": max(0, totals.gaps - totals.recovered),
        "expected": totals.expected,
        "packets_by_kind": totals.by_kind,
        "sent_packets": peer.sent.audio_packets
        + peer.sent.video_packets
        + peer.sent.screen_packets,
        "keyframe_requests": peer.keyframe_requests,
        "layers": peer.layers(),
        "stage_seen": sorted(peer.stage_seen),
        "floor_holders_seen": len(peer.floor_holders),
        "delays": dict(peer.delays),
        "read_delays": dict(peer.read_delays),
        "unstamped": peer.unstamped,
        "upstream": dict(peer.upstream),
        "downstream": dict(peer.downstream),
        "adaptation": None
        if peer.link_watch is None
        else peer.link_watch.result(time.monotonic_ns() // 1000),
    }
