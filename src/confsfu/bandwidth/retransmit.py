"""How much a subscriber's NACKs may make the server resend: a share of its estimate in all.

A receiver behind a congested link NACKs every packet the queue dropped, again each round trip;
resending all of it puts more on the link that dropped it (the weak-link simulator saw 1.4 Mbit/s
of retransmissions into a 300 kbit/s link for eight seconds, every frame late). As libwebrtc's
sender does, retransmissions share a rate limit tied to the estimate (a sliding second), and a
packet resent less than `min_interval_ms` ago is not resent again.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

# Why a resend is refused: the packet went out again less than `min_interval_ms` ago (a
# receiver's repeated NACK while the first answer is on its way), or the share is spent.
Refusal = Literal["resent_recently", "over_limit"]


@dataclass(frozen=True, slots=True)
class RetransmitConfig:
    share: float = 0.5  # of the estimate, over any second
    min_interval_ms: int = 100  # between two resends of one packet
    remembered: int = 1024  # packets whose last resend is remembered

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0 or self.min_interval_ms < 0 or self.remembered < 1:
            raise ValueError("need 0 < share <= 1, min_interval_ms >= 0 and remembered >= 1")


class RetransmitLimiter:
    """`allow` before resending a packet, `sent` once it went out."""

    __slots__ = ("_bytes", "_config", "_last", "_sent")

    def __init__(self, config: RetransmitConfig | None = None) -> None:
        self._config = config or RetransmitConfig()
        self._sent: deque[tuple[int, int]] = deque()  # (now_ms, bytes) over the last second
        self._bytes = 0
        self._last: OrderedDict[tuple[int, int], int] = OrderedDict()  # (ssrc, seq) -> ms

    def allow(self, now_ms: int, ssrc: int, seq: int, size: int, estimate_bps: int) -> bool:
        return self.refusal(now_ms, ssrc, seq, size, estimate_bps) is None

    def refusal(
        self, now_ms: int, ssrc: int, seq: int, size: int, estimate_bps: int
    ) -> Refusal | None:
        """Why the packet may not be resent now; None when it may."""
        while self._sent and self._sent[0][0] <= now_ms - 1000:
            self._bytes -= self._sent.popleft()[1]
        last = self._last.get((ssrc, seq))
        if last is not None and now_ms - last < self._config.min_interval_ms:
            return "resent_recently"
        if (self._bytes + size) * 8 > self._config.share * max(estimate_bps, 0):
            return "over_limit"
        return None

    def sent(self, now_ms: int, ssrc: int, seq: int, size: int) -> None:
        self._sent.append((now_ms, size))
        self._bytes += size
        key = (ssrc, seq)
        self._last.pop(key, None)
        self._last[key] = now_ms
        while len(self._last) > self._config.remembered:
            self._last.popitem(last=False)
