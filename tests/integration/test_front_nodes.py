"""A front's node part (server/front_nodes.py) against a real redis-server (started on a free
port): routing by the directory, a fresh claim taking up the snapshot in Redis, a dead node's
rooms taken over, a claim lost to another node closing its connections, releases, a stop, and
Redis unreachable."""

from __future__ import annotations

from typing import Any

import pytest

from confsfu.scale.directory import NODE_KEY, ROOM_KEY, Local, Remote, Wait
from confsfu.scale.snapshots import SnapshotStore
from confsfu.server.front_metrics import front_exposition
from confsfu.server.front_nodes import FrontNodes
from confsfu.server.front_redis import KEY
from confsfu.server.redis_resp import Redis
from confsfu.settings import RoomSettings, Settings
from tests.integration.redis_server import free_port

pytestmark = pytest.mark.loopback


class FakeSocket:
    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed_with = code
        return True


def node(url: str, name: str, in_use: set[str]) -> FrontNodes:
    settings = Settings(
        token_secret="front-nodes-test-secret-0123456789abcdef",
        rooms=[RoomSettings(name="east"), RoomSettings(name="west")],
        redis_url=url,
        node_id=name,
        node_address=f"127.0.0.1:{free_port()}",
        node_lease_s=3.0,
    )
    store = SnapshotStore(["east", "west"], max_bytes=1 << 20, keep_ms=60_000)
    return FrontNodes(settings, store, in_use.__contains__, lambda room: None)


async def test_the_directory_routes_claims_takes_over_and_releases(redis_url: str) -> None:
    client = Redis(redis_url)
    used_a: set[str] = {"east"}
    used_b: set[str] = {"east"}  # in use once held (B's own ticks must not release it)
    a, b = node(redis_url, "node-a", used_a), node(redis_url, "node-b", used_b)
    try:
        await a.start()
        await b.start()
        assert await client.command("GET", NODE_KEY.format(node="node-a")) == a.address.encode()

        assert await a.route("east", hop=False) == Local(fresh=True)
        assert await a.route("east", hop=False) == Local(fresh=False)
        assert await b.route("east", hop=False) == Remote("node-a", a.address)
        assert isinstance(await b.route("east", hop=True), Wait)  # never piped on
        assert isinstance(await b.route("south", hop=False), Wait)
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-a"

        # a fresh claim takes up the room's snapshot in Redis for its next home
        await client.command("SET", KEY.format(room="west"), b'{"meeting": 1}', "PX", 60_000)
        assert await b.route("west", hop=False) == Local(fresh=True)
        assert b.store.waiting("west") == '{"meeting": 1}'

        # node A's lease lapses (as if killed): B claims its room at once
        assert a._task is not None
        a._task.cancel()
        await client.command("DEL", NODE_KEY.format(node="node-a"))
        assert await b.route("east", hop=False) == Local(fresh=True)
        assert await client.command("GET", ROOM_KEY.format(room="east")) == b"node-b"

        # A comes back and renews: its claim is B's now, so its connections of the room go
        socket = FakeSocket()
        with a.serving("east", socket):  # type: ignore[arg-type]
            await a.tick()
            assert not a.directory.holds("east") and a.lost_claims == 1
            assert a._closing
            for closing in list(a._closing):
                await closing
            assert socket.closed_with == 1012
        assert await a.route("east", hop=False) == Remote("node-b", b.address)

        # B lets rooms it no longer uses go: its claims released in Redis
        await b.tick()
        assert b.directory.held() == ["east"]
        assert await client.command("EXISTS", ROOM_KEY.format(room="west")) == 0
        await b.stop()  # claims released, lease deleted: other nodes take over at once
        assert await client.command("EXISTS", ROOM_KEY.format(room="east")) == 0
        assert await client.command("EXISTS", NODE_KEY.format(node="node-b")) == 0
    finally:
        await a.stop()
        await b.stop()
        await client.command("FLUSHDB")
        await client.close()


async def test_redis_unreachable_serves_here(redis_url: str) -> None:
    used: set[str] = set()
    lone = node(f"redis://127.0.0.1:{free_port()}/0", "lone", used)
    try:
        await lone.start()  # logged, not raised
        assert await lone.route("east", hop=False) == Local(fresh=False)
        health: dict[str, Any] = lone.health()
        assert health["redis_failing"] is True and health["held"] == []
        body, _ = front_exposition([], lone.metrics())
        assert b"confsfu_front_node_redis_failing 1.0" in body
        assert b"confsfu_front_node_lost_claims_total 0.0" in body
    finally:
        await lone.stop()
