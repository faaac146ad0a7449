"""QueueDrain: a subscriber's video held after a sharp fall until feedback acknowledges a packet
sent since the hold began (the queue in front of the link drained), as tables."""

from __future__ import annotations

import numpy as np
import pytest

from confsfu.bandwidth.allocator import Demand, Priority, Reason
from confsfu.bandwidth.budget import BudgetRules, SubscriberBudget
from confsfu.bandwidth.drain import DrainConfig, QueueDrain
from confsfu.bandwidth.estimation import EstimatorConfig
from confsfu.bandwidth.estimators import make_estimator
from confsfu.bandwidth.hysteresis import AllocatorConfig
from confsfu.bandwidth.twcc import TwccEstimator

CONFIG = DrainConfig(fall=0.5, max_hold_ms=1500, rest_ms=2000)

# (event, now_ms, value, cost_bps) -> (changed, holding): "estimate" values are estimates,
# "ack" values the newest send time feedback acknowledged (None: none)
Step = tuple[str, int, int | None, int, bool, bool]


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(
            [
                ("estimate", 0, 2_000_000, 1_800_000, False, False),
                ("estimate", 100, 1_000_000, 1_800_000, False, False),
            ],
            id="a fall to half: no hold",
        ),
        pytest.param(
            [
                ("estimate", 0, 300_000, 1_800_000, False, False),  # a first estimate: no fall
                ("estimate", 100, 300_000, 1_800_000, False, False),  # the same: no fall
                ("estimate", 200, 320_000, 900_000, False, False),  # a probe: sent 2x, rising
            ],
            id="low against what is sent, but no fall",
        ),
        pytest.param(
            [
                ("estimate", 0, 2_000_000, 1_800_000, False, False),
                ("estimate", 100, 700_000, 1_800_000, True, True),
                ("estimate", 150, 200_000, 1_800_000, False, True),  # one hold at a time
                ("ack", 200, 95, 0, False, True),  # sent before the hold: still queued behind
                ("ack", 500, None, 0, False, True),
                ("ack", 800, 100, 0, True, False),  # sent as it began: the queue drained
            ],
            id="held until a packet sent since it began is acknowledged",
        ),
        pytest.param(
            [
                ("estimate", 0, 400_000, 1_800_000, False, False),
                ("estimate", 100, 300_000, 1_800_000, True, True),
                ("ack", 1_599, 99, 0, False, True),
                ("ack", 1_600, 99, 0, True, False),  # feedback lost: released anyway
                ("estimate", 3_500, 200_000, 600_000, False, False),  # resting
                ("estimate", 3_600, 100_000, 600_000, True, True),
            ],
            id="released after max_hold_ms, then a rest",
        ),
        pytest.param([("ack", 10, 5, 0, False, False)], id="an acknowledgement without a hold"),
    ],
)
def test_holds_as_a_table(steps: list[Step]) -> None:
    drain = QueueDrain(CONFIG)
    for event, now_ms, value, cost, changed, holding in steps:
        if event == "estimate":
            assert value is not None
            got = drain.on_estimate(now_ms, value, cost)
        else:
            got = drain.on_acknowledged(now_ms, value)
        assert (got, drain.holding) == (changed, holding), (event, now_ms)


def test_a_config_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="fall"):
        DrainConfig(fall=0.0)


def test_the_twcc_estimator_tells_the_newest_send_time_acknowledged() -> None:
    estimator = TwccEstimator(EstimatorConfig())
    for seq, sent_ms in enumerate((10, 20, 30)):
        estimator.on_packet_sent(sent_ms, seq, 1000)
    assert estimator.acked_sent_ms is None
    estimator.on_transport_feedback(100, [(0, 50_000), (1, 60_000), (2, None)])
    assert estimator.acked_sent_ms == 20  # the lost one is not acknowledged
    estimator.on_transport_feedback(200, [(0, 50_000)])  # again: told already
    assert estimator.acked_sent_ms == 20


def test_a_budget_pauses_its_tiles_while_holding_and_gives_them_back() -> None:
    estimator = TwccEstimator(EstimatorConfig(initial_bps=2_500_000))
    budget = SubscriberBudget(BudgetRules(warmup_ms=0), estimator, AllocatorConfig())
    rates = np.array([[100, 150, 200], [300, 400, 500], [900, 1200, 1500]]) * 1000.0
    stage = Demand("stage", Priority.STAGE, 2, 2, rates, floor=True)
    budget.allocate(0, [stage], 40_000)
    before = budget.decisions
    assert before[0].spatial == 2
    assert not budget.on_feedback(10, None)  # the estimate still carries the layer
    budget.drain.on_estimate(20, 100_000, 1_540_000)  # as a sharp fall would
    changed = budget.allocate(30, [stage], 40_000)
    assert changed is not None and budget.decisions == changed
    assert (changed[0].spatial, changed[0].reason) == (None, Reason.DRAINING)
    assert budget.allocate(40, [stage], 40_000) is None  # the same held decisions
    assert budget.on_feedback(50, 25)  # a packet sent since the hold arrived
    assert budget.allocate(60, [stage], 40_000) == budget.decisions
    assert budget.decisions[0].spatial is not None


@pytest.mark.parametrize(
    ("scale_now", "holds"),
    [
        (0.2, False),  # the layers cost what they did: 400k is over half of 340k
        (1.0, True),  # the publisher's top layer is at its rate now: 400k is under half of 1.54M
    ],
)
def test_a_hold_weighs_the_layers_at_what_they_cost_now(scale_now: float, holds: bool) -> None:
    """Chosen while the publisher was starting (its top layer at a fifth of its rate), the
    decision's own bitrate is stale; a drop comes under the layer as it costs now."""
    estimator = make_estimator("remb", EstimatorConfig(initial_bps=2_500_000))
    budget = SubscriberBudget(BudgetRules(warmup_ms=0), estimator, AllocatorConfig())
    rates = np.array([[100, 150, 200], [300, 400, 500], [900, 1200, 1500]]) * 1000.0

    def stage(scale: float) -> Demand:
        return Demand("stage", Priority.STAGE, 2, 2, rates * scale, floor=True)

    estimator.on_remb(0, 2_500_000)
    budget.allocate(0, [stage(0.2)], 40_000)  # 2/2 at 300 kbit/s
    assert budget.decisions[0].spatial == 2
    assert budget.allocate(250, [stage(scale_now)], 40_000) is None  # the same shape
    assert not budget.on_feedback(300, None)
    estimator.on_remb(310, 400_000)
    assert budget.on_feedback(320, None) is holds


# (now_ms, estimate, cost, queue_ms, padding_bps) -> a hold began at the last step
PadStep = tuple[int, int, int, float, int]
TAIL = DrainConfig(fall=0.5, queue_ms=250.0, padding_tail_ms=2000)


@pytest.mark.parametrize(
    ("steps", "began"),
    [
        pytest.param(
            [(0, 300_000, 250_000, 0.0, 300_000), (100, 240_000, 250_000, 300.0, 300_000)],
            False,
            id="a failed probe's own queue",
        ),
        pytest.param(
            [(0, 300_000, 250_000, 0.0, 300_000), (1_100, 240_000, 250_000, 360.0, 0)],
            False,
            id="its queue seen 1.1 s after the padding stopped",
        ),
        pytest.param(
            [(0, 300_000, 250_000, 0.0, 300_000), (2_000, 240_000, 250_000, 300.0, 0)],
            True,
            id="a queue 2 s after the padding: the media's",
        ),
        pytest.param(
            [(0, 2_000_000, 1_700_000, 0.0, 600_000), (100, 700_000, 1_700_000, 200.0, 0)],
            True,
            id="a drop during a probe: the layers no longer fit",
        ),
        pytest.param(
            [(0, 300_000, 250_000, 0.0, 0), (100, 240_000, 250_000, 300.0, 0)],
            True,
            id="no padding: a fall into a long queue",
        ),
    ],
)
def test_probe_padding_begins_no_hold(steps: list[PadStep], began: bool) -> None:
    drain = QueueDrain(TAIL)
    got = [drain.on_estimate(t, e, cost, queue, pad) for t, e, cost, queue, pad in steps]
    assert got[-1] is began and drain.holding is began
    assert not any(got[:-1])


@pytest.mark.parametrize(("padding_bps", "holds"), [(0, False), (500_000, False)])
def test_a_budget_does_not_price_probe_padding(padding_bps: int, holds: bool) -> None:
    """A 2x probe's padding, priced, put what is sent at twice the estimate: any fall under it
    began a hold, though the layer still fitted (the simulator's 1 Mbit/s phase froze 1.5 s)."""
    estimator = TwccEstimator(EstimatorConfig(initial_bps=500_000))
    budget = SubscriberBudget(BudgetRules(warmup_ms=0), estimator, AllocatorConfig())
    rates = np.array([[100, 150, 200], [300, 400, 500], [900, 1200, 1500]]) * 1000.0
    stage = Demand("stage", Priority.STAGE, 2, 2, rates, floor=True)
    budget.allocate(0, [stage], 40_000)
    layer = budget.decisions[0]
    assert (layer.spatial, layer.temporal) == (1, 1)  # 400k and audio in 500k less the margin
    assert not budget.on_feedback(50, None, padding_bps)
    estimator._rate.rate_bps = 450_000.0  # the probe failed: the estimate fell a little
    assert budget.on_feedback(100, None, padding_bps) is holds


# (event, now_ms, estimate or newest acknowledged send time, queue_ms, link_bps, rising)
#   -> (changed, holding)
NarrowStep = tuple[str, int, int | None, float, float | None, bool, bool, bool]
NARROW = DrainConfig(fall=0.5, queue_ms=250.0, link_queue_ms=100.0)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(
            [
                ("estimate", 0, 2_900_000, 40.0, 290_000.0, True, False, False),  # short yet
                ("estimate", 100, 2_900_000, 110.0, 290_000.0, True, True, True),
                ("ack", 800, 150, 600.0, None, False, False, True),  # drained, estimate not cut
                ("estimate", 900, 700_000, 600.0, 290_000.0, False, False, True),
                ("ack", 1_000, 200, 500.0, None, False, True, False),  # both now
            ],
            id="a growing queue under a narrow link holds before the fall, until it",
        ),
        pytest.param(
            [
                ("estimate", 0, 2_900_000, 0.0, None, False, False, False),
                ("estimate", 100, 2_900_000, 110.0, 1_200_000.0, True, False, False),
            ],
            id="the link carries over half of what is sent: no hold",
        ),
        pytest.param(
            [
                ("estimate", 0, 2_900_000, 0.0, None, False, False, False),
                ("estimate", 100, 2_900_000, 150.0, 290_000.0, False, False, False),
            ],
            id="a queue not growing: no hold",
        ),
        pytest.param(
            [
                ("estimate", 0, 2_900_000, 0.0, None, False, False, False),
                ("estimate", 100, 700_000, 110.0, 290_000.0, True, True, True),
                ("ack", 800, 150, 600.0, None, False, True, False),  # fell already: drained is all
            ],
            id="a fall and a narrow link at once: an ordinary hold",
        ),
    ],
)
def test_a_narrow_link_holds_before_the_estimate_falls(steps: list[NarrowStep]) -> None:
    drain = QueueDrain(NARROW)
    for event, now_ms, value, queue, link, rising, changed, holding in steps:
        assert value is not None
        if event == "estimate":
            got = drain.on_estimate(now_ms, value, 1_740_000, queue, 0, link, rising)
        else:
            got = drain.on_acknowledged(now_ms, value)
        assert (got, drain.holding) == (changed, holding), (event, now_ms)


def test_the_twcc_estimator_tells_the_rate_out_of_its_queue() -> None:
    """1000 bytes sent every 10 ms into a link that passes one every 25 ms (320 kbit/s): the
    queue grows, and what comes out of it comes at the link's rate."""
    estimator = TwccEstimator(EstimatorConfig())
    assert estimator.queue_rate_bps() is None  # no feedback yet
    for seq in range(60):
        estimator.on_packet_sent(seq * 10, seq, 1000)
    arrivals = [(seq, 5_000 + seq * 25_000) for seq in range(60)]  # first one at once
    for now_ms in range(100, 1_600, 100):  # each feedback names what arrived meanwhile
        got = [(seq, at) for seq, at in arrivals if now_ms - 100 <= at // 1000 < now_ms]
        if got:
            estimator.on_transport_feedback(now_ms, got)
    assert estimator.queue.value_ms > 500 and estimator.queue.rising
    rate = estimator.queue_rate_bps()
    assert rate is not None and 300_000 <= rate <= 340_000
