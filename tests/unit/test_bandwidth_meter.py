"""LayerBitrateMeter: per-layer rates from packet sizes, cumulative over temporal layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from confsfu.bandwidth.layer_meter import LayerBitrateMeter, LayerMeterError

# (spatial, temporal) -> bytes per 10 ms tick: about 80/40/40 kbps at q, x4 at h, x12 at f.
_TICK_BYTES = {(0, 0): 100, (0, 1): 50, (0, 2): 50}
for _t, _b in list(_TICK_BYTES.items()):
    _TICK_BYTES[(1, _t[1])] = 4 * _b
    _TICK_BYTES[(2, _t[1])] = 12 * _b


def _feed(
    meter: LayerBitrateMeter, start_ms: int, end_ms: int, layers: set[tuple[int, int]]
) -> None:
    for now in range(start_ms, end_ms, 10):
        for (s, t), size in _TICK_BYTES.items():
            if (s, t) in layers:
                meter.on_packet(now, s, t, size)


ALL = set(_TICK_BYTES)


def test_empty_meter_reads_zero() -> None:
    assert not LayerBitrateMeter().bitrates_bps(5000).any()


def test_steady_publisher_is_cumulative_over_temporal_layers() -> None:
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 3000, ALL)
    rates = meter.bitrates_bps(3000)
    assert rates.shape == (3, 3)
    expected_q = np.array([80_000, 120_000, 160_000])
    np.testing.assert_allclose(rates[0], expected_q, rtol=0.02)
    np.testing.assert_allclose(rates[1], 4 * expected_q, rtol=0.02)
    np.testing.assert_allclose(rates[2], 12 * expected_q, rtol=0.02)


def test_early_rates_average_over_at_least_half_a_window() -> None:
    # A stream's first 300 ms (often one big keyframe) is spread over 500 ms, not read as the rate.
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 300, {(0, 0)})
    assert meter.bitrates_bps(300)[0, 0] == pytest.approx(80_000 * 300 / 500, rel=0.05)
    _feed(meter, 300, 800, {(0, 0)})
    assert meter.bitrates_bps(800)[0, 0] == pytest.approx(80_000, rel=0.05)


def test_a_stopped_layer_reads_zero_after_the_window() -> None:
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 2000, ALL)
    _feed(meter, 2000, 4000, ALL - {(2, 0), (2, 1), (2, 2)})  # the f encoding stops
    rates = meter.bitrates_bps(4000)
    assert not rates[2].any()
    assert rates[0].all() and rates[1].all()


def test_a_missing_base_temporal_layer_makes_the_higher_ones_unusable() -> None:
    meter = LayerBitrateMeter()
    _feed(meter, 0, 2000, ALL - {(1, 0)})
    rates = meter.bitrates_bps(2000)
    assert not rates[1].any()  # TL1/TL2 frames cannot be decoded without TL0


def test_a_stream_without_temporal_layers_has_only_column_zero() -> None:
    meter = LayerBitrateMeter()
    _feed(meter, 0, 2000, {(0, 0), (1, 0), (2, 0)})
    rates = meter.bitrates_bps(2000)
    assert rates[:, 0].all()
    assert not rates[:, 1:].any()


def test_everything_reads_zero_once_the_publisher_is_silent() -> None:
    meter = LayerBitrateMeter()
    _feed(meter, 0, 2000, ALL)
    assert not meter.bitrates_bps(3100).any()


def test_stale_packets_are_ignored() -> None:
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 3000, {(0, 0)})
    before = meter.bitrates_bps(3000)
    meter.on_packet(500, 0, 0, 1_000_000)  # far older than the window
    np.testing.assert_array_equal(meter.bitrates_bps(3000), before)


@pytest.mark.parametrize(
    ("spatial", "temporal", "size"), [(3, 0, 10), (0, 3, 10), (-1, 0, 10), (0, 0, -1)]
)
def test_bad_packets_raise_the_meter_error(spatial: int, temporal: int, size: int) -> None:
    with pytest.raises(LayerMeterError):
        LayerBitrateMeter().on_packet(0, spatial, temporal, size)


@pytest.mark.parametrize(("window", "bucket"), [(1000, 0), (50, 100), (1050, 100)])
def test_bad_settings_raise_the_meter_error(window: int, bucket: int) -> None:
    with pytest.raises(LayerMeterError):
        LayerBitrateMeter(window_ms=window, bucket_ms=bucket)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(-1, 3),
            st.integers(-1, 3),
            st.integers(-5, 2000),
        ),
        max_size=200,
    ),
    st.integers(0, 12_000),
)
def test_any_packets_give_rates_or_the_meter_error(
    packets: list[tuple[int, int, int, int]], read_ms: int
) -> None:
    meter = LayerBitrateMeter()
    for now, s, t, size in sorted(packets):
        try:
            meter.on_packet(now, s, t, size)
        except LayerMeterError:
            assert not (0 <= s < 3 and 0 <= t < 3 and size >= 0)
    rates = meter.bitrates_bps(read_ms)
    assert rates.shape == (3, 3)
    assert np.all(rates >= 0)
    assert np.all(np.diff(rates, axis=1)[rates[:, 1:] > 0] >= 0)  # cumulative where present


def test_a_layer_switched_back_on_is_measured_from_its_own_start() -> None:
    # The f encoding was off (nobody took it) and comes back 200 ms ago: read over the 500 ms
    # floor, not over the whole window, or it would look 5x cheaper than it is.
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 3000, ALL - {(2, 0), (2, 1), (2, 2)})
    _feed(meter, 3000, 3200, ALL)
    rates = meter.bitrates_bps(3200)
    assert rates[2, 0] == pytest.approx(12 * 80_000 * 200 / 500, rel=0.05)
    assert rates[0, 2] == pytest.approx(160_000, rel=0.05)  # the steady layers as before
    _feed(meter, 3200, 4000, ALL)  # near the window's start it reads a little low, then exact
    assert meter.bitrates_bps(3800)[2, 0] == pytest.approx(12 * 80_000, rel=0.15)
    assert meter.bitrates_bps(4000)[2, 0] == pytest.approx(12 * 80_000, rel=0.05)


def test_a_layer_switched_off_keeps_its_rate_while_it_leaves_the_window() -> None:
    # Nobody takes f, the publisher stops it: until it has left the window it reads what it
    # cost, not less and less (an allocator would take the fading rate for a cheap layer).
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    _feed(meter, 0, 3000, ALL)
    full = meter.bitrates_bps(3000)[2, 0]
    fed = 3000
    for end in (3400, 3600, 3800):  # at the end, 100 ms of it left in the window
        _feed(meter, fed, end, ALL - {(2, 0), (2, 1), (2, 2)})
        fed = end
        assert meter.bitrates_bps(end)[2, 0] == pytest.approx(full, rel=0.05), end
    assert meter.bitrates_bps(3800)[0, 2] == pytest.approx(160_000, rel=0.05)
    _feed(meter, 3800, 4100, ALL - {(2, 0), (2, 1), (2, 2)})
    assert not meter.bitrates_bps(4100)[2].any()  # gone: not forwardable


def test_a_sparse_layer_is_measured_over_the_whole_window() -> None:
    # One 1000-byte frame every 250 ms: the first one in the window may come 200 ms late.
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    for now in range(0, 4000, 250):
        meter.on_packet(now, 0, 0, 1000)
    assert meter.bitrates_bps(3999)[0, 0] == pytest.approx(32_000, rel=0.3)
    assert meter.bitrates_bps(3999)[0, 0] <= 32_000 * 1.1


def _reference_rates(meter: LayerBitrateMeter, now_ms: int) -> list[float]:
    """The meter's rule written out plainly: per layer, bytes in the window's buckets over the
    window's span; from the layer's own start when it sent nothing in the first buckets, up to
    its own end when it sent nothing in the last ones."""
    bucket_ms, n, first_bucket, epochs, counts = meter.counts.state()
    if first_bucket is None:
        return [0.0] * 9
    now_bucket = now_ms // bucket_ms
    oldest = now_bucket - n + 1
    start = max(oldest, first_bucket)
    restart = start + -(-300 // bucket_ms)
    stop = now_bucket - -(-300 // bucket_ms)
    live = [
        (epoch, counts[slot * 9 : slot * 9 + 9])
        for slot, epoch in enumerate(epochs)
        if oldest <= epoch <= now_bucket
    ]
    if not live:
        return [0.0] * 9
    least_ms = bucket_ms * max(1, n // 2)
    rates = []
    for k in range(9):
        total = sum(chunk[k] for _, chunk in live)
        early = sum(chunk[k] for epoch, chunk in live if epoch < restart)
        late = sum(chunk[k] for epoch, chunk in live if epoch > stop)
        since = min((e for e, chunk in live if chunk[k]), default=start) if not early else start
        end_ms, floor_ms = now_ms, least_ms
        if total and not late:
            end_ms = (max(e for e, chunk in live if chunk[k]) + 1) * bucket_ms
            if early and now_ms - start * bucket_ms >= least_ms:
                floor_ms = bucket_ms  # there all along, then stopped: its span is exact
        rates.append(total * 8000.0 / max(end_ms - since * bucket_ms, floor_ms))
    return rates


@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 2), st.integers(0, 2), st.integers(0, 1500)),
        max_size=60,
    ),
    st.integers(0, 3000),
)
@example([(0, 0, 0, 1000), (310, 2, 1, 500)], 500)  # a layer starting in the restart bucket
def test_rates_follow_the_plain_rule(packets: list[tuple[int, int, int, int]], after: int) -> None:
    meter = LayerBitrateMeter()
    now = 0
    for step, spatial, temporal, size in packets:  # time goes forward in 0-40 ms steps
        now += step
        meter.on_packet(now, spatial, temporal, size)
    assert meter.counts.rates(now + after) == pytest.approx(_reference_rates(meter, now + after))


# The publisher's f layer (2, 0) at 960 kbit/s, a gap longer than the window (its encoder
# starved), then again: (read at ms, fed until then, what bitrates_bps reads at least/most, what
# costs_bps gives at least).
RESTART = [
    (3000, True, 900_000, 1_000_000, 900_000),  # steady
    (4200, False, 0, 0, 0),  # gone: not available (zero); its cost frozen meanwhile
    (4300, True, 100_000, 300_000, 800_000),  # back: its first 100 ms over half a window ...
    (4700, True, 900_000, 1_000_000, 900_000),  # ... until it spans half a window
]


def test_costs_do_not_read_a_restarted_layer_low() -> None:
    meter = LayerBitrateMeter(window_ms=1000, bucket_ms=100)
    fed_ms = 0
    for at, sending, low, high, cost in RESTART:
        if sending:
            _feed(meter, fed_ms, at, {(2, 0)})
        fed_ms = at
        measured, costed = meter.bitrates_bps(at)[2, 0], meter.costs_bps(at)[2, 0]
        assert low <= measured <= high, (at, measured)
        assert costed >= cost and (costed > 0) == (measured > 0), (at, costed)
