"""allocate(): table rows of (budget, demands) -> layers and reasons, plus invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bandwidth.allocator import (
    AllocatorError,
    Demand,
    LayerDecision,
    Priority,
    Reason,
    allocate,
)

K = 1000
# Cumulative bitrates of a typical VP8 L1T3 simulcast publisher, rows q/h/f, columns TID 0..2.
REAL = np.array([[50, 75, 100], [150, 225, 300], [500, 750, 1000]], dtype=np.float64) * K
NO_F = REAL * np.array([[1], [1], [0]])  # the 720p encoding stopped
ONLY_F = REAL * np.array([[0], [0], [1]])
NO_TEMPORAL = REAL * np.array([1, 0, 0])  # no temporal layering: TID 0 only
SILENT = np.zeros((3, 3))
# A publisher short of bits: its 720p at 7.5 fps (250k) costs less than 360p at 30 fps (300k).
SHORT_F = np.array([[50, 75, 100], [150, 225, 300], [250, 400, 600]], dtype=np.float64) * K

THUMB, STAGE, SCREEN = Priority.THUMBNAIL, Priority.STAGE, Priority.SCREEN
OPT, BW, TILE = Reason.OPTIMAL, Reason.BANDWIDTH, Reason.TILE_SIZE
NOPUB, PAUSED = Reason.NOT_PUBLISHED, Reason.PAUSED_BANDWIDTH


def d(
    track_id: str,
    priority: Priority,
    max_spatial: int = 2,
    max_temporal: int = 2,
    rates: np.ndarray | None = None,
    floor: bool = False,
) -> Demand:
    bitrates = REAL if rates is None else rates
    return Demand(track_id, priority, max_spatial, max_temporal, bitrates, floor=floor)


def thumbs(n: int, cap: int = 0) -> list[Demand]:
    return [d(f"t{i}", THUMB, cap) for i in range(n)]


Expected = list[tuple[int | None, int | None, Reason]]

ROWS: list[tuple[str, int, list[Demand], Expected]] = [
    ("nothing visible", 1_000 * K, [], []),
    ("stage alone, ample budget", 5_000 * K, [d("s", STAGE)], [(2, 2, OPT)]),
    ("thumbnail capped by its tile", 5_000 * K, [d("t", THUMB, 0)], [(0, 2, TILE)]),
    ("thumbnail at half frame rate", 5_000 * K, [d("t", THUMB, 0, 1)], [(0, 1, TILE)]),
    ("stage capped at 360p", 5_000 * K, [d("s", STAGE, 1)], [(1, 2, TILE)]),
    ("stage capped at 7.5 fps", 5_000 * K, [d("s", STAGE, 2, 0)], [(2, 0, TILE)]),
    (
        "budget below every lowest layer",
        40 * K,
        [d("s", STAGE), *thumbs(2)],
        [(None, None, PAUSED)] * 3,
    ),
    ("zero budget", 0, [d("s", STAGE)], [(None, None, PAUSED)]),
    (
        "only the stage's lowest layer fits",
        60 * K,
        [*thumbs(2), d("s", STAGE)],
        [(None, None, PAUSED), (None, None, PAUSED), (0, 0, BW)],
    ),
    (
        "stage wants more than the budget: it climbs after every thumbnail has a picture",
        600 * K,
        [d("s", STAGE), *thumbs(3)],
        # 4 x 50k, then the stage climbs (0,1) (0,2) (1,0) (1,1) (1,2) = +250k to 150k left;
        # (2,0) would need +200k. The thumbnails share the rest: +25k each, twice.
        [(1, 2, BW), (0, 2, TILE), (0, 2, TILE), (0, 2, TILE)],
    ),
    (
        "a stage whose lowest layer alone exceeds the budget is paused, thumbnails still fit",
        300 * K,
        [d("s", STAGE, rates=ONLY_F), *thumbs(2)],
        [(None, None, PAUSED), (0, 2, TILE), (0, 2, TILE)],
    ),
    (
        "publisher stopped the 720p encoding",
        5_000 * K,
        [d("s", STAGE, rates=NO_F)],
        [(1, 2, OPT)],
    ),
    ("publisher sends nothing", 5_000 * K, [d("s", STAGE, rates=SILENT)], [(None, None, NOPUB)]),
    (
        "a camera keeps its frame rate: 720p at 7.5 fps costing less than 360p is left out",
        260 * K,
        [d("s", STAGE, rates=SHORT_F)],
        [(1, 1, BW)],
    ),
    (
        "a screen takes the resolution where it is cheaper",
        260 * K,
        [d("p", SCREEN, rates=SHORT_F)],
        [(2, 0, BW)],
    ),
    (
        "never above the cap, even when only higher layers are sent",
        5_000 * K,
        [d("t", THUMB, 0, rates=ONLY_F)],
        [(None, None, NOPUB)],
    ),
    (
        "publisher without temporal layers",
        5_000 * K,
        [d("s", STAGE, rates=NO_TEMPORAL)],
        [(2, 0, OPT)],
    ),
    (
        "priority order when only two lowest layers fit",
        100 * K,
        [d("t", THUMB), d("s", STAGE), d("p", SCREEN)],
        [(None, None, PAUSED), (0, 0, BW), (0, 0, BW)],
    ),
    (
        "a floor (the stage) gets its lowest layer over budget, and nobody else anything",
        30 * K,
        [d("t", THUMB, 0), d("s", STAGE, floor=True)],
        [(None, None, PAUSED), (0, 0, BW)],
    ),
    (
        "without its floor the stage would be paused and the thumbnail shown",
        60 * K,
        [d("s", STAGE, rates=ONLY_F), d("t", THUMB, 0)],
        [(None, None, PAUSED), (0, 0, BW)],
    ),
    (
        "a floor's cost is taken first: what is left goes to the thumbnails",
        60 * K,
        [d("s", STAGE, rates=ONLY_F, floor=True), d("t", THUMB, 0)],
        [(2, 0, BW), (None, None, PAUSED)],
    ),
    (
        "a floor with nothing published stays not published",
        0,
        [d("s", STAGE, rates=SILENT, floor=True)],
        [(None, None, NOPUB)],
    ),
    (
        "screen climbs before the stage",
        1_200 * K,
        [d("s", STAGE), d("p", SCREEN)],
        [(1, 0, BW), (2, 2, OPT)],
    ),
    (
        "equal priorities keep the input order",
        125 * K,
        [d("a", THUMB, 0), d("b", THUMB, 0)],
        [(0, 1, BW), (0, 0, BW)],
    ),
    (
        "round-robin spreads the budget one rung at a time",
        225 * K,
        thumbs(3, cap=1),
        [(0, 1, BW)] * 3,
    ),
    (
        "round-robin continues until no step fits",
        400 * K,
        thumbs(3, cap=1),
        # 150k, +25k x3, +25k x3, then (1,0) costs +50k each: two fit (400k), the third not.
        [(1, 0, BW), (1, 0, BW), (0, 2, BW)],
    ),
    (
        "a 46-person meeting page on a weak link",
        500 * K,
        [d("s", STAGE), *thumbs(9)],
        # 10 x 50k = 500k: everyone has a picture, nothing left to climb.
        [(0, 0, BW)] * 10,
    ),
]


@pytest.mark.parametrize(
    ("budget", "demands", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_allocation_table(budget: int, demands: list[Demand], expected: Expected) -> None:
    decisions = allocate(budget, demands)
    assert [(x.spatial, x.temporal, x.reason) for x in decisions] == expected
    assert [x.track_id for x in decisions] == [x.track_id for x in demands]
    # Within the budget, but for a floor's lowest layer (it is given even when it does not fit).
    floors = sum(x.bitrate_bps for x, y in zip(decisions, demands, strict=True) if y.floor)
    assert sum(x.bitrate_bps for x in decisions) <= max(budget, floors)


def test_decisions_carry_the_cumulative_bitrate_and_the_tile_cap() -> None:
    [decision] = allocate(400 * K, [d("s", STAGE, 1)])
    assert decision == LayerDecision("s", 1, 2, 300 * K, TILE, preferred_spatial=1)
    assert not decision.paused


def test_measured_bitrates_are_rounded_to_whole_bits() -> None:
    rates = REAL + 0.4
    [decision] = allocate(5_000 * K, [d("s", STAGE, rates=rates)])
    assert decision.bitrate_bps == 1_000_000


# ---- demand validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_spatial": 3}, "max_spatial"),
        ({"max_temporal": -1}, "max_temporal"),
        ({"priority": 9}, "priority"),
        ({"bitrates_bps": np.zeros((3, 2))}, "shape"),
        ({"bitrates_bps": -REAL}, ">= 0"),
        ({"bitrates_bps": REAL * np.nan}, "finite"),
        ({"bitrates_bps": REAL * np.inf}, "finite"),
        ({"bitrates_bps": [["a"] * 3] * 3}, "numbers"),
    ],
)
def test_bad_demands_raise_the_allocator_error(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "track_id": "x",
        "priority": THUMB,
        "max_spatial": 0,
        "max_temporal": 2,
        "bitrates_bps": REAL,
    }
    fields.update(kwargs)
    with pytest.raises(AllocatorError, match=message):
        Demand(**fields)  # type: ignore[arg-type]


@given(
    st.lists(
        st.floats(0, 1e12) | st.sampled_from([0.5, 1.5, 2.5, 60_000.5, 60_001.5]),
        min_size=9,
        max_size=9,
    )
)
def test_costs_are_the_bitrates_rounded_half_to_even_as_numpy_does(rates: list[float]) -> None:
    demand = Demand("x", THUMB, 2, 2, np.array(rates).reshape(3, 3))
    assert list(demand.costs) == np.rint(np.array(rates)).astype(np.int64).tolist()


def test_duplicate_track_ids_are_rejected() -> None:
    with pytest.raises(AllocatorError, match="unique"):
        allocate(1_000 * K, [d("a", THUMB), d("a", STAGE)])


def test_demands_compare_by_value_and_are_frozen() -> None:
    a, b = d("a", THUMB), Demand("a", THUMB, 2, 2, REAL.copy())
    assert a == b and hash(a) == hash(b)
    assert a != d("a", THUMB, rates=NO_F)
    assert not a.bitrates_bps.flags.writeable
    with pytest.raises(AttributeError):
        a.max_spatial = 1  # type: ignore[misc]


@given(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.lists(
    st.integers(0, 2_000_000), min_size=9, max_size=9))  # fmt: skip
def test_a_renamed_demand_is_the_demand_built_for_that_track(
    priority: int, spatial: int, temporal: int, rates: list[int]
) -> None:
    bitrates = np.array(rates, dtype=np.float64).reshape(3, 3)
    built = Demand("b", Priority(priority), spatial, temporal, bitrates)
    renamed = Demand("a", Priority(priority), spatial, temporal, bitrates).renamed("b")
    assert renamed == built and renamed.track_id == "b"
    assert (renamed.ladder, renamed.ladder_costs, renamed.cap_limited, renamed.available) == (
        built.ladder, built.ladder_costs, built.cap_limited, built.available)  # fmt: skip
    assert allocate(500 * K, [renamed]) == allocate(500 * K, [built])


# ---- invariants on random rooms ---------------------------------------------------------------

_rates = st.lists(st.integers(0, 2_000_000), min_size=9, max_size=9).map(
    lambda xs: np.array(xs, dtype=np.float64).reshape(3, 3)
)
_demand = st.builds(
    lambda i, p, s, t, r: Demand(f"t{i}", Priority(p), s, t, r),
    st.integers(0, 10**6),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    _rates,
)


@given(
    st.integers(-100, 10_000_000),
    st.lists(_demand, max_size=12, unique_by=lambda x: x.track_id),
)
def test_allocations_fit_the_budget_the_caps_and_what_is_published(
    budget: int, demands: list[Demand]
) -> None:
    decisions = allocate(budget, demands)
    assert sum(x.bitrate_bps for x in decisions) <= max(budget, 0)
    for demand, decision in zip(demands, decisions, strict=True):
        if decision.spatial is None:
            assert decision.temporal is None and decision.bitrate_bps == 0
            assert decision.reason in (PAUSED, NOPUB)
            continue
        assert decision.temporal is not None
        assert decision.spatial <= demand.max_spatial
        assert decision.temporal <= demand.max_temporal
        rate = demand.bitrates_bps[decision.spatial, decision.temporal]
        assert rate > 0 and decision.bitrate_bps == int(np.rint(rate))


def _ladder(demand: Demand) -> list[tuple[int, int, int]]:
    """(spatial, temporal, cost) of the demand's available layers within its caps: a screen's
    by cost; a camera's in (s, t) order, each dearer than every one before it."""
    flat = np.rint(demand.bitrates_bps).astype(np.int64)
    rungs = [
        (s, t, int(flat[s, t]))
        for s in range(demand.max_spatial + 1)
        for t in range(demand.max_temporal + 1)
        if flat[s, t] > 0
    ]
    if demand.priority == SCREEN:
        return sorted(rungs, key=lambda r: (r[2], r[0], r[1]))
    return [r for i, r in enumerate(rungs) if all(r[2] > before[2] for before in rungs[:i])]


@given(st.integers(0, 10_000_000), st.lists(_demand, max_size=12, unique_by=lambda x: x.track_id))
def test_lowest_layers_go_first_in_priority_order_and_nothing_affordable_is_left(
    budget: int, demands: list[Demand]
) -> None:
    decisions = allocate(budget, demands)
    order = sorted(range(len(demands)), key=lambda i: -demands[i].priority)
    left_after_lowest = budget
    for i in order:  # phase 1: a track is paused only if its lowest layer did not fit then
        ladder = _ladder(demands[i])
        if not ladder:
            assert decisions[i].reason is NOPUB
        elif decisions[i].paused:
            assert decisions[i].reason is PAUSED
            assert ladder[0][2] > left_after_lowest
        else:
            assert ladder[0][2] <= left_after_lowest
            left_after_lowest -= ladder[0][2]
    left = budget - sum(x.bitrate_bps for x in decisions)
    for demand, decision in zip(demands, decisions, strict=True):
        ladder = _ladder(demand)
        if decision.paused:
            assert not ladder or ladder[0][2] > left
            continue
        layer = (decision.spatial, decision.temporal)
        rung = [(s, t) for s, t, _ in ladder].index(layer)  # type: ignore[arg-type]
        if rung + 1 < len(ladder):  # not at the top: the next step did not fit
            assert decision.reason is BW
            assert ladder[rung + 1][2] - ladder[rung][2] > left
        else:
            assert decision.reason in (OPT, TILE)
