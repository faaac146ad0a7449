"""`confsfu serve --workers 2`: two rooms on two workers, media in each; a worker killed, its
participants back (as themselves) on a live worker, the other room undisturbed; /metrics at the
front holds every worker's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.integration.serve_process import start_serve

pytestmark = pytest.mark.loopback
SECRET = "workers-test-secret-0123456789abcdef"
ROOMS = ("east", "west")


@asynccontextmanager
async def serving(
    tmp_path: Path, config: dict[str, Any], workers: int = 2
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """`confsfu serve --workers N` with `config` on a free port: its port and process. Stopped
    (SIGTERM, then SIGKILL) if the test did not."""
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    proc, port = await start_serve(
        *("--config", str(path), "--workers", str(workers)), env=env, log=tmp_path / "server.log"
    )
    try:
        yield port, proc
    finally:
        if proc.returncode is None:  # the front stops its workers
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """Two workers, the rooms east and west."""
    config = {
        "token_secret": SECRET,
        "rooms": [{"name": name} for name in ROOMS],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        "reconnect_grace_s": 30,
    }
    async with serving(tmp_path, config) as running:
        yield running


async def health(port: int, query: str = "") -> dict[str, Any]:
    def get() -> dict[str, Any]:
        url = f"http://127.0.0.1:{port}/healthz{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    return await asyncio.to_thread(get)


async def samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The front's /metrics: each sample's value by its name and labels."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def health_when(port: int, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
    """The front's /healthz once `check` holds for it (a loaded worker may answer late)."""
    deadline = time.monotonic() + 60
    while not check(body := await health(port)):
        assert time.monotonic() < deadline, f"{what}: {body}"
        await asyncio.sleep(0.5)
    return body


def token(room: str, name: str, role: str = "participant") -> str:
    return make_token(SECRET, room=room, name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def join(port: int, made: list[LoopbackPeer], room: str, name: str, tok: str) -> LoopbackPeer:
    peer = LoopbackPeer(f"ws://127.0.0.1:{port}/ws", name=name, token=tok)
    made.append(peer)
    await peer.join()
    frames = vp8_frames(320, 180, bitrate_bps=200_000)
    peer.start_media(opus_frames(variant=len(made)), frames, level_dbov=30, duration_s=120)
    return peer


def video_from(peer: LoopbackPeer, name: str) -> int:
    stream = peer.streams_showing("video").get(name)
    return 0 if stream is None else stream.packets


async def receives(peer: LoopbackPeer, name: str, more_than: int = 0) -> None:
    await peer.wait_for(lambda: video_from(peer, name) > more_than + 30, 30)


async def test_rooms_on_two_workers_and_a_killed_worker(
    front: tuple[int, asyncio.subprocess.Process], peers: list[LoopbackPeer], tmp_path: Path
) -> None:
    port, proc = front
    tokens = {
        ("east", "Osaka"): token("east", "Osaka", "chair"),
        ("east", "Kyiv"): token("east", "Kyiv"),
        ("west", "Lagos"): token("west", "Lagos"),
        ("west", "Quito"): token("west", "Quito"),
    }
    group = {key: await join(port, peers, *key, tok) for key, tok in tokens.items()}
    for (room, name), peer in group.items():
        other = next(n for r, n in group if r == room and n != name)
        await receives(peer, other)

    body = await health_when(port, lambda b: b["status"] == "ok", "both workers answer")
    homes = body["homes"]
    assert set(homes) == set(ROOMS) and homes["east"] != homes["west"], homes
    for worker in body["workers"]:
        assert worker["health"]["room_names"] == worker["rooms"], body["workers"]
    assert body["participants"] == 4
    assert "heap_in_use_bytes" not in body  # costly: each worker reads it only when asked
    asked = await health(port, "?heap=1")
    assert asked["heap_in_use_bytes"] == sum(
        w["health"]["heap_in_use_bytes"] for w in asked["workers"]
    )
    east_worker = body["workers"][homes["east"]]
    west_worker = body["workers"][homes["west"]]

    west = [group["west", "Lagos"], group["west", "Quito"]]
    west_ids = {p.name: p.participant_id for p in west}
    west_before = {p.name: video_from(p, "Quito" if p.name == "Lagos" else "Lagos") for p in west}
    west_messages = [len(p.messages) for p in west]

    os.kill(east_worker["pid"], signal.SIGKILL)
    east = [group["east", "Osaka"], group["east", "Kyiv"]]
    for peer in east:
        await peer.wait_for(lambda peer=peer: peer.closed, 20)  # type: ignore[misc]
        assert not any(m["type"] == "bye" for m in peer.messages), "closed without a goodbye"
        await peer.close(goodbye=False)

    async def lost() -> bool:
        return "east" in (await health(port))["lost_rooms"]

    await until(lost, 60, "the front noticed the killed worker")

    back = [
        await join(port, peers, "east", name, tokens["east", name]) for name in ("Osaka", "Kyiv")
    ]
    for peer in back:
        joined = next(m for m in peer.messages if m["type"] == "joined")
        assert joined["you"]["name"] == peer.name
        assert joined["you"]["role"] == ("chair" if peer.name == "Osaka" else "participant")
    await receives(back[0], "Kyiv")
    await receives(back[1], "Osaka")
    body = await health_when(
        port, lambda b: b["workers"][b["homes"]["east"]]["alive"], "east's new home answers"
    )
    east_home = body["workers"][body["homes"]["east"]]
    assert east_home["pid"] != east_worker["pid"], body["workers"]
    assert body["homes"]["west"] == homes["west"]
    assert body["workers"][homes["west"]]["pid"] == west_worker["pid"]
    assert body["participants"] == 4

    for peer in west:  # the other room never noticed
        other = "Quito" if peer.name == "Lagos" else "Lagos"
        await receives(peer, other, west_before[peer.name])
        assert not peer.closed and peer.participant_id == west_ids[peer.name]
    for peer, seen in zip(west, west_messages, strict=True):
        later = [m["type"] for m in peer.messages[seen:]]
        assert not {"participant_left", "participant_joined", "bye", "error"} & set(later), later

    async def restarted() -> bool:
        w = (await health(port))["workers"][homes["east"]]
        return bool(w["alive"] and w["pid"] != east_worker["pid"] and w["restarts"] >= 1)

    await until(restarted, 240, "the killed worker is started again")

    # /metrics at the front: every worker's metrics under its index, and the front's own view.
    seen = await samples(port)
    east_now, west_at = str(body["homes"]["east"]), str(homes["west"])
    for room, worker in (("east", east_now), ("west", west_at)):
        labels = frozenset({("room", room), ("worker", worker)})
        assert seen[("confsfu_participants", labels)] == 2, seen
        assert seen[("confsfu_packets_out_total", labels)] > 0, seen
    killed = frozenset({("worker", str(homes["east"]))})
    assert seen[("confsfu_front_worker_restarts_total", killed)] >= 1, seen
    for worker in ("0", "1"):
        assert seen[("confsfu_front_worker_scraped", frozenset({("worker", worker)}))] == 1, seen

    pids = [w["pid"] for w in (await health(port))["workers"]]
    proc.send_signal(signal.SIGTERM)  # the workers tell their pages, through the front
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    for peer in [*west, *back]:
        await peer.wait_for(lambda peer=peer: peer.closed, 10)  # type: ignore[misc]
        codes = [m.get("code") for m in peer.messages if m["type"] == "notice"]
        assert "server_stopping" in codes and peer.messages[-1]["type"] == "bye"
    reports = {p.name.split("-")[0] for p in (tmp_path / "reports").glob("*.json")}
    assert {"east", "west"} <= reports, reports
    assert not [pid for pid in pids if psutil.pid_exists(pid)], "the workers ended with the front"
