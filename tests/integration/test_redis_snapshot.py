"""`confsfu serve --workers 2` with `redis_url`: the front mirrors its rooms' meeting snapshots in
Redis, so a whole server stopped and started again carries its meetings on (a redis-server is
started on a free port for the test, and stopped after it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from confsfu.conference.snapshot_model import parse
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.front_redis import KEY
from confsfu.server.redis_resp import Redis, RedisError
from tests.integration.redis_server import free_port
from tests.integration.serve_process import start_serve
from tests.integration.test_worker_snapshot import info, join, latest
from tests.integration.test_workers import SECRET, health, health_when, token, until

pytestmark = pytest.mark.loopback


async def start_front(path: Path, log: Path) -> tuple[int, asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    proc, port = await start_serve("--config", str(path), "--workers", "2", env=env, log=log)
    return port, proc


async def stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
    return await proc.wait()


async def test_a_restarted_server_carries_its_meeting_on_through_redis(
    redis_url: str, tmp_path: Path, peers: list[LoopbackPeer]
) -> None:
    config = {
        "token_secret": SECRET,
        "rooms": [{"name": "east"}, {"name": "west"}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        "reconnect_grace_s": 60,
        "redis_url": redis_url,
    }
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config))
    tokens = {"Osaka": token("east", "Osaka", "chair"), "Kyiv": token("east", "Kyiv")}
    port, proc = await start_front(path, tmp_path / "server.log")
    try:
        first = {name: await join(port, peers, name, tok) for name, tok in tokens.items()}
        chair, kyiv = first["Osaka"], first["Kyiv"]
        ids = {name: peer.participant_id for name, peer in first.items()}

        def state(peer: LoopbackPeer) -> dict[str, Any]:
            return latest(peer, "room_state") or {}

        await chair.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
        await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
        await chair.send(
            {"type": "chair", "action": "mute", "participant_id": ids["Kyiv"], "kind": "video"}
        )
        await chair.wait_for(lambda: (info(chair, ids["Kyiv"]) or {}).get("chair_muted_video"), 30)
        await kyiv.send({"type": "chat_send", "text": "kept in redis"})
        await chair.wait_for(lambda: any(m["type"] == "chat" for m in chair.messages), 30)

        client = Redis(redis_url)

        async def in_redis() -> bool:
            text = await client.command("GET", KEY.format(room="east"))
            if not isinstance(text, bytes):
                return False
            snap = parse(text)
            return snap.floor.holder == ids["Kyiv"] and len(snap.chat.history) == 1

        await until(in_redis, 60, "Redis holds the meeting's latest snapshot")
        assert await stop(proc) == 0  # a whole server's stop: its workers too

        port, proc = await start_front(path, tmp_path / "server.log")
        body = await health_when(
            port, lambda b: b["snapshots"].get("east", {}).get("state") == "waiting", "loaded"
        )
        assert "west" not in body["snapshots"]
        for peer in first.values():
            await peer.close(goodbye=False)
        back = {name: await join(port, peers, name, tok) for name, tok in tokens.items()}
        for name, peer in back.items():
            joined = latest(peer, "joined")
            assert joined is not None and joined["resumed"] and peer.participant_id == ids[name]
        chair = back["Osaka"]
        await chair.wait_for(lambda: state(chair).get("floor_holder") == ids["Kyiv"], 30)
        assert (info(chair, ids["Kyiv"]) or {}).get("chair_muted_video")
        history = (latest(chair, "chat_history") or {})["messages"]
        assert [m["text"] for m in history] == ["kept in redis"]

        async def restored_and_kept() -> bool:
            body = await health(port)
            return bool(body["snapshots"]["east"]["state"] == "kept")

        await until(restored_and_kept, 60, "the new home's own snapshot is kept")
        await client.close()
    finally:
        await stop(proc)
    reports = sorted((tmp_path / "reports").glob("east-*.json"))
    assert reports, "the reports were written at each stop"
    assert json.loads(reports[-1].read_text())["chat"][0]["text"] == "kept in redis"


async def test_the_client_reads_every_reply_kind_and_reconnects(redis_url: str) -> None:
    client = Redis(redis_url)
    try:
        assert await client.command("SET", "confsfu:test", b"\x00\xffbytes", "PX", 60_000) == "OK"
        assert await client.command("GET", "confsfu:test") == b"\x00\xffbytes"
        assert await client.command("GET", "confsfu:absent") is None
        assert await client.command("DEL", "confsfu:test", "confsfu:absent") == 1
        assert await client.command("RPUSH", "confsfu:list", "a", "b") == 2
        assert await client.command("LRANGE", "confsfu:list", 0, -1) == [b"a", b"b"]
        with pytest.raises(RedisError, match="ERR"):
            await client.command("NOSUCHCOMMAND")
        assert await client.command("PING") == "PONG"  # the connection still serves
        await client.close()
        assert await client.command("PING") == "PONG"  # connected again
    finally:
        await client.command("DEL", "confsfu:list")
        await client.close()
    with pytest.raises(ValueError):
        Redis("http://127.0.0.1:1/")
    unreachable = Redis(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RedisError):
        await unreachable.command("PING")
