"""The front's part in the relay: it tells every live worker which rooms span which workers
(`Placement.spans`), with each room's index (its place among the configured rooms, from 1) and
the directory the workers' relay sockets live in (docs/scale-out.md, "The relay")."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from confsfu.server.front import Front

TELL_TIMEOUT_S = 10.0


def spans_for(front: Front) -> dict[str, dict[str, Any]]:
    """Every room held by more than one worker: its index and its workers (home first)."""
    index = {room.name: i for i, room in enumerate(front.settings.rooms, start=1)}
    return {
        room: {"index": index[room], "workers": workers}
        for room, workers in front.placement.spans().items()
        if room in index
    }


async def tell_spans(front: Front) -> None:
    """Tell each live worker the rooms it shares (an empty map included: a span ended)."""
    spans = spans_for(front)
    directory = str(front.pool.workers[0].socket.parent)
    await asyncio.gather(
        *(
            _tell(worker.client, worker.url("/relay"), i, directory, spans)
            for i, worker in enumerate(front.pool.workers)
            if worker.client is not None and worker.ready.is_set() and front.placement.alive(i)
        )
    )


async def _tell(
    client: aiohttp.ClientSession,
    url: str,
    index: int,
    directory: str,
    spans: dict[str, dict[str, Any]],
) -> None:
    mine = {room: span for room, span in spans.items() if index in span["workers"]}
    body = {"index": index, "directory": directory, "rooms": mine}
    timeout = aiohttp.ClientTimeout(total=TELL_TIMEOUT_S)
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with client.post(url, json=body, timeout=timeout) as response:
            await response.read()
