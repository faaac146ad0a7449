"""The weak-link simulator: the tbf-like link (burst, rate, tail drop, phase changes, loss and
delay) and the figures the server's own code earns behind it, per schedule (loose bounds: the
benchmark, benchmarks/weak_link_sim.py, prints the real figures)."""

from __future__ import annotations

import itertools
import random

import pytest

from confsfu.bandwidth.linksim import Kind, Link, LinkConfig, Packet, Phase
from confsfu.bandwidth.weaksim import FULL, MediaModel, PhaseFigures, simulate


def _packet(n: int, size: int = 958) -> Packet:
    return Packet(n, size, Kind.VIDEO, 0)  # 1000 bytes on the wire with the 42 of headers


def test_the_burst_passes_at_once_then_the_rate_paces() -> None:
    link = Link([Phase(800, 10)], LinkConfig(burst_bytes=5000, latency_ms=1000), lambda: 1.0)
    for n in range(10):
        assert link.send(0, _packet(n))
    arrivals = [at for at, _ in link.deliver(1_000_000)]
    assert arrivals[:5] == [0] * 5  # 5000 bytes of tokens
    gaps = [b - a for a, b in itertools.pairwise(arrivals[4:])]
    assert all(9_990 <= g <= 10_010 for g in gaps)  # 1000 bytes at 800 kbit/s: 10 ms


@pytest.mark.parametrize(
    ("kbit_s", "latency_ms", "queued"),
    [
        (800, 100, 15),  # 100 ms at 800 kbit/s (10 kB) + 5 kB burst: 15 packets
        (800, 50, 10),
        (1600, 100, 25),
    ],
)
def test_the_queue_holds_rate_times_latency_plus_burst_and_drops_the_tail(
    kbit_s: int, latency_ms: int, queued: int
) -> None:
    cfg = LinkConfig(burst_bytes=5000, latency_ms=latency_ms)
    link = Link([Phase(kbit_s, 10)], cfg, lambda: 1.0)
    link.deliver(1_000_000)  # the bucket is full; nothing queued
    link._tokens = 0.0  # as after a burst
    accepted = sum(link.send(1_000_000, _packet(n)) for n in range(100))
    assert accepted == queued
    assert link.dropped == 100 - queued


def test_a_phase_change_replaces_the_queue_and_fills_the_bucket() -> None:
    link = Link([Phase(100, 1), Phase(100, 1)], LinkConfig(burst_bytes=2000), lambda: 1.0)
    for n in range(4):
        link.send(900_000, _packet(n))
    delivered = link.deliver(1_000_000)
    # two in the burst, one after 80 ms (1000 bytes at 100 kbit/s); the fourth was still queued
    assert [at for at, _ in delivered] == [900_000, 900_000, 980_000] and link.dropped == 1
    assert link.send(1_000_000, _packet(9)) and link.deliver(1_000_000)[0][0] == 1_000_000


def test_random_loss_and_delay() -> None:
    rng = random.Random(3)
    link = Link([Phase(100_000, 10)], LinkConfig(delay_ms=80, loss=0.1), rng.random)
    sent = [link.send(n * 1000, _packet(n)) for n in range(2000)]
    assert 150 <= sent.count(False) <= 250 and link.lost == sent.count(False)
    assert all(at >= packet.send_us + 80_000 for at, packet in link.deliver(10_000_000))


# Figures per phase of FULL (3 Mbit/s, 300 kbit/s, 1 Mbit/s, 3 Mbit/s) against bounds looser than
# the goals (down within 2 s, back to 1280x720 within 8 s, no freeze over 1 s, audio loss
# under 1 %, link use 60-95 %): (phase, figure, upper bound), None for "must happen".
CLEAN_BOUNDS = [  # seed 1 figures with the drain hold: 300 kbit/s down 1.3 s, freeze 0.6 s,
    (1, "down_s", 2.0),  # audio 0.1-0.6 % (a failed probe's queue; seeds 1-8 span 0.0-0.6 %);
    (1, "longest_freeze_s", 1.0),  # 1 Mbit/s freeze 0.4 s, audio 0.6 %
    (1, "audio_loss_pct", 1.0),
    (2, "longest_freeze_s", 1.0),
    (2, "audio_loss_pct", 1.0),
    (3, "up_s", 8.0),
    (3, "longest_freeze_s", 1.0),
    (3, "audio_loss_pct", 0.5),
]
LOSSY_BOUNDS = [  # seed 1: 300 kbit/s down 1.7 s, freeze 1.4 s
    (1, "down_s", 2.5),
    (1, "longest_freeze_s", 2.0),
    (3, "up_s", 12.0),
    (3, "longest_freeze_s", 1.0),
]


def _figure(phase: PhaseFigures, name: str) -> float | None:
    value = getattr(phase, name)
    assert value is None or isinstance(value, float)
    return value


@pytest.mark.parametrize(
    ("link", "bounds"),
    [(LinkConfig(), CLEAN_BOUNDS), (LinkConfig(delay_ms=80, loss=0.02), LOSSY_BOUNDS)],
    ids=["clean", "80ms-2pct"],
)
def test_the_schedule_figures_stay_within_loose_bounds(
    link: LinkConfig, bounds: list[tuple[int, str, float]]
) -> None:
    result = simulate(FULL, random.Random(1).random, link=link)
    phases = result.phases
    for index, name, most in bounds:
        value = _figure(phases[index], name)
        assert value is not None and value <= most, (index, name, result.lines())
    for index in (1, 2):  # limited phases use the link, within 50-97 %
        assert 50 <= phases[index].link_use_pct <= 97, result.lines()
    assert phases[1].estimate_kbps[0] >= 100, result.lines()  # never collapses to the minimum
    # One drain hold, at the drop: none after a failed probe (its padding is no cost, its queue
    # no cause; seed 1 held 4 and 5 times at 300 kbit/s before)
    assert phases[1].holds == 1 and phases[2].holds == 0, result.lines()


def test_the_simulation_is_deterministic_for_a_seed() -> None:
    short = (Phase(3000, 8), Phase(300, 8))
    first = simulate(short, random.Random(5).random).lines()
    assert simulate(short, random.Random(5).random).lines() == first


@pytest.mark.parametrize("seed", [2, 3])
def test_the_layers_hold_still_inside_a_steady_weak_link(seed: int) -> None:
    """The browsers' weak-link runs switched resolution back and forth inside the 300 kbit/s
    phase (each switch an unpaced keyframe) whenever a probe lifted the estimate through the
    token bucket's burst; with the switch margin and the doubling upgrade hold the stage goes
    down once (seeds 2 and 3 switched three times before)."""
    media = MediaModel(layer_bps=(60_000, 200_000, 600_000))  # Chromium's on a busy machine
    result = simulate(FULL, random.Random(seed).random, media=media)
    weak = result.phases[1]
    assert weak.switches <= 1, result.lines()
    assert weak.down_s is not None and weak.down_s <= 3.0, result.lines()
