"""The subscriber's loss summed over its receiver reports' streams (bandwidth/report_loss.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bandwidth.report_loss import ReportLoss
from confsfu.rtp.rtcp import ReportBlock


def block(ssrc: int, highest: int, lost: int, fraction: int = 0) -> ReportBlock:
    return ReportBlock(ssrc, fraction, lost, highest, 0, 0, 0)


# (reports, each a list of (ssrc, highest, cumulative lost)) -> the fractions given
CASES = [
    pytest.param([[(1, 100, 0)]], [None], id="a first report only sets the start"),
    pytest.param([[(1, 100, 0)], [(1, 200, 2)]], [None, 0.02], id="one stream"),
    pytest.param(
        [[(1, 100, 0), (2, 50, 0)], [(1, 190, 0), (2, 60, 1)]],
        [None, 0.01],
        id="streams weigh by their packets (the worst block said 10 %)",
    ),
    pytest.param(
        [[(1, 100, 0)], [(1, 110, 1)], [(1, 125, 1)]],
        [None, None, 0.04],
        id="under min_packets the count carries to the next report",
    ),
    pytest.param([[(1, 100, 5)], [(1, 150, 3)]], [None, 0.0], id="duplicates: lost fell"),
    pytest.param([[(1, 100, 0)], [(1, 120, 50)]], [None, 1.0], id="lost above expected"),
    pytest.param(
        [[(1, 100, 0)], [(1, 90, 0)], [(1, 130, 4)]],
        [None, None, 0.1],
        id="a stream that went backwards starts again from there",
    ),
    pytest.param(
        [[(1, 100, 0)], [(1, 100 + (1 << 20), 0)], [(1, 100 + (1 << 20) + 40, 2)]],
        [None, None, 0.05],
        id="a jump is not believed",
    ),
    pytest.param(
        [[(1, (1 << 32) - 10, 0)], [(1, 30, 4)]], [None, 0.1], id="the sequence space wraps"
    ),
    pytest.param(
        [[(1, 100, (1 << 24) - 1)], [(1, 200, 1)]],
        [None, 0.02],
        id="cumulative lost is signed 24 bits (-1 then 1)",
    ),
    pytest.param([[(1, 100, 0)], [(1, 100, 0)]], [None, None], id="nothing new"),
]


@pytest.mark.parametrize(("reports", "fractions"), CASES)
def test_loss_over_reports(
    reports: list[list[tuple[int, int, int]]], fractions: list[float | None]
) -> None:
    loss = ReportLoss()
    got = [loss.on_report([block(*b) for b in report]) for report in reports]
    assert got == pytest.approx(fractions)


def test_streams_beyond_the_bound_forget_the_oldest() -> None:
    loss = ReportLoss(max_streams=2)
    loss.on_report([block(1, 100, 0), block(2, 100, 0)])
    loss.on_report([block(3, 100, 0)])  # 1 forgotten
    # 2 is still known and counts; 1 starts again (its 50 lost are not counted)
    assert loss.on_report([block(2, 130, 3), block(1, 200, 50)]) == pytest.approx(0.1)


def test_random_loss_on_many_small_streams_reads_as_the_link_loses() -> None:
    """2 % random loss on six streams of 15 packets a report: the worst block (what the server
    used) shows over 10 % in most reports; the sum stays near 2 %."""
    rng = random.Random(7)
    loss = ReportLoss()
    highest = dict.fromkeys(range(6), 0)
    lost = dict.fromkeys(range(6), 0)
    worst_over_10, fractions = 0, []
    for _ in range(200):
        blocks, worst = [], 0.0
        for ssrc in highest:
            dropped = sum(rng.random() < 0.02 for _ in range(15))
            highest[ssrc] += 15
            lost[ssrc] += dropped
            worst = max(worst, dropped / 15)
            blocks.append(block(ssrc, highest[ssrc], lost[ssrc]))
        worst_over_10 += worst > 0.10
        fraction = loss.on_report(blocks)
        if fraction is not None:
            fractions.append(fraction)
    assert worst_over_10 > 20
    assert len(fractions) == 199
    assert max(fractions) < 0.10
    assert sum(fractions) / len(fractions) == pytest.approx(0.02, abs=0.005)


reports = st.lists(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 24) - 1)),
        max_size=8,
    ),
    max_size=30,
)


@given(reports)
def test_any_reports_give_a_fraction_within_0_and_1(
    given_reports: list[list[tuple[int, int, int]]],
) -> None:
    loss = ReportLoss(min_packets=1, max_streams=4)
    for report in given_reports:
        fraction = loss.on_report([block(*b) for b in report])
        assert fraction is None or 0.0 <= fraction <= 1.0
    assert len(loss._seen) <= 4


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReportLoss(min_packets=0)
