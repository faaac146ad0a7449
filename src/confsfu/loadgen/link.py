"""The load generator's emulated downlink in front of a subscriber: a bottleneck the packets
wait in (and are lost in), and what a browser behind it would answer: transport-cc feedback, or
a REMB from a receive-side estimate. Sans-time: every call takes `now_us`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from confsfu.bandwidth.estimation import EstimatorConfig
from confsfu.bandwidth.linksim import Kind, Packet
from confsfu.bandwidth.twcc import TwccEstimator
from confsfu.forwarding.outgoing import transport_cc_at
from confsfu.rtp import rtcp
from confsfu.rtp.seq import seq_diff

# A browser's receive-side estimate starts where Chromium's send side does when told a start
# bitrate (the server's answer says 2.5 Mbit/s).
REMB_ESTIMATOR = EstimatorConfig(initial_bps=2_500_000, min_bps=30_000, max_bps=8_000_000)


class Bottleneck(Protocol):
    """What the packets cross: `linksim.Link` (a tbf token bucket following a schedule, random
    loss before it, a fixed delay after it) or `RateQueue`."""

    def send(self, now_us: int, packet: Packet) -> bool: ...

    def deliver(self, until_us: int) -> list[tuple[int, Packet]]: ...


class RateQueue:
    """A queue drained at `rate_bps()` (read per packet): a packet that would wait over
    `max_queue_us` is lost."""

    def __init__(self, rate_bps: Callable[[], int], max_queue_us: int = 300_000) -> None:
        self.rate_bps = rate_bps
        self.max_queue_us = max_queue_us
        self._free_us = 0  # when the queue is empty again
        self._out: deque[tuple[int, Packet]] = deque()

    def send(self, now_us: int, packet: Packet) -> bool:
        leaves = max(now_us, self._free_us) + packet.size * 8_000_000 // max(self.rate_bps(), 1)
        if leaves - now_us > self.max_queue_us:
            return False
        self._free_us = leaves
        self._out.append((leaves, packet))
        return True

    def deliver(self, until_us: int) -> list[tuple[int, Packet]]:
        out: list[tuple[int, Packet]] = []
        while self._out and self._out[0][0] <= until_us:
            out.append(self._out.popleft())
        return out


class TransportLink:
    """A bottleneck in front of a subscriber. `offer` each packet as it reaches the subscriber's
    socket and `deliver` what has come out by now; the bottleneck's own clock starts at the first
    offer (`origin_us`). The feedback says when each transport-wide number came out (numbers
    lost in the link are reported lost once a later one arrived); with `remb`, a receive-side
    estimator (the server's own delay-based one, fed the arrivals as a browser's REMB estimator
    is) gives the REMB to send instead."""

    def __init__(self, bottleneck: Bottleneck, *, remb: bool = False) -> None:
        self.bottleneck = bottleneck
        self.ext_id: int | None = None  # the transport-wide-cc extension's id, once answered
        self.origin_us: int | None = None
        self.lost = 0  # refused by the bottleneck (its queue full, random loss)
        self.packets = 0  # RTP packets that reached the link
        self.numbered = 0  # ... of which carried a transport-wide number
        self.delivered = 0
        self._ids = 0  # local number of each offered packet
        self._oldest = 0  # the oldest local number that may still be in the link
        self._inside: dict[int, bytes] = {}
        self._arrivals: dict[int, int] = {}  # unwrapped transport-wide number -> arrival (us)
        self._highest: int | None = None  # the highest number that arrived
        self._next: int | None = None  # the first number the next feedback reports
        self.estimator = TwccEstimator(REMB_ESTIMATOR) if remb else None
        self._estimator_arrivals: list[tuple[int, int | None]] = []

    def offer(self, now_us: int, packet: bytes) -> bool:
        """`packet` enters the link; False when it is lost there at once."""
        if self.origin_us is None:
            self.origin_us = now_us
        self.packets += 1
        if self.ext_id is not None:
            self.numbered += transport_cc_at(packet, self.ext_id) > 0
        number = self._ids
        self._ids += 1
        entered = self.bottleneck.send(
            now_us - self.origin_us, Packet(number, len(packet), Kind.VIDEO, now_us)
        )
        if self.estimator is not None:
            self.estimator.on_packet_sent(now_us // 1000, number & 0xFFFF, len(packet))
        if entered:
            self._inside[number] = packet
        else:
            self.lost += 1
        return entered

    def deliver(self, now_us: int) -> list[tuple[int, bytes]]:
        """What came out of the link by `now_us`, as (arrival_us, packet), in order."""
        if self.origin_us is None:
            return []
        out: list[tuple[int, bytes]] = []
        for at_us, item in self.bottleneck.deliver(now_us - self.origin_us):
            packet = self._inside.pop(item.transport_seq, None)
            while self._oldest < item.transport_seq:  # dropped inside (a tbf replaced)
                self._inside.pop(self._oldest, None)
                self._oldest += 1
            if packet is None:
                continue
            arrival_us = at_us + self.origin_us
            self.delivered += 1
            out.append((arrival_us, packet))
            self._note_arrival(packet, arrival_us)
            if self.estimator is not None:
                self._estimator_arrivals.append((item.transport_seq & 0xFFFF, arrival_us))
        return out

    def _note_arrival(self, packet: bytes, arrival_us: int) -> None:
        at = transport_cc_at(packet, self.ext_id) if self.ext_id is not None else 0
        if not at:
            return
        seq = int.from_bytes(packet[at : at + 2], "big")
        ext = seq if self._highest is None else self._highest + seq_diff(seq, self._highest)
        self._highest = ext if self._highest is None else max(self._highest, ext)
        if self._next is None:
            self._next = ext
        if ext >= self._next:
            self._arrivals[ext] = arrival_us

    def remb_bps(self, now_us: int) -> int | None:
        """The receive-side estimate after what arrived since the last call (None without)."""
        if self.estimator is None:
            return None
        arrivals, self._estimator_arrivals = self._estimator_arrivals, []
        if arrivals:
            self.estimator.on_transport_feedback(now_us // 1000, arrivals)
        return self.estimator.estimate_bps(now_us // 1000)

    def reports(
        self, *, sender_ssrc: int, media_ssrc: int, count: int
    ) -> list[rtcp.TransportFeedback]:
        """Feedback on every number since the last report (None: lost), in packets of at most
        500 numbers."""
        out: list[rtcp.TransportFeedback] = []
        while self._next is not None and self._highest is not None and self._next <= self._highest:
            first, last = self._next, min(self._highest, self._next + 499)
            numbers = range(first, last + 1)
            times = [self._arrivals.pop(n, None) for n in numbers]
            known = [t for t in times if t is not None]
            if not known:
                break  # nothing arrived yet: wait for more (all-lost reports say too little)
            reference = min(known) // 64_000
            base_us = reference * 64_000
            packets = tuple(
                (n & 0xFFFF, None if t is None else t - base_us)
                for n, t in zip(numbers, times, strict=True)
            )
            out.append(
                rtcp.TransportFeedback(
                    sender_ssrc, media_ssrc, first & 0xFFFF, reference & 0xFFFFFF,
                    (count + len(out)) & 0xFF, packets,
                )
            )  # fmt: skip
            self._next = last + 1
        return out
