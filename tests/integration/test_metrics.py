"""/metrics on a running server: rooms, participants and media counters of a real call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer

pytestmark = pytest.mark.loopback


async def scrape(http_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with aiohttp.ClientSession() as session, session.get(f"{http_url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_follow_a_call(server_factory: Callable[..., Any]) -> None:
    server = await server_factory()
    other = await server_factory()  # a second app in the same process: its own registry
    empty = await scrape(server.http_url)
    assert value(empty, "confsfu_rooms") == 0 and value(empty, "confsfu_connections") == 0

    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=300_000)
    a = LoopbackPeer(server.ws_url, name="Seoul")
    b = LoopbackPeer(server.ws_url, name="Lima")
    try:
        for peer in (a, b):
            await peer.join()
            peer.start_media(audio, video, duration_s=30)
        for peer, name in ((a, "Lima"), (b, "Seoul")):
            await peer.wait_for(lambda p=peer, n=name: n in p.streams_showing("video"), timeout=15)
        first = await scrape(server.http_url)
        assert value(first, "confsfu_rooms") == 1
        assert value(first, "confsfu_connections") == 2
        assert value(first, "confsfu_participants", room="demo") == 2
        for name in ("packets_in", "bytes_in", "packets_out", "bytes_out", "keyframe_requests"):
            assert value(first, f"confsfu_{name}_total", room="demo") > 0, name
        assert value(first, "confsfu_bytes_in_total", room="demo") > value(
            first, "confsfu_packets_in_total", room="demo"
        )
        families = {n for n, _ in first}
        assert {"confsfu_rtx_sent_total", "confsfu_nacks_sent_total"} <= families

        await a.wait_for(lambda: sum(s.packets for s in a.received.values()) > 200)
        second = await scrape(server.http_url)
        for name in ("packets_in", "packets_out"):
            key = f"confsfu_{name}_total"
            assert value(second, key, room="demo") > value(first, key, room="demo"), name

        # The event loop's lateness: a histogram, and in /healthz for the benchmark.
        assert value(second, "confsfu_event_loop_lag_seconds_count") > 0
        async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/healthz") as r:
            health = await r.json()
        assert sum(health["loop_lag"]["bins"].values()) > 0
        assert health["loop_lag"]["every_ms"] == 10
        # What is allocated holds the loop while glibc counts it: given only when asked.
        assert "heap_in_use_bytes" not in health
        url = f"{server.http_url}/healthz?heap=1"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert (await r.json())["heap_in_use_bytes"] > 0

        elsewhere = await scrape(other.http_url)
        assert value(elsewhere, "confsfu_rooms") == 0
        assert value(elsewhere, "confsfu_packets_in_total", room="demo") == 0
    finally:
        for peer in (a, b):
            await peer.close()


async def test_a_public_server_offers_no_worker_routes(server_factory: Callable[..., Any]) -> None:
    """The front's routes to its workers (the relay, snapshots) live on a worker's Unix socket
    only: a server on a TCP port answers /healthz and has neither."""
    server = await server_factory()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.http_url}/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        body = {"index": 0, "directory": "/tmp", "rooms": {}}
        async with http.post(f"{server.http_url}/relay", json=body) as r:
            assert r.status in (404, 405), r.status
        async with http.post(f"{server.http_url}/restore?room=demo", json={}) as r:
            assert r.status in (404, 405), r.status
        async with http.get(f"{server.http_url}/control") as r:
            assert r.status in (404, 405), r.status
