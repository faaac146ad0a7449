"""The front's part in the relay: it tells every live worker which rooms span which workers
(`Placement.spans`), with each room's index (its place among the configured rooms, from 1) and
the directory the workers' relay sockets live in (docs/scale-out.md, "The relay"). Over UDP
(`relay_transport: udp`) each worker answers with the address it bound, and the front passes
every worker the map of them (`peers`, by index)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

import aiohttp

from confsfu.server.redis_resp import RedisError

if TYPE_CHECKING:
    from confsfu.server.front import Front

log = logging.getLogger(__name__)
TELL_TIMEOUT_S = 10.0
# Over UDP: each front's workers' relay addresses (host:port), by index, as they answered.
_ADDRESSES: weakref.WeakKeyDictionary[Front, dict[int, str]] = weakref.WeakKeyDictionary()


def spans_for(front: Front) -> dict[str, dict[str, Any]]:
    """Every room held by more than one worker: its index and its workers (home first)."""
    index = {room.name: i for i, room in enumerate(front.settings.rooms, start=1)}
    return {
        room: {"index": index[room], "workers": workers}
        for room, workers in front.placement.spans().items()
        if room in index
    }


async def _node_spans(front: Front, addresses: dict[int, str]) -> dict[str, dict[str, Any]]:
    """With `node_spill`: every room this node has, its workers and the other nodes' (relay
    indices, the authority's home first), where they are more than one."""
    node = front.node_spans
    assert node is not None
    index = {room.name: i for i, room in enumerate(front.settings.rooms, start=1)}
    local = {
        room: [node.index(home), *(node.index(m) for m in front.placement.members(room))]
        for room, home in front.placement.homes().items()
        if room in index
    }
    mine = {node.index(i): a for i, a in addresses.items()}
    by_room = await node.exchange(mine, local)
    spans = {}
    for room, by_node in by_room.items():
        workers = node.merged(room, by_node)
        if len(workers) > 1:
            spans[room] = {"index": index[room], "workers": workers}
    return spans


async def tell_spans(front: Front) -> None:
    """Tell each live worker the rooms it shares (an empty map included: a span ended)."""
    node = front.node_spans
    if node is not None:
        try:
            await node.register()  # a worker's relay index is fixed at its first word
        except (RedisError, ValueError) as exc:
            log.warning("no relay ordinal for this node yet: %s", exc)
            return
    base = node.index(0) if node is not None else 0
    directory = str(front.pool.workers[0].socket.parent)
    udp = front.settings.relay_transport == "udp"
    addresses = _ADDRESSES.setdefault(front, {})
    spans = await _node_spans(front, addresses) if node is not None else spans_for(front)
    for _ in range(2):  # again at once when a worker's address is new
        peers = None
        if udp:
            peers = {str(base + i): address for i, address in addresses.items()}
            if node is not None:
                peers.update({str(i): a for i, a in node.peers.items()})
        told = await asyncio.gather(
            *(
                _tell(worker.client, worker.url("/relay"), base + i, directory, spans, peers)
                for i, worker in enumerate(front.pool.workers)
                if worker.client is not None and worker.ready.is_set() and front.placement.alive(i)
            )
        )
        learned = {i - base: a for i, a in told if isinstance(a, str) and a}
        if not udp or all(addresses.get(i) == a for i, a in learned.items()):
            return
        addresses.update(learned)


async def _tell(
    client: aiohttp.ClientSession,
    url: str,
    index: int,
    directory: str,
    spans: dict[str, dict[str, Any]],
    peers: dict[str, str] | None,
) -> tuple[int, str | None]:
    """(index, the relay address the worker answered with: over UDP, its host:port).
    `index` is its relay index (with nodes, unique in the deployment)."""
    mine = {room: span for room, span in spans.items() if index in span["workers"]}
    body = {"index": index, "directory": directory, "rooms": mine, "peers": peers}
    timeout = aiohttp.ClientTimeout(total=TELL_TIMEOUT_S)
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
        async with client.post(url, json=body, timeout=timeout) as response:
            answer = await response.json() if response.status == 200 else None
            address = answer.get("address") if isinstance(answer, dict) else None
            return index, address if isinstance(address, str) else None
    return index, None
