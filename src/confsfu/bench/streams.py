"""What a benchmark subscriber keeps per received stream and per sent packet: sequence gaps and
their repairs, and send times to measure forwarding delays by, all bounded for a soak."""

from __future__ import annotations

from dataclasses import dataclass, field

from confsfu.rtp.extensions import parse_abs_send_time
from confsfu.rtp.seq import seq_diff

DELAY_MAX_MS = 5000.0  # a delay longer than this is not measured (its send time is gone)
ABS_SEND_TIME_WRAP_S = 64.0
MISSING_KEPT = 1024  # missing sequence numbers a stream remembers, to see them filled late


class SendTimes:
    """When each packet was sent (monotonic seconds), kept at least as long as a delay is still
    measured (DELAY_MAX_MS) and at most twice that.

    Two generations that swap: bounded memory, and no dict of a whole run's packets whose resizes
    and collection would stall the worker and show up as forwarding delay.
    """

    __slots__ = ("_current", "_older", "_since")

    def __init__(self, now: float) -> None:
        self._current: dict[tuple[str, bytes], float] = {}
        self._older: dict[tuple[str, bytes], float] = {}
        self._since = now

    def note(self, key: tuple[str, bytes], at: float) -> None:
        if at - self._since >= DELAY_MAX_MS / 1000:
            self._older, self._current, self._since = self._current, {}, at
        self._current[key] = at

    def get(self, key: tuple[str, bytes]) -> float | None:
        at = self._current.get(key)
        return self._older.get(key) if at is None else at

    def __len__(self) -> int:
        return len(self._current) + len(self._older)


def server_read_after(sent: float, abs_send_time: bytes) -> float:
    """Seconds from a packet's send to the server's reading it, from the abs-send-time the server
    wrote into the forwarded packet (its read time on the same monotonic clock, in ms, modulo
    64 s). Never negative: the server truncates its clock to the millisecond."""
    read = parse_abs_send_time(abs_send_time) / (1 << 18)  # 6.18 fixed-point seconds
    after = (read - sent) % ABS_SEND_TIME_WRAP_S
    return 0.0 if after > ABS_SEND_TIME_WRAP_S / 2 else after


@dataclass(slots=True)
class StreamStats:
    """One received SSRC: counts and sequence gaps (no per-packet lists, fit for a soak)."""

    packets: int = 0
    octets: int = 0
    recovered: int = 0  # gaps filled later: by RTX, or by the packet itself arriving late
    late: int = 0  # of those, filled by the packet itself (the server forwards upstream repairs)
    first: int | None = None
    highest: int = 0  # unwrapped
    gaps: int = 0  # sequence numbers skipped on first arrival
    missing: set[int] = field(default_factory=set)  # unwrapped, the newest MISSING_KEPT only

    def arrived(self, seq: int) -> int:
        """A media packet (not RTX) arrived: how many sequence numbers it skipped."""
        if self.first is None:
            self.first = self.highest = seq
            return 0
        delta = (seq - self.highest) % 65536
        if 0 < delta < 32768:
            if delta > 1:
                self.skipped(self.highest + 1, self.highest + delta)
            self.highest += delta
            return delta - 1
        if delta >= 32768 and self.filled(seq):
            self.late += 1
        return 0

    def skipped(self, start: int, end: int) -> None:
        """Sequence numbers [start, end) (unwrapped) did not arrive in order."""
        self.gaps += end - start
        self.missing.update(range(max(start, end - MISSING_KEPT), end))
        if len(self.missing) > 2 * MISSING_KEPT:
            floor = self.highest - MISSING_KEPT
            self.missing = {s for s in self.missing if s >= floor}

    def filled(self, seq: int) -> bool:
        """A packet that was missing arrived; False for duplicates (probe padding, say)."""
        unwrapped = self.highest + seq_diff(seq, self.highest)
        if unwrapped in self.missing:
            self.missing.discard(unwrapped)
            self.recovered += 1
            return True
        return False
