"""Layer selection: a subscriber's bandwidth budget and visible tracks in, one layer per track out.

Rules (LiveKit's StreamAllocator, Jitsi's BandwidthAllocator, mediasoup's
DistributeAvailableOutgoingBitrate, combined):

1. Each track's *ladder* is its available layers within its caps (`max_spatial`,
   `max_temporal`; a zero bitrate means the publisher is not sending that layer) in LiveKit's
   order, (0,0) (0,1) (0,2) (1,0) ...: going up a rung raises the frame rate within a resolution
   before the resolution, and a new resolution starts at its lowest frame rate. A rung that
   costs no more than one below it is left out: a higher resolution at a frame rate cheaper
   than the whole lower one (say 1280x720 at 7.5 fps below 640x360 at 30 fps, as a publisher
   short of bits sends) is not worth a switch and its keyframe on a narrow link; a camera keeps
   its frame rate first. A shared screen's ladder is by cost instead (ties spatial-major): its
   text needs the resolution. Either way every step up costs something, so the budget only
   shrinks as tracks climb and a track that could not afford a step never could later.
2. In priority order (SCREEN, STAGE, THUMBNAIL; ties keep the input order) every track
   gets its lowest rung if that fits what is left; a track whose lowest rung does not fit is
   paused and the next track is still tried, so the highest-priority track keeps a picture
   whenever its lowest rung alone fits the budget. A `floor` track (the stage) gets its lowest
   rung even when it does not fit, and what it costs is gone from the budget.
3. Then SCREEN and STAGE tracks, in that order, climb their ladders as far as the budget allows
   (Jitsi's on-stage "eager" improvement).
4. Then the other tracks climb one rung per round, round-robin in priority order, until no step
   fits. A track stops at the first rung it cannot afford: rungs above it are never skipped to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

SPATIAL_LAYERS = 3
TEMPORAL_LAYERS = 3
_LAYERS = SPATIAL_LAYERS * TEMPORAL_LAYERS
_MAX_RUNG = _LAYERS - 1


class AllocatorError(ValueError):
    """Demands or arrays the allocator cannot work with."""


class Priority(IntEnum):
    """Higher is served first."""

    THUMBNAIL = 0
    STAGE = 1
    SCREEN = 2


class Reason(StrEnum):
    """Why a track got the layer it got (for logs and the page)."""

    OPTIMAL = "optimal"  # the best layer the publisher sends
    BANDWIDTH = "bandwidth"  # a higher layer exists within the caps but does not fit
    TILE_SIZE = "tile size"  # the caps, not the budget, stopped it
    NOT_PUBLISHED = "publisher not sending"  # no layer within the caps is being received
    PAUSED_BANDWIDTH = "paused: bandwidth"  # not even the lowest layer fits
    UPGRADE_HELD = "upgrade held"  # kept at its previous layer after a recent downgrade
    DRAINING = "paused: queue draining"  # held while the link's queue drains (bandwidth/drain)


def _as_bitrates(value: Any) -> tuple[npt.NDArray[np.float64], list[float]]:
    """The (3, 3) bitrates as a read-only array and as flat floats (s * 3 + t). Checked in
    Python: numpy's reductions cost more than nine comparisons (every reassign pass builds a
    demand per visible source)."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AllocatorError(f"bitrates must be numbers: {exc}") from None
    if array.shape != (SPATIAL_LAYERS, TEMPORAL_LAYERS):
        raise AllocatorError(f"bitrates must have shape (3, 3), not {array.shape}")
    flat: list[float] = array.ravel().tolist()
    if not all(0.0 <= rate < math.inf for rate in flat):  # NaN fails both
        raise AllocatorError("bitrates must be finite and >= 0")
    array.flags.writeable = False
    return array, flat


def _check_cap(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= 2:
        raise AllocatorError(f"{name} must be 0, 1 or 2, not {value!r}")


@dataclass(frozen=True, slots=True, eq=False)
class Demand:
    """One visible track as one subscriber wants it."""

    track_id: str
    priority: Priority
    max_spatial: int
    max_temporal: int
    bitrates_bps: npt.NDArray[np.float64]  # (3, 3) cumulative, from LayerBitrateMeter
    floor: bool = False  # gets its lowest rung even over budget (the stage is never paused)
    # Derived once here, read by every allocation pass: the bitrates rounded to whole bps
    # (flat, s * 3 + t), the ladder of rungs within the caps and what each rung costs, whether
    # the caps cut a layer off, and the available layers as a bit mask.
    costs: tuple[int, ...] = field(init=False, repr=False, compare=False)
    ladder: tuple[int, ...] = field(init=False, repr=False, compare=False)
    ladder_costs: tuple[int, ...] = field(init=False, repr=False, compare=False)
    cap_limited: bool = field(init=False, repr=False, compare=False)
    available: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_cap("max_spatial", self.max_spatial)
        _check_cap("max_temporal", self.max_temporal)
        try:
            priority = Priority(self.priority)
        except ValueError:
            raise AllocatorError(f"unknown priority {self.priority!r}") from None
        bitrates, flat = _as_bitrates(self.bitrates_bps)
        costs = [round(rate) for rate in flat]  # half to even, as np.rint
        screen = priority == Priority.SCREEN
        ladder, cap_limited = _ladder(
            int(self.max_spatial), int(self.max_temporal), costs, by_cost=screen
        )
        set_ = object.__setattr__
        set_(self, "priority", priority)
        set_(self, "max_spatial", int(self.max_spatial))
        set_(self, "max_temporal", int(self.max_temporal))
        set_(self, "bitrates_bps", bitrates)
        set_(self, "costs", tuple(costs))
        set_(self, "ladder", tuple(ladder))
        set_(self, "ladder_costs", tuple(costs[k] for k in ladder))
        set_(self, "cap_limited", cap_limited)
        set_(self, "available", sum(1 << k for k in range(_LAYERS) if costs[k] > 0))

    def renamed(self, track_id: str) -> Demand:
        """The same demand for another track, without validating and deriving it again."""
        twin = object.__new__(Demand)
        for name in _DEMAND_FIELDS:
            object.__setattr__(twin, name, getattr(self, name))
        object.__setattr__(twin, "track_id", track_id)
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Demand):
            return NotImplemented
        return (
            self.track_id == other.track_id
            and self.priority == other.priority
            and self.max_spatial == other.max_spatial
            and self.max_temporal == other.max_temporal
            and self.floor == other.floor
            and bool(np.array_equal(self.bitrates_bps, other.bitrates_bps))
        )

    def __hash__(self) -> int:
        return hash(
            (self.track_id, self.priority, self.max_spatial, self.max_temporal, self.floor,
             self.bitrates_bps.tobytes())
        )  # fmt: skip


_DEMAND_FIELDS = tuple(f.name for f in fields(Demand))


@dataclass(frozen=True, slots=True)
class LayerDecision:
    """The layer one subscriber gets for one track; spatial/temporal None means paused."""

    track_id: str
    spatial: int | None
    temporal: int | None
    bitrate_bps: int
    reason: Reason
    preferred_spatial: int | None = None  # the demand's cap: what the tile could use

    @property
    def paused(self) -> bool:
        return self.spatial is None


# ---- the scalar allocator ---------------------------------------------------------------------


def _ladder(
    max_spatial: int, max_temporal: int, flat: list[int], *, by_cost: bool = False
) -> tuple[list[int], bool]:
    """Rungs as flat layer indices (s * 3 + t), each dearer than the one before (in (s, t)
    order, or `by_cost`), and whether the caps cut any off."""
    rungs: list[int] = []
    cap_limited = False
    for k in range(_LAYERS):
        if flat[k] <= 0:
            continue
        if k // TEMPORAL_LAYERS <= max_spatial and k % TEMPORAL_LAYERS <= max_temporal:
            rungs.append(k)
        else:
            cap_limited = True
    if by_cost:
        rungs.sort(key=lambda k: flat[k])  # stable: equal costs keep the (s, t) order
        return rungs, cap_limited
    kept: list[int] = []
    for k in rungs:  # (s, t) order: frame rate before resolution
        if not kept or flat[k] > flat[kept[-1]]:
            kept.append(k)
    return kept, cap_limited


def _check_unique(demands: Sequence[Demand]) -> None:
    ids = [d.track_id for d in demands]
    if len(set(ids)) != len(ids):
        raise AllocatorError("track ids must be unique within one allocation")


def allocate(budget_bps: int, demands: Sequence[Demand]) -> list[LayerDecision]:
    """One decision per demand, in the demands' order. Pure; see the module docstring."""
    _check_unique(demands)
    n = len(demands)
    ladders = [d.ladder for d in demands]
    costs = [d.ladder_costs for d in demands]
    order = sorted(range(n), key=lambda i: -demands[i].priority)
    remaining = int(budget_bps)
    level = [-1] * n

    for i in order:  # 1. lowest rung for everyone, by priority
        if costs[i] and (costs[i][0] <= remaining or demands[i].floor):
            level[i] = 0
            remaining = max(0, remaining - costs[i][0])

    for i in order:  # 2. screen and stage climb as far as they can
        if demands[i].priority < Priority.STAGE or level[i] < 0:
            continue
        c = costs[i]
        while level[i] + 1 < len(c) and c[level[i] + 1] - c[level[i]] <= remaining:
            remaining -= c[level[i] + 1] - c[level[i]]
            level[i] += 1

    active = [
        i
        for i in order
        if demands[i].priority < Priority.STAGE and 0 <= level[i] < len(costs[i]) - 1
    ]
    while active:  # 3. the rest, one rung per round
        still: list[int] = []
        for i in active:
            c = costs[i]
            delta = c[level[i] + 1] - c[level[i]]
            if delta <= remaining:
                remaining -= delta
                level[i] += 1
                if level[i] < len(c) - 1:
                    still.append(i)
        active = still

    decisions: list[LayerDecision] = []
    for i, demand in enumerate(demands):
        pref = demand.max_spatial
        if level[i] < 0:
            reason = Reason.PAUSED_BANDWIDTH if ladders[i] else Reason.NOT_PUBLISHED
            decisions.append(LayerDecision(demand.track_id, None, None, 0, reason, pref))
            continue
        k = ladders[i][level[i]]
        if level[i] < len(ladders[i]) - 1:
            reason = Reason.BANDWIDTH
        else:
            reason = Reason.TILE_SIZE if demand.cap_limited else Reason.OPTIMAL
        decisions.append(
            LayerDecision(
                demand.track_id,
                k // TEMPORAL_LAYERS,
                k % TEMPORAL_LAYERS,
                costs[i][level[i]],
                reason,
                pref,
            )
        )
    return decisions


def wanted_bps(demands: Sequence[Demand]) -> int:
    """What the demands' best layers within their caps cost together: the unconstrained want."""
    return sum(d.ladder_costs[-1] for d in demands if d.ladder_costs)
