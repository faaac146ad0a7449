"""What every downlink estimator shares: settings, interface, input checks, GCC's loss controller.

The loss controller follows Google Congestion Control (draft-ietf-rmcat-gcc-02): loss above 10%
cuts the rate by half the loss, loss below 2% lets it grow about 8% a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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
    queue_window_ms: int = 10_000  # the empty queue's delay: the least over this long
    probe_window_ms: int = 1000  # a probe's result is judged over this much send time
    probe_margin: float = 1.2  # ... when at least this x the estimate went out in it
    probe_delivered: float = 0.9  # ... and at least this share of it arrived as fast
    probe_queue_ms: float = 25.0  # ... unless a queue this deep stood at its end: then its rate
    probe_burst_bytes: int = 20 * 1024  # a token bucket's burst a later probe may pass through
    probe_memory_ms: int = 20_000  # ... for this long after a probe found where the link fills
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
        if self.queue_window_ms <= 0:
            raise EstimatorError("need queue_window_ms > 0")
        if self.probe_queue_ms <= 0 or min(self.probe_burst_bytes, self.probe_memory_ms) < 0:
            raise EstimatorError("probe_queue_ms > 0, probe_burst_bytes and probe_memory_ms >= 0")


class BandwidthEstimator(Protocol):
    """What the shell feeds an estimator, and what it asks of it."""

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None: ...

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None: ...

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None: ...

    def on_transport_feedback(
        self, now_ms: int, packets: Sequence[tuple[int, int | None]]
    ) -> None: ...

    def estimate_bps(self, now_ms: int) -> int: ...

    def measured_ms(self) -> int | None:
        """When a probe last lifted the estimate to what the link was seen carrying (None:
        never): such a rise is a measurement, not noise to wait out."""
        ...


# ---- input checks -----------------------------------------------------------------------------


def check_rate(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EstimatorError(f"bitrate must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise EstimatorError(f"bitrate must be finite and >= 0, not {value}")
    return float(value)


def check_fraction(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EstimatorError(f"fraction lost must be a number, not {type(value).__name__}")
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise EstimatorError(f"fraction lost must be within 0..1, not {value}")
    return float(value)


def check_seq(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEQ_MODULO:
        raise EstimatorError(f"transport sequence number must be 0..65535, not {value!r}")
    return value


def check_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EstimatorError(f"packet size must be an int >= 0, not {value!r}")
    return value


def _arrival(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EstimatorError(f"arrival time must be an int (microseconds) or None, not {value!r}")
    return value


def check_feedback(packets: Sequence[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    checked: list[tuple[int, int | None]] = []
    for item in packets:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EstimatorError(f"feedback entries are (seq, arrival_us | None), not {item!r}")
        checked.append((check_seq(item[0]), _arrival(item[1])))
    return checked


def clamp(value: float, config: EstimatorConfig) -> float:
    return min(max(value, float(config.min_bps)), float(config.max_bps))


# ---- loss controller ------------------------------------------------------------------------


class LossController:
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
        self.value_bps = clamp(self.value_bps, cfg)
