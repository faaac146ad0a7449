"""The benchmark's scheduled links: the schedule's parser, the emulated link in the load
generator (queue, delay, random loss, feedback) on a fake clock, and the adaptation figures."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.bandwidth.linksim import Link, LinkConfig, Phase
from confsfu.bench.adaptation import Adaptation, StageFrames
from confsfu.bench.scenario import ScenarioError, load_scenario
from confsfu.loadgen.link import RateQueue, TransportLink
from confsfu.loadgen.schedule import (
    ScheduleError,
    format_link_schedule,
    parse_link_schedule,
    schedule_seconds,
)
from confsfu.rtp.packet import build_rtp

EXT_ID = 5


# ---- the schedule ---------------------------------------------------------------------------


def test_the_issue_schedule_parses() -> None:
    phases = parse_link_schedule("3000x20,300x30, 1000x20 ,3000x30")
    assert phases == (Phase(3000, 20), Phase(300, 30), Phase(1000, 20), Phase(3000, 30))
    assert schedule_seconds(phases) == 100
    assert format_link_schedule(phases) == "3000x20,300x30,1000x20,3000x30"
    assert parse_link_schedule("2000X1.5") == (Phase(2000, 1.5),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "1 to 32 phases"),
        ("3000", "KBITxSECONDS"),
        ("3000x20,", "KBITxSECONDS"),
        ("3000x0", "more than 0 seconds"),
        ("5x20", "10 to 1000000 kbit/s"),
        ("-300x20", "KBITxSECONDS"),
        ("300x20x4", "KBITxSECONDS"),
        ("300x5000", "at most 4500 s"),
        (",".join(["300x1"] * 33), "1 to 32 phases"),
    ],
)
def test_bad_schedules_are_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_link_schedule(text)


@given(st.text(max_size=80))
def test_any_text_parses_or_gets_a_schedule_error(text: str) -> None:
    try:
        phases = parse_link_schedule(text)
    except ScheduleError as exc:
        assert str(exc)
        return
    assert phases and all(p.kbit_s >= 10 and p.seconds > 0 for p in phases)
    assert parse_link_schedule(format_link_schedule(phases)) == phases


def test_the_scenario_takes_the_link_settings_and_refuses_bad_ones() -> None:
    fanout = load_scenario("fanout")
    linked = fanout.with_values(scheduled_links=2, link_schedule="3000x20,300x30")
    assert linked.link_phases == (Phase(3000, 20), Phase(300, 30))
    assert linked.window_s >= 50 > linked.duration_s  # the window covers the schedule
    assert fanout.window_s == fanout.duration_s
    with pytest.raises(ScenarioError, match=r"link_schedule: .*KBITxSECONDS"):
        fanout.with_values(link_schedule="fast")
    with pytest.raises(ScenarioError, match="scheduled_links needs a link_schedule"):
        fanout.with_values(scheduled_links=1)
    with pytest.raises(ScenarioError, match="link_loss"):
        fanout.with_values(link_loss=2)  # a fraction, not percent
    with pytest.raises(ScenarioError, match="link_estimator"):
        fanout.with_values(link_estimator="gcc")
    assert linked.scaled(3).scheduled_links == 2


# ---- the emulated link on a fake clock ------------------------------------------------------


def rtp(seq: int, transport: int | None = None, size: int = 1000) -> bytes:
    ext = {} if transport is None else {EXT_ID: transport.to_bytes(2, "big")}
    return build_rtp(
        payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=1234,
        payload=b"\x00" * size, extensions=ext,
    )  # fmt: skip


def tbf(
    *phases: tuple[int, float], delay_ms: int = 0, loss: float = 0.0, seed: int = 1
) -> TransportLink:
    config = LinkConfig(burst_bytes=2000, latency_ms=100, delay_ms=delay_ms, loss=loss)
    link = TransportLink(Link([Phase(k, s) for k, s in phases], config, random.Random(seed).random))
    link.ext_id = EXT_ID
    return link


def test_the_link_delays_by_the_rate_and_the_fixed_delay() -> None:
    link = tbf((800, 10), delay_ms=50)  # 800 kbit/s: 100 bytes per ms
    t0 = 1_000_000_000
    sent = [rtp(i, i) for i in range(5)]
    for packet in sent:
        assert link.offer(t0, packet)
    assert link.deliver(t0 + 49_999) == []  # nothing before the delay
    out = link.deliver(t0 + 200_000)
    assert [p for _, p in out] == sent  # in order, all of them
    arrivals = [at - t0 for at, _ in out]
    assert arrivals[0] == 50_000  # the first from the bucket's burst, plus the delay
    # each after it waits for its size (wire bytes: RTP + 42) at 100 bytes per ms
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    wire = len(sent[0]) + 42
    assert all(abs(g - wire * 10) <= 10 for g in gaps[1:]), gaps


def test_a_full_queue_loses_what_does_not_fit() -> None:
    link = tbf((80, 10))  # 10 bytes per ms: the queue holds 80 kbit/s x 100 ms + 2000 bytes
    t0 = 5_000_000
    entered = [link.offer(t0, rtp(i, i)) for i in range(10)]
    assert entered[:2] == [True, True] and not all(entered)
    assert link.lost == entered.count(False) and link.packets == 10
    delivered = link.deliver(t0 + 10_000_000)
    assert len(delivered) == entered.count(True)


def test_a_phase_change_replaces_the_queue_and_the_rate() -> None:
    link = tbf((8000, 1), (80, 1))  # 1000 bytes per ms, then 10
    assert link.offer(0, rtp(9, 9)) and len(link.deliver(10_000)) == 1  # the link's clock starts
    for i in range(3):  # the third would leave after the change: it is dropped with the queue
        link.offer(999_000, rtp(i, i))
    assert len(link.deliver(1_000_000)) == 2
    assert link.bottleneck.dropped == 1  # type: ignore[attr-defined]
    assert link.offer(1_000_000, rtp(4, 4, size=1200))
    assert link.offer(1_000_000, rtp(5, 5, size=1200))
    out = link.deliver(1_500_000)
    # at 80 kbit/s the new bucket's burst lets one through at once; the next waits for tokens
    assert len(out) == 2 and out[0][0] == 1_000_000
    assert out[1][0] > 1_050_000


def test_random_loss_is_seeded_and_about_its_share() -> None:
    def run(seed: int) -> list[bool]:
        link = tbf((100_000, 100), loss=0.1, seed=seed)
        return [link.offer(i * 1000, rtp(i & 0xFFFF, i & 0xFFFF, size=100)) for i in range(5000)]

    first = run(7)
    assert first == run(7) and first != run(8)
    assert 400 < first.count(False) < 600


def test_feedback_reports_arrival_times_and_the_lost_numbers() -> None:
    link = tbf((800, 10), delay_ms=20)
    t0 = 1_000_000
    link.offer(t0, rtp(0, 100))
    link.offer(t0, rtp(1, 101))
    link.offer(t0 + 1000, rtp(3, 103))  # 102 never reached the subscriber
    assert link.reports(sender_ssrc=1, media_ssrc=2, count=0) == []  # nothing arrived yet
    out = link.deliver(t0 + 1_000_000)
    assert len(out) == 3
    (report,) = link.reports(sender_ssrc=1, media_ssrc=2, count=0)
    assert report.base_sequence == 100
    seqs = [seq for seq, _ in report.packets]
    assert seqs == [100, 101, 102, 103]
    times = [at for _, at in report.packets]
    assert times[2] is None and None not in (times[0], times[1], times[3])
    base = report.reference_time_64ms * 64_000
    assert [base + t for t in (times[0], times[1], times[3]) if t is not None] == [
        at for at, _ in out
    ]
    assert link.reports(sender_ssrc=1, media_ssrc=2, count=1) == []  # each number once


def test_a_rate_queue_reads_its_rate_per_packet() -> None:
    rate = [8_000_000]
    link = TransportLink(RateQueue(lambda: rate[0], max_queue_us=100_000))
    assert link.offer(0, rtp(0))
    rate[0] = 80_000  # 10 bytes per ms: a 1000-byte packet waits 100 ms and more
    assert not link.offer(0, rtp(1, size=1200))
    assert [at for at, _ in link.deliver(10_000)] == [len(rtp(0))]  # its size at 8 Mbit/s
    assert link.lost == 1


def test_a_remb_link_estimates_from_arrivals_and_falls_with_the_rate() -> None:
    config = LinkConfig(burst_bytes=2000, latency_ms=300)
    link = TransportLink(Link([Phase(3000, 5), Phase(300, 10)], config, lambda: 0.5), remb=True)
    estimates: list[int] = []
    for seq, ms in enumerate(range(0, 15_000, 4)):  # 1.2 KB every 4 ms: 2.4 Mbit/s offered
        now_us = 1_000_000 + ms * 1000
        link.offer(now_us, rtp(seq & 0xFFFF, size=1200))
        link.deliver(now_us)
        if ms % 100 == 0:
            estimate = link.remb_bps(now_us)
            assert estimate is not None
            estimates.append(estimate)
    during_first = estimates[10:50]
    assert min(during_first) > 1_000_000  # 2.4 Mbit/s arrive unharmed
    assert estimates[-1] < 600_000, estimates[-20:]  # queueing at 300 kbit/s brought it down
    assert link.ext_id is None and link.reports(sender_ssrc=1, media_ssrc=2, count=0) == []


# ---- the figures ----------------------------------------------------------------------------


def test_stage_frames_complete_when_whole_and_wait_for_a_keyframe_after_one_is_given_up() -> None:
    stage = StageFrames()

    def got(t: int, seq: int, *, marker: bool = False, starts: bool = False,
            key: int | None = None, repaired: bool = False) -> list[int]:  # fmt: skip
        return stage.packet(t, seq, marker, starts or bool(key), key, repaired=repaired)

    # a keyframe of 3 packets 1280 wide, then frames of 2
    assert got(0, 10, key=1280) == [] and got(1, 11) == []
    assert got(2, 12, marker=True) == [1280]
    assert got(3, 14, marker=True) == []  # 13 (its first) missing
    assert got(4, 13, starts=True, repaired=True) == [1280]  # repaired by RTX
    assert got(5, 15, starts=True) == [] and got(6, 16, marker=True) == [1280]
    assert got(7, 18, marker=True) == []  # 17 missing, never comes
    assert got(8, 19, starts=True) == []  # 20, this frame's end, lost too
    assert got(1_000_007, 21, starts=True) == []  # 17-18 given up: broken
    assert stage.wants_keyframe
    assert got(1_000_008, 22, marker=True) == []  # whole, but no keyframe
    assert got(1_000_009, 23, key=320) == []
    assert got(1_000_010, 24, marker=True) == [320]  # a keyframe: 19-20 need not wait
    assert not stage.wants_keyframe and stage.width == 320
    assert got(1_000_011, 25, starts=True, marker=True) == [320]


def test_stage_frames_start_on_a_keyframe_and_unwrap() -> None:
    stage = StageFrames()
    assert stage.packet(0, 65533, True, True, None, repaired=False) == []  # not a keyframe
    assert stage.packet(1, 65534, True, True, None, repaired=False) == []
    assert stage.packet(1, 65535, False, True, 640, repaired=False) == []
    assert stage.packet(2, 0, True, False, None, repaired=False) == [640]
    assert stage.packet(3, 1, True, True, None, repaired=False) == [640]


def test_adaptation_figures_per_phase() -> None:
    adaptation = Adaptation((Phase(2000, 2), Phase(300, 2), Phase(2000, 2)), top_width=1280)
    seq = 0

    def frame(t_us: int, width: int | None, key: bool = False) -> None:
        nonlocal seq
        adaptation.stage_packet(t_us, seq, True, True, width if key else None)
        adaptation.delivered(t_us, 1000)
        seq += 1

    frame(100_000, 1280, key=True)  # top from the start: up 0.1 s
    for t in range(200_000, 2_000_000, 100_000):
        frame(t, None)
    adaptation.audio(1_900_000, 10, 10)
    adaptation.audio(2_100_000, 10, 7)
    frame(2_500_000, 320, key=True)  # down 0.5 s after the drop; 600 ms without a frame
    frame(2_600_000, None)
    frame(4_800_000, 1280, key=True)  # back up 0.8 s after the rise
    phases = adaptation.finish(5_000_000)  # the run ended in the third phase
    first, narrow, last = phases
    assert first["up_s"] == 0.1 and first["down_s"] is None and first["widths"] == [1280]
    assert narrow["down_s"] == 0.5 and narrow["up_s"] is None and narrow["widths"] == [320]
    assert narrow["longest_freeze_s"] == pytest.approx(1.4)  # 2.6 s to the phase's end
    assert last["up_s"] == 0.8 and last["observed_s"] == 1.0
    assert first["audio_loss_pct"] == 0 and narrow["audio_lost"] == 3
    assert narrow["audio_loss_pct"] == 30
    assert first["link_use_pct"] == pytest.approx(100 * 19 * 8000 / (2_000_000 * 2), abs=0.1)
