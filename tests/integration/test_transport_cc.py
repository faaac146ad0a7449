"""Issue 20: transport-cc. A subscriber that takes up the server's transport-wide-cc offer is
estimated on the sending side from its feedback; behind a link that narrows and widens again
(emulated at the subscriber: a queue drained at the link's rate), it gets a low layer and
climbs back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from confsfu.bandwidth.twcc import TwccEstimator
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import HUB
from tests.integration.test_simulcast import simulcast_presenter, stage

pytestmark = pytest.mark.loopback


async def test_a_subscriber_behind_a_narrowing_link_goes_down_and_climbs_back(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(
        bandwidth={"warmup_ms": 2000, "upgrade_hold_ms": 1500, "estimator": "auto"}
    )
    await simulcast_presenter(server.ws_url, peers)
    link = [4_000_000]
    viewer = LoopbackPeer(server.ws_url, name="Oslo", link_bps=lambda: link[0])
    peers.append(viewer)
    await viewer.join(publish=False)
    media = server.app[HUB].rooms["demo"].media
    sub = media.subscribers[viewer.participant_id]
    await viewer.wait_for(lambda: sub.ready)
    assert isinstance(sub.estimator, TwccEstimator)  # it answered with transport-cc
    assert sub.pc.route.transport_cc_id == viewer.link.ext_id  # type: ignore[union-attr]

    def on_stage(spatial: int) -> Callable[[], bool]:
        return lambda: stage(viewer)["name"] == "Seoul" and stage(viewer)["spatial"] == spatial

    await viewer.wait_for(on_stage(2), timeout=20)  # 4 Mbit/s: the top layer (1.3 Mbit/s)
    # The stage may be at the top before the first feedback (the initial estimate affords it)
    await viewer.wait_for(lambda: media.counters["transport_feedback"] > 0, timeout=5)
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/healthz") as r:
        health = await r.json()
    assert health["estimators"] == {"twcc": 1, "remb": 1}  # the viewer's; the presenter's REMB
    link[0] = 300_000  # the link narrows: only the lowest layer fits
    narrowed = time.monotonic()
    await viewer.wait_for(on_stage(0), timeout=15)
    down_s = time.monotonic() - narrowed
    estimate = sub.estimator.estimate_bps(0)
    assert estimate < 600_000, estimate
    link[0] = 4_000_000  # and widens again
    widened = time.monotonic()
    # 8-14 s at load 7-9; each failed up-switch doubles the next hold (1.5, 3, 6 s...), and a
    # loaded machine's emulated link fails more of them: a bound, not a figure.
    await viewer.wait_for(on_stage(2), timeout=45)
    up_s = time.monotonic() - widened
    print(f"transport-cc loopback: down in {down_s:.1f} s, back to the top in {up_s:.1f} s")
    assert media.counters["probes_started"] >= 1  # probes found the room, and were believed
    # Every packet forwarded to it carried a transport-wide number (a few may come before the
    # answer named the extension), and the route counted each.
    assert viewer.link.packets > 200
    assert viewer.link.numbered >= 0.95 * viewer.link.packets
    assert sub.pc.route.stamped >= viewer.link.numbered  # type: ignore[union-attr]
