"""Bandwidth probing: extra traffic that lets a subscriber's estimate climb back up.

A receiver-side estimate (Chromium's REMB) never exceeds about 1.5 times what it receives, so a
subscriber whose layers were lowered on a weak link could never show that its link recovered.
While the allocation is short of what the subscriber's tiles could use, the controller runs a
probe: for up to `duration_ms` it asks for padding that brings the outgoing rate to `gain` times
the estimate, so the estimate can rise step by step; and at least to what the next step up (a
paused tile's lowest layer) would cost on top of the media sent, up to `step_gain` times the
estimate, so a subscriber whose every tile is paused on a low first estimate (audio alone above
`gain` times it) is still probed. The padding tops up what the estimate can see: a receiver's REMB
counts only packets that carry abs-send-time (not the audio), and never climbs much above 1.5
times what it counts, so media it cannot see (`unseen_bps`) does not take the padding's place
(audio above the next step's cost would otherwise keep a paused thumbnail paused for good).
A probe that meets loss, a falling estimate or a queue (`max_queue_ms` of queueing delay in the
transport-cc feedback) stops at once, and none starts while there is one; a probe that ends
without raising the estimate by `success_gain` fails too: the next one waits twice as long (up
to `max_interval_ms`), so a link that really is weak is not flooded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# Media sent above this x the estimate: the estimate fell under it (a REMB stays below ~1.5x
# what arrives, so it cannot mean the link carries that much).
FALLEN = 1.5


class ProbeError(ValueError):
    """A probe setting or input the controller cannot work with."""


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    duration_ms: int = 10_000  # one probe at most this long
    min_interval_ms: int = 4_000  # between probes while they succeed
    max_interval_ms: int = 60_000  # the longest back-off after failed probes
    gain: float = 1.2  # outgoing rate during a probe, as a multiple of the estimate
    step_gain: float = 4.0  # ... at most, to reach the next step up (as GCC's probes, 2x-4x)
    short_margin: float = 0.1  # the allocation is short when the wanted rate is this much above
    max_loss: float = 0.02  # a probe stops (and none starts) above this loss fraction
    fall_fraction: float = 0.85  # ... or when the estimate falls below this share of its start
    max_padding_bps: int = 2_000_000
    success_gain: float = 1.0  # a probe succeeded if the estimate ends above this x its start
    # After a failed probe the next ones go to this x the estimate only (0: `gain` always) and
    # succeed halfway there, until one succeeds: a failed 2x probe floods a weak link's queue.
    careful_gain: float = 0.0
    # A probe stops (and none starts) at this much queueing delay (0: no limit). The estimate
    # falls only after the trendline's slope crosses its threshold: a 2x probe into a link at
    # capacity had filled its queue by then, and the video stalled behind it (the browser runs).
    max_queue_ms: float = 0.0
    # A probe sends at least this x the estimate when it runs at all, even past the wanted rate
    # (0: none). A send-side estimate believes a probe only above `EstimatorConfig.probe_margin`
    # x itself: one capped at a wanted rate 1.0-1.2 x the estimate could not lift it, and the
    # estimate crept up by additive increase alone (Firefox, 80 ms and 2 % loss: 5 s from 813
    # to the 1 Mbit/s link's 1000 kbit/s).
    min_gain: float = 0.0
    # A probe whose result lifts the estimate by `success_gain` ends there and, while the
    # tiles still want more, the next starts at once from the new estimate (GCC's further
    # probing), between the once-a-second updates: each step up waits for its own result only.
    chain: bool = False
    # No probe starts for this long after the queue a fall left has drained (`on_drained`):
    # the new layer's keyframe is on its way through the link (a probe then, 0.3 s after a
    # drain, delayed it: Firefox's stage froze 1.1 s at the fall to 300 kbit/s).
    after_drain_ms: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_ms <= self.max_interval_ms:
            raise ProbeError("need 0 < min_interval_ms <= max_interval_ms")
        if self.duration_ms <= 0 or self.max_padding_bps < 0:
            raise ProbeError("duration_ms must be positive and max_padding_bps not negative")
        if not (self.gain >= 1.0 and 0 < self.fall_fraction < 1 and 0 <= self.max_loss < 1):
            raise ProbeError("need gain >= 1, 0 < fall_fraction < 1 and 0 <= max_loss < 1")
        if self.step_gain < self.gain:
            raise ProbeError("need step_gain >= gain")
        if self.success_gain < 1.0:
            raise ProbeError("need success_gain >= 1")
        if self.careful_gain and not 1.0 < self.careful_gain <= self.gain:
            raise ProbeError("need 1 < careful_gain <= gain (or 0: off)")
        if self.max_queue_ms < 0:
            raise ProbeError("need max_queue_ms >= 0 (0: no limit)")
        if self.min_gain and not 1.0 <= self.min_gain <= self.step_gain:
            raise ProbeError("need 1 <= min_gain <= step_gain (or 0: none)")
        if self.after_drain_ms < 0:
            raise ProbeError("need after_drain_ms >= 0")


class _Inputs(NamedTuple):
    media_bps: int
    wanted_bps: int
    step_bps: int
    unseen_bps: int


class ProbeController:
    """One subscriber's probes: `update` about once a second, `take_bytes` on every tick."""

    def __init__(self, config: ProbeConfig | None = None) -> None:
        self._config = config or ProbeConfig()
        self._since_ms: int | None = None
        self._start_estimate_bps = 0
        self._next_ms = 0
        self._interval_ms = self._config.min_interval_ms
        self._credit_bytes = 0.0
        self._last_take_ms: int | None = None
        self.padding_bps = 0
        self.target_bps = 0  # what the probe sends in all (media it counts and padding)
        self._careful = False  # the last probe failed
        self.probes_started = 0
        self.probes_failed = 0
        self.probes_chained = 0
        self._last = _Inputs(0, 0, 0, 0)  # the latest update's rates, for a chained probe
        self._loss = 0.0  # ... and loss
        self._ceiling_bps = 0  # the latest `ceiling_bps`

    @property
    def probing(self) -> bool:
        return self._since_ms is not None

    def update(
        self,
        now_ms: int,
        *,
        estimate_bps: int,
        media_bps: int,
        wanted_bps: int,
        loss: float,
        step_bps: int = 0,
        unseen_bps: int = 0,
        queue_ms: float = 0.0,
        ceiling_bps: int = 0,
    ) -> int:
        """The padding rate to send from now on (0: none). `step_bps`: what the next step up
        costs (a paused tile's lowest layer; 0: nothing is paused); `unseen_bps`: the part of
        `media_bps` the estimate does not count; `queue_ms`: the link's queueing delay (0: not
        known); `ceiling_bps`: the least a probe must show to be believed past the rate the
        link was lately seen full at (0: none known): no probe goes further than that, or
        `min_gain` x the estimate if more."""
        cfg = self._config
        if min(estimate_bps, media_bps, wanted_bps, step_bps, unseen_bps) < 0 or not 0 <= loss <= 1:
            raise ProbeError("rates must not be negative and loss must be within 0..1")
        self._last = _Inputs(media_bps, wanted_bps, step_bps, unseen_bps)
        self._loss = loss
        self._ceiling_bps = ceiling_bps
        short = self._short(estimate_bps)
        queued = self._queued(queue_ms)
        if self._since_ms is None:
            if self._may_start(now_ms, estimate_bps, queue_ms):
                self._start(now_ms, estimate_bps)
        elif not short:
            self._end(now_ms, succeeded=True)
        elif (
            loss > cfg.max_loss
            or estimate_bps < self._start_estimate_bps * cfg.fall_fraction
            or queued
        ):
            self._end(now_ms, succeeded=False)
        elif now_ms - self._since_ms >= cfg.duration_ms:
            gained = estimate_bps > self._start_estimate_bps * self._success_gain()
            self._end(now_ms, succeeded=gained)
        self._set_padding(estimate_bps)
        return self.padding_bps

    def _short(self, estimate_bps: int) -> bool:
        """The tiles want more than the estimate buys, or a tile is paused at all."""
        last = self._last
        return last.step_bps > 0 or last.wanted_bps > estimate_bps * (1 + self._config.short_margin)

    def _may_start(self, now_ms: int, estimate_bps: int, queue_ms: float) -> bool:
        last = self._last
        # Far more already goes out than the estimate (of what it sees): it just fell under the
        # rate sent, and the layers are yet to come down; padding now would only fill the queue
        # (a REMB run: a probe at the fall to 300 kbit/s, 35 packets lost and never resent).
        # Audio a little above a low first estimate is no fall (see `step_bps`).
        over = max(last.media_bps - last.unseen_bps, 0) > FALLEN * estimate_bps
        return (
            self._short(estimate_bps)
            and now_ms >= self._next_ms
            and self._loss <= self._config.max_loss
            and not (self._queued(queue_ms) or over)
        )

    def _start(self, now_ms: int, estimate_bps: int) -> None:
        self._since_ms = now_ms
        self._start_estimate_bps = estimate_bps
        self.probes_started += 1

    def _set_padding(self, estimate_bps: int) -> None:
        cfg = self._config
        if self._since_ms is None:
            self.padding_bps = self.target_bps = 0
            return
        media_bps, wanted_bps, step_bps, unseen_bps = self._last
        step = min(media_bps + step_bps, int(estimate_bps * cfg.step_gain)) if step_bps else 0
        gain = cfg.careful_gain if self._careful and cfg.careful_gain else cfg.gain
        target = min(wanted_bps, max(int(estimate_bps * gain), step))
        if wanted_bps > estimate_bps:  # not for a step alone: 1.3x a link's worth floods it
            target = max(target, int(estimate_bps * cfg.min_gain))
        if self._ceiling_bps:  # near a link known full: only as far past it as is believed
            target = min(target, max(self._ceiling_bps, int(estimate_bps * cfg.min_gain)))
        seen = max(media_bps - unseen_bps, 0)
        self.padding_bps = max(0, min(target - seen, cfg.max_padding_bps))
        self.target_bps = target if self.padding_bps else 0

    def on_estimate(
        self,
        now_ms: int,
        estimate_bps: int,
        queue_ms: float = 0.0,
        full_ms: int | None = None,
        ceiling_bps: int = 0,
    ) -> None:
        """Between updates (on every feedback): a probe the estimate falls under, or that
        meets a queue, stops at once, before the queue it builds overflows; with `chain`, one
        that succeeded hands over to the next at once while the tiles want more. `full_ms`:
        when the estimator last saw the link full (a queue at a probe's end): found during
        this probe, the link's rate is known and the probe ends, nothing chained (a 1.3x
        probe past a 1 Mbit/s link's found rate knocked the estimate down to 0.75x it). With
        `chain`, a probe that comes due between updates starts then, on the latest update's
        rates (a back-off's end missed by a few ms waited a whole second for the next)."""
        cfg = self._config
        self._ceiling_bps = ceiling_bps
        if self._since_ms is None:
            if cfg.chain and self._may_start(now_ms, estimate_bps, queue_ms):
                self._start(now_ms, estimate_bps)
                self._set_padding(estimate_bps)
            return
        fell = estimate_bps < self._start_estimate_bps * cfg.fall_fraction
        gained = estimate_bps > self._start_estimate_bps * self._success_gain()
        if fell or self._queued(queue_ms):
            self._end(now_ms, succeeded=False)
            self.padding_bps = self.target_bps = 0
        elif full_ms is not None and full_ms >= self._since_ms:
            self._end(now_ms, succeeded=gained)
            self.padding_bps = self.target_bps = 0
        elif cfg.chain and gained:
            self._end(now_ms, succeeded=True)
            if self._last.wanted_bps > estimate_bps * (1 + cfg.short_margin):
                self._start(now_ms, estimate_bps)
                self.probes_chained += 1
            self._set_padding(estimate_bps)

    def on_drained(self, now_ms: int) -> None:
        """The queue a fall left has drained (a drain hold ended): no probe for
        `after_drain_ms`."""
        self._next_ms = max(self._next_ms, now_ms + self._config.after_drain_ms)

    def _queued(self, queue_ms: float) -> bool:
        limit = self._config.max_queue_ms
        return bool(limit) and queue_ms >= limit

    def take_bytes(self, now_ms: int, media_bytes: int | None = None) -> int:
        """Padding bytes due now; report what went out with `spend`. `media_bytes`: the media
        the estimate counts sent since the last call: padding then fills what the media leaves
        of the probe's `target_bps` (layers that rose since the update, a keyframe, take the
        padding's place); None: padding at `padding_bps`."""
        last, self._last_take_ms = self._last_take_ms, now_ms
        if self.padding_bps <= 0 or last is None:
            self._credit_bytes = 0.0
            return 0
        elapsed_ms = max(now_ms - last, 0)
        if media_bytes is None:
            most = self.padding_bps / 80  # never more than 100 ms worth at once
            credit = self._credit_bytes + elapsed_ms * self.padding_bps / 8000
        else:
            most = self.target_bps / 80
            # a keyframe's burst counts for up to a second of the target
            credit = max(self._credit_bytes - media_bytes, -self.target_bps / 8)
            credit += elapsed_ms * self.target_bps / 8000
        self._credit_bytes = min(credit, most)
        return max(int(self._credit_bytes), 0)

    def spend(self, sent_bytes: int) -> None:
        """Padding bytes sent; whole packets may overshoot what was due, and count next time."""
        self._credit_bytes -= sent_bytes

    def _success_gain(self) -> float:
        cfg = self._config
        if self._careful and cfg.careful_gain:
            return min(cfg.success_gain, 1.0 + (cfg.careful_gain - 1.0) / 2)
        return cfg.success_gain

    def _end(self, now_ms: int, *, succeeded: bool) -> None:
        cfg = self._config
        self._since_ms = None
        self._careful = not succeeded
        if succeeded:
            self._interval_ms = cfg.min_interval_ms
        else:
            self.probes_failed += 1
            self._interval_ms = min(self._interval_ms * 2, cfg.max_interval_ms)
        self._next_ms = now_ms + self._interval_ms


# Send-side estimates (transport-cc) take a probe's result at once: probes as GCC's, at twice the
# estimate (1.3x at least, even past the wanted rate, see `min_gain`), once the tiles want 20 %
# more than the estimate (`short_margin`: the estimator believes only what went out above 1.2x
# itself, so a smaller gap could be shown only by going 1.3x past a link at the wanted rate,
# and Chromium's estimate at 1 Mbit/s fell to 0.7-0.8x the link after each such probe; the
# delay-based increase closes it), chained (`chain`: one probe cycle a doubling took 4 s, and
# Firefox behind 80 ms and 2 % loss came back to 1280x720 after 5.4-8.5 s; chained, 2.9-3.3 s),
# 1.5 s long: the estimator judges a probe over a 1 s window wholly inside it, and behind 80 ms of
# delay the feedback on a 1 s probe's end came after it had been judged a failure. A failure
# backs off, to 2 s at most: one that meets a queue stops within a feedback or two, so a failure
# costs the link little, and a back-off to 4 s held the first probe after the Firefox runs'
# link rose from 300 kbit/s to 1 Mbit/s (back at 1280x720 after 11.6-13.6 s).
# No careful probes: the estimate caps a probe that shows no more than a token bucket's
# burst above the rate the link saturated at (TwccEstimator._probed), so a 1.5x one on a
# link that rose could only fail (the simulator's lossy 1 Mbit/s phase used 35 % of its link).
SEND_SIDE_PROBES = ProbeConfig(
    duration_ms=1500,
    min_interval_ms=1000,
    gain=2.0,
    step_gain=4.0,
    success_gain=1.25,
    max_loss=0.05,
    max_interval_ms=2000,
    max_queue_ms=80.0,
    min_gain=1.3,
    short_margin=0.2,
    chain=True,
    after_drain_ms=2000,
)
