"""The front's meeting snapshots mirrored in Redis (setting `redis_url`): written each second
they changed (kept alive while unchanged), deleted when their room is let go, and read at the
front's start, so the meetings of a whole server restarted carry on (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from confsfu.scale.snapshots import SnapshotStore
from confsfu.server.redis_resp import Redis, RedisError

log = logging.getLogger(__name__)

KEY = "confsfu:meeting_snapshot:{room}"
EVERY_S = 1.0


class RedisMirror:
    """`store`'s snapshots in Redis under KEY, each for `store.keep_ms` after its last write."""

    def __init__(
        self, url: str, store: SnapshotStore, owns: Callable[[str], bool] = lambda room: True
    ) -> None:
        self.redis = Redis(url)
        self.store = store
        self.owns = owns  # a node writes only the rooms it holds (front_nodes.py)
        self._written: dict[str, str] = {}  # room -> the text last written (by identity)
        self._task: asyncio.Task[None] | None = None
        self.writes = 0
        self.failures = 0
        self._wrote_since_failure = True

    async def load(self, rooms: list[str], now_ms: int) -> list[str]:
        """Put the snapshots Redis holds for `rooms` in the store, waiting for their next home
        (the server stopped, or its front died); returns those rooms. Redis unreachable: none."""
        found = []
        for room in rooms:
            try:
                text = await self.redis.command("GET", KEY.format(room=room))
            except RedisError as exc:
                log.warning("meeting snapshots not read from Redis: %s", exc)
                return []
            if isinstance(text, bytes) and self.store.keep(room, text.decode(errors="replace"), 0):
                found.append(room)
        for room in self.store.lost(found, now_ms):
            self._written[room] = self.store.texts()[room]
        return found

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(EVERY_S)
            try:
                await self.write()
            except RedisError as exc:
                self.failures += 1
                if self.failures == 1 or self._wrote_since_failure:  # once per outage
                    log.warning("meeting snapshots not written to Redis: %s", exc)
                self._wrote_since_failure = False
            else:
                self._wrote_since_failure = True

    async def write(self) -> None:
        """One pass: changed snapshots set, the others' lives extended, let-go ones deleted."""
        ttl_ms = max(1, self.store.keep_ms)
        texts = self.store.texts()
        for room, text in texts.items():
            key = KEY.format(room=room)
            if not self.owns(room):
                continue
            if self._written.get(room) is not text:
                await self.redis.command("SET", key, text.encode(), "PX", ttl_ms)
                self._written[room] = text
                self.writes += 1
            else:
                await self.redis.command("PEXPIRE", key, ttl_ms)
        for room in [r for r in self._written if r not in texts]:
            if self.owns(room):
                await self.redis.command("DEL", KEY.format(room=room))
            del self._written[room]

    def wrote(self, room: str) -> bool:
        """`room`'s snapshot is in Redis from this front (until its room is let go)."""
        return room in self._written

    async def stop(self) -> None:
        """A last pass (what the store holds now), then no more."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.write()
        except RedisError as exc:
            log.warning("meeting snapshots not written to Redis at the stop: %s", exc)
        await self.redis.close()
