"""The subscribe side of a loopback participant: answers the server's subscribe offer, counts what
each slot delivers, NACKs gaps and reports its downlink (REMB, or transport-cc behind a link)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confsfu.loadgen.link import TransportLink
from confsfu.rtp import rtcp
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import ABS_SEND_TIME, TRANSPORT_CC
from confsfu.rtp.packet import parse_rtp
from confsfu.rtp.rtcp_build import serialize_rtcp
from confsfu.sdp import parse_sdp
from confsfu.server.rtc_adapter import RawPeerConnection
from confsfu.server.sdp_plan import with_transport_cc


@dataclass(slots=True)
class ReceivedStream:
    """What one slot (SSRC) of the subscribe connection delivered."""

    ssrc: int
    kind: str = ""
    mid: str = ""
    packets: int = 0
    octets: int = 0
    seqs: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    # Whom the slot showed as each payload arrived (its current holder, and its previous one
    # for HANDOVER_GRACE_MS after a hand-over: packets already on their way), with `payloads`.
    labels: list[tuple[str, ...]] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # seqs that arrived by RTX
    keep_payloads: bool = False


HANDOVER_GRACE_MS = 500
LINK_TICK_S = 0.005  # how often what came out of an emulated link is handed on


class Receiver:
    """LoopbackPeer's subscribe side: the subscribe connection and what arrived on it."""

    # LoopbackPeer's
    keep_payloads: bool
    slots: dict[str, dict[str, Any]]

    if TYPE_CHECKING:

        async def send(self, message: dict[str, Any]) -> None: ...

    def _init_receiver(
        self,
        remb_bps: int | None,
        remb_follows: bool,
        link: TransportLink | None,
        drop_received: Callable[[int, int], bool] | None,
    ) -> None:
        self.remb_bps = remb_bps  # the downlink this subscriber reports (REMB every 250 ms)
        # ... or, with remb_follows, at least that and 1.5 x what arrived over the last second,
        # as a receiver-side estimate (Chromium's, Firefox's) can never report much more
        self.remb_follows = remb_follows
        # An emulated downlink in front of this subscriber (TransportLink): what arrives waits
        # in it and is lost there; the subscriber answers with transport-cc saying when each
        # packet came out, or (the link's `estimator`) with a REMB of its own estimate.
        self.link = link
        self._link_task: asyncio.Task[None] | None = None
        if link is not None and link.estimator is not None:
            self.remb_bps = link.estimator.estimate_bps(0)
        self.drop_received = drop_received  # (ssrc, seq) -> drop this packet on arrival
        # Take RTP sealed (SRTP not opened: its header is in the clear): a light subscriber
        # that counts packets and sequence numbers only (BenchPeer's listeners).
        self.sealed = False
        self._feedback_task: asyncio.Task[None] | None = None
        self.received_bytes = 0  # every RTP packet that arrived, padding included
        self._remb_task: asyncio.Task[None] | None = None
        self.received: dict[int, ReceivedStream] = {}
        self.subscribe_pc: RawPeerConnection | None = None
        self._ssrc_kind: dict[int, tuple[str, str]] = {}
        self._rtx_of: dict[int, int] = {}
        self._handovers: dict[str, tuple[str, int]] = {}  # mid -> (previous holder, since ms)
        self.abs_send_time_id: int | None = None  # in the server's subscribe offer
        self._highest: dict[int, int] = {}
        self._nacked: set[tuple[int, int]] = set()
        self._subscribed = asyncio.Event()

    async def _answer_subscribe(self, offer_sdp: str) -> None:
        pc = RawPeerConnection()
        pc.set_callbacks(on_rtp=self._on_rtp, on_rtcp=lambda data: None)
        pc.sealed_rtp = self.sealed
        self.subscribe_pc = pc
        for m in parse_sdp(offer_sdp).media:
            self.abs_send_time_id = m.extmap.get(ABS_SEND_TIME, self.abs_send_time_id)
            for ssrc in m.ssrcs:
                self._ssrc_kind[ssrc] = (m.kind, m.mid or "")
            for semantics, group in m.ssrc_groups:
                if semantics == "FID" and len(group) == 2:
                    self._rtx_of[group[1]] = group[0]
        answer = await pc.answer(offer_sdp)
        offered = [m.extmap.get(TRANSPORT_CC) for m in parse_sdp(offer_sdp).media]
        link = self.link
        if link is not None and link.estimator is None and offered and offered[0] is not None:
            answer, link.ext_id = with_transport_cc(answer, offered[0])
        if link is not None:
            self._feedback_task = asyncio.create_task(self._send_feedback())
            self._link_task = asyncio.create_task(self._drain_link())
        await self.send({"type": "subscribe_answer", "sdp": answer})
        self._subscribed.set()
        if self.remb_bps is not None and self._remb_task is None:
            self._remb_task = asyncio.create_task(self._send_remb())

    async def _send_remb(self) -> None:
        ssrcs = tuple(s for s, (kind, _mid) in self._ssrc_kind.items() if kind == "video")
        window: deque[int] = deque(maxlen=5)  # received_bytes over the last second
        while self.subscribe_pc is not None:
            window.append(self.received_bytes)
            if self.remb_bps is not None:
                bitrate = self.remb_bps
                if self.remb_follows and len(window) > 1:
                    received_bps = (window[-1] - window[0]) * 8 * 4 // (len(window) - 1)
                    bitrate = max(bitrate, received_bps * 3 // 2)
                remb = rtcp.Remb(sender_ssrc=1, bitrate_bps=bitrate, ssrcs=ssrcs)
                self.subscribe_pc.send_rtcp(serialize_rtcp([remb]))
            await asyncio.sleep(0.25)

    async def _send_feedback(self) -> None:
        """Transport-wide feedback every 100 ms, as browsers send it; or, with a receive-side
        estimate, a REMB at once when it falls by more than 3 % (else every 250 ms)."""
        assert self.link is not None
        count = 0
        video = tuple(s for s, (kind, _mid) in self._ssrc_kind.items() if kind == "video")
        while self.subscribe_pc is not None:
            await asyncio.sleep(0.1)
            media = next(iter(self._ssrc_kind), 0)
            for report in self.link.reports(sender_ssrc=1, media_ssrc=media, count=count):
                count = (count + 1) & 0xFF
                self.subscribe_pc.send_rtcp(serialize_rtcp([report]))
            estimate = self.link.remb_bps(time.monotonic_ns() // 1000)
            if estimate is not None:
                if self.remb_bps is not None and estimate < 0.97 * self.remb_bps:
                    remb = rtcp.Remb(sender_ssrc=1, bitrate_bps=estimate, ssrcs=video)
                    self.subscribe_pc.send_rtcp(serialize_rtcp([remb]))
                self.remb_bps = estimate

    async def _drain_link(self) -> None:
        """Hand on what came out of the link, every LINK_TICK_S (each at its arrival time)."""
        while self.subscribe_pc is not None:
            await asyncio.sleep(LINK_TICK_S)
            self._through_link(time.monotonic_ns() // 1000)

    def _through_link(self, now_us: int) -> None:
        assert self.link is not None
        for arrival_us, packet in self.link.deliver(now_us):
            self._receive(packet, arrival_us // 1000)

    def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        if self.link is None:
            self._receive(data, arrival_ms)
            return
        self.link.offer(self._reached_us(), data)
        self._through_link(time.monotonic_ns() // 1000)

    def _reached_us(self) -> int:
        """When the packet just read reached this subscriber's socket (monotonic microseconds):
        when the link takes it. Now, unless a subclass knows better (the kernel's time stamp:
        a load generator that reads late must not hand the link a burst)."""
        return time.monotonic_ns() // 1000

    def _receive(self, data: bytes, arrival_ms: int) -> None:
        """A packet reached the subscriber (through its link, if it has one)."""
        self.received_bytes += len(data)
        try:
            pkt = parse_rtp(data)
        except ParseError:
            return
        ssrc, seq, payload, recovered = pkt.ssrc, pkt.sequence_number, pkt.payload, False
        if ssrc in self._rtx_of:
            if len(payload) < 2:
                return
            ssrc, seq = self._rtx_of[ssrc], int.from_bytes(payload[:2], "big")
            payload, recovered = payload[2:], True
        elif self.drop_received is not None and self.drop_received(ssrc, seq):
            return
        stream = self.received.get(ssrc)
        if stream is None:
            kind, mid = self._ssrc_kind.get(ssrc, ("", ""))
            stream = self.received[ssrc] = ReceivedStream(ssrc, kind, mid)
        stream.packets += 1
        stream.octets += len(data)
        stream.seqs.append(seq)
        if recovered:
            stream.recovered.append(seq)
        if self.keep_payloads:
            stream.payloads.append(payload)
            stream.labels.append(self._label(stream.mid, arrival_ms))
        if not recovered:
            self._nack_gaps(ssrc, seq)

    def update_slot(self, slot: dict[str, Any], now_ms: int) -> None:
        """A slot's latest SlotInfo; a new holder starts a hand-over."""
        mid = slot["mid"]
        old = self.slots.get(mid)
        if old is not None and old.get("name") != slot.get("name"):
            self._handovers[mid] = (str(old.get("name") or ""), now_ms)
        self.slots[mid] = slot

    def _label(self, mid: str, arrival_ms: int) -> tuple[str, ...]:
        name = str((self.slots.get(mid) or {}).get("name") or "")
        previous, since_ms = self._handovers.get(mid, ("", -HANDOVER_GRACE_MS))
        return (name, previous) if arrival_ms - since_ms < HANDOVER_GRACE_MS else (name,)

    def _nack_gaps(self, ssrc: int, seq: int) -> None:
        last = self._highest.get(ssrc)
        self._highest[ssrc] = seq if last is None or (seq - last) % 65536 < 32768 else last
        if last is None:
            return
        gap = (seq - last) % 65536
        if 1 < gap < 100:
            lost = [(last + i) % 65536 for i in range(1, gap)]
            self._send_nack(ssrc, lost)

    def _send_nack(self, ssrc: int, lost: list[int]) -> None:
        fresh = [s for s in lost if (ssrc, s) not in self._nacked]
        self._nacked.update((ssrc, s) for s in fresh)
        if fresh and self.subscribe_pc is not None:
            nack = rtcp.Nack(sender_ssrc=1, media_ssrc=ssrc, lost=tuple(fresh))
            self.subscribe_pc.send_rtcp(serialize_rtcp([nack]))

    def streams_showing(self, kind: str, purpose: str | None = None) -> dict[str, ReceivedStream]:
        """Participant name -> the received stream of the slot the server says shows them.

        Video looks at the stage and the grid unless `purpose` names one of them.
        """
        purposes = {purpose} if purpose else ({"grid", "stage"} if kind == "video" else {"audio"})
        out: dict[str, ReceivedStream] = {}
        for ssrc, stream in self.received.items():
            slot = self.slots.get(stream.mid)
            if (
                slot
                and slot["kind"] == kind
                and slot.get("purpose", "grid") in purposes
                and slot["name"]
                and self._ssrc_kind[ssrc][0] == kind
            ):
                out[slot["name"]] = stream
        return out
