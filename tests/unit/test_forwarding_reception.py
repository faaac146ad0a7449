"""Reception (the specification) and forwarding._reception.Reception (the server's, in C): loss
accounting, NACK scheduling, duplicates, wrap-around, report blocks, picture ids; and the two
agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confsfu.forwarding._reception import Reception as CReception
from confsfu.forwarding.reception import MAX_TRACKED_MISSING, Reception, ReceptionReport

Stream = Reception | CReception
Make = Callable[..., Stream]


@pytest.fixture(params=[Reception, CReception], ids=["spec", "c"])
def make(request: pytest.FixtureRequest) -> Any:
    return request.param


def feed(stream: Stream, now_ms: int, *seqs: int) -> list[bool]:
    return [stream.on_packet(now_ms, seq, 100) for seq in seqs]


def test_first_packet_starts_the_stream(make: Make) -> None:
    stream = make(0x1234)
    assert not stream.started
    assert stream.report() == ReceptionReport(0x1234, 0, 0, 0, 0)
    assert stream.on_packet(5, 700, 1200)
    assert stream.started
    assert stream.last_packet_ms == 5 and stream.bytes_received == 1200
    report = stream.report()
    assert (report.highest_sequence, report.packets_lost, report.fraction_lost) == (700, 0, 0)


def test_in_order_packets_lose_nothing_and_need_no_nack(make: Make) -> None:
    stream = make(1)
    assert all(feed(stream, 0, *range(100, 200)))
    assert stream.nacks_due(1000) == []
    report = stream.report()
    assert (report.packets_lost, report.fraction_lost, report.highest_sequence) == (0, 0, 199)


def test_duplicates_are_refused_but_counted_as_bytes(make: Make) -> None:
    stream = make(1)
    feed(stream, 0, 10, 11, 12)
    assert feed(stream, 1, 12, 11, 10) == [False, False, False]
    assert stream.bytes_received == 600
    assert stream.report().packets_lost == 0


def test_a_gap_is_lost_until_it_arrives_late(make: Make) -> None:
    stream = make(1)
    feed(stream, 0, 1, 2, 5)
    assert stream.report().packets_lost == 2
    assert stream.on_packet(3, 4, 100)  # late, but wanted
    assert not stream.on_packet(3, 4, 100)  # and now a duplicate
    assert stream.report().packets_lost == 1


def test_packets_older_than_the_first_are_refused(make: Make) -> None:
    stream = make(1)
    feed(stream, 0, 100)
    assert not stream.on_packet(1, 99, 100)
    assert not stream.on_packet(1, (100 - 20_000) % 65_536, 100)


def test_wraparound_without_loss(make: Make) -> None:
    stream = make(1)
    assert all(feed(stream, 0, 65_534, 65_535, 0, 1))
    report = stream.report()
    assert report.packets_lost == 0
    assert report.highest_sequence == (1 << 16) | 1  # one cycle, seq 1
    assert stream.nacks_due(100) == []


def test_loss_across_wraparound_is_nacked_with_16_bit_numbers(make: Make) -> None:
    stream = make(1, nack_delay_ms=10)
    feed(stream, 0, 65_533, 65_534, 1)  # 65535 and 0 missing
    assert stream.nacks_due(10) == [65_535, 0]
    assert stream.on_packet(12, 0, 100)
    assert stream.nacks_due(20) == [65_535]
    assert stream.report().highest_sequence == 65_537


def test_nack_waits_for_the_delay_then_backs_off(make: Make) -> None:
    stream = make(1, nack_delay_ms=10, nack_retries=5)
    feed(stream, 100, 1, 3)
    assert stream.nacks_due(100) == []
    assert stream.nacks_due(109) == []
    assert stream.nacks_due(110) == [2]  # first ask after the delay
    assert stream.nacks_due(115) == []
    assert stream.nacks_due(120) == [2]  # the n-th ask waits n delays from the gap
    assert stream.nacks_due(129) == []
    assert stream.nacks_due(130) == [2]


def test_the_next_nack_deadline_is_when_nacks_due_next_has_a_number(make: Make) -> None:
    stream = make(1, nack_delay_ms=10, nack_retries=2)
    feed(stream, 100, 1)
    assert stream.next_nack_ms() is None  # nothing missing
    feed(stream, 100, 3)
    feed(stream, 104, 6)
    assert stream.next_nack_ms() == 110
    assert stream.nacks_due(110) == [2]
    assert stream.next_nack_ms() == 114  # 4 and 5, first ask
    assert stream.nacks_due(114) == [4, 5]
    assert stream.next_nack_ms() == 120  # 2, second ask
    assert stream.nacks_due(120) == [2] and stream.nacks_due(124) == [4, 5]
    assert stream.next_nack_ms() is None  # asked twice: given up
    feed(stream, 130, 5)
    assert stream.next_nack_ms() is None


def test_nack_gives_up_after_the_retries(make: Make) -> None:
    stream = make(1, nack_delay_ms=10, nack_retries=3)
    feed(stream, 0, 1, 3)
    sent = [now for now in range(0, 1000) if stream.nacks_due(now)]
    assert sent == [10, 20, 30]
    assert stream.nacks_due(5000) == []
    # Given up on: the packet counts as lost and a late copy is refused as too old.
    assert not stream.on_packet(5000, 2, 100)
    assert stream.report().packets_lost == 1


def test_no_nack_once_the_packet_arrives(make: Make) -> None:
    stream = make(1, nack_delay_ms=10)
    feed(stream, 0, 1, 4)
    assert stream.nacks_due(10) == [2, 3]
    feed(stream, 12, 3)
    assert stream.nacks_due(20) == [2]


def test_zero_delay_nacks_at_once(make: Make) -> None:
    stream = make(1, nack_delay_ms=0, nack_retries=2)
    feed(stream, 0, 1, 3)
    assert stream.nacks_due(0) == [2]
    assert stream.nacks_due(0) == [2]
    assert stream.nacks_due(0) == []


def test_the_missing_list_is_bounded(make: Make) -> None:
    stream = make(1, nack_delay_ms=0)
    feed(stream, 0, 0, 2000)
    due = stream.nacks_due(0)
    assert len(due) == MAX_TRACKED_MISSING
    assert due[0] == 2000 - MAX_TRACKED_MISSING and due[-1] == 1999  # the newest are kept
    assert stream.report().packets_lost == 1999


def test_report_fraction_lost_per_interval(make: Make) -> None:
    stream = make(7)
    feed(stream, 0, *[s for s in range(0, 10) if s not in (3, 6)])  # 10 expected, 8 received
    first = stream.report()
    assert first.ssrc == 7
    assert (first.packets_lost, first.fraction_lost) == (2, 2 * 256 // 10)
    # A clean interval: fraction 0, the cumulative count stays.
    feed(stream, 1, *range(10, 20))
    second = stream.report()
    assert (second.packets_lost, second.fraction_lost) == (2, 0)
    # An interval where every other packet is missing.
    feed(stream, 2, *range(21, 40, 2))
    third = stream.report()
    assert third.fraction_lost == 10 * 256 // 20
    assert third.packets_lost == 12
    # Late arrivals in the next interval: more received than expected, fraction 0.
    feed(stream, 3, 22, 24, 26)
    fourth = stream.report()
    assert (fourth.packets_lost, fourth.fraction_lost) == (9, 0)
    # No packets at all: nothing expected, nothing lost.
    assert stream.report().fraction_lost == 0


def test_report_fraction_lost_under_heavy_loss(make: Make) -> None:
    stream = make(1)
    feed(stream, 0, 0)
    stream.report()
    feed(stream, 1, 1000)  # 1000 expected in the interval, 1 received
    assert stream.report().fraction_lost == 999 * 256 // 1000 == 255


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(0, 65_535),
    steps=st.lists(st.integers(1, 40), min_size=1, max_size=200),
    reorder=st.booleans(),
)
def test_loss_count_matches_the_model(
    make: Make, start: int, steps: list[int], reorder: bool
) -> None:
    """Packets that arrive (possibly reordered a little) are never counted lost, gaps always are."""
    sent: list[int] = [start]
    for step in steps:
        sent.append(sent[-1] + step)
    arrivals = list(sent)
    if reorder:  # swap neighbours, never moving anything before the first packet
        for i in range(1, len(arrivals) - 1, 2):
            arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    stream = make(1, nack_delay_ms=10**9)
    accepted = [stream.on_packet(0, ext % 65_536, 100) for ext in arrivals]
    assert all(accepted)
    report = stream.report()
    assert report.highest_sequence == sent[-1]
    assert report.packets_lost == sent[-1] - sent[0] + 1 - len(sent)
    assert not any(stream.on_packet(1, ext % 65_536, 100) for ext in arrivals)  # duplicates


Operation = tuple[str, int, int]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("packet"), st.integers(0, 65_535), st.integers(0, 50)),
        st.tuples(st.just("near"), st.integers(-40, 40), st.integers(0, 50)),  # around the top
        st.tuples(st.just("nacks"), st.just(0), st.integers(0, 50)),
        st.tuples(st.just("report"), st.just(0), st.just(0)),
        st.tuples(st.just("picture"), st.integers(0, 0x7FFF), st.just(0)),
    ),
    max_size=120,
)


@settings(max_examples=300)
@given(
    ops=operations,
    delay=st.integers(0, 30),
    retries=st.integers(0, 4),
    first=st.integers(0, 65_535),
)
def test_the_c_track_answers_as_the_specification(
    ops: list[Operation], delay: int, retries: int, first: int
) -> None:
    spec = Reception(9, nack_delay_ms=delay, nack_retries=retries)
    track = CReception(9, nack_delay_ms=delay, nack_retries=retries)
    now, top = 0, first
    for op, value, wait in [("packet", first, 0), *ops]:
        now += wait
        if op in ("packet", "near"):
            seq = value if op == "packet" else (top + value) % 65_536
            answers = spec.on_packet(now, seq, 100), track.on_packet(now, seq, 100)
            if answers[0] and op == "near" and value > 0:
                top = seq
        elif op == "nacks":
            answers = spec.nacks_due(now), track.nacks_due(now)
        elif op == "report":
            answers = spec.report(), track.report()
        else:
            answers = spec.unwrap_picture(value), track.unwrap_picture(value)
        assert answers[0] == answers[1], op
        assert (spec.last_ext, spec.bytes_received, spec.last_packet_ms, spec.started) == (
            track.last_ext,
            track.bytes_received,
            track.last_packet_ms,
            track.started,
        )


def test_a_track_refuses_a_sequence_number_out_of_range() -> None:
    with pytest.raises(ValueError, match="0 to 65535"):
        CReception(1).on_packet(0, 70_000, 100)
