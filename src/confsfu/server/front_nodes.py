"""A front as one node of a deployment (settings `node_id`, `node_address`, `redis_url`): its
node lease and room claims in Redis (the rules in confsfu.scale.directory), a join routed to
the room's authority node, and a connection piped there over TCP (docs/scale-out.md, "Nodes
through Redis")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from confsfu.scale.directory import (
    CLAIM_SCRIPT,
    NODE_KEY,
    NODE_PREFIX,
    RELEASE_SCRIPT,
    RENEW_SCRIPT,
    ROOM_KEY,
    Claim,
    Directory,
    Local,
    Remote,
    Route,
    Wait,
)
from confsfu.scale.snapshots import SnapshotStore
from confsfu.server.clock import clock_ms
from confsfu.server.front_redis import KEY as SNAPSHOT_KEY
from confsfu.server.redis_resp import Redis, RedisError
from confsfu.settings import Settings

log = logging.getLogger(__name__)

HOP_HEADER = "X-Confsfu-Node"  # on a connection piped from another node's front: its node_id
RENEW_S = 1.0
CONNECT_S = 5.0  # to another node's front
HELLO_S = 10.0
NODE_MESSAGE_BYTES = 8 << 20  # another node's front is ours: a bound, not a limit on pages
MAX_LOOKUPS = 2  # a claim lost to a race: the directory is read once more, then the page waits


class FrontNodes:
    """This node's lease and claims, renewed each second; `route` for each join. `in_use(room)`
    says whether the front still has the room (a home, a kept snapshot, one not yet deleted
    from Redis); a room also counts while this node serves a connection of it."""

    def __init__(
        self,
        settings: Settings,
        store: SnapshotStore,
        in_use: Callable[[str], bool],
        home: Callable[[str], int | None],
    ) -> None:
        assert settings.node_id and settings.node_address and settings.redis_url
        lease_ms = int(settings.node_lease_s * 1000)
        self.node_id = settings.node_id
        self.address = settings.node_address
        self.lease_ms = lease_ms
        rooms = [room.name for room in settings.rooms]
        self.directory = Directory(settings.node_id, rooms, lease_ms)
        # Its own connection (the snapshot mirror has another): a renewal never waits behind a
        # snapshot's write, and gives up well within a lease.
        self.redis = Redis(settings.redis_url, timeout_s=settings.node_lease_s / 2)
        self.store = store
        self._in_use = in_use
        self._home = home
        self._locks = {room: asyncio.Lock() for room in rooms}
        self._serving: dict[str, set[web.WebSocketResponse]] = {}  # local connections by room
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closing: set[asyncio.Future[bool]] = set()
        self.piped_out = 0  # connections piped to another node now
        self.lost_claims = 0

    # ---- lease and claims ----------------------------------------------------------------

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_S, sock_connect=CONNECT_S)
        self._session = aiohttp.ClientSession(timeout=timeout)
        await self.tick()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            await self.tick()

    async def tick(self) -> None:
        """The lease set again; held rooms' claims renewed, or released once let go."""
        now = clock_ms()
        try:
            await self.redis.command(
                "SET", NODE_KEY.format(node=self.node_id), self.address, "PX", self.lease_ms
            )
            rooms = self.directory.held()
            renew, release = self.directory.renewals(r for r in rooms if self._uses(r))
            for room in renew:
                ours = await self._script(RENEW_SCRIPT, room, self.lease_ms)
                if not self.directory.renewed(room, ours == 1, now):
                    self._lost(room)
            for room in release:
                await self._script(RELEASE_SCRIPT, room)
                self.directory.released(room)
                log.info("room %s let go: its claim released", room)
        except RedisError as exc:
            if not self._failing:
                log.warning("node %s: lease not renewed in Redis: %s", self.node_id, exc)
            self._failing = True
            for room in self.directory.unconfirmed(now):
                log.warning("room %s: claim not confirmed for a lease; claimed again later", room)
        else:
            if self._failing:
                log.info("node %s: lease renewed in Redis again", self.node_id)
            self._failing = False

    def _uses(self, room: str) -> bool:
        return bool(self._serving.get(room)) or self._in_use(room)

    def _lost(self, room: str) -> None:
        """Another node holds the room now: this node's connections of it go (1012) and
        come again through the directory."""
        self.lost_claims += 1
        serving = self._serving.get(room, set())
        log.warning("room %s: claimed by another node; closing %d here", room, len(serving))
        for ws in list(serving):
            closing = asyncio.ensure_future(ws.close(code=WSCloseCode.SERVICE_RESTART))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _script(self, script: str, room: str, *args: str | int) -> object:
        key = ROOM_KEY.format(room=room)
        return await self.redis.command("EVAL", script, 1, key, self.node_id, *args)

    async def stop(self) -> None:
        """At a stop (after the last snapshots were written): claims released and the lease
        deleted, so other nodes take the rooms at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RedisError):
            for room in self.directory.release_all():
                await self._script(RELEASE_SCRIPT, room)
            await self.redis.command("DEL", NODE_KEY.format(node=self.node_id))
        await self.redis.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- a join --------------------------------------------------------------------------

    async def route(self, room: str, *, hop: bool) -> Local | Remote | Wait:
        """Where a join for `room` is served: here (claimed if it had no live authority, its
        meeting then started from Redis's snapshot), at another node, or not now. Redis
        unreachable: here, as a single machine would (logged)."""
        lock = self._locks.get(room)
        if lock is None:
            return Wait("not a configured room")
        try:
            async with lock:
                return await self._route(room, hop)
        except RedisError as exc:
            log.warning("room %s: directory not read (%s); served here", room, exc)
            return Local(fresh=False)

    async def _route(self, room: str, hop: bool) -> Local | Remote | Wait:
        for _ in range(MAX_LOOKUPS):
            authority = _text(await self.redis.command("GET", ROOM_KEY.format(room=room)))
            address = None
            if authority is not None and authority != self.node_id:
                address = _text(await self.redis.command("GET", NODE_KEY.format(node=authority)))
            decision: Route = self.directory.route(room, authority, address, hop=hop)
            if isinstance(decision, Claim):
                won = await self._script(CLAIM_SCRIPT, room, self.lease_ms, NODE_PREFIX)
                decision = self.directory.claimed(room, won == 1, clock_ms())
                if isinstance(decision, Local) and decision.fresh:
                    log.info("room %s claimed by node %s", room, self.node_id)
                    await self._take_snapshot(room)
            if not isinstance(decision, Claim):
                return decision
        return Wait("the room's claim is changing hands")

    async def _take_snapshot(self, room: str) -> None:
        """A room just claimed and not live here: its meeting snapshot in Redis (written by
        the node that held it) waits for the room's home on this node."""
        if self._home(room) is not None:
            return  # live here already (Redis was away a while): this meeting wins
        text = await self.redis.command("GET", SNAPSHOT_KEY.format(room=room))
        if isinstance(text, bytes) and self.store.keep(room, text.decode(errors="replace"), 0):
            self.store.lost([room], clock_ms())
            log.info("room %s: its meeting carries on from the snapshot in Redis", room)

    @contextlib.contextmanager
    def serving(self, room: str, ws: web.WebSocketResponse) -> Iterator[None]:
        """A connection of `room` served on this node (closed if the claim is lost)."""
        self._serving.setdefault(room, set()).add(ws)
        try:
            yield
        finally:
            left = self._serving.get(room)
            if left is not None:
                left.discard(ws)
                if not left:
                    del self._serving[room]

    async def pipe_to(self, ws: web.WebSocketResponse, remote: Remote, join_text: str) -> None:
        """The page's connection piped, unchanged, to the authority's front (whose hello is
        dropped: the page had this front's)."""
        from confsfu.server.front import pipe  # the same pipe as to a worker

        session = self._session
        code, message = int(WSCloseCode.SERVICE_RESTART), b"node"
        if session is None:
            await ws.close(code=code, message=message)
            return
        self.piped_out += 1
        try:
            async with session.ws_connect(
                f"http://{remote.address}/ws",
                headers={HOP_HEADER: self.node_id},
                max_msg_size=NODE_MESSAGE_BYTES,
                autoping=True,
            ) as rws:
                first = await rws.receive(timeout=HELLO_S)
                if first.type != WSMsgType.TEXT:
                    raise ConnectionError(f"node {remote.node} said {first.type!r}")
                await rws.send_str(join_text)
                code, message = await pipe(ws, rws)
        except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
            log.warning("node %s at %s not reached: %r", remote.node, remote.address, exc)
        finally:
            self.piped_out -= 1
        await ws.close(code=code, message=message)

    def health(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "held": self.directory.held(),
            "piped_out": self.piped_out,
            "lost_claims": self.lost_claims,
            "redis_failing": self._failing,
        }

    def metrics(self) -> list[Metric]:
        """confsfu_front_node_*: rooms held, connections piped out, claims lost, Redis."""
        held = GaugeMetricFamily(
            "confsfu_front_node_rooms_held", "Rooms this node is the authority of."
        )
        held.add_metric([], len(self.directory.held()))
        piped = GaugeMetricFamily(
            "confsfu_front_node_piped_out", "Connections piped to another node's front."
        )
        piped.add_metric([], self.piped_out)
        lost = CounterMetricFamily(
            "confsfu_front_node_lost_claims", "Rooms whose claim another node took over."
        )
        lost.add_metric([], self.lost_claims)
        failing = GaugeMetricFamily(
            "confsfu_front_node_redis_failing", "1 while the lease could not be renewed."
        )
        failing.add_metric([], int(self._failing))
        return [held, piped, lost, failing]


def _text(reply: object) -> str | None:
    if isinstance(reply, bytes) and len(reply) <= 300:
        return reply.decode(errors="replace")
    return None
