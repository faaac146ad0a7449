"""One slot's forwarder: which packets of which source it forwards, and their rewritten numbers."""

from __future__ import annotations

from confsfu.forwarding.inbound import Inbound

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
PICTURE_ID_MOD = 1 << 15
TL0_MOD = 1 << 8
SEQ_MASK, TS_MASK, PICTURE_ID_MASK, TL0_MASK = (
    SEQ_MOD - 1,
    TS_MOD - 1,
    PICTURE_ID_MOD - 1,
    TL0_MOD - 1,
)


class OffsetMap:
    """Offsets that apply from an (unwrapped) input number onward; older inputs keep theirs.

    Dropping a packet (or a frame) moves the offset of everything after it down by one, while a
    late or retransmitted packet from before the drop still gets the offset it had.
    """

    __slots__ = ("_offsets", "_size", "_starts")

    def __init__(self, start: int, offset: int, size: int = 128) -> None:
        self._starts = [start]
        self._offsets = [offset]
        self._size = size

    @property
    def latest(self) -> int:
        return self._offsets[-1]

    def shift_from(self, start: int, delta: int) -> None:
        if start <= self._starts[-1]:
            self._offsets[-1] += delta
        else:
            self._starts.append(start)
            self._offsets.append(self._offsets[-1] + delta)
            if len(self._starts) > self._size:
                del self._starts[0], self._offsets[0]

    def get(self, n: int) -> int | None:
        """The offset for input `n`, or None when `n` is older than anything kept."""
        starts = self._starts
        if n >= starts[-1]:
            return self._offsets[-1]
        for i in range(len(starts) - 2, -1, -1):
            if n >= starts[i]:
                return self._offsets[i]
        return None


class SlotForwarder:
    """Keeps a slot's outgoing stream continuous while the source it carries changes.

    Sequence numbers, timestamps, VP8 picture ids and TL0PICIDX are the source's plus offsets that
    change only at a source switch or where a temporal layer is dropped, so retransmissions and
    reordering keep their place. A video slot switches to a new source (or simulcast layer) on
    its next keyframe and keeps forwarding the old one until then. Temporal layers above
    `max_temporal` are dropped: going down at any frame start, going up at a TL0 frame or a
    layer-sync frame.
    """

    __slots__ = (
        "_last_out_ms",
        "_newest_in",
        "_pic_map",
        "_seq_map",
        "_started",
        "_temporal",
        "_tl0_offset",
        "_ts_offset",
        "clock_rate",
        "dropped_temporal",
        "is_video",
        "last_picture_id",
        "last_seq",
        "last_tl0picidx",
        "last_ts",
        "max_temporal",
        "pending",
        "pending_since_ms",
        "rewrites_descriptor",
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
        self.max_temporal = 2  # the highest temporal layer wanted (the allocator's target)
        self.dropped_temporal = 0
        self._temporal = 2  # the highest temporal layer being forwarded now
        self._started = False
        self._seq_map = OffsetMap(0, 0)
        self._pic_map = OffsetMap(0, 0)
        self.rewrites_descriptor = False  # picture id / TL0PICIDX offsets are not zero
        self._newest_in = -1
        self._ts_offset = 0
        self._tl0_offset = 0
        # The last values sent (the "next" is last + 1), seeded randomly by the caller.
        self.last_seq = (initial_seq - 1) % SEQ_MOD
        self.last_ts = initial_ts % TS_MOD
        self.last_picture_id = 0
        self.last_tl0picidx = 0
        self._last_out_ms = 0

    @property
    def waiting_for_keyframe(self) -> str | None:
        """The key whose keyframe this slot waits for (a switch, or resuming from a pause)."""
        if self.pending is not None:
            return self.pending
        if self.source is not None and self._temporal < 0 <= self.max_temporal:
            return self.source
        return None

    @property
    def temporal(self) -> int:
        """The highest temporal layer forwarded now."""
        return self._temporal

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

    def restart(self, now_ms: int) -> bool:
        """The source's stream starts anew (its publisher reconnected, with new numbers): take
        it up again like a switch, on its next keyframe. True when a keyframe is now needed."""
        if self.source is None:
            return False
        if self.pending is None:
            self.pending = self.source
            self.pending_since_ms = now_ms
        self.source = None
        return self.is_video

    def forward(self, now_ms: int, p: Inbound) -> tuple[int, int, int | None, int | None] | None:
        """(seq, timestamp, picture id, TL0PICIDX) to send `p` with, or None to drop it."""
        if p.key != self.source:
            if p.key != self.pending:
                return None
            if self.is_video and not p.keyframe:
                return None
            self._switch(now_ms, p)
        ext = p.ext_seq
        newest = ext > self._newest_in
        tid = p.temporal_id
        if tid is not None:
            if newest and p.starts_frame:
                self._follow_temporal_target(p, tid)
            if tid > self._temporal:
                self._drop(ext, newest, p)
                return None
        offset = self._seq_map.get(ext)
        if offset is None:
            return None  # from before the switch: its place belongs to the previous source
        seq = (p.seq + offset) & SEQ_MASK
        ts = (p.timestamp + self._ts_offset) & TS_MASK
        if newest:
            self._newest_in = ext
            self.last_seq = seq
            self.last_ts = ts
            self._last_out_ms = now_ms
        pic = tl0 = None
        if p.ext_picture is not None:
            pic = (p.ext_picture + (self._pic_map.get(p.ext_picture) or 0)) & PICTURE_ID_MASK
            if newest:
                self.last_picture_id = pic
        if p.tl0picidx is not None:
            tl0 = (p.tl0picidx + self._tl0_offset) & TL0_MASK
            if newest:
                self.last_tl0picidx = tl0
        return seq, ts, pic, tl0

    def _follow_temporal_target(self, p: Inbound, tid: int) -> None:
        target = self.max_temporal
        going_down = target < self._temporal
        # Paused, the decoder has lost its references: resume on a keyframe only.
        paused = self._temporal < 0
        can_go_up = p.keyframe if paused else tid == 0 or (p.layer_sync and tid <= target)
        if going_down or (target > self._temporal and can_go_up):
            self._temporal = target

    def _drop(self, ext: int, newest: bool, p: Inbound) -> None:
        """Close the gap a dropped packet leaves in the sequence (and its frame's picture id)."""
        self.dropped_temporal += 1
        if not newest:
            return
        self._newest_in = ext
        self._seq_map.shift_from(ext + 1, -1)
        if p.starts_frame and p.ext_picture is not None:
            self._pic_map.shift_from(p.ext_picture + 1, -1)
            self._update_rewrites()

    def _switch(self, now_ms: int, p: Inbound) -> None:
        if self._started:
            elapsed_ticks = max(1, (now_ms - self._last_out_ms) * self.clock_rate // 1000)
            first_ts = self.last_ts + elapsed_ticks
            first_pic = self.last_picture_id + 1
            first_tl0 = self.last_tl0picidx + 1
        else:
            first_ts = self.last_ts
            first_pic = p.picture_id if p.picture_id is not None else 0
            first_tl0 = p.tl0picidx if p.tl0picidx is not None else 0
            # Seed the last sent values: one half a range from 0 would never count as newer.
            self.last_picture_id = first_pic
            self.last_tl0picidx = first_tl0
        self._seq_map = OffsetMap(p.ext_seq, (self.last_seq + 1 - p.seq) % SEQ_MOD)
        self._newest_in = p.ext_seq - 1
        self._ts_offset = (first_ts - p.timestamp) % TS_MOD
        if p.ext_picture is not None:
            # Offsets apply to the unwrapped picture id, which is picture_id plus a multiple
            # of 2**15: the same offset modulo 2**15.
            self._pic_map = OffsetMap(p.ext_picture, (first_pic - p.ext_picture) % PICTURE_ID_MOD)
        else:
            self._pic_map = OffsetMap(0, 0)
        if p.tl0picidx is not None:
            self._tl0_offset = (first_tl0 - p.tl0picidx) % TL0_MOD
        self._temporal = self.max_temporal  # a keyframe is on TL0: any target can start here
        self.source = self.pending
        self.pending = None
        self._started = True
        self._update_rewrites()

    def _update_rewrites(self) -> None:
        self.rewrites_descriptor = bool(self._pic_map.latest % PICTURE_ID_MOD or self._tl0_offset)

    def translate_timestamp(self, timestamp: int) -> int:
        """A source RTP timestamp as this slot's stream shows it (for Sender Reports)."""
        return (timestamp + self._ts_offset) % TS_MOD
