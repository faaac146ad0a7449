"""A benchmark subscriber behind a scheduled link: the link it gets (the simulator's tbf model,
`linksim.Link`, in the load generator) and what it watches there for its adaptation figures."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confsfu.bandwidth.linksim import Link, LinkConfig, Phase
from confsfu.bench.adaptation import Adaptation
from confsfu.codecs.vp8 import parse_vp8
from confsfu.loadgen.link import TransportLink
from confsfu.rtp import rtcp
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import parse_rtp
from confsfu.rtp.rtcp_build import serialize_rtcp

if TYPE_CHECKING:
    from confsfu.bench.streams import StreamStats
    from confsfu.bench.worker import BenchPeer

PLI_EVERY_MS = 500  # a page asks for a keyframe at most this often


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """The scenario's scheduled link, for the workers."""

    schedule: tuple[tuple[int, float], ...] = ()  # (kbit/s, seconds) per phase
    delay_ms: int = 0
    loss: float = 0.0
    queue_ms: int = 150  # tbf latency: the queue holds rate x this + the burst
    estimator: str = "twcc"  # or "remb"
    seed: int = 1
    top_width: int = 1280  # the stage's top layer
    top_spatial: int = 2  # ... and its index in the slot map

    @property
    def phases(self) -> tuple[Phase, ...]:
        return tuple(Phase(kbit_s, seconds) for kbit_s, seconds in self.schedule)


def make_link(plan: LinkPlan, name: str) -> TransportLink:
    """The link of subscriber `name`: its random loss seeded by the scenario's seed and name."""
    config = LinkConfig(latency_ms=plan.queue_ms, delay_ms=plan.delay_ms, loss=plan.loss)
    bottleneck = Link(plan.phases, config, random.Random(f"{plan.seed}:{name}").random)
    return TransportLink(bottleneck, remb=plan.estimator == "remb")


class LinkWatch:
    """Feeds one subscriber's Adaptation from what comes out of its link: every packet's size,
    the audio slots' sequence numbers, the stage slot's frames; asks for a keyframe (PLI) when
    a stage frame was given up, as a page does."""

    def __init__(self, plan: LinkPlan, link: TransportLink) -> None:
        self.plan = plan
        self.link = link
        self.adaptation = Adaptation(plan.phases, plan.top_width)
        self._stage_ssrc: int | None = None
        self._last_pli_ms = -PLI_EVERY_MS
        self.plis = 0

    def _stage(self, peer: BenchPeer) -> int | None:
        if self._stage_ssrc is None:
            mids = {mid for mid, slot in peer.slots.items() if slot.get("purpose") == "stage"}
            kinds = peer._ssrc_kind.items()
            stage = (s for s, (kind, mid) in kinds if mid in mids and kind == "video")
            self._stage_ssrc = next(stage, None)
        return self._stage_ssrc

    def told(self, peer: BenchPeer, now_us: int) -> None:
        """A slot map came: the layer the server says the stage carries now."""
        origin = self.link.origin_us
        stage = next((s for s in peer.slots.values() if s.get("purpose") == "stage"), None)
        if origin is None or stage is None or not stage.get("name"):
            return
        self.adaptation.told(now_us - origin, stage.get("spatial"), self.plan.top_spatial)

    def packet(
        self,
        peer: BenchPeer,
        data: bytes,
        arrival_ms: int,
        ssrc: int,
        seq: int,
        recovered: bool,
        stats: StreamStats,
        before: tuple[int | None, int, int],
    ) -> None:
        """A packet came out of the link (ssrc and seq the original's for RTX); `before` is
        `stats`' (first, highest, late) before it was counted."""
        origin = self.link.origin_us or 0
        t_us = arrival_ms * 1000 - origin
        adaptation = self.adaptation
        adaptation.delivered(t_us, len(data))
        kind = peer._ssrc_kind.get(ssrc, ("", ""))[0]
        if kind == "audio":
            first, highest, late = before
            new = first is None or stats.highest != highest
            expected = (1 if first is None else stats.highest - highest) if new else 0
            adaptation.audio(t_us, expected, int(new or stats.late > late))
        elif kind == "video" and ssrc == self._stage(peer):
            self._stage_packet(peer, data, t_us, arrival_ms, seq, recovered)

    def _stage_packet(
        self, peer: BenchPeer, data: bytes, t_us: int, now_ms: int, seq: int, recovered: bool
    ) -> None:
        try:
            pkt = parse_rtp(data)
            payload = pkt.payload[2:] if recovered else pkt.payload
            vp8 = parse_vp8(payload)
        except ParseError:
            return
        key_width = vp8.width if vp8.starts_frame and vp8.is_keyframe else None
        starts = vp8.starts_frame
        self.adaptation.stage_packet(t_us, seq, pkt.marker, starts, key_width, repaired=recovered)
        stage = self.adaptation.stage
        pc = peer.subscribe_pc
        if stage.wants_keyframe and now_ms - self._last_pli_ms >= PLI_EVERY_MS and pc is not None:
            self._last_pli_ms = now_ms
            self.plis += 1
            pli = rtcp.PictureLossIndication(sender_ssrc=1, media_ssrc=self._stage_ssrc or 0)
            pc.send_rtcp(serialize_rtcp([pli]))

    def result(self, now_us: int) -> dict[str, Any]:
        link = self.link
        origin = link.origin_us
        return {
            "estimator": self.plan.estimator,
            "phases": self.adaptation.finish(now_us - origin) if origin is not None else [],
            "link": {
                "packets": link.packets,
                "delivered": link.delivered,
                "random_loss": getattr(link.bottleneck, "lost", 0),
                "queue_drops": getattr(link.bottleneck, "dropped", 0),  # full, or tbf replaced
                "numbered": link.numbered,
            },
            "keyframe_requests": self.plis,
        }
