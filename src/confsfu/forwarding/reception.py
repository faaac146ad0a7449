"""One publisher stream as the server receives it: loss, receiver-report values, NACKs to send.

`Reception` is the specification; the server runs `confsfu.forwarding._reception.Reception`, which
does the same in C for the intake (tests hold the two to the same answers).
"""

from __future__ import annotations

from typing import NamedTuple

from confsfu.rtp.seq import Unwrapper

SEQ_MOD = 1 << 16
MAX_TRACKED_MISSING = 512


class ReceptionReport(NamedTuple):
    """The values of one RTCP report block (RFC 3550 6.4.1), as of now."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int


class Reception:
    """Tracks one incoming SSRC: extended sequence numbers, loss and the gaps worth a NACK.

    `last_ext` is the extended sequence number of the packet `on_packet` last accepted, and
    `unwrap_picture` unwraps the stream's VP8 picture ids: both done once here for every slot.
    """

    __slots__ = (
        "_base_ext",
        "_expected_prior",
        "_highest_ext",
        "_missing",
        "_nack_delay_ms",
        "_nack_retries",
        "_pictures",
        "_received",
        "_received_prior",
        "bytes_received",
        "last_ext",
        "last_packet_ms",
        "ssrc",
    )

    def __init__(self, ssrc: int, *, nack_delay_ms: int = 10, nack_retries: int = 5) -> None:
        self.ssrc = ssrc
        self._nack_delay_ms = nack_delay_ms
        self._nack_retries = nack_retries
        self._highest_ext = -1
        self._base_ext = 0
        self._received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._missing: dict[int, list[int]] = {}  # ext seq -> [first seen missing ms, nacks sent]
        self.bytes_received = 0
        self.last_packet_ms = 0
        self.last_ext = -1
        self._pictures = Unwrapper(15)

    @property
    def started(self) -> bool:
        return self._highest_ext >= 0

    def on_packet(self, now_ms: int, sequence_number: int, size_bytes: int) -> bool:
        """Count a packet; False when it is a duplicate or too old to matter."""
        self.last_packet_ms = now_ms
        self.bytes_received += size_bytes
        if self._highest_ext < 0:
            self._highest_ext = self._base_ext = self.last_ext = sequence_number
            self._received = 1
            return True
        delta = (sequence_number - self._highest_ext) % SEQ_MOD
        if delta == 0:
            return False
        if delta < SEQ_MOD // 2:
            ext = self._highest_ext + delta
            for gap in range(self._highest_ext + 1, ext):
                self._missing[gap] = [now_ms, 0]
            self._highest_ext = ext
            if len(self._missing) > MAX_TRACKED_MISSING:
                for old in sorted(self._missing)[: len(self._missing) - MAX_TRACKED_MISSING]:
                    del self._missing[old]
        else:
            ext = self._highest_ext - (SEQ_MOD - delta)
            if self._missing.pop(ext, None) is None:
                return False  # a duplicate, or older than anything we track
        self._received += 1
        self.last_ext = ext
        return True

    def unwrap_picture(self, picture_id: int) -> int:
        """A 15-bit VP8 picture id of the stream on an unbounded int."""
        return self._pictures.unwrap(picture_id)

    def nacks_due(self, now_ms: int) -> list[int]:
        """16-bit sequence numbers to NACK now (each gap asked for at most `retries` times)."""
        if not self._missing:
            return []
        due: list[int] = []
        for ext, entry in list(self._missing.items()):
            first_ms, sent = entry
            if sent >= self._nack_retries:
                del self._missing[ext]
            elif now_ms - first_ms >= self._nack_delay_ms * (1 + sent):
                entry[1] = sent + 1
                due.append(ext % SEQ_MOD)
        return due

    def next_nack_ms(self) -> int | None:
        """When `nacks_due` will next have a number to NACK; None while nothing is missing."""
        due = [
            first_ms + self._nack_delay_ms * (1 + sent)
            for first_ms, sent in self._missing.values()
            if sent < self._nack_retries
        ]
        return min(due, default=None)

    def report(self) -> ReceptionReport:
        """A report block's values; resets the interval counters used for fraction lost."""
        expected = self._highest_ext - self._base_ext + 1 if self.started else 0
        lost = max(0, expected - self._received)
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior, self._received_prior = expected, self._received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return ReceptionReport(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=min(lost, 0x7FFFFF),
            highest_sequence=max(self._highest_ext, 0) & 0xFFFFFFFF,
            jitter=0,
        )
