"""Issue 20's weak-link figures in virtual time: the server's side of one subscriber, simulated.

One subscriber watches a simulcast stage (three spatial layers, three temporal layers each) and
hears one audio stream through `linksim.Link`. What decides is the server's own code, driven as
the media shell drives it: the send-side estimator fed the receiver's transport-cc feedback, the
subscriber's budget and allocator every 250 ms, the probe controller once a second and its
padding (copies of the latest video packets) every 20 ms, and the hold while the link's queue
drains after a sharp fall (`drain`). The forwarding around them is modelled: a spatial switch
waits for the new layer's keyframe (the layer left keeps its frame rate, no higher), a temporal
one does not; a paused stage sends nothing and resumes on a keyframe; lost packets are NACKed
and resent; a frame that cannot be repaired freezes the picture until a keyframe.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from confsfu.bandwidth.allocator import Demand, Priority, Reason
from confsfu.bandwidth.budget import (
    SEND_SIDE_FRAME_RATE_HEADROOM,
    SEND_SIDE_HEADROOM,
    BudgetRules,
    SubscriberBudget,
)
from confsfu.bandwidth.estimation import EstimatorConfig
from confsfu.bandwidth.hysteresis import AllocatorConfig
from confsfu.bandwidth.linksim import (
    Frame,
    Kind,
    Link,
    LinkConfig,
    Packet,
    Phase,
    Receiver,
    ReceiverConfig,
)
from confsfu.bandwidth.probe import SEND_SIDE_PROBES, ProbeController
from confsfu.bandwidth.retransmit import RetransmitLimiter
from confsfu.bandwidth.twcc import TwccEstimator

FULL = (Phase(3000, 20), Phase(300, 30), Phase(1000, 20), Phase(3000, 30))
SHORT = (Phase(3000, 15), Phase(300, 20), Phase(3000, 35))
TOP = 2
WIDTHS = (320, 640, 1280)
REASSIGN_EVERY_MS = 250  # as the room's timer
REPORT_EVERY_MS = 1000
PAD_EVERY_MS = 20
PAD_PACKETS = 32  # the latest video packets a padding burst copies
PADDING_BYTES = 280  # a padding-only packet, when no video went out
TL_PATTERN = (0, 2, 1, 2)  # L1T3


@dataclass(frozen=True, slots=True)
class MediaModel:
    """What the publisher sends: Chromium's 1280x720 simulcast and Opus."""

    fps: int = 30
    layer_bps: tuple[int, int, int] = (150_000, 500_000, 1_700_000)  # each layer, full rate
    temporal_shares: tuple[float, float, float] = (0.4, 0.6, 1.0)  # cumulative, as libvpx's
    keyframe_factor: float = 5.0  # a keyframe against the layer's average frame
    size_jitter: float = 0.2  # frame sizes vary +- this share
    audio_bytes: int = 120
    audio_every_ms: int = 20
    keyframe_delay_ms: int = 100  # from asking the publisher to its keyframe reaching us
    publisher_pacing_bps: int = 6_000_000  # a frame's packets arrive (and leave) this fast
    max_payload: int = 1150
    header_bytes: int = 34  # RTP header, extensions, SRTP tag

    def demand(self) -> Demand:
        rates = np.array([[r * s for s in self.temporal_shares] for r in self.layer_bps])
        return Demand("stage", Priority.STAGE, 2, 2, rates, floor=True)

    def frame_bytes(self, spatial: int, temporal: int, key: bool) -> float:
        average = self.layer_bps[spatial] / self.fps / 8
        if key:
            return average * self.keyframe_factor
        shares = self.temporal_shares
        own = (shares[0], shares[1] - shares[0], shares[2] - shares[1])[temporal]
        frames = TL_PATTERN.count(temporal) / len(TL_PATTERN)
        return average * own / frames


@dataclass
class PhaseFigures:
    kbit_s: int
    down_s: float | None = None  # first frame below the top layer after a drop
    up_s: float | None = None  # first frame at the top layer after a rise (or at the start)
    longest_freeze_s: float = 0.0  # the longest stretch with no stage frame decoded
    freeze_at_s: float = 0.0  # when in the phase it began
    audio_loss_pct: float = 0.0
    link_use_pct: float = 0.0  # RTP bytes delivered against the link's rate
    over_link_s: float = 0.0  # time the stage layer and audio together cost more than the link
    estimate_kbps: tuple[int, int] = (0, 0)  # lowest and highest estimate in the phase
    padding_kbit: int = 0  # probe padding sent in the phase
    decisions: int = 0  # times the stage's decision changed (layer or reason, holds included)
    switches: int = 0  # spatial switches forwarded (each one a keyframe)
    holds: int = 0  # drain holds begun (video paused while the queue drains)
    widths: list[int] = field(default_factory=list)  # decoded widths in turn

    def line(self) -> str:
        down = "-" if self.down_s is None else f"{self.down_s:.1f} s"
        up = "-" if self.up_s is None else f"{self.up_s:.1f} s"
        return (
            f"{self.kbit_s:>5} kbit/s: down {down}, up {up}, freeze {self.longest_freeze_s:.1f} s"
            f" (at {self.freeze_at_s:.1f} s)"
            f", audio lost {self.audio_loss_pct:.1f} %, link used {self.link_use_pct:.0f} %"
            f", over link {self.over_link_s:.1f} s, estimate {self.estimate_kbps[0]}-"
            f"{self.estimate_kbps[1]} kbit/s, padding {self.padding_kbit} kbit, decisions "
            f"{self.decisions}, switches {self.switches}, holds {self.holds}; {self.widths}"
        )


@dataclass(slots=True)
class _Sent:
    size: int
    frame: int


class _Server:
    """The shell's part for one subscriber: forwarding, timers, and the cores it calls."""

    def __init__(
        self,
        media: MediaModel,
        estimator_config: EstimatorConfig,
        drain: bool = True,
        allocator: AllocatorConfig | None = None,
        frame_rate_headroom: float = SEND_SIDE_FRAME_RATE_HEADROOM,
    ) -> None:
        self.media = media
        self.estimator = TwccEstimator(estimator_config)
        self.budget = SubscriberBudget(
            BudgetRules(
                initial_bps=estimator_config.initial_bps,
                headroom=SEND_SIDE_HEADROOM,
                frame_rate_headroom=frame_rate_headroom,
            ),
            self.estimator,
            allocator or AllocatorConfig(),
        )
        self.probe = ProbeController(SEND_SIDE_PROBES)
        self.retransmits = RetransmitLimiter()
        self.demand = media.demand()
        self.spatial, self.temporal = TOP, 2
        self.target_temporal = 2  # the allocator's, taken up at a spatial switch
        self.pending: int | None = None
        self.paused = False  # a paused slot forwards nothing
        self.resuming = False  # ... and resumes on a keyframe
        self.drain = drain  # hold video while the queue drains (bandwidth/drain)
        self.key_at: list[int | None] = [None, None, None]
        self.next_transport = 0
        self.video_seq = 0
        self.audio_seq = 0
        self.frame_number = 0
        self.history: dict[int, _Sent] = {}  # video seq -> size, for NACKs and padding copies
        self.recent: deque[int] = deque(maxlen=PAD_PACKETS)
        self.media_bytes = self.audio_bytes = self.padding_bytes = 0
        self.last_media_bytes = self.last_audio_bytes = 0
        self.audio_bps = 0
        self.loss = 0.0
        self.decided: list[tuple[int, str]] = []  # (ms, the stage's decision) at each change
        self.switched: list[int] = []  # ms of each spatial switch forwarded

    def decide(self, now_ms: int) -> None:
        if self.budget.allocate(now_ms, [self.demand], self.audio_bps) is not None:
            d = self.budget.decisions[0]
            self.decided.append((now_ms, f"{d.spatial}/{d.temporal} ({d.reason})"))
        decision = self.budget.decisions[0]
        if decision.spatial is None or decision.temporal is None:
            self.paused = True  # nothing goes out; it resumes on a keyframe
            return
        self.target_temporal = decision.temporal
        if decision.spatial >= self.spatial or self.paused:
            self.temporal = decision.temporal
        else:  # the layer left keeps its frame rate (no higher) until the switch
            self.temporal = min(self.temporal, decision.temporal)
        if self.paused:
            self.paused, self.resuming = False, True
            if decision.spatial != self.spatial:
                self.pending = decision.spatial
            self.ask_keyframe(now_ms, decision.spatial)
        elif decision.spatial == self.spatial:
            self.pending = None
        elif decision.spatial != self.pending:
            self.pending = decision.spatial
            self.ask_keyframe(now_ms, decision.spatial)

    def ask_keyframe(self, now_ms: int, spatial: int) -> None:
        if self.key_at[spatial] is None:
            self.key_at[spatial] = now_ms + self.media.keyframe_delay_ms

    def report_tick(self, now_ms: int) -> None:
        elapsed = REPORT_EVERY_MS
        media_bps = (self.media_bytes - self.last_media_bytes) * 8000 // elapsed
        self.audio_bps = (self.audio_bytes - self.last_audio_bytes) * 8000 // elapsed
        self.last_media_bytes, self.last_audio_bytes = self.media_bytes, self.audio_bytes
        if now_ms - self.budget.ready_ms < self.budget.rules.warmup_ms:
            return
        self.probe.update(
            now_ms,
            estimate_bps=self.estimator.estimate_bps(now_ms),
            media_bps=media_bps,
            wanted_bps=self.budget.wanted_bps,
            loss=self.loss,
            step_bps=self.budget.step_bps,
            queue_ms=self.estimator.queue.value_ms,
            ceiling_bps=self.estimator.probe_ceiling_bps(now_ms),
        )

    def frame(self, now_ms: int) -> tuple[int, bool, int] | None:
        """The frame forwarded now, as (spatial, keyframe, temporal), or None."""
        number = self.frame_number
        self.frame_number += 1
        pending = self.pending
        due = self.key_at
        if self.paused:  # keyframes arriving meanwhile pass by
            self.key_at = [None if at is not None and at <= now_ms else at for at in due]
            return None
        if pending is not None and (at := due[pending]) is not None and at <= now_ms:
            due[pending] = None
            if pending != self.spatial:
                self.switched.append(now_ms)
            self.spatial, self.pending, self.resuming = pending, None, False
            self.temporal = self.target_temporal
            return pending, True, 0
        if (at := due[self.spatial]) is not None and at <= now_ms:
            due[self.spatial] = None
            self.resuming = False
            return self.spatial, True, 0
        temporal = TL_PATTERN[number % len(TL_PATTERN)]
        if self.resuming or temporal > self.temporal:
            return None
        return self.spatial, False, temporal


@dataclass(frozen=True, slots=True)
class SimResult:
    phases: list[PhaseFigures]
    estimates: list[tuple[int, int, int]]  # (ms, estimate bps, stage spatial) every 100 ms
    decided: list[tuple[int, str]]  # (ms, the stage's decision) at each change

    def lines(self) -> list[str]:
        return [p.line() for p in self.phases]


def simulate(
    schedule: Sequence[Phase],
    draw: Callable[[], float],
    *,
    link: LinkConfig | None = None,
    media: MediaModel | None = None,
    receiver: ReceiverConfig | None = None,
    estimator: EstimatorConfig | None = None,
    drain: bool = True,
    allocator: AllocatorConfig | None = None,
    frame_rate_headroom: float = SEND_SIDE_FRAME_RATE_HEADROOM,
) -> SimResult:
    """Runs the schedule in 1 ms steps; `draw` gives the link's loss and the frames' sizes."""
    link_cfg = link or LinkConfig()
    model = media or MediaModel()
    server = _Server(
        model,
        estimator or EstimatorConfig(initial_bps=2_500_000, min_bps=50_000, max_bps=8_000_000),
        drain,
        allocator,
        frame_rate_headroom,
    )
    wire = Link(schedule, link_cfg, draw)
    delay_us = link_cfg.delay_ms * 1000
    rx = Receiver(receiver or ReceiverConfig(), delay_us + 5_000)
    outgoing: list[tuple[int, int, Packet]] = []  # (send_us, order, packet) not yet on the link
    back: list[tuple[int, int, str, object]] = []  # the reverse path: (due_us, order, what, data)
    order = 0
    audio_sent: list[tuple[int, int]] = []  # (send_us, seq)
    delivered: list[tuple[int, int]] = []  # (arrival_us, RTP bytes)
    padding: list[tuple[int, int]] = []
    over: list[int] = []  # ms over the link
    estimates: list[tuple[int, int, int]] = []
    last_pli_ms = -10_000
    pad_media = 0  # media bytes sent up to the last padding tick
    end_ms = round(sum(p.seconds for p in schedule) * 1000)
    ends = [float(x) for x in np.cumsum([p.seconds * 1000 for p in schedule])]

    def queue(send_us: int, packet: Packet) -> None:
        nonlocal order
        order += 1
        heapq.heappush(outgoing, (send_us, order, packet))

    def answer(due_us: int, what: str, data: object) -> None:
        nonlocal order
        order += 1
        heapq.heappush(back, (due_us, order, what, data))

    for now_ms in range(end_ms):
        now_us = now_ms * 1000
        # what went out by now reaches the link, stamped and recorded as the hot path does
        while outgoing and outgoing[0][0] <= now_us:
            send_us, _, packet = heapq.heappop(outgoing)
            packet.transport_seq = server.next_transport
            packet.send_us = send_us
            server.next_transport += 1
            server.estimator.on_packet_sent(
                send_us // 1000, packet.transport_seq & 0xFFFF, packet.size
            )
            if packet.kind is Kind.AUDIO:
                audio_sent.append((send_us, packet.media_seq))
            wire.send(send_us, packet)
        for arrival_us, packet in wire.deliver(now_us):
            rx.on_arrival(arrival_us, packet)
            delivered.append((arrival_us, packet.size))
        # the receiver's messages, and what reaches the server of them
        fb = rx.feedback(now_us)
        if fb is not None:
            answer(now_us + delay_us, "feedback", fb)
        loss = rx.report(now_us)
        if loss is not None:
            answer(now_us + delay_us, "report", loss)
        nacks = rx.nacks(now_us)
        if nacks:
            answer(now_us + delay_us, "nack", nacks)
        if rx.keyframe_asked and now_ms - last_pli_ms >= 500:
            last_pli_ms = now_ms
            answer(now_us + delay_us, "pli", None)
        while back and back[0][0] <= now_us:
            _, _, what, data = heapq.heappop(back)
            if what == "feedback":
                server.estimator.on_transport_feedback(now_ms, data)  # type: ignore[arg-type]
                padding_bps = server.probe.padding_bps
                queue_ms = server.estimator.queue.value_ms
                server.probe.on_estimate(
                    now_ms, server.estimator.estimate_bps(now_ms), queue_ms,
                    server.estimator.full_ms(), server.estimator.probe_ceiling_bps(now_ms),
                )  # fmt: skip
                forwarding = {} if server.paused else {"stage": (server.spatial, server.temporal)}
                est = server.estimator
                if server.drain and server.budget.on_feedback(
                    now_ms, est.acked_sent_ms, padding_bps, forwarding, queue_ms,
                    est.queue_rate_bps(), est.queue.rising,
                ):  # fmt: skip
                    if not server.budget.drain.holding:
                        server.probe.on_drained(now_ms)
                    server.decide(now_ms)
            elif what == "report":
                server.loss = float(data)  # type: ignore[arg-type]
                server.estimator.on_receiver_report(now_ms, server.loss)
            elif what == "nack":
                estimate = server.estimator.estimate_bps(now_ms)
                if server.budget.drain.holding:
                    continue  # resent into the queue that is to drain
                for seq in data:  # type: ignore[attr-defined]
                    sent = server.history.get(seq)
                    if sent is None:
                        continue
                    size = sent.size + 2
                    if server.retransmits.allow(now_ms, 1, seq, size, estimate):
                        server.retransmits.sent(now_ms, 1, seq, size)
                        queue(now_us, Packet(0, size, Kind.RTX, 0, seq, sent.frame))
            elif not server.budget.drain.holding:  # a hold's end asks the keyframe it needs
                server.ask_keyframe(now_ms, server.spatial)
        # the room's timers
        if now_ms % REASSIGN_EVERY_MS == 0:
            server.decide(now_ms)
        if now_ms % REPORT_EVERY_MS == 0 and now_ms:
            server.report_tick(now_ms)
        if now_ms % PAD_EVERY_MS == 0:
            due = server.probe.take_bytes(now_ms, server.media_bytes - pad_media)
            pad_media = server.media_bytes
            padded = 0
            copies = list(reversed(server.recent))
            for back_i in range(PAD_PACKETS):
                if padded >= due:
                    break
                if copies:
                    if back_i >= len(copies):
                        break
                    seq = copies[back_i]
                    size = server.history[seq].size + 2
                    queue(now_us, Packet(0, size, Kind.RTX, 0))
                else:
                    size = PADDING_BYTES
                    queue(now_us, Packet(0, size, Kind.PADDING, 0))
                padded += size
            server.probe.spend(padded)
            if padded:
                padding.append((now_us, padded))
        # media
        if now_ms % model.audio_every_ms == 0:
            queue(now_us, Packet(0, model.audio_bytes, Kind.AUDIO, 0, server.audio_seq))
            server.audio_seq += 1
            server.audio_bytes += model.audio_bytes
            server.media_bytes += model.audio_bytes
        if now_ms * model.fps // 1000 != (now_ms - 1) * model.fps // 1000 or now_ms == 0:
            forwarded = server.frame(now_ms)
            if forwarded is not None:
                spatial, key, temporal = forwarded
                jitter = 1.0 + model.size_jitter * (2.0 * draw() - 1.0)
                frame_size = model.frame_bytes(spatial, temporal, key) * jitter
                count = max(1, math.ceil(frame_size / model.max_payload))
                each = round(frame_size / count) + model.header_bytes
                first = server.video_seq
                rx.expect(Frame(server.frame_number, spatial, key, count, now_us, first))
                gap_us = each * 8e6 / model.publisher_pacing_bps
                for i in range(count):
                    seq = server.video_seq
                    server.video_seq += 1
                    server.history[seq] = _Sent(each, server.frame_number)
                    server.history.pop(seq - 2048, None)
                    server.recent.append(seq)
                    queue(now_us + round(i * gap_us), Packet(0, each, Kind.VIDEO, 0, seq))
                    server.media_bytes += each
        cost = model.demand().costs[server.spatial * 3 + server.temporal] + server.audio_bps
        if cost > wire.rate_bps:
            over.append(now_ms)
        if now_ms % 100 == 0:
            estimates.append((now_ms, server.estimator.estimate_bps(now_ms), server.spatial))
    phases = _figures(
        schedule, ends, rx.decoded, audio_sent, rx.audio_arrived, delivered, padding, over,
        estimates,
    )  # fmt: skip
    for i, fig in enumerate(phases):
        start = 0.0 if i == 0 else ends[i - 1]
        fig.decisions = sum(1 for t, _ in server.decided if start <= t < ends[i])
        fig.switches = sum(1 for t in server.switched if start <= t < ends[i])
        began = [  # a decision into a hold after one that was not
            t for (t, d), (_, before) in zip(server.decided[1:], server.decided, strict=False)
            if Reason.DRAINING in d and Reason.DRAINING not in before
        ]  # fmt: skip
        fig.holds = sum(1 for t in began if start <= t < ends[i])
    return SimResult(phases, estimates, server.decided)


def _figures(
    schedule: Sequence[Phase],
    ends: list[float],
    decoded: list[tuple[int, int]],
    audio_sent: list[tuple[int, int]],
    audio_arrived: set[int],
    delivered: list[tuple[int, int]],
    padding: list[tuple[int, int]],
    over: list[int],
    estimates: list[tuple[int, int, int]],
) -> list[PhaseFigures]:
    out: list[PhaseFigures] = []
    previous: int | None = None
    for i, phase in enumerate(schedule):
        start_us = 0 if i == 0 else int(ends[i - 1] * 1000)
        end_us = int(ends[i] * 1000)
        fig = PhaseFigures(phase.kbit_s)
        frames = [(t, s) for t, s in decoded if start_us <= t < end_us]
        last = start_us
        for t, s in frames:
            if (t - last) / 1e6 > fig.longest_freeze_s:
                fig.longest_freeze_s = (t - last) / 1e6
                fig.freeze_at_s = (last - start_us) / 1e6
            last = t
            width = WIDTHS[s]
            if not fig.widths or fig.widths[-1] != width:
                fig.widths.append(width)
            dropping = previous is not None and phase.kbit_s < previous
            if dropping and fig.down_s is None and s < TOP:
                fig.down_s = (t - start_us) / 1e6
            rising = previous is None or phase.kbit_s > previous
            if rising and fig.up_s is None and s == TOP:
                fig.up_s = (t - start_us) / 1e6
        if (end_us - last) / 1e6 > fig.longest_freeze_s:
            fig.longest_freeze_s = (end_us - last) / 1e6
            fig.freeze_at_s = (last - start_us) / 1e6
        sent = [seq for t, seq in audio_sent if start_us <= t < end_us]
        lost = sum(1 for seq in sent if seq not in audio_arrived)
        fig.audio_loss_pct = 100.0 * lost / max(len(sent), 1)
        got = sum(b for t, b in delivered if start_us <= t < end_us)
        fig.link_use_pct = 100.0 * got * 8 / (phase.kbit_s * 1000 * phase.seconds)
        fig.over_link_s = sum(1 for t in over if start_us <= t * 1000 < end_us) / 1000
        est = [e for t, e, _ in estimates if start_us <= t * 1000 < end_us]
        if est:
            fig.estimate_kbps = (min(est) // 1000, max(est) // 1000)
        fig.padding_kbit = sum(b for t, b in padding if start_us <= t < end_us) * 8 // 1000
        out.append(fig)
        previous = phase.kbit_s
    return out
