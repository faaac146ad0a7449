"""Reading a raw WebSocket's JSON messages, for tests that speak the protocol by hand."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


async def next_json(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 10) -> dict[str, Any]:
    """The next frame, which must be a text frame of a JSON object."""
    frame = await ws.receive(timeout=timeout_s)
    assert frame.type == aiohttp.WSMsgType.TEXT, f"expected a message, got {frame}"
    message: dict[str, Any] = json.loads(frame.data)
    return message
