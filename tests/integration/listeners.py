"""An audience's listeners as the audience tests join them (test_audience.py, one server;
test_relay_audience.py, spread over two workers), and what they check of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from confsfu.loadgen.peer import LoopbackPeer


async def join_listeners(
    url: str, room: str, invitation: str, made: list[LoopbackPeer]
) -> list[LoopbackPeer]:
    """Three listeners, joined in turn: Accra by a listener's `invitation` token, two by the
    room's watch link; each keeps the payloads it receives."""
    listeners = [
        LoopbackPeer(url, name="Accra", token=invitation, keep_payloads=True),
        LoopbackPeer(url, name="watcher", room=room, watch=True, keep_payloads=True),
        LoopbackPeer(url, name="watcher", room=room, watch=True, keep_payloads=True),
    ]
    made.extend(listeners)
    for listener in listeners:
        await listener.join()
    return listeners


async def refused_as_full(peer: LoopbackPeer) -> None:
    """`peer`, one listener too many, is refused at its join."""
    with pytest.raises(RuntimeError, match="audience is full"):
        await peer.join()
    assert peer.errors[-1]["code"] == "audience_full"


async def refused_as_removed(url: str, token: str, peers: list[LoopbackPeer], where: str) -> None:
    """A removed token joins as a listener until refused `removed`: a member hears of a removal
    one relay tick later (up to a second), and until then a join there is let in."""
    deadline = time.monotonic() + 30
    while True:
        again = LoopbackPeer(url, name="Kyiv", token=token, watch=True)
        peers.append(again)
        try:
            await again.join()
        except RuntimeError:
            break
        await again.close()
        assert time.monotonic() < deadline, f"a removed token still joins {where}"
        await asyncio.sleep(0.2)
    assert again.errors[-1]["code"] == "removed", again.errors


def counts(chair: LoopbackPeer) -> list[int]:
    """The listener counts the chair was told, in order."""
    return [m["listeners"] for m in chair.messages if m["type"] == "audience"]


def assert_told_of_none(peer: LoopbackPeer, ids: Collection[str]) -> None:
    """`peer` was told of none of `ids`: not at its join, not in any list or slot."""
    told = [m for m in peer.messages if m["type"].startswith("participant_")]
    named = {m.get("participant", {}).get("id") or m.get("participant_id") for m in told}
    assert named.isdisjoint(ids), f"{peer.name} was told of a listener"
    joined = next(m for m in peer.messages if m["type"] == "joined")
    assert {q["id"] for q in joined["participants"]}.isdisjoint(ids)
    assert {s["participant_id"] for s in peer.slots.values()}.isdisjoint(ids)


def audience_config(secret: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """A server's settings with one room, "east", open to a watch link and 4 listeners."""
    return {
        "token_secret": secret,
        "rooms": [{"name": "east", "watch_link": True, "max_listeners": 4}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp_path / "reports"),
        **extra,
    }
