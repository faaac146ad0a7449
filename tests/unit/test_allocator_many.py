"""allocate_many(): the whole room at once, equal to allocate() per subscriber."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from confsfu.bandwidth.allocator import (
    AllocatorError,
    Demand,
    Priority,
    allocate,
    allocate_many,
)

K = 1000
REAL = np.array([[50, 75, 100], [150, 225, 300], [500, 750, 1000]], dtype=np.float64) * K


def _scalar(
    budgets: np.ndarray,
    bitrates: np.ndarray,
    priorities: np.ndarray,
    max_layers: np.ndarray,
    visible: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """allocate() once per subscriber, laid out like allocate_many's answer."""
    n_subs, n_tracks = visible.shape
    spatial = np.full((n_subs, n_tracks), -1)
    temporal = np.full((n_subs, n_tracks), -1)
    for s in range(n_subs):
        shown = [t for t in range(n_tracks) if visible[s, t]]
        demands = [
            Demand(
                f"track-{t}",
                Priority(int(priorities[s, t])),
                int(max_layers[s, t, 0]),
                int(max_layers[s, t, 1]),
                bitrates[s, t],
            )
            for t in shown
        ]
        for t, decision in zip(shown, allocate(int(budgets[s]), demands), strict=True):
            if decision.spatial is not None and decision.temporal is not None:
                spatial[s, t], temporal[s, t] = decision.spatial, decision.temporal
    return spatial, temporal


@st.composite
def rooms(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n_subs = draw(st.integers(1, 6))
    n_tracks = draw(st.integers(0, 12))
    # Realistic-looking layers with holes (layers not published), or fully arbitrary numbers.
    scale = draw(hnp.arrays(np.float64, (n_subs, n_tracks, 1, 1), elements=st.floats(0.2, 3.0)))
    holes = draw(hnp.arrays(np.bool_, (n_subs, n_tracks, 3, 3)))
    arbitrary = draw(
        hnp.arrays(np.int64, (n_subs, n_tracks, 3, 3), elements=st.integers(0, 3_000_000))
    )
    mode = draw(st.sampled_from(["real", "arbitrary"]))
    if mode == "real":
        bitrates = np.where(holes, 0.0, REAL * scale)
    else:
        bitrates = arbitrary.astype(np.float64)
    priorities = draw(hnp.arrays(np.int64, (n_subs, n_tracks), elements=st.integers(0, 3)))
    max_layers = draw(hnp.arrays(np.int64, (n_subs, n_tracks, 2), elements=st.integers(0, 2)))
    visible = draw(hnp.arrays(np.bool_, (n_subs, n_tracks)))
    budgets = draw(hnp.arrays(np.int64, (n_subs,), elements=st.integers(0, 6_000_000)))
    return budgets, bitrates, priorities, max_layers, visible


@settings(max_examples=300, deadline=None)
@given(rooms())
def test_allocate_many_equals_allocate_per_subscriber(room: tuple[np.ndarray, ...]) -> None:
    spatial, temporal = allocate_many(*room)
    expected_spatial, expected_temporal = _scalar(*room)
    np.testing.assert_array_equal(spatial, expected_spatial)
    np.testing.assert_array_equal(temporal, expected_temporal)


def test_shared_track_bitrates_and_priorities_broadcast() -> None:
    bitrates = np.stack([REAL, REAL, REAL])  # (T, 3, 3): the same for every subscriber
    priorities = np.array([Priority.STAGE, Priority.THUMBNAIL, Priority.THUMBNAIL])
    max_layers = np.array([[2, 2], [0, 2], [0, 2]])
    visible = np.ones((2, 3), dtype=bool)
    spatial, temporal = allocate_many(
        np.array([5_000 * K, 150 * K]), bitrates, priorities, max_layers, visible
    )
    np.testing.assert_array_equal(spatial, [[2, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(temporal, [[2, 2, 2], [0, 0, 0]])


def test_hidden_tracks_get_nothing_and_cost_nothing() -> None:
    bitrates = np.stack([REAL, REAL])
    spatial, temporal = allocate_many(
        np.array([100 * K]), bitrates, np.array([3, 0]), np.full((2, 2), 2), [[False, True]]
    )
    np.testing.assert_array_equal(spatial, [[-1, 0]])
    np.testing.assert_array_equal(temporal, [[-1, 2]])


def test_a_room_without_tracks() -> None:
    spatial, temporal = allocate_many(
        np.array([1000, 2000]), np.zeros((0, 3, 3)), np.zeros(0), np.zeros((0, 2)), np.ones((2, 0))
    )
    assert spatial.shape == temporal.shape == (2, 0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("budgets", np.zeros((2, 2)), "budgets"),
        ("bitrates", np.zeros((1, 2, 3)), "shape"),
        ("bitrates", -np.ones((1, 2, 3, 3)), ">= 0"),
        ("priorities", np.zeros(5), "do not fit"),
        ("max_layers", np.full((1, 2, 2), 3), "max_layers"),
        ("visible", np.ones((3, 3), dtype=bool), "do not fit"),
    ],
)
def test_bad_arrays_raise_the_allocator_error(field: str, value: np.ndarray, message: str) -> None:
    args = {
        "budgets": np.array([1000]),
        "bitrates": np.ones((1, 2, 3, 3)),
        "priorities": np.zeros((1, 2)),
        "max_layers": np.zeros((1, 2, 2)),
        "visible": np.ones((1, 2), dtype=bool),
    }
    args[field] = value
    with pytest.raises(AllocatorError, match=message):
        allocate_many(
            args["budgets"],
            args["bitrates"],
            args["priorities"],
            args["max_layers"],
            args["visible"],
        )
