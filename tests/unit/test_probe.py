"""The probe controller: when padding starts, how much, when it stops and how it backs off."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bandwidth.probe import SEND_SIDE_PROBES, ProbeConfig, ProbeController, ProbeError

CFG = ProbeConfig(duration_ms=10_000, min_interval_ms=4000, max_interval_ms=16_000, gain=1.2)


def step(
    probe: ProbeController,
    now_ms: int,
    estimate: int,
    *,
    media: int = 300_000,
    wanted: int = 1_500_000,
    loss: float = 0.0,
) -> int:
    return probe.update(
        now_ms, estimate_bps=estimate, media_bps=media, wanted_bps=wanted, loss=loss
    )


@pytest.mark.parametrize(
    ("estimate", "wanted", "loss", "padding"),
    [
        (400_000, 1_500_000, 0.0, 180_000),  # short: pad up to 1.2 x the estimate
        (1_400_000, 1_500_000, 0.0, 0),  # within the margin: not short, no probe
        (2_000_000, 1_500_000, 0.0, 0),  # the estimate buys everything
        (400_000, 1_500_000, 0.05, 0),  # lossy link: no probe starts
        (1_300_000, 1_500_000, 0.0, 1_200_000),  # never beyond what the tiles want
        (200_000, 1_500_000, 0.0, 0),  # media already at 1.2 x the estimate or more
    ],
)
def test_a_probe_starts_only_when_short_and_clean(
    estimate: int, wanted: int, loss: float, padding: int
) -> None:
    probe = ProbeController(CFG)
    assert step(probe, 0, estimate, wanted=wanted, loss=loss) == padding


def test_a_probe_that_lifts_the_estimate_ends_and_the_next_may_start_soon() -> None:
    probe = ProbeController(CFG)
    assert step(probe, 0, 400_000) > 0
    assert step(probe, 5000, 1_500_000) == 0  # the estimate now covers the want
    assert not probe.probing
    assert step(probe, 8000, 400_000) == 0  # min interval not over
    assert step(probe, 9000, 400_000) > 0


def test_loss_or_a_falling_estimate_stops_a_probe_and_backs_off_doubling() -> None:
    probe = ProbeController(CFG)
    assert step(probe, 0, 400_000) > 0
    assert step(probe, 1000, 400_000, loss=0.1) == 0  # failed: next in 8 s
    assert step(probe, 8999, 400_000) == 0
    assert step(probe, 9000, 400_000) > 0
    assert step(probe, 10_000, 300_000) == 0  # fell below 85%: next in 16 s (the cap)
    assert step(probe, 25_999, 300_000) == 0
    assert step(probe, 26_000, 300_000) > 0
    assert step(probe, 27_000, 300_000, loss=0.5) == 0  # capped at 16 s
    assert step(probe, 43_000, 300_000) > 0
    assert probe.probes_failed == 3


def test_a_probe_lasts_at_most_its_duration() -> None:
    probe = ProbeController(CFG)
    assert step(probe, 0, 400_000) > 0
    assert step(probe, 9_999, 410_000) > 0
    assert step(probe, 10_000, 450_000) == 0  # timed out having risen: counts as progress
    assert step(probe, 14_000, 450_000) > 0
    assert step(probe, 24_000, 450_000) == 0  # timed out flat: a failure, backs off 8 s
    assert step(probe, 31_999, 450_000) == 0
    assert step(probe, 32_000, 450_000) > 0


def test_padding_bytes_follow_the_rate_and_overshoot_is_paid_back() -> None:
    probe = ProbeController(CFG)
    step(probe, 0, 400_000)  # 180 kbit/s = 22.5 bytes/ms
    assert probe.take_bytes(0) == 0  # the first call only starts the clock
    assert probe.take_bytes(20) == 450
    probe.spend(550)  # a whole packet went out: 100 bytes too many
    assert probe.take_bytes(40) == 350
    probe.spend(0)  # nothing to send: the credit waits, up to 100 ms worth
    assert probe.take_bytes(1040) == 2250
    step(probe, 2000, 1_500_000)
    assert probe.take_bytes(2020) == 0


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ProbeError):
        ProbeConfig(min_interval_ms=10, max_interval_ms=5)
    with pytest.raises(ProbeError):
        ProbeConfig(gain=0.5)
    with pytest.raises(ProbeError):
        step(ProbeController(CFG), 0, -1)
    with pytest.raises(ProbeError):
        step(ProbeController(CFG), 0, 1000, loss=1.5)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(0, 5_000_000),
            st.integers(0, 5_000_000),
            st.integers(0, 5_000_000),
            st.floats(0, 1),
            st.integers(0, 5_000_000),
        ),
        max_size=60,
    )
)
def test_padding_never_exceeds_the_want_the_gain_or_the_cap(
    steps: list[tuple[int, int, int, int, float, int]],
) -> None:
    probe = ProbeController(CFG)
    now = 0
    for dt, estimate, media, wanted, loss, unseen in steps:
        now += dt
        padding = probe.update(
            now,
            estimate_bps=estimate,
            media_bps=media,
            wanted_bps=wanted,
            loss=loss,
            unseen_bps=unseen,
        )
        assert 0 <= padding <= CFG.max_padding_bps
        if padding:  # what the estimate sees stays within the want and the gain
            seen = max(media - unseen, 0)
            assert seen + padding <= min(wanted, estimate * CFG.gain) + 1
            assert loss <= CFG.max_loss
        assert probe.take_bytes(now) >= 0


@pytest.mark.parametrize(
    ("estimate", "media", "next_step", "padding"),
    [
        # Firefox's first REMB, two talkers' audio above 1.2 x it, both thumbnails paused: pad
        # up to what the cheapest paused thumbnail would add.
        (60_000, 70_000, 50_000, 50_000),
        (60_000, 70_000, 400_000, 240_000 - 70_000),  # at most 4 x the estimate
        (60_000, 70_000, 0, 2_000),  # nothing paused: 1.2 x the estimate, as before
        (400_000, 300_000, 50_000, 180_000),  # 1.2 x the estimate is already further
    ],
)
def test_a_probe_reaches_for_the_next_step_up(
    estimate: int, media: int, next_step: int, padding: int
) -> None:
    probe = ProbeController(CFG)
    got = probe.update(
        0,
        estimate_bps=estimate,
        media_bps=media,
        wanted_bps=1_500_000,
        loss=0.0,
        step_bps=next_step,
    )
    assert got == padding


def test_a_paused_tile_is_reason_enough_to_probe() -> None:
    # The tiles want 290 kbit/s, the estimate is 270: within the margin, but a tile is paused.
    probe = ProbeController(CFG)
    assert step(probe, 0, 270_000, media=180_000, wanted=290_000) == 0
    probe = ProbeController(CFG)
    padding = probe.update(
        0, estimate_bps=270_000, media_bps=180_000, wanted_bps=290_000, loss=0.0, step_bps=100_000
    )
    assert padding == 110_000  # up to what the tiles want


@pytest.mark.parametrize(
    ("unseen", "padding"),
    [
        (0, 52_000),  # everything counts: the cheapest paused tile's worth
        # Firefox on REMB (seen in a browser run: stuck at 50 kbit/s for 30 s): its REMB counts
        # none of the 65 kbit/s of audio, so padding alone must reach audio + the tile's cost.
        (65_000, 117_000),
    ],
)
def test_padding_tops_up_only_what_the_estimate_can_see(unseen: int, padding: int) -> None:
    probe = ProbeController(CFG)
    got = probe.update(
        0,
        estimate_bps=50_000,
        media_bps=65_000,
        wanted_bps=234_000,
        loss=0.0,
        step_bps=52_000,
        unseen_bps=unseen,
    )
    assert got == padding


def test_a_falling_estimate_between_updates_stops_the_probe_at_once() -> None:
    """On every feedback: a 2x probe that fills a weak link's queue stops before it overflows,
    not at the next once-a-second update."""
    probe = ProbeController(SEND_SIDE_PROBES)
    assert step(probe, 0, 400_000) > 0
    probe.on_estimate(100, 380_000)  # within the fall fraction: goes on
    assert probe.probing and probe.padding_bps > 0
    probe.on_estimate(300, 300_000)  # fell under 0.85 x its start
    assert not probe.probing and probe.padding_bps == 0 and probe.probes_failed == 1
    assert probe.take_bytes(320) == 0


@pytest.mark.parametrize(
    ("estimates", "wanted", "chained", "padding_after"),
    [
        # 400k -> 520k: more than 1.25x its start: the next starts from 520k, 2x less media
        ((520_000,), 1_500_000, 1, 740_000),
        # 400k -> 480k: not yet a success, the probe goes on at its first rate
        ((480_000,), 1_500_000, 0, 500_000),
        # two results in a row: two chained probes, each from the estimate its forerunner found
        ((520_000, 700_000), 1_500_000, 2, 1_100_000),
        # the estimate now buys what the tiles want: the probe ends, nothing chained
        ((1_500_000,), 1_500_000, 0, 0),
        # more wanted, short of 2x the new estimate: up to the wanted rate only
        ((520_000,), 900_000, 1, 600_000),
    ],
)
def test_a_probe_that_lifts_the_estimate_hands_over_to_the_next_at_once(
    estimates: tuple[int, ...], wanted: int, chained: int, padding_after: int
) -> None:
    """GCC's further probing: each step up waits for its own probe's result, not the next
    once-a-second update and the interval between probes."""
    probe = ProbeController(SEND_SIDE_PROBES)
    assert step(probe, 0, 400_000, wanted=wanted) == 500_000
    for i, estimate in enumerate(estimates):
        probe.on_estimate(1100 + 100 * i, estimate)
    assert probe.probes_chained == chained
    assert probe.padding_bps == padding_after
    assert probe.probing == (padding_after > 0)
    assert probe.probes_failed == 0


@pytest.mark.parametrize(
    ("media_per_tick", "padding_per_tick"),
    [
        (750, 1250),  # media as at the update (300k): padding fills to the 800k target
        (2000, 0),  # layers rose since (800k of media): no padding on top
        (1500, 500),  # half way
        (0, 2000),  # the media stopped: padding alone up to the target
    ],
)
def test_padding_fills_what_the_media_sent_leaves_of_the_target(
    media_per_tick: int, padding_per_tick: int
) -> None:
    """A probe's target is a total rate: a layer that rises after the update (a chained probe's
    result) takes the padding's place, so the probe never sends more than its target."""
    probe = ProbeController(SEND_SIDE_PROBES)
    assert step(probe, 0, 400_000) == 500_000 and probe.target_bps == 800_000
    probe.take_bytes(0, 0)
    paid = []
    for tick in range(1, 11):
        due = probe.take_bytes(20 * tick, media_per_tick)
        probe.spend(due)
        paid.append(due)
    assert paid[-5:] == [padding_per_tick] * 5


def test_a_keyframe_counts_against_the_padding_for_up_to_a_second() -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    step(probe, 0, 400_000)  # target 800k: 2,000 bytes a 20 ms tick
    probe.take_bytes(0, 0)
    assert probe.take_bytes(20, 60_000) == 0  # a 60 KB keyframe: 0.6 s of the target
    quiet = [probe.take_bytes(20 * t, 0) for t in range(2, 40)]
    assert sum(1 for due in quiet if due == 0) in range(28, 31)
    huge = ProbeController(SEND_SIDE_PROBES)
    step(huge, 0, 400_000)
    huge.take_bytes(0, 0)
    huge.take_bytes(20, 10_000_000)  # a burst past a second's worth is forgiven beyond it
    assert any(huge.take_bytes(20 * t, 0) for t in range(2, 60))


@pytest.mark.parametrize(
    ("full_ms", "chained", "probing", "failed"),
    [
        (None, 1, True, 0),  # the link never seen full: the next probe starts at once
        (500, 1, True, 0),  # full before this probe began (the weak link's old rate): chain
        (1050, 0, False, 0),  # found full during it: its rate is known, no more probing
        (1100, 0, False, 0),
    ],
)
def test_a_probe_that_finds_the_link_full_ends_there(
    full_ms: int | None, chained: int, probing: bool, failed: int
) -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    step(probe, 1000, 400_000)
    probe.on_estimate(2100, 600_000, 30.0, full_ms)
    assert (probe.probes_chained, probe.probing, probe.probes_failed) == (chained, probing, failed)
    assert (probe.padding_bps > 0) == probing


def test_a_probe_that_finds_the_link_full_without_a_gain_failed() -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    step(probe, 1000, 400_000)
    probe.on_estimate(2100, 420_000, 30.0, 2050)
    assert not probe.probing and probe.probes_failed == 1


@pytest.mark.parametrize(
    ("drained_ms", "first_probe_ms"),
    [
        (None, 1000),  # no fall: the first update short of the wanted rate probes
        (500, 3000),  # 2 s after the drain (updates once a second)
        (2500, 5000),
    ],
)
def test_no_probe_right_after_a_drain(drained_ms: int | None, first_probe_ms: int) -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    if drained_ms is not None:
        probe.on_drained(drained_ms)
    started = next(t for t in range(1000, 10_000, 1000) if step(probe, t, 200_000, media=100_000))
    assert started == first_probe_ms


@pytest.mark.parametrize(
    ("config", "queue_ms", "started_at"),
    [
        (SEND_SIDE_PROBES, 0.0, 3050),  # due at 3 s (2 s after the failure): the next feedback
        (SEND_SIDE_PROBES, 90.0, None),  # a queue stands: none starts into it
        (replace(SEND_SIDE_PROBES, chain=False), 0.0, None),  # only the update starts one
    ],
)
def test_a_probe_come_due_between_updates_starts_on_the_next_feedback(
    config: ProbeConfig, queue_ms: float, started_at: int | None
) -> None:
    probe = ProbeController(config)
    step(probe, 0, 400_000)
    probe.on_estimate(1000, 300_000)  # fell: failed, the next one 2 s on
    assert not probe.probing
    step(probe, 2000, 300_000)  # the update before it is due
    assert not probe.probing
    for now in (2950, 3050, 3150):
        probe.on_estimate(now, 300_000, queue_ms)
        if probe.probing:
            break
    assert (now if probe.probing else None) == started_at
    assert (probe.padding_bps > 0) == (started_at is not None)


@pytest.mark.parametrize(
    ("estimate", "ceiling", "padding"),
    [
        (900_000, 0, 1_100_000),  # no link known full: up to the want (1.4M) less 300k media
        (900_000, 1_280_000, 980_000),  # a 1 Mbit/s link known full: to 1.28M (it and a burst)
        (900_000, 1_000_000, 870_000),  # ... never under 1.3x the estimate (believed only so)
        (220_000, 510_000, 140_000),  # a weak link's: 2x the estimate, under its ceiling
        (220_000, 400_000, 100_000),  # ... capped there
    ],
)
def test_near_a_link_known_full_a_probe_goes_only_as_far_as_is_believed(
    estimate: int, ceiling: int, padding: int
) -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    got = probe.update(
        0, estimate_bps=estimate, media_bps=300_000, wanted_bps=1_400_000, loss=0.0,
        ceiling_bps=ceiling,
    )  # fmt: skip
    assert got == padding


def test_without_chain_a_probe_result_waits_for_the_update() -> None:
    probe = ProbeController(replace(SEND_SIDE_PROBES, chain=False))
    step(probe, 0, 400_000)
    probe.on_estimate(1100, 800_000)
    assert probe.probing and probe.probes_chained == 0 and probe.padding_bps == 500_000


def test_a_chained_probe_that_meets_a_queue_stops_and_backs_off() -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    step(probe, 0, 400_000)
    probe.on_estimate(1100, 600_000)
    assert probe.probes_chained == 1
    probe.on_estimate(1200, 600_000, queue_ms=90.0)
    assert not probe.probing and probe.probes_failed == 1 and probe.padding_bps == 0
    assert step(probe, 2000, 600_000) == 0  # backed off: 2 s after the failure
    assert step(probe, 3300, 600_000) > 0


# Careful probes (off for send-side probes: a transport-cc estimate caps a probe within a burst
# of the rate the link saturated at, so a careful one on a link that rose could only fail).
CAREFUL = replace(SEND_SIDE_PROBES, careful_gain=1.5)


@pytest.mark.parametrize(
    ("outcomes", "padding_after"),
    [
        ((), 500_000),  # the first probe: 2x the estimate (400k) less the media seen (300k)
        ((False,), 300_000),  # after a failure: 1.5x only
        ((False, False), 300_000),
        ((False, True), 500_000),  # a careful probe that succeeded: 2x again
    ],
)
def test_after_a_failed_probe_the_next_ones_are_careful(
    outcomes: tuple[bool, ...], padding_after: int
) -> None:
    probe = ProbeController(CAREFUL)
    now, estimate = 0, 400_000
    for succeeded in outcomes:
        step(probe, now, estimate)
        assert probe.probing
        if succeeded:  # a careful probe succeeds above 1.25x its start
            estimate = int(estimate * 1.3)
            now += CAREFUL.duration_ms
            step(probe, now, estimate)
        else:
            now += 100
            probe.on_estimate(now, int(estimate * 0.5))
        assert not probe.probing
        now += 4000  # past any back-off (4 s at most)
        estimate = 400_000
    assert step(probe, now, estimate) == padding_after


def test_careful_gain_must_lie_between_one_and_the_gain() -> None:
    with pytest.raises(ProbeError):
        ProbeConfig(gain=2.0, careful_gain=2.5)
    with pytest.raises(ProbeError):
        ProbeConfig(gain=2.0, careful_gain=1.0)


@pytest.mark.parametrize(
    ("estimate", "wanted", "padding"),
    [
        # far short: 2x the estimate, up to the wanted rate
        (300_000, 1_000_000, 300_000),
        (600_000, 1_000_000, 700_000),
        # 20-30 % short: still 1.3x the estimate, past the want, or the send-side estimator
        # (which believes a probe above 1.2x itself) could not be lifted by it
        (800_000, 1_000_000, 740_000),
        # under 20 % short: no probe (one would have to go 1.3x past a link at the want;
        # the delay-based increase closes the gap)
        (850_000, 1_000_000, 0),
        (960_000, 1_000_000, 0),
        # the estimate buys it all: no probe
        (1_000_000, 1_000_000, 0),
    ],
)
def test_a_send_side_probe_goes_above_what_the_estimator_believes(
    estimate: int, wanted: int, padding: int
) -> None:
    probe = ProbeController(SEND_SIDE_PROBES)
    assert step(probe, 0, estimate, wanted=wanted) == padding


def test_min_gain_must_lie_between_one_and_the_step_gain() -> None:
    with pytest.raises(ProbeError):
        ProbeConfig(min_gain=0.5)
    with pytest.raises(ProbeError):
        ProbeConfig(min_gain=5.0, step_gain=4.0)
    assert ProbeConfig(min_gain=1.3).min_gain == 1.3


@pytest.mark.parametrize(
    ("media", "unseen", "padding"),
    [
        (600_000, 0, 0),  # the estimate fell to 240k under 600k sent: no probe into that queue
        (600_000, 200_000, 0),  # ... of what it sees, still over 1.5x
        (350_000, 0, 100_000),  # sent within 1.5x of the estimate: probe (to the next step)
    ],
)
def test_no_probe_starts_while_far_more_goes_out_than_the_estimate(
    media: int, unseen: int, padding: int
) -> None:
    probe = ProbeController(CFG)
    got = probe.update(
        0,
        estimate_bps=240_000,
        media_bps=media,
        wanted_bps=800_000,
        loss=0.0,
        step_bps=100_000,
        unseen_bps=unseen,
    )
    assert got == padding
    assert probe.probing == bool(padding)


def test_a_step_alone_is_not_probed_past_the_wanted_rate() -> None:
    # The estimate buys every tile's best layer but a rung is held: pad to the want only (a
    # browser run padded to 1.3x a 1 Mbit/s link's estimate here, and the estimate fell to 723k).
    probe = ProbeController(SEND_SIDE_PROBES)
    got = probe.update(
        0, estimate_bps=1_047_000, media_bps=530_000, wanted_bps=866_000, loss=0.0, step_bps=36_000
    )
    assert got == 866_000 - 530_000
