"""The delay-based half of Google Congestion Control (draft-ietf-rmcat-gcc-02), in pieces.

Packets are grouped into 5 ms bursts, the inter-group delay variation is filtered with a
trendline, its slope is compared with an adaptive threshold, and an AIMD controller moves the
rate, decreasing relative to the acknowledged bitrate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

from confsfu.bandwidth.estimation import EstimatorConfig, clamp


class Usage(Enum):
    NORMAL = "normal"
    OVERUSE = "overuse"
    UNDERUSE = "underuse"


@dataclass(slots=True)
class _Group:
    first_send_ms: int
    last_send_ms: int
    first_arrival_us: int
    last_arrival_us: int


class InterArrival:
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


class Trendline:
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


class OveruseDetector:
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
        self.state = Usage.NORMAL

    def detect(
        self, modified: float, trend: float, send_delta_ms: float, num_deltas: int, now_ms: int
    ) -> Usage:
        if num_deltas < 2:
            self.state = Usage.NORMAL
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
                self.state = Usage.OVERUSE
        elif modified < -self.threshold:
            self._time_over_ms = -1.0
            self._overuse_count = 0
            self.state = Usage.UNDERUSE
        else:
            self._time_over_ms = -1.0
            self._overuse_count = 0
            self.state = Usage.NORMAL
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


class QueueDelay:
    """How long the bottleneck's queue holds packets now, from transport-cc feedback alone.

    Per feedback, the least one-way delay of the packets it acknowledges (arrival less send
    time, an unknown constant offset included: a receiver that stalls delays some of a batch,
    a queue all of it), less the least such delay over the last `window_ms` (the empty
    queue's). `rising`: the latest feedback's is above the one before. `empty_arrival_ms`:
    the latest arrival (receiver's clock) of a feedback that found the queue under
    `EMPTY_MS`: what arrived since came out of a queue, at the link's rate. A jump beyond
    `reset_ms` (the receiver's clock jumped) starts over.
    """

    __slots__ = ("_lows", "_reset_ms", "_window_ms", "empty_arrival_ms", "rising", "value_ms")
    EMPTY_MS = 20.0
    _MAX_LOWS = 512  # the sliding minimum's candidates (a peer sending feedback very often)

    def __init__(self, window_ms: int, reset_ms: float = 3000.0) -> None:
        self._window_ms = window_ms
        self._reset_ms = reset_ms
        self._lows: deque[tuple[int, float]] = deque()  # (now_ms, delay), delays increasing
        self.value_ms = 0.0
        self.rising = False
        self.empty_arrival_ms: float | None = None

    def on_feedback(self, now_ms: int, arrivals: list[tuple[float, float]]) -> None:
        """`arrivals`: (arrival_ms, arrival less send time) of each packet the feedback says
        arrived."""
        if not arrivals:
            return
        low = min(delay for _, delay in arrivals)
        lows = self._lows
        if lows and abs(low - lows[0][1]) > self._reset_ms:
            lows.clear()  # the receiver's clock jumped
            self.value_ms = 0.0
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((now_ms, low))
        while len(lows) > self._MAX_LOWS or lows[0][0] < now_ms - self._window_ms:
            lows.popleft()
        value = low - lows[0][1]
        self.rising = value > self.value_ms
        self.value_ms = value
        if value < self.EMPTY_MS:
            self.empty_arrival_ms = max(at for at, _ in arrivals)


class AckedBitrate:
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

    def rate_since_bps(self, since_ms: float) -> float | None:
        """What arrived after `since_ms` over the time since, within the window; None over
        less than 50 ms or 3 packets."""
        since_ms = max(since_ms, self._latest_ms - self._window_ms)
        arrived = [size for at, size in self._samples if at > since_ms]
        span_ms = self._latest_ms - since_ms
        if len(arrived) < 3 or span_ms < 50.0:
            return None
        return sum(arrived) * 8000.0 / span_ms


class SendReceiveRates:
    """What was sent and what arrived of the packets reported over the last `window_ms` of send
    time: a probe's result (as GCC's: the lower of the two) is believable only when the link
    delivered about what was sent over a window longer than a token bucket's burst lasts."""

    __slots__ = ("_packets", "_window_ms")

    def __init__(self, window_ms: int) -> None:
        self._window_ms = window_ms
        self._packets: deque[tuple[int, float | None, int]] = deque()  # (send_ms, arrival_ms, size)

    def add(self, send_ms: int, arrival_ms: float | None, size: int) -> None:
        self._packets.append((send_ms, arrival_ms, size))
        newest = max(send_ms, self._packets[-1][0])
        while self._packets and self._packets[0][0] < newest - self._window_ms:
            self._packets.popleft()

    def rates_bps(self) -> tuple[float, float] | None:
        """(sent, received) over the window, None while it spans less than 80 % of it."""
        packets = self._packets
        if len(packets) < 10:
            return None
        first_send = min(p[0] for p in packets)
        last_send = max(p[0] for p in packets)
        if last_send - first_send < 0.8 * self._window_ms:
            return None
        arrivals = [p[1] for p in packets if p[1] is not None]
        if len(arrivals) < 2:
            return None
        sent = sum(p[2] for p in packets) * 8000.0 / (last_send - first_send)
        span = max(max(arrivals) - min(arrivals), 1.0)
        received = sum(p[2] for p in packets if p[1] is not None) * 8000.0 / span
        return sent, received

    def parts_sent_bps(self, parts: int) -> list[float] | None:
        """The send rate over each of `parts` equal stretches of the window's send span (a
        window wholly inside a probe has every one above the estimate)."""
        packets = self._packets
        if len(packets) < 10 or parts < 1:
            return None
        first_send = min(p[0] for p in packets)
        part = (max(p[0] for p in packets) - first_send) / parts
        if part <= 0:
            return None
        sizes = [0] * parts
        for send_ms, _, size in packets:
            sizes[min(int((send_ms - first_send) / part), parts - 1)] += size
        return [b * 8000.0 / part for b in sizes]

    def queued_rate_bps(self, queue_ms: float) -> float | None:
        """The arrival rate while a queue stood, if the window ends with its packets delayed
        `queue_ms` beyond its least delay (the link was saturated: a token bucket's burst was
        spent, so what arrived meanwhile is what the link carries); None if it does not.
        Raises nothing on odd input; returns 0.0 when a queue stood but too little arrived in it
        to judge (the probe is then not believed)."""
        got = sorted((p[1], p[1] - p[0], p[2]) for p in self._packets if p[1] is not None)
        if len(got) < 4:
            return None
        base = min(delay for _, delay, _ in got)
        if min(delay for _, delay, _ in got[-3:]) - base <= queue_ms:
            return None  # the window ends with no queue: the link kept up
        # the stretch since the queue was last (nearly) empty
        last_empty = 0
        for i, (_, delay, _) in enumerate(got):
            if delay - base <= queue_ms / 2:
                last_empty = i
        stretch = got[last_empty:]
        span = stretch[-1][0] - stretch[0][0]
        if len(stretch) < 4 or span < 20.0:
            return 0.0
        # the first packet's bytes arrived before the stretch's span began
        return sum(size for _, _, size in stretch[1:]) * 8000.0 / span


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


class AimdRateController:
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
        self, now_ms: int, usage: Usage, acked_bps: float | None, *, probed: float | None = None
    ) -> None:
        """`probed`: a rate the link was seen to carry (a probe's result), taken at once."""
        cfg = self._config
        gap_ms = 0 if self._last_update_ms is None else max(now_ms - self._last_update_ms, 0)
        self._last_update_ms = now_ms
        if acked_bps is None:
            return  # nothing acknowledged yet: no basis to move either way
        if usage is Usage.OVERUSE:
            self.state = _RateState.DECREASE
        elif usage is Usage.UNDERUSE:
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
            if probed is not None:
                # The link carried more than the estimate without a delay rise (a probe did):
                # that much it can take, at once (GCC's probe result).
                new_bps = max(new_bps, probed)
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
        self.rate_bps = clamp(new_bps, cfg)

    def _near_capacity_rate_bps_per_s(self) -> float:
        bits_per_frame = self.rate_bps / 30.0
        packets_per_frame = math.ceil(bits_per_frame / (1200 * 8))
        avg_packet_bits = bits_per_frame / max(packets_per_frame, 1)
        return max(4000.0, avg_packet_bits * 1000.0 / self._config.response_time_ms)
