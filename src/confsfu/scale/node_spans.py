"""A room's media across nodes (sans-IO; docs/scale-out.md, "A room spanning nodes"): each
node's workers get relay indices unique in the deployment (its **node ordinal**, registered
once in Redis, times `STRIDE`, plus the worker's own index), each node publishes its workers'
relay addresses and the workers holding each of its rooms (its **span** of the room) with its
lease, and each front merges the other nodes' spans of its rooms into the spans it tells its
workers, the authority node's workers first (its home: the room's authority). The IO is in
server/front_node_spans.py; what is read from Redis is parsed here, bounded."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from confsfu.scale.directory import valid_address
from confsfu.scale.relay_auth import hkdf_sha256

STRIDE = 64  # workers a node may run (settings.workers <= 64)
MAX_ORDINAL = (1 << 24) - 1  # a relay index fits the sealed datagram's 4-byte sender
MAX_NODES = 32  # nodes read for a room's spans
MAX_SPAN = 64  # workers of a room
MAX_JSON_BYTES = 16_384

NODES_KEY = "confsfu:nodes"  # the set of node ids (SADD at start; a dead one's keys lapse)
ORDINAL_KEY = "confsfu:node_ordinal:{node}"
ORDINALS_KEY = "confsfu:node_ordinals"
RELAY_KEY = "confsfu:relay_peers:{node}"  # JSON {relay index: "host:port"}, the lease's life
SPAN_KEY = "confsfu:room_span:{room}:{node}"  # JSON [relay index, ...], home first

# A node's ordinal: its own if registered, else the next one (atomic: a script runs alone).
# KEYS: the node's ordinal key, the counter.
ORDINAL_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if v then return tonumber(v) end
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], n)
return n
"""

MEMBER_KEY_HEADER = "X-Confsfu-Member-Key"


def member_key(secret: bytes) -> str:
    """The header a node's worker shows another node's front to reach its `/member` route:
    derived from the deployment's relay secret (its own info: no room key is disclosed)."""
    return hkdf_sha256(secret, b"confsfu relay v1", b"member link").hex()


def member_key_ok(secret: bytes, shown: str) -> bool:
    """Constant-time: a stranger learns nothing from how long a wrong key takes."""
    expected = hashlib.sha256(member_key(secret).encode()).digest()
    return hmac.compare_digest(expected, hashlib.sha256(shown.encode()).digest())


def relay_index(ordinal: int, worker: int) -> int:
    if not 0 <= worker < STRIDE or not 0 < ordinal <= MAX_ORDINAL:
        raise ValueError(f"no relay index for ordinal {ordinal}, worker {worker}")
    return ordinal * STRIDE + worker


def parse_ordinal(reply: object) -> int:
    if isinstance(reply, int) and 0 < reply <= MAX_ORDINAL:
        return reply
    raise ValueError(f"not a node ordinal: {reply!r:.40}")


def _json(reply: object) -> object:
    if not isinstance(reply, bytes) or len(reply) > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(reply)
    except (ValueError, RecursionError):
        return None


def parse_peers(reply: object, ordinal_of: int | None = None) -> dict[int, str]:
    """A node's published relay addresses; junk (and indices outside its node's stride, when
    its ordinal is known) left out."""
    value = _json(reply)
    peers: dict[int, str] = {}
    if not isinstance(value, dict):
        return peers
    for key, address in list(value.items())[:STRIDE]:
        if not (isinstance(key, str) and key.isdigit() and len(key) < 12):
            continue
        if isinstance(address, str) and valid_address(address):
            index = int(key)
            if ordinal_of is None or index // STRIDE == ordinal_of:
                peers[index] = address
    return peers


def parse_span(reply: object) -> list[int]:
    value = _json(reply)
    if not isinstance(value, list):
        return []
    span: list[int] = []
    for item in value[:MAX_SPAN]:
        valid = isinstance(item, int) and STRIDE <= item < (MAX_ORDINAL + 1) * STRIDE
        if valid and item not in span:
            span.append(item)
    return span


def merge(
    local: Sequence[int], others: Mapping[str, Sequence[int]], authority: str | None, me: str
) -> list[int]:
    """A room's workers across nodes, the authority's home first: the authority node's span
    first (its home leads it), then the others' by node id, this node's where it falls."""
    order = [me, *sorted(n for n in others if n != me)]
    if authority is not None and (authority in others or authority == me):
        order.remove(authority)
        order.insert(0, authority)
    merged: list[int] = []
    for node in order:
        for index in local if node == me else others.get(node, ()):
            if index not in merged and len(merged) < MAX_SPAN:
                merged.append(index)
    return merged
