"""QualityWatch: the connection-quality word from reported loss, with hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bandwidth.quality import QualityWatch


@pytest.mark.parametrize(
    ("losses", "words"),
    [
        ([0.0], ["good"]),
        ([0.0, 0.0], ["good", None]),  # unchanged: nothing to tell
        ([0.0, 0.02], ["good", "fair"]),
        ([0.0, 0.02, 0.015, 0.011, 0.009], ["good", "fair", None, None, "good"]),
        ([0.05, 0.10, 0.08, 0.06, 0.049], ["fair", "poor", None, None, "fair"]),
        ([0.3, 0.0], ["poor", "good"]),  # a clean report after a bad one: better at once
        ([0.0, 0.019, 0.021, 0.019], ["good", None, "fair", None]),  # hovering: one change
    ],
)
def test_the_word_changes_at_a_threshold_and_back_only_below_the_margin(
    losses: list[float], words: list[str | None]
) -> None:
    watch = QualityWatch()
    assert [watch.update(loss) for loss in losses] == words


@given(st.lists(st.floats(allow_nan=False, allow_infinity=True), max_size=50))
def test_any_reports_give_a_word(losses: list[float]) -> None:
    watch = QualityWatch()
    for loss in losses:
        changed = watch.update(loss)
        assert changed is None or changed == watch.quality
        assert watch.quality in ("good", "fair", "poor")
