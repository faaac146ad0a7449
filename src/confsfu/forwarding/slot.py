"""One slot's forwarder: which packets of which source it forwards, and their rewritten numbers."""

from __future__ import annotations

from confsfu.codecs.vp8 import Vp8Descriptor
from confsfu.rtp.packet import RtpPacket

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
PICTURE_ID_MOD = 1 << 15
TL0_MOD = 1 << 8


class SlotForwarder:
    """Keeps a slot's outgoing stream continuous while the source it carries changes.

    Sequence numbers, timestamps, VP8 picture ids and TL0PICIDX are the source's plus offsets that
    change only at a source switch, so retransmissions and reordering keep their place. A video
    slot switches to a new source on that source's next keyframe and keeps forwarding the old one
    until then.
    """

    __slots__ = (
        "_guard_seq",
        "_last_out_ms",
        "_pic_offset",
        "_seq_offset",
        "_started",
        "_tl0_offset",
        "_ts_offset",
        "clock_rate",
        "is_video",
        "last_picture_id",
        "last_seq",
        "last_tl0picidx",
        "last_ts",
        "pending",
        "pending_since_ms",
        "source",
    )

    def __init__(
        self, *, is_video: bool, clock_rate: int, initial_seq: int, initial_ts: int
    ) -> None:
        self.is_video = is_video
        self.clock_rate = clock_rate
        self.source: str | None = None
        self.pending: str | None = None
        self.pending_since_ms = 0
        self._started = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._pic_offset = 0
        self._tl0_offset = 0
        # The last values sent (the "next" is last + 1), seeded randomly by the caller.
        self.last_seq = (initial_seq - 1) % SEQ_MOD
        self.last_ts = initial_ts % TS_MOD
        self.last_picture_id = 0
        self.last_tl0picidx = 0
        self._last_out_ms = 0
        # The out seq the current source started at, while packets from before it may still come.
        self._guard_seq: int | None = None

    def assign(self, now_ms: int, source: str | None) -> bool:
        """The room wants this slot to carry `source`; True when a keyframe is now needed."""
        if source == self.source:
            self.pending = None
            return False
        if source is None or not self.is_video:
            # Audio switches at the next packet; an emptied slot stops at once.
            self.pending = source
            if source is None:
                self.source = None
            return False
        if source != self.pending:
            self.pending = source
            self.pending_since_ms = now_ms
        return True

    def forward(
        self, now_ms: int, source: str, pkt: RtpPacket, vp8: Vp8Descriptor | None
    ) -> tuple[int, int, int | None, int | None] | None:
        """(seq, timestamp, picture id, TL0PICIDX) to send `pkt` with, or None to drop it."""
        if source != self.source:
            if source != self.pending:
                return None
            if self.is_video and (vp8 is None or not vp8.is_keyframe):
                return None
            self._switch(now_ms, pkt, vp8)
        seq = (pkt.sequence_number + self._seq_offset) % SEQ_MOD
        if self._guard_seq is not None:
            since = (seq - self._guard_seq) % SEQ_MOD
            if since >= SEQ_MOD // 2:
                return None  # sent before the switch: its place belongs to the previous source
            if since >= SEQ_MOD // 4:
                self._guard_seq = None
        ts = (pkt.timestamp + self._ts_offset) % TS_MOD
        if (seq - self.last_seq) % SEQ_MOD < SEQ_MOD // 2:
            self.last_seq = seq
            self.last_ts = ts
            self._last_out_ms = now_ms
        pic = tl0 = None
        if vp8 is not None:
            if vp8.picture_id is not None:
                pic = (vp8.picture_id + self._pic_offset) % PICTURE_ID_MOD
                if (pic - self.last_picture_id) % PICTURE_ID_MOD < PICTURE_ID_MOD // 2:
                    self.last_picture_id = pic
            if vp8.tl0picidx is not None:
                tl0 = (vp8.tl0picidx + self._tl0_offset) % TL0_MOD
                if (tl0 - self.last_tl0picidx) % TL0_MOD < TL0_MOD // 2:
                    self.last_tl0picidx = tl0
        return seq, ts, pic, tl0

    def _switch(self, now_ms: int, pkt: RtpPacket, vp8: Vp8Descriptor | None) -> None:
        if self._started:
            elapsed_ticks = max(1, (now_ms - self._last_out_ms) * self.clock_rate // 1000)
            first_ts = self.last_ts + elapsed_ticks
            first_pic = self.last_picture_id + 1
            first_tl0 = self.last_tl0picidx + 1
        else:
            first_ts = self.last_ts
            first_pic = vp8.picture_id if vp8 is not None and vp8.picture_id is not None else 0
            first_tl0 = vp8.tl0picidx if vp8 is not None and vp8.tl0picidx is not None else 0
            # Seed the last sent values: one half a range from 0 would never count as newer.
            self.last_picture_id = first_pic
            self.last_tl0picidx = first_tl0
        self._seq_offset = (self.last_seq + 1 - pkt.sequence_number) % SEQ_MOD
        self._guard_seq = (self.last_seq + 1) % SEQ_MOD
        self._ts_offset = (first_ts - pkt.timestamp) % TS_MOD
        if vp8 is not None and vp8.picture_id is not None:
            self._pic_offset = (first_pic - vp8.picture_id) % PICTURE_ID_MOD
        if vp8 is not None and vp8.tl0picidx is not None:
            self._tl0_offset = (first_tl0 - vp8.tl0picidx) % TL0_MOD
        self.source = self.pending
        self.pending = None
        self._started = True

    def translate_timestamp(self, timestamp: int) -> int:
        """A source RTP timestamp as this slot's stream shows it (for Sender Reports)."""
        return (timestamp + self._ts_offset) % TS_MOD

    @property
    def rewrites_descriptor(self) -> bool:
        """Whether VP8 descriptors must be patched (any non-zero offset)."""
        return bool(self._pic_offset or self._tl0_offset)
