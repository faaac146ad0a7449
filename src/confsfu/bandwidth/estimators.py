"""Downlink bandwidth estimators (REMB, loss-based, transport-cc delay-based) behind one interface.

The loss and delay controllers follow Google Congestion Control (draft-ietf-rmcat-gcc-02):
loss above 10% cuts the rate by half the loss, loss below 2% lets it grow about 8% a second;
the delay side groups packets into 5 ms bursts, filters the inter-group delay variation with a
trendline, compares its slope with an adaptive threshold and drives an AIMD controller whose
decrease is relative to the acknowledged bitrate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

SEQ_MODULO = 1 << 16


class EstimatorError(ValueError):
    """Feedback or a setting an estimator cannot use (negative rate, loss outside 0..1, ...)."""


@dataclass(frozen=True, slots=True)
class EstimatorConfig:
    initial_bps: int = 300_000
    min_bps: int = 30_000
    max_bps: int = 5_000_000
    # loss controller
    loss_low: float = 0.02  # below: grow
    loss_high: float = 0.10  # above: cut by half the loss
    loss_growth_per_s: float = 0.08
    loss_decrease_interval_ms: int = 300  # at most one cut per interval
    loss_growth_max_gap_ms: int = 2000  # a longer silence between reports grows no more than this
    feedback_loss_interval_ms: int = 1000  # transport-cc: loss is judged over this long
    feedback_loss_min_packets: int = 10
    # delay-based (transport-cc)
    burst_ms: int = 5
    trendline_window: int = 20
    trendline_smoothing: float = 0.9
    trendline_gain: float = 4.0
    initial_threshold_ms: float = 12.5
    threshold_k_up: float = 0.0087
    threshold_k_down: float = 0.039
    overuse_time_ms: float = 10.0
    backoff_factor: float = 0.85  # rate after over-use = factor * acknowledged bitrate
    decrease_interval_ms: int = 200  # at most one delay-based decrease per interval (~ one RTT)
    response_time_ms: int = 300  # RTT + 100 ms, for the additive increase near capacity
    acked_window_ms: int = 500
    send_history_ms: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.initial_bps <= self.max_bps:
            raise EstimatorError("need 0 < min_bps <= initial_bps <= max_bps")
        if not 0.0 <= self.loss_low <= self.loss_high <= 1.0:
            raise EstimatorError("need 0 <= loss_low <= loss_high <= 1")
        if not 0.0 < self.backoff_factor < 1.0 or not 0.0 <= self.trendline_smoothing < 1.0:
            raise EstimatorError("backoff_factor in (0, 1), trendline_smoothing in [0, 1)")
        if self.trendline_window < 2 or self.burst_ms < 0 or self.acked_window_ms <= 0:
            raise EstimatorError("trendline_window >= 2, burst_ms >= 0, acked_window_ms > 0")


class BandwidthEstimator(Protocol):
    """What the shell feeds an estimator, and what it asks of it."""

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None: ...

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None: ...

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None: ...

    def on_transport_feedback(
        self, now_ms: int, packets: Sequence[tuple[int, int | None]]
    ) -> None: ...

    def estimate_bps(self, now_ms: int) -> int: ...


# ---- input checks -----------------------------------------------------------------------------


def _rate(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EstimatorError(f"bitrate must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise EstimatorError(f"bitrate must be finite and >= 0, not {value}")
    return float(value)


def _fraction(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EstimatorError(f"fraction lost must be a number, not {type(value).__name__}")
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise EstimatorError(f"fraction lost must be within 0..1, not {value}")
    return float(value)


def _seq(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEQ_MODULO:
        raise EstimatorError(f"transport sequence number must be 0..65535, not {value!r}")
    return value


def _size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EstimatorError(f"packet size must be an int >= 0, not {value!r}")
    return value


def _arrival(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EstimatorError(f"arrival time must be an int (microseconds) or None, not {value!r}")
    return value


def _feedback(packets: Sequence[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    checked: list[tuple[int, int | None]] = []
    for item in packets:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EstimatorError(f"feedback entries are (seq, arrival_us | None), not {item!r}")
        checked.append((_seq(item[0]), _arrival(item[1])))
    return checked


def _clamp(value: float, config: EstimatorConfig) -> float:
    return min(max(value, float(config.min_bps)), float(config.max_bps))


# ---- loss controller ------------------------------------------------------------------------


class _LossController:
    """GCC's loss-based rate: cut on heavy loss, grow on little, hold in between."""

    __slots__ = ("_config", "_last_decrease_ms", "_last_report_ms", "value_bps")

    def __init__(self, value_bps: float, config: EstimatorConfig) -> None:
        self._config = config
        self.value_bps = value_bps
        self._last_report_ms: int | None = None
        self._last_decrease_ms: int | None = None

    def on_loss(self, now_ms: int, fraction_lost: float, basis_bps: float) -> None:
        """`basis_bps` is the rate in force (the combined estimate), which a cut starts from."""
        cfg = self._config
        gap_ms = 0 if self._last_report_ms is None else now_ms - self._last_report_ms
        self._last_report_ms = now_ms
        if fraction_lost > cfg.loss_high:
            last = self._last_decrease_ms
            if last is None or now_ms - last >= cfg.loss_decrease_interval_ms:
                self.value_bps = min(self.value_bps, basis_bps) * (1.0 - 0.5 * fraction_lost)
                self._last_decrease_ms = now_ms
        elif fraction_lost < cfg.loss_low:
            gap_s = min(max(gap_ms, 0), cfg.loss_growth_max_gap_ms) / 1000.0
            self.value_bps *= (1.0 + cfg.loss_growth_per_s) ** gap_s
        self.value_bps = _clamp(self.value_bps, cfg)


class LossBasedEstimator:
    """Receiver reports only: GCC's loss controller, starting at `initial_bps`."""

    def __init__(self, config: EstimatorConfig) -> None:
        self._loss = _LossController(float(config.initial_bps), config)

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        _rate(bitrate_bps)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        self._loss.on_loss(now_ms, _fraction(fraction_lost), self._loss.value_bps)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        _seq(transport_seq)
        _size(size_bytes)

    def on_transport_feedback(self, now_ms: int, packets: Sequence[tuple[int, int | None]]) -> None:
        _feedback(packets)

    def estimate_bps(self, now_ms: int) -> int:
        return int(self._loss.value_bps)


class RembEstimator:
    """The subscriber's own REMB estimate, capped by the loss controller (uncapped at start)."""

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self._remb_bps: float | None = None
        self._loss = _LossController(float(config.max_bps), config)

    def _source_bps(self) -> float:
        return float(self._config.initial_bps) if self._remb_bps is None else self._remb_bps

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        self._remb_bps = _clamp(_rate(bitrate_bps), self._config)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        basis = min(self._source_bps(), self._loss.value_bps)
        self._loss.on_loss(now_ms, _fraction(fraction_lost), basis)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        _seq(transport_seq)
        _size(size_bytes)

    def on_transport_feedback(self, now_ms: int, packets: Sequence[tuple[int, int | None]]) -> None:
        _feedback(packets)

    def estimate_bps(self, now_ms: int) -> int:
        return int(_clamp(min(self._source_bps(), self._loss.value_bps), self._config))


# ---- delay-based pieces -----------------------------------------------------------------------


class _Usage(Enum):
    NORMAL = "normal"
    OVERUSE = "overuse"
    UNDERUSE = "underuse"


@dataclass(slots=True)
class _Group:
    first_send_ms: int
    last_send_ms: int
    first_arrival_us: int
    last_arrival_us: int


class _InterArrival:
    """Groups packets sent within `burst_ms` and yields (send delta, arrival delta) per group."""

    __slots__ = ("_burst_ms", "_current", "_previous")
    _MAX_BURST_US = 100_000
    _RESET_JUMP_MS = 3000.0

    def __init__(self, burst_ms: int) -> None:
        self._burst_ms = burst_ms
        self._current: _Group | None = None
        self._previous: _Group | None = None

    def _belongs(self, group: _Group, send_ms: int, arrival_us: int) -> bool:
        send_delta_ms = send_ms - group.last_send_ms
        if send_delta_ms == 0:
            return True
        arrival_delta_us = arrival_us - group.last_arrival_us
        propagation_ms = arrival_delta_us / 1000.0 - send_delta_ms
        in_burst = (
            propagation_ms < 0
            and arrival_delta_us <= self._burst_ms * 1000
            and arrival_us - group.first_arrival_us < self._MAX_BURST_US
        )
        return in_burst or send_ms - group.first_send_ms <= self._burst_ms

    def add(self, send_ms: int, arrival_us: int) -> tuple[float, float, float] | None:
        """Returns (send_delta_ms, arrival_delta_ms, arrival_ms) when a group completes."""
        current = self._current
        if current is None:
            self._current = _Group(send_ms, send_ms, arrival_us, arrival_us)
            return None
        if send_ms < current.first_send_ms:
            return None  # reordered: belongs to a finished group
        if self._belongs(current, send_ms, arrival_us):
            current.last_send_ms = max(current.last_send_ms, send_ms)
            current.last_arrival_us = max(current.last_arrival_us, arrival_us)
            return None
        result: tuple[float, float, float] | None = None
        previous = self._previous
        if previous is not None:
            send_delta_ms = float(current.last_send_ms - previous.last_send_ms)
            arrival_delta_ms = (current.last_arrival_us - previous.last_arrival_us) / 1000.0
            if arrival_delta_ms < 0 or arrival_delta_ms - send_delta_ms > self._RESET_JUMP_MS:
                current = None  # the receiver's clock jumped: start over
            else:
                result = (send_delta_ms, arrival_delta_ms, current.last_arrival_us / 1000.0)
        self._previous = current
        self._current = _Group(send_ms, send_ms, arrival_us, arrival_us)
        return result


class _Trendline:
    """Slope of the smoothed accumulated delay over the last `window` groups."""

    __slots__ = (
        "_accumulated_ms",
        "_config",
        "_first_arrival_ms",
        "_history",
        "_smoothed_ms",
        "num_deltas",
        "trend",
    )
    _MAX_DELTAS_FACTOR = 60

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self._history: deque[tuple[float, float]] = deque(maxlen=config.trendline_window)
        self._accumulated_ms = 0.0
        self._smoothed_ms = 0.0
        self._first_arrival_ms: float | None = None
        self.num_deltas = 0
        self.trend = 0.0

    def update(self, send_delta_ms: float, arrival_delta_ms: float, arrival_ms: float) -> float:
        """Adds one group delta; returns the modified trend the detector compares."""
        cfg = self._config
        self.num_deltas = min(self.num_deltas + 1, 1000)
        if self._first_arrival_ms is None:
            self._first_arrival_ms = arrival_ms
        self._accumulated_ms += arrival_delta_ms - send_delta_ms
        s = cfg.trendline_smoothing
        self._smoothed_ms = s * self._smoothed_ms + (1.0 - s) * self._accumulated_ms
        self._history.append((arrival_ms - self._first_arrival_ms, self._smoothed_ms))
        if len(self._history) == cfg.trendline_window:
            slope = _slope(self._history)
            if slope is not None:
                self.trend = slope
        return min(self.num_deltas, self._MAX_DELTAS_FACTOR) * self.trend * cfg.trendline_gain


def _slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    return None if denominator == 0 else numerator / denominator


class _OveruseDetector:
    """Compares the modified trend with a threshold that adapts to it."""

    __slots__ = (
        "_config",
        "_last_update_ms",
        "_overuse_count",
        "_previous_trend",
        "_time_over_ms",
        "state",
        "threshold",
    )
    _MAX_ADAPT_GAP_MS = 100.0
    _OUTLIER_MARGIN = 15.0

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self.threshold = config.initial_threshold_ms
        self._last_update_ms: float | None = None
        self._time_over_ms = -1.0
        self._overuse_count = 0
        self._previous_trend = 0.0
        self.state = _Usage.NORMAL

    def detect(
        self, modified: float, trend: float, send_delta_ms: float, num_deltas: int, now_ms: int
    ) -> _Usage:
        if num_deltas < 2:
            self.state = _Usage.NORMAL
            return self.state
        if modified > self.threshold:
            if self._time_over_ms < 0:
                self._time_over_ms = send_delta_ms / 2.0
            else:
                self._time_over_ms += send_delta_ms
            self._overuse_count += 1
            if (
                self._time_over_ms > self._config.overuse_time_ms
                and self._overuse_count > 1
                and trend >= self._previous_trend
            ):
                self._time_over_ms = 0.0
                self._overuse_count = 0
                self.state = _Usage.OVERUSE
        elif modified < -self.threshold:
            self._time_over_ms = -1.0
            self._overuse_count = 0
            self.state = _Usage.UNDERUSE
        else:
            self._time_over_ms = -1.0
            self._overuse_count = 0
            self.state = _Usage.NORMAL
        self._previous_trend = trend
        self._adapt(modified, float(now_ms))
        return self.state

    def _adapt(self, modified: float, now_ms: float) -> None:
        cfg = self._config
        if self._last_update_ms is None:
            self._last_update_ms = now_ms
        if abs(modified) > self.threshold + self._OUTLIER_MARGIN:
            self._last_update_ms = now_ms  # a spike: do not chase it
            return
        k = cfg.threshold_k_down if abs(modified) < self.threshold else cfg.threshold_k_up
        gap_ms = min(max(now_ms - self._last_update_ms, 0.0), self._MAX_ADAPT_GAP_MS)
        self.threshold += k * (abs(modified) - self.threshold) * gap_ms
        self.threshold = min(max(self.threshold, 6.0), 600.0)
        self._last_update_ms = now_ms


class _AckedBitrate:
    """Received throughput over a sliding window of arrival time."""

    __slots__ = ("_bytes", "_first_ms", "_latest_ms", "_samples", "_window_ms")
    _MIN_SPAN_MS = 100.0

    def __init__(self, window_ms: int) -> None:
        self._window_ms = float(window_ms)
        self._samples: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._first_ms: float | None = None
        self._latest_ms = -math.inf

    def add(self, arrival_ms: float, size_bytes: int) -> None:
        if self._first_ms is None:
            self._first_ms = arrival_ms
        self._samples.append((arrival_ms, size_bytes))
        self._bytes += size_bytes
        self._latest_ms = max(self._latest_ms, arrival_ms)
        horizon = self._latest_ms - self._window_ms
        while self._samples and self._samples[0][0] <= horizon:
            self._bytes -= self._samples.popleft()[1]

    def rate_bps(self) -> float | None:
        if self._first_ms is None:
            return None
        span_ms = min(self._window_ms, self._latest_ms - self._first_ms)
        if span_ms < self._MIN_SPAN_MS:
            return None
        return self._bytes * 8000.0 / span_ms


class _LinkCapacity:
    """Mean and normalised variance of the acknowledged rate seen at over-use, in kbps."""

    __slots__ = ("_mean_kbps", "_var")

    def __init__(self) -> None:
        self._mean_kbps: float | None = None
        self._var = 0.4

    @property
    def known(self) -> bool:
        return self._mean_kbps is not None

    def mean_bps(self) -> float | None:
        return None if self._mean_kbps is None else self._mean_kbps * 1000.0

    def on_overuse(self, acked_bps: float) -> None:
        sample = acked_bps / 1000.0
        if self._mean_kbps is None:
            self._mean_kbps = sample
        else:
            self._mean_kbps = 0.95 * self._mean_kbps + 0.05 * sample
        norm = max(self._mean_kbps, 1.0)
        self._var = 0.95 * self._var + 0.05 * (self._mean_kbps - sample) ** 2 / norm
        self._var = min(max(self._var, 0.4), 2.5)

    def check(self, acked_bps: float) -> None:
        """Forgets the capacity once the acknowledged rate rises 3 sigma above it."""
        if self._mean_kbps is None:
            return
        sigma = math.sqrt(self._var * self._mean_kbps)
        if acked_bps / 1000.0 > self._mean_kbps + 3 * sigma:
            self._mean_kbps = None


class _RateState(Enum):
    HOLD = "hold"
    INCREASE = "increase"
    DECREASE = "decrease"


class _AimdRateController:
    """AIMD: additive increase near capacity, multiplicative far from it; multiplicative cut."""

    __slots__ = (
        "_capacity",
        "_config",
        "_last_decrease_ms",
        "_last_update_ms",
        "rate_bps",
        "state",
    )

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self.rate_bps = float(config.initial_bps)
        self.state = _RateState.HOLD
        self._capacity = _LinkCapacity()
        self._last_update_ms: int | None = None
        self._last_decrease_ms: int | None = None

    def update(
        self, now_ms: int, usage: _Usage, acked_bps: float | None, *, clean: bool = False
    ) -> None:
        """`clean`: the feedback behind `acked_bps` reported no loss (a probe's result counts)."""
        cfg = self._config
        gap_ms = 0 if self._last_update_ms is None else max(now_ms - self._last_update_ms, 0)
        self._last_update_ms = now_ms
        if acked_bps is None:
            return  # nothing acknowledged yet: no basis to move either way
        if usage is _Usage.OVERUSE:
            self.state = _RateState.DECREASE
        elif usage is _Usage.UNDERUSE:
            self.state = _RateState.HOLD
        elif self.state is _RateState.HOLD:
            self.state = _RateState.INCREASE
        new_bps = self.rate_bps
        if self.state is _RateState.INCREASE:
            self._capacity.check(acked_bps)
            if self._capacity.known:
                new_bps += self._near_capacity_rate_bps_per_s() * gap_ms / 1000.0
            else:
                gain = (1.0 + cfg.loss_growth_per_s) ** min(gap_ms / 1000.0, 1.0) - 1.0
                new_bps += max(new_bps * gain, 1000.0 * gap_ms / 1000.0)
            ceiling = 1.5 * acked_bps + 10_000.0
            if new_bps > ceiling:
                new_bps = max(self.rate_bps, ceiling)
            if clean:
                # The link carried more than the estimate without a delay rise or a loss (a
                # probe did): that much it can take, at once (GCC's probe result).
                new_bps = max(new_bps, acked_bps)
        elif self.state is _RateState.DECREASE:
            last = self._last_decrease_ms
            if acked_bps is not None and (
                last is None or now_ms - last >= cfg.decrease_interval_ms
            ):
                target = cfg.backoff_factor * acked_bps
                capacity = self._capacity.mean_bps()
                if target > new_bps and capacity is not None:
                    target = cfg.backoff_factor * capacity
                new_bps = min(new_bps, target)
                self._capacity.on_overuse(acked_bps)
                self._last_decrease_ms = now_ms
            self.state = _RateState.HOLD
        self.rate_bps = _clamp(new_bps, cfg)

    def _near_capacity_rate_bps_per_s(self) -> float:
        bits_per_frame = self.rate_bps / 30.0
        packets_per_frame = math.ceil(bits_per_frame / (1200 * 8))
        avg_packet_bits = bits_per_frame / max(packets_per_frame, 1)
        return max(4000.0, avg_packet_bits * 1000.0 / self._config.response_time_ms)


class TwccEstimator:
    """Send-side estimate from transport-wide feedback: min(delay-based AIMD, loss controller).

    Loss comes from the feedback itself (reported-lost over reported packets, judged once per
    `feedback_loss_interval_ms`); receiver reports are ignored so one loss is not counted twice.
    """

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self._sent: dict[int, tuple[int, int, bool]] = {}  # seq -> (send_ms, size, reported lost)
        self._groups = _InterArrival(config.burst_ms)
        self._trendline = _Trendline(config)
        self._detector = _OveruseDetector(config)
        self._rate = _AimdRateController(config)
        self._acked = _AckedBitrate(config.acked_window_ms)
        self._loss = _LossController(float(config.max_bps), config)
        self._lost = 0
        self._reported = 0
        self._loss_since_ms: int | None = None

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        _rate(bitrate_bps)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        _fraction(fraction_lost)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        seq = _seq(transport_seq)
        size = _size(size_bytes)
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
        lost_before = self._lost
        for seq, arrival_us in _feedback(packets):
            entry = self._sent.get(seq)
            if entry is None:
                continue  # unknown, too old, or already acknowledged
            send_ms, size, reported_lost = entry
            if arrival_us is None:
                if not reported_lost:
                    self._sent[seq] = (send_ms, size, True)
                    self._lost += 1
                    self._reported += 1
                continue
            del self._sent[seq]
            if reported_lost:
                self._lost -= 1  # it arrived after all
            else:
                self._reported += 1
            received.append((arrival_us, send_ms, size))
        received.sort()
        overused = False
        for arrival_us, send_ms, size in received:
            self._acked.add(arrival_us / 1000.0, size)
            delta = self._groups.add(send_ms, arrival_us)
            if delta is None:
                continue
            send_delta_ms, arrival_delta_ms, arrival_ms = delta
            modified = self._trendline.update(send_delta_ms, arrival_delta_ms, arrival_ms)
            usage = self._detector.detect(
                modified, self._trendline.trend, send_delta_ms, self._trendline.num_deltas, now_ms
            )
            overused = overused or usage is _Usage.OVERUSE
        usage = _Usage.OVERUSE if overused else self._detector.state
        clean = self._lost <= lost_before  # nothing newly reported lost
        self._rate.update(now_ms, usage, self._acked.rate_bps(), clean=clean)
        self._judge_loss(now_ms)

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
            acked = self._acked.rate_bps()
            if fraction == 0 and acked is not None:
                # No loss at what the link carried: loss sets no bound below that.
                self._loss.value_bps = max(self._loss.value_bps, _clamp(acked, cfg))
        self._lost = 0
        self._reported = 0
        self._loss_since_ms = now_ms

    def estimate_bps(self, now_ms: int) -> int:
        return int(_clamp(min(self._rate.rate_bps, self._loss.value_bps), self._config))


def make_estimator(
    kind: Literal["remb", "loss", "twcc"], config: EstimatorConfig
) -> BandwidthEstimator:
    """The estimator the settings name."""
    if kind == "remb":
        return RembEstimator(config)
    if kind == "loss":
        return LossBasedEstimator(config)
    if kind == "twcc":
        return TwccEstimator(config)
    raise EstimatorError(f"unknown estimator kind {kind!r}; expected remb, loss or twcc")
