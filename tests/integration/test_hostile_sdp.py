"""A participant's oversized offers are refused before anything parses them: the refusal names
the limit, the event loop is never held for long, and everyone else's media keeps flowing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confsfu.loadgen.offers import publish_offer
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.app import LOOP_LAG, SETTINGS
from tests.integration.test_bad_input import RawClient, received, talking_pair

pytestmark = pytest.mark.loopback
__all__ = ["talking_pair"]  # the fixture, used by name

# Unlimited, one 500-m-line offer held the loop ~0.3 s here (2.5-3.1 s in the issue); within
# the limits the largest offers hold it for a few ms (benchmarks/sdp_offer_hold.py). A bound far
# from both, so that a busy machine does not fail the test and a missing limit does; in the
# loop's CPU time (a machine busy with other processes stretched the wall-clock lag to 200 ms).
HOLD_BOUND_MS = 150.0


async def joined(url: str) -> RawClient:
    client = await RawClient.connect(url)
    reply = await client.ask(json.dumps({"type": "join", "room": "demo", "name": "Rogue"}))
    assert reply["type"] == "joined", reply
    while (await client.receive())["type"] != "subscribe_offer":
        pass
    return client


async def reply_to(client: RawClient, message: dict[str, Any]) -> dict[str, Any]:
    await client.ws.send_str(json.dumps(message))
    while True:
        reply = await client.receive()
        if reply["type"] in ("error", "publish_answer", "pong"):
            return reply


async def test_huge_and_maximal_offers_hold_the_loop_briefly_and_others_keep_flowing(
    server: Any, talking_pair: tuple[LoopbackPeer, LoopbackPeer]
) -> None:
    a, b = talking_pair
    limits = server.app[SETTINGS].sdp.limits()
    huge, maximal = publish_offer(500), publish_offer(limits.sections, limits)
    assert len(huge) > 50_000 and huge.count("\nm=") == 500
    lag = server.app[LOOP_LAG]
    lag.reset_max()
    before = received(a), received(b)
    client = await joined(server.ws_url)
    try:
        for _ in range(3):  # offers can be repeated
            refused = await reply_to(client, {"type": "publish_offer", "sdp": huge})
            assert refused["code"] == "sdp_limit" and refused["in_reply_to"] == "publish_offer"
            assert refused["message"].endswith(
                f"has at least {limits.sections + 1} m-lines; at most {limits.sections}"
                " (sdp.sections)"
            ), refused
            assert not refused["fatal"]
        answered = await reply_to(client, {"type": "publish_offer", "sdp": maximal})
        assert answered["type"] == "publish_answer", answered
        refused = await reply_to(client, {"type": "subscribe_answer", "sdp": huge})
        assert refused["code"] == "sdp_limit" and refused["in_reply_to"] == "subscribe_answer"
        assert (await reply_to(client, {"type": "ping"}))["type"] == "pong"
    finally:
        await client.close()
    await a.wait_for(lambda: received(a) > before[0] + 50 and received(b) > before[1] + 50)
    assert lag.samples > 0
    assert lag.max_cpu_ms < HOLD_BOUND_MS, lag.snapshot()
