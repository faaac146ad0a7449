"""The front's client to a worker: no connection limit. Every page's piped WebSocket holds one of
its connections while it lasts; aiohttp's default of 100 held a worker to 99 pages (the control
connection is the 100th): the next joins and the front's polls of that worker waited for ever
(`confsfu bench mayors --participants 12 --server-workers 2 --set listeners=300`: 186
listeners joined, 99 pipes a worker)."""

from __future__ import annotations

from pathlib import Path

from confsfu.server.workers import worker_client


async def test_the_front_s_client_to_a_worker_has_no_connection_limit(tmp_path: Path) -> None:
    client = worker_client(tmp_path / "worker0.sock")
    try:
        assert client.connector is not None
        assert (client.connector.limit, client.connector.limit_per_host) == (0, 0)
    finally:
        await client.close()
