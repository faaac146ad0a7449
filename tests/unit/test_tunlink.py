"""The TUN link emulator's pure parts: the tbf model reshaped at run time (`Link.reshape`, no
limit, in-order delay, the next deadline) and `EmulatedLink` (both ways, loss, bounds, control
lines, lateness). The devices and the process: tests/integration/test_tunlink.py."""

from __future__ import annotations

import json
import random

import pytest

from confsfu.bandwidth.linksim import Kind, Link, LinkConfig, Packet, Phase
from tests.browser import tunlink
from tests.browser.tunlink import LATE_BOUNDS_US, EmulatedLink, Way, WayStats


def _packet(n: int, size: int = 986) -> Packet:
    return Packet(n, size, Kind.VIDEO, 0)  # 1000 bytes with tunlink's 14 of Ethernet header


def _link(**config: int) -> Link:
    link = Link([Phase(1, 1)], LinkConfig(overhead_bytes=14, **config), lambda: 1.0)
    link.reshape(0, None)
    return link


@pytest.mark.parametrize(
    ("kbit_s", "delay_ms", "arrivals_us"),
    [
        (None, 0, [0, 0, 0, 0]),  # no limit, no delay: straight through
        (None, 40, [40_000] * 4),
        (800, 0, [0, 0, 10_000, 20_000]),  # a 2000-byte burst, then 1000 bytes per 10 ms
        (800, 40, [40_000, 40_000, 50_000, 60_000]),
        (1600, 0, [0, 0, 5_000, 10_000]),
    ],
)
def test_rate_and_delay_after_a_reshape(
    kbit_s: int | None, delay_ms: int, arrivals_us: list[int]
) -> None:
    link = _link(burst_bytes=2000)
    link.reshape(0, kbit_s, delay_ms)
    for n in range(4):
        assert link.send(0, _packet(n))
    assert [at for at, _ in link.deliver(1_000_000)] == arrivals_us


def test_a_reshape_drops_the_queue_and_fills_the_bucket() -> None:
    link = _link(burst_bytes=2000)
    link.reshape(0, 100)  # 1000 bytes per 80 ms
    for n in range(5):
        link.send(0, _packet(n))
    assert [at for at, _ in link.deliver(50_000)] == [0, 0]
    link.reshape(50_000, 800)  # three still queued: gone; the bucket is full again
    assert link.dropped == 3 and link.held == 0
    for n in range(3):
        link.send(60_000, _packet(10 + n))
    assert [at for at, _ in link.deliver(1_000_000)] == [60_000, 60_000, 70_000]


def test_a_shorter_delay_does_not_overtake_what_is_in_flight() -> None:
    link = _link()
    link.reshape(0, None, 80)
    link.send(0, _packet(1))
    link.reshape(10_000, None, 0)
    link.send(10_000, _packet(2))
    assert [(at, p.transport_seq) for at, p in link.deliver(1_000_000)] == [
        (80_000, 1),
        (80_000, 2),
    ]


@pytest.mark.parametrize(
    ("kbit_s", "delay_ms", "sent", "expected"),
    [
        (None, 0, 0, None),  # nothing held
        (None, 30, 1, 30_000),  # in the delay
        (800, 0, 3, 0),  # the burst's first is due at once
        (800, 20, 3, 20_000),
    ],
)
def test_the_next_arrival_is_the_time_to_wake(
    kbit_s: int | None, delay_ms: int, sent: int, expected: int | None
) -> None:
    link = _link(burst_bytes=2000)
    link.reshape(0, kbit_s, delay_ms)
    for n in range(sent):
        link.send(0, _packet(n))
    assert link.next_arrival_us() == expected


def test_the_next_arrival_of_a_queued_packet_waits_for_its_tokens() -> None:
    link = _link(burst_bytes=2000)
    link.reshape(0, 800, 5)
    for n in range(3):
        link.send(0, _packet(n))
    link.deliver(5_000)  # the burst's two arrived; the third leaves at 10 ms, arrives at 15
    assert link.next_arrival_us() == 15_000
    assert link.deliver(14_999) == [] and len(link.deliver(15_000)) == 1


def test_the_queue_is_rate_times_150_ms_plus_the_burst() -> None:
    link = _link(burst_bytes=2000)
    link.reshape(0, 800)  # 15,000 bytes in 150 ms, and the burst
    taken = sum(link.send(0, _packet(n)) for n in range(40))
    assert taken == 2 + 17 and link.dropped == 40 - taken


def _emulated(uplink_loss: bool = False, seed: int = 5) -> EmulatedLink:
    down, up = random.Random(seed).random, random.Random(seed + 1).random
    return EmulatedLink(down, up, uplink_loss=uplink_loss)


@pytest.mark.parametrize(
    ("uplink_loss", "down_lost", "up_lost"),
    [(False, (150, 250), (0, 0)), (True, (150, 250), (150, 250))],
)
def test_loss_on_the_downlink_and_on_the_uplink_when_asked(
    uplink_loss: bool, down_lost: tuple[int, int], up_lost: tuple[int, int]
) -> None:
    link = _emulated(uplink_loss)
    link.shape(0, None, 0, 2.0)
    for n in range(10_000):
        link.send(n, Way.DOWN, b"d")
        link.send(n, Way.UP, b"u")
    delivered = link.due(20_000)
    link.command(20_000, "stats")
    for way, (low, high) in ((Way.DOWN, down_lost), (Way.UP, up_lost)):
        stats = link.stats[way]
        assert low <= stats.lost <= high
        assert stats.delivered == sum(w is way for w, _ in delivered) == 10_000 - stats.lost


def test_the_delay_is_applied_both_ways_the_rate_only_down() -> None:
    link = _emulated()
    link.shape(0, 100, 25, 0.0)
    for way in Way:
        for _ in range(10):
            link.send(0, way, bytes(986))
    assert link.due(24_999) == []
    arrived = link.due(25_000)
    assert sum(w is Way.UP for w, _ in arrived) == 10
    assert sum(w is Way.DOWN for w, _ in arrived) == 10  # in the 20 KiB burst
    for _ in range(30):  # the bucket holds 10,792.5 bytes: 10 more, then 1000 bytes per 80 ms
        link.send(25_000, Way.DOWN, bytes(986))
    # leaving at 25 ms (10), 41.6 ms, 121.6 ms, 201.6 ms...; arriving 25 ms later
    assert len(link.due(150_000)) == 12
    assert link.due(226_000) == []
    assert len(link.due(227_000)) == 1


def test_what_is_held_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunlink, "MAX_HELD", 5)
    link = _emulated()
    link.shape(0, None, 100, 0.0)
    taken = [link.send(0, Way.UP, b"x") for _ in range(8)]
    assert taken == [True] * 5 + [False] * 3 and link.stats[Way.UP].overflow == 3


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("shape 300 80 2", "ok"),
        ("shape - 0 0", "ok"),
        ("shape 3000 0 0.5", "ok"),
        ("shape 0 0 0", "error a rate is positive (None: no limit)"),
        ("shape 300 -1 0", "error delay -1 ms, loss 0.0 %: out of range"),
        ("shape 300 0 101", "error delay 0 ms, loss 101.0 %: out of range"),
        ("shape fast 0 0", "error invalid literal for int() with base 10: 'fast'"),
        ("shape 300", "error unknown command 'shape 300'"),
        ("", "error unknown command ''"),
        ("reboot", "error unknown command 'reboot'"),
    ],
)
def test_control_lines(line: str, answer: str) -> None:
    assert _emulated().command(0, line) == answer


def test_stats_are_one_json_line() -> None:
    link = _emulated()
    link.send(0, Way.DOWN, b"abc")
    link.due(300)
    stats = json.loads(link.command(300, "stats"))
    assert stats["down"]["delivered_bytes"] == 3 and stats["down"]["late_max_us"] == 300
    assert stats["up"]["received"] == 0


@pytest.mark.parametrize(
    ("late_us", "bucket"),
    [(0, 0), (99, 0), (100, 1), (499, 2), (999, 3), (1000, 4), (4999, 5), (5000, 6), (10**6, 6)],
)
def test_lateness_histogram(late_us: int, bucket: int) -> None:
    stats = WayStats()
    stats.record_late(late_us)
    assert stats.late.index(1) == bucket and len(stats.late) == len(LATE_BOUNDS_US) + 1
