"""SubscriberAllocator: re-allocates only on real change; holds upgrades after a downgrade."""

from __future__ import annotations

import numpy as np
import pytest

from confsfu.bandwidth.allocator import (
    AllocatorConfig,
    AllocatorError,
    Demand,
    LayerDecision,
    Priority,
    Reason,
    SubscriberAllocator,
)

K = 1000
REAL = np.array([[50, 75, 100], [150, 225, 300], [500, 750, 1000]], dtype=np.float64) * K


def room(rates: np.ndarray = REAL, stage_cap: int = 2) -> list[Demand]:
    return [
        Demand("stage", Priority.STAGE, stage_cap, 2, rates),
        *(Demand(f"t{i}", Priority.THUMBNAIL, 0, 2, rates) for i in range(4)),
    ]


def layers(decisions: list[LayerDecision] | None) -> list[tuple[int | None, int | None]]:
    assert decisions is not None
    return [(d.spatial, d.temporal) for d in decisions]


def test_first_update_allocates_and_a_repeat_changes_nothing() -> None:
    allocator = SubscriberAllocator()
    first = allocator.update(0, 1_000 * K, room())
    assert first is not None and len(first) == 5
    assert allocator.update(100, 1_000 * K, room()) is None
    assert allocator.decisions == first
    assert allocator.next_deadline_ms() is None


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mean_bps", [400 * K, 700 * K, 1_500 * K])
def test_no_flapping_on_ten_percent_noise(seed: int, mean_bps: int) -> None:
    rng = np.random.default_rng(seed)
    allocator = SubscriberAllocator()
    answers = 0
    seen: list[list[tuple[int | None, int | None]]] = []
    for step in range(600):  # a minute of estimates at 10 Hz, uniformly within +-10%
        estimate = int(mean_bps * rng.uniform(0.9, 1.1))
        decisions = allocator.update(step * 100, estimate, room())
        if decisions is not None:
            answers += 1
            seen.append(layers(decisions))
    # The first allocation, and at most one correction when an estimate lands more than 15%
    # below the first one; never back and forth.
    assert answers <= 2
    assert len(seen) == len({tuple(x) for x in seen})


def test_a_rise_counts_once_it_lasts() -> None:
    allocator = SubscriberAllocator(AllocatorConfig(rise_ms=1000))
    allocator.update(0, 600 * K, room())
    assert allocator.update(100, 900 * K, room()) is None  # +50%, but only just now
    assert allocator.next_deadline_ms() == 1100
    assert allocator.update(600, 650 * K, room()) is None  # it fell back: not a trend
    assert allocator.next_deadline_ms() is None
    assert allocator.update(700, 900 * K, room()) is None
    assert allocator.update(1700, 900 * K, room()) is not None


def test_small_moves_are_ignored_and_large_ones_are_not() -> None:
    allocator = SubscriberAllocator()
    allocator.update(0, 1_000 * K, room())
    assert allocator.update(100, 1_140 * K, room()) is None  # +14%
    assert allocator.update(1200, 1_140 * K, room()) is None  # +14%, lasting
    assert allocator.update(1300, 840 * K, room()) is not None  # -16%: fewer layers at once
    assert allocator.update(1400, 1_400 * K, room()) is None  # +67%: a rise must last ...
    assert allocator.update(2400, 1_400 * K, room()) is not None  # ... and it did


def test_an_upgrade_is_held_after_a_downgrade_then_released() -> None:
    config = AllocatorConfig(threshold=0.15, upgrade_hold_ms=4000)
    allocator = SubscriberAllocator(config)
    good = layers(allocator.update(0, 1_500 * K, room()))
    down = allocator.update(1000, 600 * K, room())
    assert down is not None and layers(down) < good
    assert allocator.next_deadline_ms() is None  # nothing held yet

    assert allocator.update(2000, 1_500 * K, room()) is None  # the link recovers ...
    back = allocator.update(3000, 1_500 * K, room())  # ... for good, within the hold
    assert back is not None
    assert layers(back) == layers(down)  # same layers ...
    assert {d.reason for d in back if d.track_id == "stage"} == {Reason.UPGRADE_HELD}  # ... why
    assert allocator.next_deadline_ms() == 5000

    assert allocator.update(4999, 1_500 * K, room()) is None  # still held
    released = allocator.update(5000, 1_500 * K, room())
    assert released is not None and layers(released) == good
    assert allocator.next_deadline_ms() is None


def test_further_downgrades_are_not_held() -> None:
    allocator = SubscriberAllocator(AllocatorConfig(upgrade_hold_ms=10_000))
    allocator.update(0, 1_500 * K, room())
    first = layers(allocator.update(1000, 800 * K, room()))
    second = layers(allocator.update(1500, 400 * K, room()))
    assert second < first


def test_changed_demands_release_the_hold() -> None:
    allocator = SubscriberAllocator(AllocatorConfig(upgrade_hold_ms=10_000))
    allocator.update(0, 1_500 * K, room())
    allocator.update(1000, 600 * K, room())
    allocator.update(2000, 1_500 * K, room())
    held = allocator.update(3000, 1_500 * K, room())
    assert held is not None and any(d.reason is Reason.UPGRADE_HELD for d in held)
    # The stage tile shrinks to 360p: a new shape of demands, allocated without the hold.
    changed = allocator.update(3100, 1_500 * K, room(stage_cap=1))
    assert changed is not None
    assert changed[0].spatial == 1 and changed[0].temporal == 2
    assert not any(d.reason is Reason.UPGRADE_HELD for d in changed)


def test_a_publisher_dropping_a_layer_is_a_change_of_demands() -> None:
    allocator = SubscriberAllocator()
    allocator.update(0, 5_000 * K, room())
    no_f = REAL * np.array([[1], [1], [0]])
    after = allocator.update(100, 5_000 * K, room(no_f))
    assert after is not None and after[0].spatial == 1


def test_bitrate_drift_alone_does_not_reallocate_but_an_overshoot_does() -> None:
    allocator = SubscriberAllocator()
    allocator.update(0, 700 * K, room())
    assert allocator.update(100, 700 * K, room(REAL * 1.1)) is None  # +10% drift
    heavier = allocator.update(200, 700 * K, room(REAL * 1.5))  # the layers now cost 50% more
    assert heavier is not None
    assert sum(d.bitrate_bps for d in heavier) <= 700 * K


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": -0.1},
        {"threshold": 1.0},
        {"upgrade_hold_ms": -1},
        {"rise_ms": -1},
    ],
)
def test_bad_configs_raise_the_allocator_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(AllocatorError):
        AllocatorConfig(**kwargs)  # type: ignore[arg-type]
