"""The subscribe side of a loopback participant: answers the server's subscribe offer, counts what
each slot delivers, NACKs gaps and reports its downlink (REMB, or transport-cc behind a link)."""

from __future__ import annotations

import asyncio
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
    recovered: list[int] = field(default_factory=list)  # seqs that arrived by RTX
    keep_payloads: bool = False


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
        link_bps: Callable[[], int] | None,
        drop_received: Callable[[int, int], bool] | None,
    ) -> None:
        self.remb_bps = remb_bps  # the downlink this subscriber reports (REMB every 250 ms)
        # ... or, with remb_follows, at least that and 1.5 x what arrived over the last second,
        # as a receiver-side estimate (Chromium's, Firefox's) can never report much more
        self.remb_follows = remb_follows
        # A downlink of link_bps() (read per packet) with a 300 ms queue, in front of this
        # subscriber: it answers with transport-cc and reports when each packet would have come
        # out of that queue (TransportLink); what would overflow it is lost.
        self.link = TransportLink(link_bps) if link_bps is not None else None
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
        if self.link is not None and offered and offered[0] is not None:
            answer, self.link.ext_id = with_transport_cc(answer, offered[0])
            self._feedback_task = asyncio.create_task(self._send_feedback())
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
        """Transport-wide feedback every 100 ms, as browsers send it."""
        assert self.link is not None
        count = 0
        while self.subscribe_pc is not None:
            await asyncio.sleep(0.1)
            media = next(iter(self._ssrc_kind), 0)
            for report in self.link.reports(sender_ssrc=1, media_ssrc=media, count=count):
                count = (count + 1) & 0xFF
                self.subscribe_pc.send_rtcp(serialize_rtcp([report]))

    def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        if self.link is not None and not self.link.arrives(data):
            return  # lost in the link's queue
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
        if not recovered:
            self._nack_gaps(ssrc, seq)

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
