"""A virtual-time bottleneck like `tc tbf` and a browser-like receiver behind it, for simulations.

The link is a token bucket (rate from a schedule, `burst_bytes` of tokens, a queue of
`rate x latency + burst` bytes with tail drop, as tbf sizes it), optional random loss before the
queue and a fixed delay after it. As the browser benchmark does, every phase change replaces the
qdisc: what is queued is dropped and the bucket starts full; `reshape` does the same at any time
(a live link's rate change: tests/browser/tunlink.py). The receiver records arrivals and
answers as a browser does: transport-cc feedback every `feedback_ms`, a loss fraction once a
second, NACKs for missing video packets and a keyframe request when a frame cannot be repaired.
Times are microseconds; random draws come from the caller (`draw`, uniform in [0, 1)).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum


class Kind(Enum):
    AUDIO = "audio"
    VIDEO = "video"
    RTX = "rtx"  # a retransmission or a probe's copy of a video packet
    PADDING = "padding"


@dataclass(frozen=True, slots=True)
class Phase:
    kbit_s: int
    seconds: float


@dataclass(frozen=True, slots=True)
class LinkConfig:
    burst_bytes: int = 20 * 1024  # tbf "burst 20kb"
    latency_ms: int = 150  # tbf "latency 150ms": the queue holds rate x latency + burst
    delay_ms: int = 0  # one way, after the queue (and on the way back)
    loss: float = 0.0  # random loss before the queue
    overhead_bytes: int = 42  # Ethernet, IPv4 and UDP headers, which tbf counts


@dataclass(slots=True)
class Packet:
    transport_seq: int  # unwrapped
    size: int  # RTP bytes (what the estimator is told)
    kind: Kind
    send_us: int
    media_seq: int = -1  # audio or video stream sequence number (RTX: the original's)
    frame: int = -1  # video: the frame it belongs to


class Link:
    """The bottleneck: `send` packets in time order, `deliver` what has arrived by a time."""

    def __init__(self, schedule: Sequence[Phase], config: LinkConfig, draw: Callable[[], float]):
        if not schedule or any(p.kbit_s <= 0 or p.seconds <= 0 for p in schedule):
            raise ValueError("a schedule needs phases with positive rates and lengths")
        self.config = config
        self._draw = draw
        self._ends_us: list[int] = []
        end = 0.0
        for phase in schedule:
            end += phase.seconds * 1e6
            self._ends_us.append(round(end))
        self._rates = [p.kbit_s * 1000.0 for p in schedule]
        self._phase = 0
        self._t_us = 0
        self._tokens = float(config.burst_bytes)
        self._queue: deque[Packet] = deque()
        self._queued_bytes = 0
        self._out: deque[tuple[int, Packet]] = deque()  # (arrival_us, packet) in flight
        self.dropped = 0  # tail drops and phase changes
        self.lost = 0  # random loss
        self._unlimited = False  # `reshape(..., None)`: no bucket, no queue

    @property
    def rate_bps(self) -> float:
        return self._rates[self._phase]

    def _limit_bytes(self) -> float:
        return self.rate_bps * self.config.latency_ms / 8000.0 + self.config.burst_bytes

    def _wire(self, packet: Packet) -> int:
        return packet.size + self.config.overhead_bytes

    def _leave(self, leave_us: int, packet: Packet) -> None:
        """Out of the queue at `leave_us`, into the delay (in order: a shorter delay set later
        does not overtake what is in flight)."""
        arrival = leave_us + self.config.delay_ms * 1000
        if self._out:
            arrival = max(arrival, self._out[-1][0])
        self._out.append((arrival, packet))

    def _advance(self, until_us: int) -> None:
        """Runs the bucket up to `until_us`: packets leave as tokens allow."""
        if self._unlimited:
            self._t_us = max(self._t_us, until_us)
            return
        while True:
            boundary = self._ends_us[self._phase] if self._phase + 1 < len(self._rates) else None
            stop = until_us if boundary is None else min(until_us, boundary)
            bytes_per_us = self.rate_bps / 8e6
            while self._queue:
                need = self._wire(self._queue[0])
                wait_us = max(0.0, (need - self._tokens) / bytes_per_us)
                leave = self._t_us + int(wait_us + 0.999)
                if leave > stop:
                    break
                self._tokens = min(
                    self._tokens + (leave - self._t_us) * bytes_per_us, self.config.burst_bytes
                )
                self._tokens -= need
                self._t_us = leave
                packet = self._queue.popleft()
                self._queued_bytes -= need
                self._leave(leave, packet)
            elapsed = max(stop - self._t_us, 0)
            self._tokens = min(self._tokens + elapsed * bytes_per_us, self.config.burst_bytes)
            self._t_us = max(self._t_us, stop)
            if boundary is None or until_us < boundary:
                return
            self._phase += 1  # tc replaces the qdisc: the queue is lost, the bucket full
            self.dropped += len(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._tokens = float(self.config.burst_bytes)

    def send(self, now_us: int, packet: Packet) -> bool:
        """Whether the packet was queued (else it was lost or dropped)."""
        self._advance(now_us)
        if self.config.loss and self._draw() < self.config.loss:
            self.lost += 1
            return False
        if self._unlimited:
            self._leave(now_us, packet)
            return True
        need = self._wire(packet)
        if self._queued_bytes + need > self._limit_bytes():
            self.dropped += 1
            return False
        self._queue.append(packet)
        self._queued_bytes += need
        self._advance(now_us)
        return True

    def reshape(
        self,
        now_us: int,
        kbit_s: int | None,
        delay_ms: int | None = None,
        loss: float | None = None,
    ) -> None:
        """What replacing the qdisc does at `now_us` (a live link's rate change): the queue is
        dropped and the bucket starts full, at `kbit_s` (None: no limit) for as long as the link
        runs after; a new delay or loss applies to what is sent from now."""
        if kbit_s is not None and kbit_s <= 0:
            raise ValueError("a rate is positive (None: no limit)")
        self._advance(now_us)
        self.dropped += len(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._tokens = float(self.config.burst_bytes)
        self._unlimited = kbit_s is None
        self._rates, self._ends_us, self._phase = [(kbit_s or 1) * 1000.0], [now_us], 0
        self.config = replace(
            self.config,
            delay_ms=self.config.delay_ms if delay_ms is None else delay_ms,
            loss=self.config.loss if loss is None else loss,
        )

    @property
    def held(self) -> int:
        """Packets queued or in the delay."""
        return len(self._queue) + len(self._out)

    def next_arrival_us(self) -> int | None:
        """The earliest time `deliver` may have a packet (None: nothing is held)."""
        if self._out:
            return self._out[0][0]
        if not self._queue:
            return None
        wait_us = max(0.0, (self._wire(self._queue[0]) - self._tokens) / (self.rate_bps / 8e6))
        return self._t_us + int(wait_us + 0.999) + self.config.delay_ms * 1000

    def deliver(self, until_us: int) -> list[tuple[int, Packet]]:
        """The packets that arrived by `until_us`, as (arrival_us, packet), in order."""
        self._advance(until_us)
        out: list[tuple[int, Packet]] = []
        while self._out and self._out[0][0] <= until_us:
            out.append(self._out.popleft())
        return out


@dataclass(slots=True)
class Frame:
    number: int
    spatial: int
    key: bool
    packets: int
    send_us: int
    first_seq: int
    got: set[int] = field(default_factory=set)  # media sequence numbers received


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    feedback_ms: int = 100  # transport-cc feedback interval (Chromium: 50-250 ms)
    report_ms: int = 1000  # receiver reports
    nack_retries: int = 10
    give_up_ms: int = 1000  # a frame still incomplete this long after it was sent: ask a keyframe


@dataclass(slots=True)
class _Missing:
    due_us: int
    tries: int


class Receiver:
    """What the browser does with what arrives. The sender tells it of every video frame it
    forwards (`expect`), standing in for the frame boundaries a browser reads from the packets."""

    def __init__(self, config: ReceiverConfig, return_us: int) -> None:
        self.config = config
        self._return_us = return_us  # the way back, for the round trip NACKs wait
        self._one_way_us = 0  # the latest packet's, queueing included
        self._arrivals: dict[int, int] = {}  # transport seq -> arrival_us, since the feedback
        self._reported = 0  # the next transport seq to report
        self._highest = -1
        self._last_feedback_us = 0
        self._last_report_us = 0
        self._media_expected: dict[Kind, int] = {Kind.AUDIO: -1, Kind.VIDEO: -1}
        self._report_base: dict[Kind, tuple[int, int]] = {}  # kind -> (highest, received)
        self._received: dict[Kind, int] = {Kind.AUDIO: 0, Kind.VIDEO: 0}
        self._missing: dict[int, _Missing] = {}  # video media seq -> NACK state
        self._frames: deque[Frame] = deque()
        self._by_seq: dict[int, Frame] = {}
        self._broken = False  # waiting for a keyframe
        self.decoded: list[tuple[int, int]] = []  # (decode_us, spatial)
        self.audio_arrived: set[int] = set()
        self.keyframe_asked = False

    def expect(self, frame: Frame) -> None:
        self._frames.append(frame)
        for seq in range(frame.first_seq, frame.first_seq + frame.packets):
            self._by_seq[seq] = frame

    def on_arrival(self, arrival_us: int, packet: Packet) -> None:
        self._arrivals[packet.transport_seq] = arrival_us - arrival_us % 250
        self._one_way_us = arrival_us - packet.send_us
        self._highest = max(self._highest, packet.transport_seq)
        if packet.kind is Kind.AUDIO:
            self.audio_arrived.add(packet.media_seq)
            self._count(Kind.AUDIO, packet.media_seq)
        elif packet.kind in (Kind.VIDEO, Kind.RTX) and packet.media_seq >= 0:
            if packet.kind is Kind.VIDEO:
                self._count(Kind.VIDEO, packet.media_seq)
                expected = self._media_expected[Kind.VIDEO]
                for gap in range(max(expected, packet.media_seq - 500), packet.media_seq):
                    self._missing[gap] = _Missing(arrival_us, 0)
                self._media_expected[Kind.VIDEO] = max(expected, packet.media_seq + 1)
            self._missing.pop(packet.media_seq, None)
            frame = self._by_seq.pop(packet.media_seq, None)
            if frame is not None:
                frame.got.add(packet.media_seq)
        self._decode(arrival_us)

    def _count(self, kind: Kind, seq: int) -> None:
        self._received[kind] += 1
        if self._media_expected[kind] < 0 or kind is Kind.AUDIO:
            self._media_expected[kind] = max(self._media_expected[kind], seq + 1)

    def _decode(self, now_us: int) -> None:
        """Frames in order: a complete one is decoded; one still incomplete `give_up_ms` after
        it was sent breaks the chain, and nothing is decoded again before a keyframe."""
        frames = self._frames
        complete_key = next(
            (i for i in range(len(frames) - 1, 0, -1) if frames[i].key and self._whole(frames[i])),
            0,
        )
        for _ in range(complete_key):  # a complete keyframe is decoded whatever came before
            self._drop(frames.popleft())
        while frames:
            frame = frames[0]
            if self._broken and not frame.key:
                self._drop(frames.popleft())
            elif self._whole(frame):
                frames.popleft()
                if frame.key:  # what was missing before a keyframe is not asked for again
                    for seq in [s for s in self._missing if s < frame.first_seq]:
                        del self._missing[seq]
                self._broken = False
                self.keyframe_asked = False
                self.decoded.append((now_us, frame.spatial))
            elif now_us - frame.send_us >= self.config.give_up_ms * 1000:
                self._drop(frames.popleft())
                self._broken = True
                self.keyframe_asked = True
            else:
                break

    @staticmethod
    def _whole(frame: Frame) -> bool:
        return len(frame.got) == frame.packets

    def _drop(self, frame: Frame) -> None:
        for seq in range(frame.first_seq, frame.first_seq + frame.packets):
            self._by_seq.pop(seq, None)
            self._missing.pop(seq, None)

    def nacks(self, now_us: int) -> list[int]:
        """Video sequence numbers to ask again for now."""
        out: list[int] = []
        # Chromium waits its RTT estimate, 100 ms while it has none (a receive-only peer)
        wait_us = max(self._one_way_us + self._return_us, 100_000)
        for seq, state in list(self._missing.items()):
            if state.due_us > now_us:
                continue
            if state.tries >= self.config.nack_retries:
                del self._missing[seq]
                continue
            out.append(seq)
            state.tries += 1
            state.due_us = now_us + wait_us
        return out

    def feedback(self, now_us: int) -> list[tuple[int, int | None]] | None:
        """Transport-cc feedback when due: (seq mod 2^16, arrival_us or None) per packet."""
        if now_us - self._last_feedback_us < self.config.feedback_ms * 1000:
            return None
        self._last_feedback_us = now_us
        self._decode(now_us)
        if self._highest < self._reported:
            return None
        out = [
            (seq & 0xFFFF, self._arrivals.pop(seq, None))
            for seq in range(self._reported, self._highest + 1)
        ]
        self._reported = self._highest + 1
        return out

    def report(self, now_us: int) -> float | None:
        """A receiver report's fraction lost (of audio and video packets) when due."""
        if now_us - self._last_report_us < self.config.report_ms * 1000:
            return None
        self._last_report_us = now_us
        expected = received = 0
        for kind in (Kind.AUDIO, Kind.VIDEO):
            highest = self._media_expected[kind]
            base_highest, base_received = self._report_base.get(kind, (0, 0))
            expected += max(highest - base_highest, 0)
            received += self._received[kind] - base_received
            self._report_base[kind] = (max(highest, 0), self._received[kind])
        if expected <= 0:
            return None
        return min(max(1.0 - received / expected, 0.0), 1.0)
