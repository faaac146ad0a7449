"""The queue a link holds, read from transport-cc feedback (`QueueDelay`), and what follows from
it: a probe stopped
before it floods the queue, and a drain hold begun by a fall into a long queue or weighed
against the layer still sent when it is dearer than the decision (issue 20: a Firefox
subscriber froze when the link dropped). As tables, with time as an argument."""

from __future__ import annotations

import numpy as np
import pytest

from confsfu.bandwidth.allocator import Demand, Priority
from confsfu.bandwidth.budget import BudgetRules, SubscriberBudget
from confsfu.bandwidth.delay_based import AckedBitrate, QueueDelay
from confsfu.bandwidth.drain import DrainConfig, QueueDrain
from confsfu.bandwidth.estimation import EstimatorConfig, EstimatorError
from confsfu.bandwidth.hysteresis import AllocatorConfig
from confsfu.bandwidth.probe import SEND_SIDE_PROBES, ProbeController
from confsfu.bandwidth.twcc import TwccEstimator

# (now_ms, one-way delays of the packets one feedback acknowledges) -> (queue ms, rising)
Row = tuple[int, list[float], float, bool]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [(0, [500.0, 503.0], 0.0, False), (50, [502.0, 501.0], 1.0, True)],
            id="an empty queue: the offset is not a queue",
        ),
        pytest.param(
            [
                (0, [-900.0], 0.0, False),
                (50, [-870.0, -860.0], 30.0, True),
                (100, [-800.0, -780.0], 100.0, True),
                (150, [-790.0], 110.0, True),
                (200, [-850.0], 50.0, False),  # draining
            ],
            id="a queue builds and drains",
        ),
        pytest.param(
            [(0, [10.0], 0.0, False), (50, [10.0, 250.0], 0.0, False)],
            id="a batch's least delay: one late packet is no queue",
        ),
        pytest.param(
            [(0, [10.0], 0.0, False), (50, [], 0.0, False), (100, [40.0], 30.0, True)],
            id="feedback acknowledging nothing changes nothing",
        ),
        pytest.param(
            [(0, [10.0], 0.0, False), (5_000, [60.0], 50.0, True), (10_001, [60.0], 0.0, False)],
            id="the empty queue's delay is the least over the window",
        ),
        pytest.param(
            [(0, [10.0], 0.0, False), (50, [200.0], 190.0, True), (100, [5_000.0], 0.0, False)],
            id="the receiver's clock jumped: start over",
        ),
    ],
)
def test_queue_delay_as_a_table(rows: list[Row]) -> None:
    queue = QueueDelay(10_000)
    for now_ms, delays, value, rising in rows:
        queue.on_feedback(now_ms, [(now_ms - 30.0, delay) for delay in delays])
        assert (queue.value_ms, queue.rising) == (pytest.approx(value), rising), now_ms


def test_the_sliding_minimum_is_bounded() -> None:
    queue = QueueDelay(10_000)
    for i in range(5_000):  # ever later: each one a candidate for the minimum
        queue.on_feedback(i, [(float(i), float(i % 2_000))])
    assert len(queue._lows) <= QueueDelay._MAX_LOWS


def test_the_link_rate_is_what_arrived_since_the_queue_was_empty() -> None:
    queue = QueueDelay(10_000)
    queue.on_feedback(0, [(100.0, 5.0), (110.0, 6.0)])
    assert queue.empty_arrival_ms == 110.0
    queue.on_feedback(50, [(150.0, 40.0), (160.0, 60.0)])  # a queue: the time stays
    assert queue.empty_arrival_ms == 110.0
    acked = AckedBitrate(500)
    for at in range(0, 400, 10):  # 1000 bytes every 10 ms: 800 kbit/s
        acked.add(float(at), 1000)
    for at in range(400, 700, 40):  # then every 40 ms: 200 kbit/s
        acked.add(float(at), 1000)
    assert acked.rate_since_bps(390.0) == pytest.approx(8 * 1000 * 8000 / (680 - 390))
    assert acked.rate_since_bps(670.0) is None  # too short to tell


def test_a_standing_queue_does_not_cut_again_and_again() -> None:
    """Delay that stays high (not rising) is not over-use of its own: the estimate holds."""
    estimator = TwccEstimator(EstimatorConfig(initial_bps=1_000_000))
    seq = 0
    for now_ms in range(0, 3_000, 50):  # 5 packets of 1000 bytes per 50 ms: 800 kbit/s
        batch = []
        for i in range(5):
            send_ms = now_ms + 10 * i
            estimator.on_packet_sent(send_ms, seq, 1000)
            extra = 0 if now_ms < 500 else 300  # a queue of 300 ms, from 0.5 s on, standing
            batch.append((seq, (send_ms + 20 + extra) * 1000 + (i % 2) * 500))
            seq += 1
        estimator.on_transport_feedback(now_ms + 60, batch)
    after_jump = estimator.estimate_bps(3_000)
    assert after_jump >= 0.8 * 800_000 * 0.85  # one cut at most, none after


def test_queue_settings_out_of_range_are_refused() -> None:
    with pytest.raises(EstimatorError):
        EstimatorConfig(queue_window_ms=0)


# (event, now_ms, queue_ms) -> probing: "update" once a second, "feedback" in between
@pytest.mark.parametrize(
    ("steps", "probing"),
    [
        ([("update", 0, 0.0)], True),
        ([("update", 0, 90.0)], False),  # a queue already: no probe into it
        ([("update", 0, 0.0), ("feedback", 50, 40.0)], True),
        ([("update", 0, 0.0), ("feedback", 50, 80.0)], False),  # stopped at once
        ([("update", 0, 0.0), ("update", 1_000, 85.0)], False),
    ],
)
def test_a_probe_stops_at_a_queue_and_none_starts_into_one(
    steps: list[tuple[str, int, float]], probing: bool
) -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    for event, now_ms, queue_ms in steps:
        if event == "update":
            probe.update(
                now_ms, estimate_bps=300_000, media_bps=250_000, wanted_bps=900_000, loss=0.0,
                queue_ms=queue_ms,
            )  # fmt: skip
        else:
            probe.on_estimate(now_ms, 300_000, queue_ms)
    assert probe.probing is probing
    assert (probe.padding_bps > 0) is probing


RATES = np.array([[100, 150, 200], [300, 400, 500], [900, 1200, 1500]]) * 1000.0


@pytest.mark.parametrize(
    ("forwarding", "holds"),
    [
        (None, False),  # priced at the decision (1/2 and audio): 300k is over half of 540k
        ({"stage": (1, 1)}, False),  # the switch down happened
        ({"stage": (2, 1)}, True),  # 2/1 goes on until the keyframe: 300k under half of 1.24M
        ({"other": (2, 2)}, False),  # a track the budget does not know
        ({"stage": (7, 9)}, False),  # no such layer
    ],
)
def test_a_fall_is_weighed_against_the_layer_still_sent(
    forwarding: dict[str, tuple[int, int]] | None, holds: bool
) -> None:
    estimator = TwccEstimator(EstimatorConfig(initial_bps=2_500_000))
    budget = SubscriberBudget(BudgetRules(warmup_ms=0), estimator, AllocatorConfig())
    stage = Demand("stage", Priority.STAGE, 2, 2, RATES, floor=True)
    budget.allocate(0, [stage], 40_000)
    assert budget.decisions[0].spatial == 2
    assert not budget.on_feedback(50, None, 0, forwarding)
    # The estimate fell to 800k (over half of 2/2's 1.54M: no hold): decided down to 1/2.
    estimator._rate.rate_bps = 800_000.0
    assert not budget.on_feedback(100, None, 0, forwarding)
    budget.allocate(100, [stage], 40_000)
    assert budget.decisions[0].spatial == 1
    estimator._rate.rate_bps = 300_000.0  # and further
    assert budget.on_feedback(300, None, 0, forwarding) is holds
    assert budget.drain.holding is holds


# (now_ms, estimate, cost, queue_ms) -> a hold began
@pytest.mark.parametrize(
    ("steps", "began"),
    [
        ([(0, 900_000, 1_000_000, 0.0), (100, 700_000, 1_000_000, 300.0)], True),
        ([(0, 900_000, 1_000_000, 0.0), (100, 700_000, 1_000_000, 200.0)], False),  # short
        ([(0, 700_000, 1_000_000, 0.0), (100, 700_000, 1_000_000, 400.0)], False),  # no fall
        ([(0, 900_000, 1_000_000, 0.0), (100, 400_000, 1_000_000, 0.0)], True),  # by cost
    ],
)
def test_a_fall_into_a_long_queue_holds_whatever_the_layers_cost(
    steps: list[tuple[int, int, int, float]], began: bool
) -> None:
    drain = QueueDrain(DrainConfig(fall=0.5, queue_ms=250.0))
    got = [drain.on_estimate(now_ms, e, cost, queue_ms) for now_ms, e, cost, queue_ms in steps]
    assert got[-1] is began
    assert drain.holding is began


def test_a_queue_setting_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_ms"):
        DrainConfig(queue_ms=-1.0)
