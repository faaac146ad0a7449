"""Simulcast through loopback peers: each subscriber gets the layer its reported bandwidth buys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer

pytestmark = pytest.mark.loopback


def stage(peer: LoopbackPeer) -> dict[str, Any]:
    return next(s for s in peer.slots.values() if s["purpose"] == "stage")


def stage_payloads(peer: LoopbackPeer, last: int) -> list[bytes]:
    mid = stage(peer)["mid"]
    streams = [s for s in peer.received.values() if s.mid == mid]
    return streams[0].payloads[-last:] if streams else []


def layer_of(publisher: LoopbackPeer, payloads: list[bytes]) -> set[int]:
    return {
        layer
        for p in payloads
        for layer, sent in enumerate(publisher.layer_payloads)
        if p[parse_vp8(p).size :] in sent
    }


def seoul_on_layer(presenter: LoopbackPeer, peer: LoopbackPeer, spatial: int) -> Any:
    """Whether `peer`'s stage shows Seoul at layer `spatial`, its last 30 payloads that layer's."""

    def check() -> bool:
        slot = stage(peer)
        payloads = stage_payloads(peer, 30)
        return (
            slot["name"] == "Seoul"
            and slot["spatial"] == spatial
            and len(payloads) == 30
            and layer_of(presenter, payloads) == {spatial}
        )

    return check


async def simulcast_presenter(
    ws_url: str, peers: list[LoopbackPeer], *, legacy_sim: bool = False
) -> LoopbackPeer:
    """Seoul, publishing three VP8 layers (180p, 360p, 720p) and Opus for 40 s."""
    layers = [
        vp8_frames(320, 180, bitrate_bps=150_000),
        vp8_frames(640, 360, bitrate_bps=450_000),
        vp8_frames(1280, 720, bitrate_bps=1_300_000),
    ]
    presenter = LoopbackPeer(ws_url, name="Seoul", simulcast=True, legacy_sim=legacy_sim)
    peers.append(presenter)
    await presenter.join()
    presenter.start_simulcast(opus_frames(), layers, duration_s=40)
    return presenter


async def weak_and_strong_viewers(
    url: str, presenter: LoopbackPeer, peers: list[LoopbackPeer]
) -> tuple[LoopbackPeer, LoopbackPeer]:
    """Kinshasa on a 150 kbit/s link and Oslo on a 10 Mbit/s one, once on the presenter's
    lowest and top layers."""
    weak = LoopbackPeer(url, name="Kinshasa", remb_bps=150_000, keep_payloads=True)
    strong = LoopbackPeer(url, name="Oslo", remb_bps=10_000_000, keep_payloads=True)
    for peer in (weak, strong):
        peers.append(peer)
        await peer.join(publish=False)
    await strong.wait_for(seoul_on_layer(presenter, strong, 2), timeout=20)
    await weak.wait_for(seoul_on_layer(presenter, weak, 0), timeout=20)
    return weak, strong


async def test_each_subscriber_gets_the_layer_its_bandwidth_buys(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(bandwidth={"upgrade_hold_ms": 1500, "rise_ms": 500})
    presenter = await simulcast_presenter(server.ws_url, peers)
    weak, strong = await weak_and_strong_viewers(server.ws_url, presenter, peers)
    # Settled, nobody's slot asks for keyframes: not of the layer the weak link does not take.
    await asyncio.sleep(1.0)
    before = presenter.keyframe_requests_by_ssrc.copy()
    await asyncio.sleep(3.0)
    asked = presenter.keyframe_requests_by_ssrc - before
    assert stage(weak)["spatial"] == 0
    assert not asked, asked
    # The weak link also gets a reduced frame rate: temporal layer 2 is dropped.
    assert stage(weak)["temporal"] < 2 and stage(weak)["reason"] == "bandwidth"
    tids = {parse_vp8(p).temporal_id for p in stage_payloads(weak, 30)}
    assert 2 not in tids
    assert stage(strong)["temporal"] == 2

    # The weak link recovers: within seconds it climbs to the top layer.
    weak.remb_bps = 10_000_000
    await weak.wait_for(seoul_on_layer(presenter, weak, 2), timeout=20)


async def test_layers_nobody_takes_are_switched_off_at_the_publisher(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    # Every tile this subscriber has wants the lowest layer only (a thumbnail-sized stage).
    server = await server_factory(bandwidth={"stage_max_spatial": 0, "layer_off_delay_ms": 1000})
    presenter = await simulcast_presenter(server.ws_url, peers)
    viewer = LoopbackPeer(server.ws_url, name="Kinshasa", keep_payloads=True)
    peers.append(viewer)
    await viewer.join(publish=False)

    # The publisher (like a browser told by publisher_layers) stops sending the other two.
    await presenter.wait_for(lambda: presenter.active_rids == {"q"}, timeout=20)
    await asyncio.sleep(0.5)
    sent = [presenter.sent_by_ssrc[s] for s in presenter.layer_ssrcs]
    received = len(stage_payloads(viewer, 100_000))
    await asyncio.sleep(1.5)
    now = [presenter.sent_by_ssrc[s] for s in presenter.layer_ssrcs]
    assert now[0] > sent[0] and now[1:] == sent[1:]
    assert len(stage_payloads(viewer, 100_000)) > received  # the stage keeps playing
    assert layer_of(presenter, stage_payloads(viewer, 30)) == {0}


async def test_a_legacy_sim_group_publisher_is_forwarded_layer_by_layer(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    """Layers named by a=ssrc-group:SIM (no rids) are distinct layers, lowest first."""
    server = await server_factory()
    presenter = await simulcast_presenter(server.ws_url, peers, legacy_sim=True)
    await weak_and_strong_viewers(server.ws_url, presenter, peers)  # each on its layer


async def test_a_stage_the_page_shows_small_gets_the_layer_that_fills_it(
    server_factory: Any, peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(bandwidth={"upgrade_hold_ms": 1500, "rise_ms": 500})
    presenter = await simulcast_presenter(server.ws_url, peers)
    phone = LoopbackPeer(server.ws_url, name="Dakar", remb_bps=10_000_000, keep_payloads=True)
    desk = LoopbackPeer(server.ws_url, name="Oslo", remb_bps=10_000_000, keep_payloads=True)
    for peer in (phone, desk):
        peers.append(peer)
        await peer.join(publish=False)
    # A phone's stage, 390 CSS px wide at a device pixel ratio of 2: 438 device px high.
    await phone.send({"type": "stage_size", "height": 438})

    def on_layer(peer: LoopbackPeer, spatial: int) -> Any:
        return seoul_on_layer(presenter, peer, spatial)

    await desk.wait_for(on_layer(desk, 2), timeout=20)  # says nothing: the top layer
    await phone.wait_for(on_layer(phone, 1), timeout=20)  # 360 p fills 438 px
    await asyncio.sleep(2.0)  # and stays there with bandwidth to spare
    assert stage(phone)["spatial"] == 1
    # Full screen on a large display: the top layer.
    await phone.send({"type": "stage_size", "height": 1440})
    await phone.wait_for(on_layer(phone, 2), timeout=20)
