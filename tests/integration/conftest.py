"""Loopback peers made by a test, closed after it; a redis-server of a test's own; the two
nodes' network namespaces (tests/integration/nodes.py), made once a session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from confsfu.loadgen.peer import LoopbackPeer
from tests.browser.netns import kill_left
from tests.integration.nodes import Net, two_namespaces
from tests.integration.redis_server import redis_server


@pytest.fixture
async def peers() -> AsyncIterator[list[LoopbackPeer]]:
    """Append every LoopbackPeer the test makes; each is closed (with a goodbye) afterwards."""
    made: list[LoopbackPeer] = []
    yield made
    for peer in made:
        await peer.close()


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A redis-server on 127.0.0.1 for this test alone."""
    async with redis_server(tmp_path) as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def nodes_namespaces() -> Iterator[Net]:
    with two_namespaces() as net:
        yield net


@pytest.fixture
def nodes_net(nodes_namespaces: Net) -> Iterator[Net]:
    """The two nodes' namespaces, with nothing left running in them after the test."""
    yield nodes_namespaces
    for ns in (nodes_namespaces.a, nodes_namespaces.b):
        kill_left(ns)


@pytest.fixture
async def nodes_redis(nodes_net: Net, tmp_path: Path) -> AsyncIterator[int]:
    """A redis-server of this test's own, reached by each node at its namespace's host end."""
    async with redis_server(tmp_path, (nodes_net.a.host_ip, nodes_net.b.host_ip)) as port:
        yield port
