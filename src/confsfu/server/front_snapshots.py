"""The front's meeting snapshots: a control WebSocket to each live worker on which it sends its
rooms' snapshots (server/worker_control.py), kept in a SnapshotStore, and handed to a room's
next home before its first connection is piped there (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

import aiohttp

from confsfu.conference.snapshot_model import MAX_SNAPSHOT_BYTES
from confsfu.scale.snapshots import SnapshotStore
from confsfu.server.clock import clock_ms
from confsfu.server.front_redis import RedisMirror
from confsfu.server.worker_control import CONTROL_HEADROOM_BYTES
from confsfu.server.workers import Worker
from confsfu.settings import Settings

log = logging.getLogger(__name__)

RESTORE_TIMEOUT_S = 30.0  # a loaded worker parses a few MB slowly
MAX_HEADER_CHARS = 1024
RELINK_S = 1.0  # a control connection that ended while its worker lives: again after this


class FrontSnapshots:
    """The latest snapshot of each room, from its worker; given to its next home when it moves.
    `current(index, epoch)` says whether that life of worker `index` is still the live one."""

    def __init__(
        self,
        settings: Settings,
        current: Callable[[int, int], bool],
        home: Callable[[str], int | None] = lambda room: None,
        owns: Callable[[str], bool] = lambda room: True,
    ) -> None:
        keep_s = settings.reconnect_grace_s + settings.empty_meeting_end_s
        self.store = SnapshotStore(
            [room.name for room in settings.rooms],
            max_bytes=MAX_SNAPSHOT_BYTES,
            keep_ms=int(keep_s * 1000),
        )
        self._current = current
        self._home = home  # a room's home worker: only its snapshots count (not a relay member's)
        self._rooms = [room.name for room in settings.rooms]
        url = settings.redis_url
        self.mirror = RedisMirror(url, self.store, owns) if url is not None else None
        self._node = settings.node_id is not None
        self._links: dict[int, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # by configured room being restored
        self.received = 0
        self.restored = 0

    # ---- from the workers ----------------------------------------------------------------

    def worker_ready(self, worker: Worker, epoch: int) -> None:
        self._stop_link(worker.index)
        self._links[worker.index] = asyncio.create_task(self._link(worker, epoch))

    def worker_died(self, index: int, lost_rooms: list[str]) -> list[str]:
        """Its rooms with a snapshot now wait for their next home; returns those rooms."""
        self._stop_link(index)
        return self.store.lost(lost_rooms, clock_ms())

    async def _link(self, worker: Worker, epoch: int) -> None:
        """Read the worker's snapshots while this life of it lasts (reconnecting if the
        connection alone ended)."""
        size = MAX_SNAPSHOT_BYTES + CONTROL_HEADROOM_BYTES
        while self._current(worker.index, epoch) and (client := worker.client) is not None:
            try:
                async with client.ws_connect(worker.url("/control"), max_msg_size=size) as ws:
                    async for frame in ws:
                        if frame.type != aiohttp.WSMsgType.TEXT:
                            continue
                        if not self._current(worker.index, epoch):
                            return  # a frame read after the worker's death must not count
                        self._on_frame(worker.index, frame.data)
            except (aiohttp.ClientError, OSError) as exc:
                log.info("worker %d's control connection ended: %r", worker.index, exc)
            await asyncio.sleep(RELINK_S)

    def _on_frame(self, index: int, data: str) -> None:
        header_text, _, body = data.partition("\n")
        try:
            header = json.loads(header_text[:MAX_HEADER_CHARS])
            kind, room = header["type"], header["room"]
        except (ValueError, KeyError, TypeError, RecursionError):
            kind = room = None
        if not isinstance(room, str):
            log.warning("a worker's control frame without a header: %r", data[:80])
            return
        if self._home(room) not in (None, index):
            return  # a relay member's part of a room that spans workers: the home's is the room's
        if kind == "meeting_snapshot":
            taken = header.get("taken_unix_ms")
            if self.store.keep(room, body, taken if isinstance(taken, int) else 0):
                self.received += 1
        elif kind == "room_forgotten":
            self.store.forget(room)

    def _stop_link(self, index: int) -> None:
        link = self._links.pop(index, None)
        if link is not None:
            link.cancel()

    async def start(self) -> None:
        """Before the workers: the snapshots Redis kept of a server that stopped wait for
        their rooms' next home."""
        if self.mirror is not None:
            # A node reads a room's snapshot when it claims the room (front_nodes.py).
            rooms = [] if self._node else self._rooms
            found = await self.mirror.load(rooms, clock_ms())
            if found:
                log.info("meeting snapshots from Redis for: %s", ", ".join(found))
            self.mirror.start()

    def has(self, room: str) -> bool:
        """A snapshot of `room` is kept, or not yet deleted from Redis."""
        return room in self.store.texts() or (self.mirror is not None and self.mirror.wrote(room))

    async def freeze(self) -> None:
        """At a stop, before the workers stop (their participants leave): no more snapshots
        taken in; Redis keeps the meetings as they were."""
        await self.close()
        if self.mirror is not None:
            await self.mirror.stop()
            self.mirror = None

    async def close(self) -> None:
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            link.cancel()
        for link in links:
            with contextlib.suppress(asyncio.CancelledError):
                await link

    # ---- to a room's next home -----------------------------------------------------------

    async def restore_at(self, room: str, worker: Worker, *, promote: bool = False) -> bool:
        """Before a connection is piped to `room`'s home: if the room's snapshot waits for
        a next home, give it to `worker` first (once, whichever connection comes first).
        `promote`: the worker holds a follower part of the room to become its meeting
        (server/takeover.py), told even with no snapshot (an empty one).
        False: the worker could not be asked (the connection should be closed to retry)."""
        if self.store.waiting(room) is None and not promote:
            return True
        lock = self._locks.setdefault(room, asyncio.Lock())
        async with lock:
            text = self.store.waiting(room)
            client = worker.client
            if text is None and not promote:
                return True
            if client is None:
                return False
            timeout = aiohttp.ClientTimeout(total=RESTORE_TIMEOUT_S)
            index = worker.index
            try:
                async with client.post(
                    worker.url("/restore"),
                    params={"room": room, **({"promote": "1"} if promote else {})},
                    data=(text or "").encode(),
                    timeout=timeout,
                ) as response:
                    answer = await response.text()
                    status = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("room %s: snapshot not handed to worker %d: %r", room, index, exc)
                return False
            if status == 200:
                log.info("room %s: worker %d took its snapshot: %s", room, index, answer)
                self.restored += 1
            else:  # it cannot be used: the room starts a new meeting rather than never
                log.error("room %s: worker %d refused its snapshot: %s", room, index, answer)
            if text is not None:
                self.store.restored(room, text)
        return True

    def expire(self) -> None:
        for room in self.store.expire(clock_ms()):
            log.info("room %s: its snapshot waited too long for a next home; dropped", room)
