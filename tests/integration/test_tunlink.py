"""The TUN link emulator between a network namespace and this host (tests/browser/tunlink.py),
measured with UDP (tests/browser/linkprobe.py): a delay shows in every round trip (twice: it
applies both ways), random loss takes near its share of a few hundred pings, and a stream sent at
twice the rate comes through at about the rate. Root only; the bounds are loose (a loaded machine
adds to round trips and bunches arrivals, never takes from them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.browser.linkprobe import ping, stream, udp_server
from tests.browser.netns import Namespace, namespace
from tests.browser.tunlink import TunLink

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"),
    reason="the TUN link needs root, /dev/net/tun and iproute2 (ip) to join a namespace",
)


@pytest.fixture(scope="module")
def linked() -> Iterator[tuple[Namespace, TunLink]]:
    with namespace("tunlink", "10.213.91", "tun", seed=7) as ns, udp_server(ns):
        assert isinstance(ns.shaper, TunLink)
        yield ns, ns.shaper


def test_the_delay_applies_both_ways(linked: tuple[Namespace, TunLink]) -> None:
    ns, link = linked
    link.shape(None, 40, 0.0)
    rtts = ping(ns, 10)
    assert len(rtts) == 10 and min(rtts) >= 0.080


def test_random_loss_takes_near_its_share(linked: tuple[Namespace, TunLink]) -> None:
    ns, link = linked
    link.shape(None, 0, 10.0)  # on the downlink only: each ping crosses it once
    back = len(ping(ns, 300, interval_s=0.005, wait_s=0.2))
    link.shape(None, 0, 0.0)
    assert 240 <= back <= 295  # 270 expected, a standard deviation of 5


def test_the_rate_is_capped(linked: tuple[Namespace, TunLink]) -> None:
    ns, link = linked
    link.shape(500, 0, 0.0)
    got = stream(ns, 1000, 3.0)
    link.shape(None, 0, 0.0)
    assert got.received < 0.75 * got.sent  # about half
    assert 250 < got.kbit_s < 750, got
    stats = link.stats()
    assert stats["down"]["dropped"] and not stats["down"]["write_errors"]
