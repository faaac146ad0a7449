"""The room directory of a deployment of nodes (sans-IO; docs/scale-out.md, "Nodes through
Redis"): which node is each room's authority, and what a node's front does with a join.

Redis holds, for each live node, its **node lease** (`confsfu:node:<node_id>` = the address
its front is reached at, set with a life of `lease_ms` and renewed each second) and, for each
room in use, its **room claim** (`confsfu:room_authority:<room>` = the authority's node_id,
the same life, renewed while the node holds the room). A claim counts while its node's lease
lives: a dead node's rooms may be claimed at once, as if unclaimed. This core decides from
what was read (the IO shell, server/front_nodes.py, reads and writes Redis)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

NODE_KEY = "confsfu:node:{node}"
ROOM_KEY = "confsfu:room_authority:{room}"
NODE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_ADDRESS_CHARS = 300
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]{2,100}\]|[A-Za-z0-9_.-]{1,253}):(\d{1,5})")

# Atomic in Redis (a script runs alone). CLAIM: the room is unclaimed, ours already, or its
# node's lease lapsed -> ours for PX ms (1), else (0). KEYS: room key; ARGV: node, ms, prefix.
CLAIM_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] or redis.call('EXISTS', ARGV[3] .. v) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# RENEW: still ours -> its life renewed (1), else (0). RELEASE: still ours -> deleted.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
NODE_PREFIX = NODE_KEY.format(node="")


@dataclass(frozen=True, slots=True)
class Local:
    """Serve the join here. `fresh`: the room was claimed just now, so its meeting starts from
    the snapshot in Redis (another node's, one that died or let it go) if there is one."""

    fresh: bool


@dataclass(frozen=True, slots=True)
class Remote:
    """Pipe the connection to the authority's front at `address` (`host:port`)."""

    node: str
    address: str


@dataclass(frozen=True, slots=True)
class Claim:
    """No live authority (or it is this node, not yet known to it): claim the room, then
    route again with the claim's outcome."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now: the connection is closed with 1012 and the page comes again."""

    reason: str


Route = Local | Remote | Claim | Wait


def valid_address(text: str) -> bool:
    """A front's advertised address: `host:port` (a name, IPv4, or [IPv6]), port 1-65535."""
    if len(text) > MAX_ADDRESS_CHARS:
        return False
    found = _ADDRESS.fullmatch(text)
    return found is not None and 0 < int(found.group(2)) < 65536


class Directory:
    """One node's view: the rooms it holds a claim on, when each was last confirmed, and the
    decisions for a join, a claim's outcome and each second's renewals. Bounded: only
    configured rooms are ever held."""

    def __init__(self, node_id: str, rooms: Collection[str], lease_ms: int) -> None:
        if not NODE_ID.fullmatch(node_id):
            raise ValueError(f"a node_id is 1-64 of A-Z a-z 0-9 _ . -, not {node_id!r}")
        self.node_id = node_id
        self.lease_ms = lease_ms
        self._rooms = frozenset(rooms)
        self._held: dict[str, int] = {}  # room -> when Redis last confirmed our claim (ms)

    def route(self, room: str, authority: str | None, address: str | None, *, hop: bool) -> Route:
        """A join for `room`: `authority` is the claim read from Redis (None: unclaimed),
        `address` the authority's lease (None: lapsed). `hop`: the join came piped from
        another node's front, so it is never piped on (a loop while the directory changes)."""
        if room not in self._rooms:
            return Wait("not a configured room")
        if authority == self.node_id:
            if room in self._held:
                return Local(fresh=False)
            return Claim()  # ours in Redis from a former life of this node: taken up again
        if authority is None or address is None:
            return Claim()
        if hop:
            return Wait(f"room held by node {authority}, and this join came from a node")
        if not valid_address(address):
            return Wait(f"node {authority} advertises no usable address")
        return Remote(authority, address)

    def claimed(self, room: str, won: bool, now_ms: int) -> Route:
        """The outcome of a claim: ours (`Local`, fresh if it was not held) or another node's
        (`Claim` again: the caller reads the directory once more, then waits)."""
        if not won or room not in self._rooms:
            return Claim()
        fresh = room not in self._held
        self._held[room] = now_ms
        return Local(fresh=fresh)

    def holds(self, room: str) -> bool:
        return room in self._held

    def held(self) -> list[str]:
        return sorted(self._held)

    def renewals(self, in_use: Iterable[str]) -> tuple[list[str], list[str]]:
        """Each second: the held rooms still in use (renew their claims) and the others
        (release them: the node let the room go)."""
        using = set(in_use)
        renew = sorted(r for r in self._held if r in using)
        release = sorted(r for r in self._held if r not in using)
        return renew, release

    def renewed(self, room: str, still_ours: bool, now_ms: int) -> bool:
        """A renewal's outcome; False: the claim is another node's now (this node was cut off
        longer than a lease), so its connections of the room must go (they reconnect)."""
        if room not in self._held:
            return True
        if still_ours:
            self._held[room] = now_ms
            return True
        del self._held[room]
        return False

    def released(self, room: str) -> None:
        self._held.pop(room, None)

    def unconfirmed(self, now_ms: int) -> list[str]:
        """Held rooms Redis has not confirmed for a lease (it is unreachable): the claims have
        lapsed there. They are dropped from `held` (the node keeps serving what it has; the
        next join of the room claims it again)."""
        gone = sorted(r for r, at in self._held.items() if now_ms - at >= self.lease_ms)
        for room in gone:
            del self._held[room]
        return gone

    def release_all(self) -> list[str]:
        """At a stop: every held room, to release (the next node claims them at once)."""
        rooms = self.held()
        self._held.clear()
        return rooms
