"""The IO of a room's media across nodes (`node_spill`; the rules in confsfu.scale.node_spans):
this node's ordinal registered in Redis, its workers' relay addresses and its spans of rooms
published each second with its lease, and the other nodes' read back for the rooms it has."""

from __future__ import annotations

import json
import logging

from confsfu.scale import node_spans as ns
from confsfu.scale.directory import ROOM_KEY
from confsfu.server.redis_resp import Redis, RedisError

log = logging.getLogger(__name__)


class NodeSpans:
    """This node's part: `ordinal` once registered; `exchange` each second."""

    def __init__(self, redis: Redis, node_id: str, lease_ms: int) -> None:
        self.redis = redis
        self.node_id = node_id
        self.lease_ms = lease_ms
        self.ordinal = 0  # 0: not registered yet
        self.peers: dict[int, str] = {}  # the other nodes' workers' relay addresses
        self.authorities: dict[str, str | None] = {}  # room -> its authority node, as read

    async def register(self) -> int:
        """This node's ordinal (the same for a node_id ever after). Raises RedisError."""
        if not self.ordinal:
            reply = await self.redis.command(
                "EVAL",
                ns.ORDINAL_SCRIPT,
                2,
                ns.ORDINAL_KEY.format(node=self.node_id),
                ns.ORDINALS_KEY,
            )
            self.ordinal = ns.parse_ordinal(reply)
            await self.redis.command("SADD", ns.NODES_KEY, self.node_id)
            log.info("node %s: relay ordinal %d", self.node_id, self.ordinal)
        return self.ordinal

    def index(self, worker: int) -> int:
        return ns.relay_index(self.ordinal, worker)

    async def exchange(
        self, addresses: dict[int, str], spans: dict[str, list[int]]
    ) -> dict[str, dict[str, list[int]]]:
        """Publish this node's relay addresses and spans (relay indices, home first); read the
        other nodes' spans of the same rooms and their addresses. Returns, per room, the
        spans by node (this node's included); on a Redis failure, only this node's."""
        mine = {room: {self.node_id: span} for room, span in spans.items()}
        try:
            await self.register()
            px = str(self.lease_ms)
            key = ns.RELAY_KEY.format(node=self.node_id)
            peers = {str(i): a for i, a in addresses.items()}
            await self.redis.command("SET", key, json.dumps(peers), "PX", px)
            for room, span in spans.items():
                key = ns.SPAN_KEY.format(room=room, node=self.node_id)
                await self.redis.command("SET", key, json.dumps(span), "PX", px)
            members = await self.redis.command("SMEMBERS", ns.NODES_KEY)
            nodes = sorted(
                m.decode(errors="replace")
                for m in (members if isinstance(members, list) else [])[: ns.MAX_NODES]
                if isinstance(m, bytes) and m.decode(errors="replace") != self.node_id
            )
            if nodes:
                await self._read_peers(nodes)
            for room in spans:
                authority = await self.redis.command("GET", ROOM_KEY.format(room=room))
                self.authorities[room] = (
                    authority.decode(errors="replace") if isinstance(authority, bytes) else None
                )
                for node in nodes:
                    key = ns.SPAN_KEY.format(room=room, node=node)
                    span = ns.parse_span(await self.redis.command("GET", key))
                    if span:
                        mine[room][node] = span
        except (RedisError, ValueError) as exc:
            log.warning("node %s: spans not exchanged through Redis: %s", self.node_id, exc)
        for room in list(self.authorities):
            if room not in spans:
                del self.authorities[room]
        return mine

    async def _read_peers(self, nodes: list[str]) -> None:
        keys = [ns.RELAY_KEY.format(node=n) for n in nodes]
        ordinals = [ns.ORDINAL_KEY.format(node=n) for n in nodes]
        values = await self.redis.command("MGET", *keys, *ordinals)
        replies = values if isinstance(values, list) else []
        peers: dict[int, str] = {}
        for i in range(len(nodes)):
            if len(replies) < 2 * len(nodes):
                break
            ordinal = replies[len(nodes) + i]
            try:
                of = int(ordinal) if isinstance(ordinal, bytes) and len(ordinal) < 12 else None
            except ValueError:
                of = None
            if of is not None:
                peers.update(ns.parse_peers(replies[i], of))
        self.peers = peers

    def merged(self, room: str, by_node: dict[str, list[int]]) -> list[int]:
        """The room's workers across nodes, the authority's home first."""
        local = by_node.get(self.node_id, [])
        others = {n: s for n, s in by_node.items() if n != self.node_id}
        return ns.merge(local, others, self.authorities.get(room), self.node_id)
