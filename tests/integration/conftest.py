"""Loopback peers made by a test, closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from confsfu.loadgen.peer import LoopbackPeer


@pytest.fixture
async def peers() -> AsyncIterator[list[LoopbackPeer]]:
    """Append every LoopbackPeer the test makes; each is closed (with a goodbye) afterwards."""
    made: list[LoopbackPeer] = []
    yield made
    for peer in made:
        await peer.close()
