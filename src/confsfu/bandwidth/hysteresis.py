"""A subscriber's layer allocation over time, re-run only when it is worth it.

`allocator.allocate` is one moment's allocation; here upgrades are held after a downgrade, and
spatial up-switches (each an unpaced keyframe of the new layer) are paced: they need a margin,
and each one that fails doubles the next hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confsfu.bandwidth.allocator import (
    TEMPORAL_LAYERS,
    AllocatorError,
    Demand,
    LayerDecision,
    Reason,
    allocate,
)


@dataclass(frozen=True, slots=True)
class AllocatorConfig:
    threshold: float = 0.15  # re-allocate when the estimate moves more than this (Jitsi)
    upgrade_hold_ms: int = 5000  # after a downgrade, no upgrade for this long (mediasoup: 10 s)
    rise_ms: int = 1000  # a rise must last this long before it counts (noise is not a trend)
    # A rise within `threshold` counts once the estimate stayed above the last allocation's
    # (by `STEADY_RISE`) for this long (0: never), at the least it stayed at: the browser runs'
    # estimate at 1 Mbit/s settled at about 0.8x the link and crept up by a few percent, and
    # the next rung (1280 at 30 fps) was never tried.
    steady_ms: int = 3000
    # A spatial switch (a keyframe of the new layer, unpaced) must fit in the budget with this
    # margin: one up that does not climbs within its resolution only, one down goes lower.
    up_margin: float = 0.15
    # A spatial up-switch followed within `trial_ms` by a spatial downgrade failed: each failure
    # in a row doubles the next upgrade hold, up to `max_upgrade_hold_ms`, until an up-switch
    # lasts `trial_ms` or the estimate reaches `release_gain` times the one it failed at.
    trial_ms: int = 10_000
    max_upgrade_hold_ms: int = 20_000
    release_gain: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise AllocatorError("threshold must be within [0, 1)")
        if min(self.upgrade_hold_ms, self.rise_ms, self.trial_ms, self.steady_ms) < 0:
            raise AllocatorError("upgrade_hold_ms, rise_ms, trial_ms and steady_ms must be >= 0")
        if self.max_upgrade_hold_ms < self.upgrade_hold_ms:
            raise AllocatorError("max_upgrade_hold_ms must be >= upgrade_hold_ms")
        if not 0.0 <= self.up_margin < 1.0 or not self.release_gain >= 1.0:
            raise AllocatorError("need 0 <= up_margin < 1 and release_gain >= 1")


_STEADY = object()  # `SubscriberAllocator._moved`: a small rise that lasted
STEADY_RISE = 0.03  # ... by at least this share (+-10 % noise stays above +3 % for 3 s in 0.1 %)


def _rank(decision: LayerDecision) -> tuple[int, int]:
    if decision.spatial is None or decision.temporal is None:
        return (-1, -1)
    return (decision.spatial, decision.temporal)


def _key(decisions: Sequence[LayerDecision]) -> list[tuple[str, int | None, int | None, Reason]]:
    return [(d.track_id, d.spatial, d.temporal, d.reason) for d in decisions]


_Shape = tuple[tuple[str, int, int, int, int, bool], ...]


def _wants(shape: _Shape) -> _Shape:
    """The shape without the available layers: what the subscriber asked for."""
    return tuple((t, p, s, tl, 0, f) for t, p, s, tl, _, f in shape)


def _shape(demands: Sequence[Demand]) -> _Shape:
    """What counts as a change of demands: ids, order, priorities, caps, available layers,
    floors."""
    return tuple(
        (d.track_id, int(d.priority), d.max_spatial, d.max_temporal, d.available, d.floor)
        for d in demands
    )  # fmt: skip


class SubscriberAllocator:
    """One subscriber's allocation over time, re-run only when it is worth it.

    Re-allocates when the estimate moved more than `threshold` since the last allocation (a
    fall at once; a rise once it has lasted `rise_ms`, so that +-10% noise, which spans more
    than 15%, cannot bounce the layers down and up; a smaller rise once it stayed 3 % up for
    `steady_ms`, at its least), when the demands' shape changed (tracks,
    priorities, caps, available layers; bitrate drift alone does not count), when the current
    layers now cost more than (1 + threshold) x the budget, and when held upgrades come due.
    After any downgrade, upgrades are held for `upgrade_hold_ms` unless the demands change
    (beyond the layers the publisher sends: one it starts again is held too);
    twice as long after each failed spatial up-switch in a row (see `AllocatorConfig`). A
    spatial up-switch must fit with `up_margin` to spare: a probe or a noisy layer rate that
    just reaches the next resolution does not buy its keyframe. A frame-rate step within the
    resolution a track already has may use a looser budget (`frame_rate_bps`): no keyframe.
    """

    def __init__(self, config: AllocatorConfig | None = None) -> None:
        self._config = config if config is not None else AllocatorConfig()
        self._decisions: list[LayerDecision] | None = None
        self._estimate_bps = 0
        self._allocated_ms = -(1 << 62)  # when the last allocation was made
        self._shape: _Shape | None = None
        self._hold_until_ms: int | None = None
        self._held = False
        self._rise_since_ms: int | None = None
        self._above_since_ms: int | None = None  # the estimate above the last allocation's (+3 %)
        self._above_floor: tuple[int, int] = (0, 0)  # ... its least since (and frame-rate's)
        self._failures = 0  # spatial up-switches in a row that were followed by a downgrade
        self._trial_ms: int | None = None  # when the spatial up-switch on trial was made
        self._trial_bps = 0  # ... at what estimate
        self._failed_bps: int | None = None  # the estimate the last failed one was made at
        self._down_bps = 0  # the budget the last downgrade was made at

    @property
    def decisions(self) -> list[LayerDecision]:
        return list(self._decisions or [])

    def next_deadline_ms(self) -> int | None:
        """When a held upgrade or a pending rise comes due (call `update` then), or None."""
        due = [self._hold_until_ms] if self._held and self._hold_until_ms is not None else []
        if self._rise_since_ms is not None:
            due.append(self._rise_since_ms + self._config.rise_ms)
        if self._above_since_ms is not None and self._config.steady_ms:
            due.append(self._above_since_ms + self._config.steady_ms)
        return min(due, default=None)

    def update(
        self,
        now_ms: int,
        estimate_bps: int,
        demands: Sequence[Demand],
        frame_rate_bps: int | None = None,
        *,
        measured_ms: int | None = None,
    ) -> list[LayerDecision] | None:
        """New decisions when they differ from the last ones, else None. `frame_rate_bps`
        (at least `estimate_bps`): the budget for frame-rate steps within the resolution a
        track already has (`_frame_rate_steps`); None: the same budget. `measured_ms`: when
        a probe last lifted the estimate to what the link was seen carrying: a rise since the
        last allocation is a measurement and counts at once, without `rise_ms`."""
        cfg = self._config
        budget = max(int(estimate_bps), 0)
        loose = max(budget, int(frame_rate_bps or 0))
        shape = _shape(demands)
        previous = self._decisions
        changed = previous is None or shape != self._shape
        # Layers a publisher stops and starts again (its encoder short of CPU or bits) are a
        # change to allocate for, but not one that releases held upgrades.
        reshaped = changed and (self._shape is None or _wants(shape) != _wants(self._shape))
        if self._trial_ms is not None and now_ms - self._trial_ms >= cfg.trial_ms:
            self._trial_ms, self._failures, self._failed_bps = None, 0, None  # it lasted
        measured = measured_ms is not None and measured_ms > self._allocated_ms
        holding = self._holding(now_ms, budget, measured)
        if not changed:
            moved = self._moved(now_ms, estimate_bps, loose, measured)
            if moved is _STEADY and holding:
                moved = False  # no upgrade would pass the hold
            overshoot = self.priced(demands) > loose * (1.0 + cfg.threshold)
            due = self._held and not holding
            if not (moved or overshoot or due):
                return None
            if moved is _STEADY:  # at the least it stayed at: noise does not buy a rung
                budget, loose = self._above_floor
                estimate_bps = budget
        decisions = allocate(budget, demands)
        self._held = False
        if previous is not None:
            decisions = _with_margin(decisions, previous, budget, demands, cfg.up_margin)
            if loose > budget:
                decisions = _frame_rate_steps(decisions, previous, loose, demands)
        if previous is not None and not reshaped and holding:
            decisions = self._hold(decisions, previous, demands)
        if previous is not None:
            self._judge(now_ms, budget, decisions, previous)
        if previous is not None and self._downgraded(decisions, previous):
            hold = cfg.upgrade_hold_ms << min(self._failures, 16)
            self._hold_until_ms = now_ms + min(hold, cfg.max_upgrade_hold_ms)
            self._down_bps = budget
        self._decisions = decisions
        self._estimate_bps = int(estimate_bps)
        self._allocated_ms = now_ms
        self._rise_since_ms = self._above_since_ms = None
        self._shape = shape
        if previous is not None and _key(decisions) == _key(previous):
            return None
        return list(decisions)

    def _holding(self, now_ms: int, budget: int, measured: bool = False) -> bool:
        """Whether upgrades are held: within the hold, unless the estimate is well above the
        one a failed up-switch was made at (the link did change), or a probe just measured
        the link carrying `release_gain` x the budget of the downgrade (the link came back:
        Firefox's stage waited 2 s at 320 for a hold begun on the weak link)."""
        if self._hold_until_ms is None or now_ms >= self._hold_until_ms:
            return False
        gain = self._config.release_gain
        failed = self._failed_bps
        if failed is not None:
            return budget < gain * failed
        return not (measured and budget >= gain * self._down_bps)

    def _judge(
        self, now_ms: int, budget: int, decisions: list[LayerDecision], prev: list[LayerDecision]
    ) -> None:
        """A spatial downgrade while an up-switch is on trial fails it; an up-switch goes on
        trial."""
        before = {d.track_id: d.spatial for d in prev if d.spatial is not None}
        up = down = False
        for d in decisions:
            old = before.get(d.track_id)
            if old is None:
                continue
            down = down or d.spatial is None or d.spatial < old
            up = up or (d.spatial is not None and d.spatial > old)
        if down and self._trial_ms is not None:
            self._failures += 1
            self._failed_bps = self._trial_bps
            self._trial_ms = None
        if up:
            self._trial_ms, self._trial_bps = now_ms, budget

    def _moved(
        self, now_ms: int, estimate_bps: int, loose: int, measured: bool = False
    ) -> bool | object:
        """Whether the estimate moved enough to allocate again: True, or `_STEADY` for a
        small rise that lasted (allocate at its least, `_above_floor`). `measured`: a probe
        lifted it since the last allocation (a rise counts at once)."""
        band = self._config.threshold * self._estimate_bps
        if estimate_bps <= self._estimate_bps * (1.0 + STEADY_RISE):
            self._above_since_ms = None
        elif self._above_since_ms is None:
            self._above_since_ms = now_ms
            self._above_floor = (estimate_bps, loose)
        else:
            floor, floor_loose = self._above_floor
            self._above_floor = (min(floor, estimate_bps), min(floor_loose, loose))
        if estimate_bps < self._estimate_bps - band:
            self._rise_since_ms = None
            return True
        if estimate_bps <= self._estimate_bps + band:
            self._rise_since_ms = None
            steady = self._config.steady_ms
            above = self._above_since_ms
            if steady and above is not None and now_ms - above >= steady:
                return _STEADY
            return False
        if self._rise_since_ms is None:
            self._rise_since_ms = now_ms
        return measured or now_ms - self._rise_since_ms >= self._config.rise_ms

    def priced(self, demands: Sequence[Demand]) -> int:
        """What the current layers cost at the demands' current bitrates."""
        layers = {d.track_id: d for d in self._decisions or [] if d.spatial is not None}
        total = 0
        for demand in demands:
            d = layers.get(demand.track_id)
            if d is not None and d.spatial is not None and d.temporal is not None:
                total += demand.costs[d.spatial * TEMPORAL_LAYERS + d.temporal]
        return total

    def _hold(
        self,
        decisions: list[LayerDecision],
        previous: list[LayerDecision],
        demands: Sequence[Demand],
    ) -> list[LayerDecision]:
        """No track above its previous layer while the hold lasts."""
        before = {d.track_id: d for d in previous}
        out: list[LayerDecision] = []
        for new, demand in zip(decisions, demands, strict=True):
            old = before.get(new.track_id)
            if old is None or _rank(new) <= _rank(old):
                out.append(new)
                continue
            self._held = True
            bitrate = 0
            if old.spatial is not None and old.temporal is not None:
                bitrate = demand.costs[old.spatial * TEMPORAL_LAYERS + old.temporal]
            out.append(
                LayerDecision(
                    new.track_id,
                    old.spatial,
                    old.temporal,
                    bitrate,
                    Reason.UPGRADE_HELD,
                    new.preferred_spatial,
                )
            )
        return out

    @staticmethod
    def _downgraded(decisions: list[LayerDecision], previous: list[LayerDecision]) -> bool:
        before = {d.track_id: _rank(d) for d in previous}
        return any(d.track_id in before and _rank(d) < before[d.track_id] for d in decisions)


def _with_margin(
    decisions: list[LayerDecision],
    previous: list[LayerDecision],
    budget: int,
    demands: Sequence[Demand],
    margin: float,
) -> list[LayerDecision]:
    """Each spatial switch as it is within the budget less `margin`, for the new layer's
    keyframe crossing a link the layers fill. A switch down goes as far as that says (on a
    falling estimate, once rather than a keyframe per step); a switch up that does not fit there
    climbs only within its previous resolution (its rungs cost less than the switch)."""
    before = {d.track_id: d.spatial for d in previous if d.spatial is not None}
    moves = [
        i
        for i, d in enumerate(decisions)
        if d.spatial is not None and d.spatial != before.get(d.track_id, d.spatial)
    ]
    if not moves or margin <= 0:
        return decisions
    careful = allocate(int(budget / (1.0 + margin)), demands)
    out = list(decisions)
    for i in moves:
        new, safe, demand = decisions[i], careful[i], demands[i]
        old = before[new.track_id]
        if new.spatial is not None and new.spatial < old:  # down: lower still if it must
            if safe.spatial is not None and _rank(safe) < _rank(new):
                out[i] = safe
            continue
        if safe.spatial is not None and safe.spatial > old:
            out[i] = safe
            continue
        # The highest rung below the switch at the previous resolution (or lower).
        level = demand.ladder.index((new.spatial or 0) * TEMPORAL_LAYERS + (new.temporal or 0))
        below = [j for j in range(level) if demand.ladder[j] // TEMPORAL_LAYERS <= old]
        if not below:
            continue
        k = demand.ladder[below[-1]]
        out[i] = LayerDecision(
            new.track_id,
            k // TEMPORAL_LAYERS,
            k % TEMPORAL_LAYERS,
            demand.ladder_costs[below[-1]],
            Reason.BANDWIDTH,
            new.preferred_spatial,
        )
    return out


def _frame_rate_steps(
    decisions: list[LayerDecision],
    previous: list[LayerDecision],
    budget: int,
    demands: Sequence[Demand],
) -> list[LayerDecision]:
    """The decisions with frame-rate steps added, in priority order, while all of them fit in
    `budget`: only rungs within the resolution each track already had and keeps (such a step
    sends more of the same stream: no keyframe, no switch), so they may use what is left free
    for a switch's keyframe."""
    before = {d.track_id: d.spatial for d in previous if d.spatial is not None}
    costs = {d.track_id: d.costs for d in demands}
    total = 0
    for d in decisions:
        if d.spatial is not None and d.temporal is not None:
            total += costs[d.track_id][d.spatial * TEMPORAL_LAYERS + d.temporal]
    order = sorted(range(len(demands)), key=lambda i: -demands[i].priority)
    out = list(decisions)
    for i in order:
        d, demand = out[i], demands[i]
        if d.spatial is None or d.temporal is None or before.get(d.track_id) != d.spatial:
            continue
        start = d.spatial * TEMPORAL_LAYERS + d.temporal
        if start not in demand.ladder:
            continue
        level = first = demand.ladder.index(start)
        while level + 1 < len(demand.ladder):
            k = demand.ladder[level + 1]
            delta = demand.ladder_costs[level + 1] - demand.ladder_costs[level]
            if k // TEMPORAL_LAYERS != d.spatial or total + delta > budget:
                break
            total += delta
            level += 1
        if level == first:
            continue
        k = demand.ladder[level]
        top = level == len(demand.ladder) - 1
        reason = (
            Reason.BANDWIDTH
            if not top
            else (Reason.TILE_SIZE if demand.cap_limited else Reason.OPTIMAL)
        )
        out[i] = LayerDecision(
            d.track_id,
            d.spatial,
            k % TEMPORAL_LAYERS,
            demand.ladder_costs[level],
            reason,
            d.preferred_spatial,
        )
    return out
