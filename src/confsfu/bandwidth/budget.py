"""One subscriber's bandwidth budget: its estimate in, a layer for each of its video tiles out.

The rules on top of the allocator's: a new subscriber's estimate is held at the initial one for
a warm-up (its first reports describe its receiver starting up, not its link); the audio it
receives is taken off first, at what it measurably costs (where the estimate counts it); the
stage tile is a floor (never paused), but for a hold while the link's queue drains after a sharp
fall (`bandwidth.drain`). What the next step up would cost (a paused tile's lowest
layer, else the next rung of a tile the bandwidth holds down) tells probing how far to go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from confsfu.bandwidth.allocator import (
    TEMPORAL_LAYERS,
    Demand,
    LayerDecision,
    Priority,
    Reason,
    wanted_bps,
)
from confsfu.bandwidth.drain import QueueDrain
from confsfu.bandwidth.estimation import BandwidthEstimator
from confsfu.bandwidth.hysteresis import AllocatorConfig, SubscriberAllocator
from confsfu.ids import SlotPurpose, SourceId

NO_LAYERS: npt.NDArray[np.float64] = np.zeros((3, 3))
# A send-side estimate is what the link carried of the RTP bytes sent (headers below RTP,
# keyframes and retransmissions come on top of the layers' rates): in the weak-link simulator a
# fifth of it left free halved the freezes at 300 kbit/s (benchmarks/weak_link_sim.py).
SEND_SIDE_HEADROOM = 0.2
# ... but a frame-rate step within the resolution a tile already has sends no keyframe: it needs
# only this share left free (headers and retransmissions). At 1 Mbit/s a fifth held Chromium's
# 1280x720 at 15 fps (about 380 kbit/s) where 30 fps (about 760) fits: half the link unused.
SEND_SIDE_FRAME_RATE_HEADROOM = 0.05


@dataclass(frozen=True, slots=True)
class BudgetRules:
    warmup_ms: int = 6000
    initial_bps: int = 2_500_000
    grid_caps: tuple[int, int] = (0, 1)  # (max spatial, max temporal) of a thumbnail
    stage_caps: tuple[int, int] = (2, 2)
    # Each camera layer's height in pixels (the page sends 1280x720 at 1/4, 1/2 and 1): a stage
    # tile the page says is small gets no layer taller than it needs (`fit_spatial`).
    layer_heights: tuple[int, int, int] = (180, 360, 720)
    # The share of the estimate left unallocated: headers, keyframes and retransmissions come on
    # top of the layers' measured rates, and an SFU forwards bursts unpaced.
    headroom: float = 0.0
    # ... and for a frame-rate step within the resolution a tile already has (no keyframe): at
    # most `headroom` (None: `headroom`).
    frame_rate_headroom: float | None = None

    def __post_init__(self) -> None:
        frame_rate = self.headroom if self.frame_rate_headroom is None else self.frame_rate_headroom
        if not (0.0 <= self.headroom < 1.0 and 0.0 <= frame_rate < 1.0):
            raise ValueError("headroom and frame_rate_headroom must be within [0, 1)")


# A layer may be shown this much larger than it is before the next one up is worth its bits.
UPSCALE_ALLOWED = 1.25


def fit_spatial(tile_height_px: int, layer_heights: Sequence[int]) -> int:
    """The lowest spatial layer that fills a tile `tile_height_px` device pixels high (scaled
    up by at most UPSCALE_ALLOWED); the top layer for a tile taller than all; 0 px (not known)
    is no limit."""
    if tile_height_px <= 0:
        return len(layer_heights) - 1
    for spatial, height in enumerate(layer_heights):
        if height * UPSCALE_ALLOWED >= tile_height_px:
            return spatial
    return len(layer_heights) - 1


def demand(
    rules: BudgetRules,
    track: str,
    source: SourceId,
    purpose: SlotPurpose,
    measured_bps: npt.NDArray[np.float64],
    tile_height_px: int = 0,
) -> Demand:
    """How a tile of `purpose` wants `source` (its layers' measured cumulative bitrates); a
    camera on a stage tile `tile_height_px` high (0: not known) no taller than that needs. A
    shared screen always gets its top layer: its text must stay readable."""
    if source.purpose == "screen":
        priority, caps = Priority.SCREEN, (2, 2)
    elif purpose == "stage":
        fit = fit_spatial(tile_height_px, rules.layer_heights)
        priority, caps = Priority.STAGE, (min(rules.stage_caps[0], fit), rules.stage_caps[1])
    else:
        priority, caps = Priority.THUMBNAIL, rules.grid_caps
    return Demand(track, priority, caps[0], caps[1], measured_bps, floor=purpose == "stage")


class SubscriberBudget:
    """A subscriber's estimator and allocator, and the rules between them."""

    __slots__ = (
        "_audio_bps",
        "_demands",
        "_held",
        "allocator",
        "drain",
        "estimator",
        "ready_ms",
        "rules",
        "step_bps",
        "wanted_bps",
    )

    def __init__(
        self,
        rules: BudgetRules,
        estimator: BandwidthEstimator,
        allocator: AllocatorConfig,
        ready_ms: int = 0,
    ) -> None:
        self.rules = rules
        self.estimator = estimator
        self.allocator = SubscriberAllocator(allocator)
        self.ready_ms = ready_ms  # when the subscriber answered: the warm-up starts
        self.wanted_bps = 0  # the estimate that buys what its tiles could use, audio included
        self.step_bps = 0  # what the cheapest step up costs (0: no tile is held down)
        self.drain = QueueDrain()
        self._audio_bps = 0
        self._demands: list[Demand] = []  # the last allocation's: what the layers cost now
        self._held: list[LayerDecision] | None = None  # the decisions paused while draining

    def estimate_bps(self, now_ms: int) -> int:
        """The estimate the allocation uses: the estimator's, at least the initial one during
        the warm-up."""
        estimate = self.estimator.estimate_bps(now_ms)
        if now_ms - self.ready_ms < self.rules.warmup_ms:
            estimate = max(estimate, self.rules.initial_bps)
        return estimate

    def allocate(
        self,
        now_ms: int,
        demands: Sequence[Demand],
        audio_bps: int,
        *,
        audio_counted: bool = True,
    ) -> list[LayerDecision] | None:
        """The new decisions when they changed (all of them in `decisions`), else None.
        `audio_bps`: what the audio it receives costs now (measured); `audio_counted`: whether
        the estimate counts it. A receiver's REMB does not (it counts only packets carrying
        abs-send-time, which audio does not), and can never climb much above 1.5 times what
        it counts: taking the audio off it too would hold a thumbnail paused for good. Its
        delay signal has seen the audio all the same, so the video fits in what it reports."""
        audio_bps = max(audio_bps, 0)
        taken = audio_bps if audio_counted else 0
        rules = self.rules
        estimate = self.estimate_bps(now_ms)
        budget = max(0, int(estimate * (1.0 - rules.headroom)) - taken)
        frame_rate = rules.headroom
        if rules.frame_rate_headroom is not None:
            frame_rate = min(rules.frame_rate_headroom, frame_rate)
        loose = max(0, int(estimate * (1.0 - frame_rate)) - taken)
        # In the estimate's terms: the estimate whose frame-rate budget buys every tile's best
        # layer (its top rung comes by a frame-rate step). A probe that stopped at the layers'
        # own cost could never raise it that far; one to where the full headroom buys them
        # (1.25x) went past a 1 Mbit/s link at 2x the estimate and failed (Firefox's run).
        wanted = wanted_bps(demands)
        self.wanted_bps = int((wanted + taken) / (1.0 - frame_rate)) + audio_bps - taken
        self._audio_bps = audio_bps
        self._demands = list(demands)
        measured = self.estimator.measured_ms()
        changed = self.allocator.update(now_ms, budget, demands, loose, measured_ms=measured)
        self.step_bps = _step_bps(demands, self.allocator.decisions)
        if not self.drain.holding:
            held, self._held = self._held, None
            return self.allocator.decisions if held is not None else changed
        if self._held is None or changed is not None:
            self._held = [
                replace(d, spatial=None, temporal=None, bitrate_bps=0, reason=Reason.DRAINING)
                for d in self.allocator.decisions
            ]
            return self._held
        return None

    def on_feedback(
        self,
        now_ms: int,
        acked_sent_ms: int | None,
        padding_bps: int = 0,
        forwarding: Mapping[str, tuple[int, int]] | None = None,
        queue_ms: float = 0.0,
        link_bps: float | None = None,
        rising: bool = False,
    ) -> bool:
        """After transport-cc feedback (`acked_sent_ms`: the newest send time it acknowledged;
        `padding_bps`: the probe padding sent meanwhile, not a cost: see `drain`):
        whether a hold of the video began or ended, so the decisions are due again now. What the
        layers cost is what they cost now (the last reassign pass measured them), not when they
        were chosen: a publisher that had just started had its top layer at a fifth of its rate,
        and a drop 20 s later went unheld under a layer five times dearer than the decision
        said. `forwarding`: the layer (spatial, temporal) each track's forwarder sends now,
        when it may be dearer than the decision (a spatial switch down waits for the lower
        layer's keyframe and the layer left goes on meanwhile: a fall decided in steps was
        never held, each step priced at what the previous one decided while the top layer went
        on filling the queue); `queue_ms`: the link's queue delay (0: not known), a hold's
        reason of its own; `link_bps`: what came out of the queue since it was last empty and
        `rising`: whether it grew (a queue growing under a link far narrower than what is sent
        begins a hold before the estimate falls)."""
        if self.drain.on_acknowledged(now_ms, acked_sent_ms):
            return True
        cost = max(self.allocator.priced(self._demands), _priced(self._demands, forwarding))
        cost += self._audio_bps
        estimate = self.estimate_bps(now_ms)
        return self.drain.on_estimate(
            now_ms, estimate, cost, queue_ms, padding_bps, link_bps, rising
        )

    @property
    def decisions(self) -> list[LayerDecision]:
        """Each tile's decision: the allocator's, paused while a hold lasts."""
        return self._held if self._held is not None else self.allocator.decisions


def _priced(demands: Sequence[Demand], layers: Mapping[str, tuple[int, int]] | None) -> int:
    """What `layers` (spatial, temporal by track) cost at the demands' current bitrates."""
    total = 0
    for demand_ in demands if layers else ():
        spatial, temporal = (layers or {}).get(demand_.track_id, (-1, -1))
        index = spatial * TEMPORAL_LAYERS + temporal
        if spatial >= 0 and 0 <= temporal < TEMPORAL_LAYERS and index < len(demand_.costs):
            total += demand_.costs[index]
    return total


def _step_bps(demands: Sequence[Demand], decisions: Sequence[LayerDecision]) -> int:
    """What the next step up costs: the cheapest paused tile's lowest layer (a picture where
    there is none comes first), else what a tile the bandwidth holds down would add on its next
    rung (0: no tile is held down)."""
    by_track = {d.track_id: d for d in decisions}
    paused: list[int] = []
    rungs: list[int] = []
    for demand_ in demands:
        decision = by_track.get(demand_.track_id)
        if decision is None or not demand_.ladder_costs:
            continue
        if decision.paused:
            paused.append(demand_.ladder_costs[0])
        elif decision.reason == Reason.BANDWIDTH:
            above = [c for c in demand_.ladder_costs if c > decision.bitrate_bps]
            if above:
                rungs.append(above[0] - decision.bitrate_bps)
    return min(paused or rungs, default=0)
