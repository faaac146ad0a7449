"""The transport-cc estimator: the sender's own estimate from transport-wide feedback."""

from __future__ import annotations

from collections.abc import Sequence

from confsfu.bandwidth.delay_based import (
    AckedBitrate,
    AimdRateController,
    InterArrival,
    OveruseDetector,
    QueueDelay,
    SendReceiveRates,
    Trendline,
    Usage,
)
from confsfu.bandwidth.estimation import (
    EstimatorConfig,
    LossController,
    check_feedback,
    check_fraction,
    check_rate,
    check_seq,
    check_size,
    clamp,
)


class TwccEstimator:
    """Send-side estimate from transport-wide feedback: min(delay-based AIMD, loss controller).

    Loss comes from the feedback itself (reported-lost over reported packets, judged once per
    `feedback_loss_interval_ms`); receiver reports are ignored so one loss is not counted twice.
    The queue's delay (`QueueDelay`) is measured for the probes and the drain hold; it cuts
    nothing itself. A cut on a queue of 50-100 ms still growing, before the trendline's, was
    tried (issue 20) and removed: in the weak-link simulator (8 seeds, both links) at 100 ms it
    went down no sooner, came back 1.2-1.5 s later, and used 67 % of the lossy 1 Mbit/s link, not
    73 %; at 50 ms it went down 0.25 s sooner (clean) but came back 1.7 s later.
    """

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self._sent: dict[int, tuple[int, int, bool]] = {}  # seq -> (send_ms, size, reported lost)
        self._groups = InterArrival(config.burst_ms)
        self._trendline = Trendline(config)
        self._detector = OveruseDetector(config)
        self._rate = AimdRateController(config)
        self._acked = AckedBitrate(config.acked_window_ms)
        self._probe_rates = SendReceiveRates(config.probe_window_ms)
        self.queue = QueueDelay(config.queue_window_ms)
        self._loss = LossController(float(config.max_bps), config)
        self._lost = 0
        self._reported = 0
        self._cut_ms = -(1 << 62)  # send time of the latest decrease: loss before it is old news
        self._loss_since_ms: int | None = None
        self.acked_sent_ms: int | None = None  # the newest send time feedback acknowledged
        self._saturated: tuple[int, float] | None = None  # (ms, rate) a probe filled the link at
        self._measured_ms: int | None = None  # when a probe's result last lifted the rate

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        check_rate(bitrate_bps)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        check_fraction(fraction_lost)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        seq = check_seq(transport_seq)
        size = check_size(size_bytes)
        self._sent.pop(seq, None)  # re-inserted last so the dict stays in send order
        self._sent[seq] = (now_ms, size, False)
        horizon = now_ms - self._config.send_history_ms
        while self._sent:
            oldest = next(iter(self._sent))
            if self._sent[oldest][0] >= horizon:
                break
            del self._sent[oldest]

    def on_transport_feedback(self, now_ms: int, packets: Sequence[tuple[int, int | None]]) -> None:
        received: list[tuple[int, int, int]] = []  # (arrival_us, send_ms, size)
        for seq, arrival_us in check_feedback(packets):
            entry = self._sent.get(seq)
            if entry is None:
                continue  # unknown, too old, or already acknowledged
            send_ms, size, reported_lost = entry
            current = send_ms >= self._cut_ms  # sent at the rate now in force
            if arrival_us is None:
                if not reported_lost:
                    self._probe_rates.add(send_ms, None, size)
                    self._sent[seq] = (send_ms, size, True)
                    self._lost += current
                    self._reported += current
                continue
            del self._sent[seq]
            if reported_lost:
                self._lost -= current  # it arrived after all
            else:
                self._reported += current
            received.append((arrival_us, send_ms, size))
            if self.acked_sent_ms is None or send_ms > self.acked_sent_ms:
                self.acked_sent_ms = send_ms
        received.sort()
        self.queue.on_feedback(
            now_ms, [(at / 1000.0, at / 1000.0 - sent) for at, sent, _ in received]
        )
        overused = False
        for arrival_us, send_ms, size in received:
            self._acked.add(arrival_us / 1000.0, size)
            self._probe_rates.add(send_ms, arrival_us / 1000.0, size)
            delta = self._groups.add(send_ms, arrival_us)
            if delta is None:
                continue
            send_delta_ms, arrival_delta_ms, arrival_ms = delta
            modified = self._trendline.update(send_delta_ms, arrival_delta_ms, arrival_ms)
            usage = self._detector.detect(
                modified, self._trendline.trend, send_delta_ms, self._trendline.num_deltas, now_ms
            )
            overused = overused or usage is Usage.OVERUSE
        usage = Usage.OVERUSE if overused else self._detector.state
        before = min(self._rate.rate_bps, self._loss.value_bps)
        acked = self._acked.rate_bps()
        probed = self._probed(now_ms)
        rate_before = self._rate.rate_bps
        self._rate.update(now_ms, usage, acked, probed=probed)
        if probed is not None and probed > rate_before < self._rate.rate_bps:
            self._measured_ms = now_ms
        self._judge_loss(now_ms)
        if min(self._rate.rate_bps, self._loss.value_bps) < before:
            # What was sent before a decrease says nothing of the new rate: its losses (the
            # queue the old rate filled) must not cut again.
            self._cut_ms = now_ms
            self._lost = self._reported = 0

    def queue_rate_bps(self) -> float | None:
        """What arrived since the queue was last empty, over the time since: the link's own rate
        while a queue stands (None: no queue seen yet, or too little arrived to tell)."""
        since = self.queue.empty_arrival_ms
        return None if since is None else self._acked.rate_since_bps(since)

    def _probed(self, now_ms: int) -> float | None:
        """What the link carried when more than the estimate was sent on purpose (a probe:
        `probe_margin` x the estimate or more in each half of the window, so a window mostly
        before the probe is not judged) and it delivered about all of it: as GCC's probe
        result, the lower of the send and receive rates.

        A token bucket (`tc tbf`, a policer) lets a burst through at any rate, and within one
        window nothing tells it from a link that rose. So: when the window ends with a queue
        standing, the burst was spent and the arrival rate since the queue formed is the link's
        own (remembered as where the link saturated); a later probe that shows no more than
        that rate plus a burst's worth (`probe_burst_bytes` over the window) within
        `probe_memory_ms` is taken for the burst and counts only up to it; one beyond it is
        believed at once (the link rose)."""
        cfg = self._config
        rates = self._probe_rates.rates_bps()
        parts = self._probe_rates.parts_sent_bps(2)
        if rates is None or parts is None:
            return None
        sent, received = rates
        if min(parts) < cfg.probe_margin * self._rate.rate_bps:
            return None
        queued = self._probe_rates.queued_rate_bps(cfg.probe_queue_ms)
        if queued is not None:
            if queued <= 0:
                return None
            self._saturated = (now_ms, queued)
            return min(sent, queued)
        if received < cfg.probe_delivered * sent:
            return None
        result = min(sent, received)
        if self._saturated is not None:
            at_ms, link_bps = self._saturated
            burst_bps = cfg.probe_burst_bytes * 8000.0 / cfg.probe_window_ms
            if now_ms - at_ms > cfg.probe_memory_ms or result > link_bps + burst_bps:
                self._saturated = None  # old news, or the link rose past it
            else:
                result = min(result, link_bps)
        return result

    def _judge_loss(self, now_ms: int) -> None:
        cfg = self._config
        if self._loss_since_ms is None:
            self._loss_since_ms = now_ms
            return
        if now_ms - self._loss_since_ms < cfg.feedback_loss_interval_ms:
            return
        if self._reported >= cfg.feedback_loss_min_packets:
            fraction = min(max(self._lost / self._reported, 0.0), 1.0)
            basis = min(self._rate.rate_bps, self._loss.value_bps)
            self._loss.on_loss(now_ms, fraction, basis)
            if fraction <= cfg.loss_high:
                # Without heavy loss, loss sets no bound below the delay-based rate: random
                # loss of a few percent is not congestion, and a queue shows as delay.
                self._loss.value_bps = max(self._loss.value_bps, self._rate.rate_bps)
        self._lost = 0
        self._reported = 0
        self._loss_since_ms = now_ms

    def estimate_bps(self, now_ms: int) -> int:
        return int(clamp(min(self._rate.rate_bps, self._loss.value_bps), self._config))

    def measured_ms(self) -> int | None:
        return self._measured_ms

    def probe_ceiling_bps(self, now_ms: int) -> int:
        """How far a probe needs to go to be believed past the rate the link was lately seen
        full at (`_probed`: that rate and a burst's worth, and a tenth more); 0: none known.
        A 2x probe from near that rate only floods the link (Firefox's clean 1 Mbit/s phase: a
        probe every 2.5 s at 1.6 Mbit/s, 1.1 % of the audio lost)."""
        cfg = self._config
        if self._saturated is None or now_ms - self._saturated[0] > cfg.probe_memory_ms:
            return 0
        burst_bps = cfg.probe_burst_bytes * 8000.0 / cfg.probe_window_ms
        return int((self._saturated[1] + burst_bps) * 1.1)

    def full_ms(self) -> int | None:
        """When a probe's window last ended with a queue standing: the link was full, and
        its rate then is remembered (`_probed`); None: never, or forgotten since (a probe
        past it, or older than `probe_memory_ms` when the next probe was judged)."""
        return None if self._saturated is None else self._saturated[0]
