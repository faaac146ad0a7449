"""The load generator's emulated bottleneck in front of a subscriber, for transport-cc."""

from __future__ import annotations

import time
from collections.abc import Callable

from confsfu.forwarding.outgoing import transport_cc_at
from confsfu.rtp import rtcp
from confsfu.rtp.seq import seq_diff


class TransportLink:
    """A bottleneck in front of a subscriber, for transport-cc: each packet leaves a queue
    drained at `rate_bps()` (a packet that would wait over `max_queue_us` is lost), and the
    feedback says when each transport-wide number came out of it."""

    def __init__(self, rate_bps: Callable[[], int], max_queue_us: int = 300_000) -> None:
        self.rate_bps = rate_bps
        self.max_queue_us = max_queue_us
        self.ext_id: int | None = None  # the transport-wide-cc extension's id, once answered
        self.lost = 0
        self.packets = 0  # RTP packets that reached the link
        self.numbered = 0  # ... of which carried a transport-wide number
        self._free_us = 0  # when the queue is empty again
        self._arrivals: dict[int, int] = {}  # unwrapped transport-wide number -> arrival (us)
        self._highest: int | None = None
        self._next: int | None = None  # the first number the next feedback reports

    def arrives(self, packet: bytes) -> bool:
        """Whether `packet` makes it through the queue (its arrival noted either way)."""
        at = transport_cc_at(packet, self.ext_id) if self.ext_id is not None else 0
        self.packets += 1
        self.numbered += at > 0
        now_us = time.monotonic_ns() // 1000
        leaves = max(now_us, self._free_us) + len(packet) * 8_000_000 // max(self.rate_bps(), 1)
        through = leaves - now_us <= self.max_queue_us
        if through:
            self._free_us = leaves
        else:
            self.lost += 1
        if at:
            seq = int.from_bytes(packet[at : at + 2], "big")
            ext = seq if self._highest is None else self._highest + seq_diff(seq, self._highest)
            self._highest = ext if self._highest is None else max(self._highest, ext)
            if self._next is None:
                self._next = ext
            if through and ext >= self._next:
                self._arrivals[ext] = leaves
        return through

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
