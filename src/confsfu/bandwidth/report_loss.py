"""A subscriber's loss from its receiver reports, summed over all its streams.

Lost over expected since each stream's previous report, as GCC's send side counts it.

A report carries one block per stream, each with its own loss fraction over its own interval. The
worst block is no measure of the link: a stream of 15 packets a second behind a link losing 2 %
at random, with nothing resent, shows 7 % or 13 % in one report out of four, and with six such
streams some block shows over 10 % in most reports, each a cut by the loss controller. The sum
over streams weighs each by its packets, and a fraction is given only once `min_packets` are
behind it (carried over reports until then).

Sans-IO; reports are hostile input: a stream is known by its SSRC, at most `max_streams` of them
(the least recently reported is forgotten first), and a count that goes backwards or jumps by more
than `max_jump` packets starts the stream again instead of being believed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from confsfu.rtp.rtcp import ReportBlock

SEQ_SPACE = 1 << 32  # the extended highest sequence number
LOST_SPACE = 1 << 24  # the cumulative number lost (signed, 24 bits)
MAX_STREAMS = 64
MIN_PACKETS = 20
MAX_JUMP = 1 << 15  # packets one stream may have been sent between two of its reports


@dataclass(frozen=True, slots=True)
class _Seen:
    highest: int
    lost: int


def _signed24(value: int) -> int:
    value %= LOST_SPACE
    return value - LOST_SPACE if value >= LOST_SPACE // 2 else value


class ReportLoss:
    """One subscriber's loss over its reports, summed over its streams."""

    __slots__ = ("_expected", "_lost", "_max_jump", "_max_streams", "_min_packets", "_seen")

    def __init__(
        self,
        *,
        min_packets: int = MIN_PACKETS,
        max_streams: int = MAX_STREAMS,
        max_jump: int = MAX_JUMP,
    ) -> None:
        if min_packets < 1 or max_streams < 1 or max_jump < 1:
            raise ValueError("need min_packets, max_streams and max_jump of at least 1")
        self._min_packets = min_packets
        self._max_streams = max_streams
        self._max_jump = max_jump
        self._seen: OrderedDict[int, _Seen] = OrderedDict()
        self._expected = 0  # since the last fraction given
        self._lost = 0

    def on_report(self, blocks: Iterable[ReportBlock]) -> float | None:
        """The loss fraction (0 to 1) since the last one given, once `min_packets` are behind it;
        None while fewer are."""
        for block in blocks:
            self._count(block)
        if self._expected < self._min_packets:
            return None
        fraction = self._lost / self._expected
        self._expected = self._lost = 0
        return fraction

    def _count(self, block: ReportBlock) -> None:
        now = _Seen(block.highest_sequence % SEQ_SPACE, _signed24(block.packets_lost))
        before = self._seen.pop(block.ssrc, None)
        self._seen[block.ssrc] = now
        if len(self._seen) > self._max_streams:
            self._seen.popitem(last=False)
        if before is None:
            return
        expected = (now.highest - before.highest) % SEQ_SPACE
        if expected == 0 or expected > self._max_jump:
            return  # nothing new, or a stream that went backwards or jumped: counted from here
        lost = min(max(now.lost - before.lost, 0), expected)  # duplicates make it negative
        self._expected += expected
        self._lost += lost
