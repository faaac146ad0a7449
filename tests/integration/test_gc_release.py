"""The full collection that frees departed participants' connections stalls the event loop for
as long as it walks everything (0.1-0.4 s after a 46-participant meeting): it must never run
while a room is live. A room that empties while another meets leaves its garbage frozen; the
collection runs once the last room has emptied, and what survives it is frozen again."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server import gc_policy
from confsfu.settings import RoomSettings

pytestmark = pytest.mark.loopback


async def meet(url: str, room: str, names: list[str], made: list[LoopbackPeer]) -> None:
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=150_000)
    for name in names:
        peer = LoopbackPeer(url, name=name, room=room)
        made.append(peer)
        await peer.join()
        peer.start_media(audio, video, duration_s=30)


def packets_from(viewer: LoopbackPeer, name: str) -> int:
    streams = viewer.streams_showing("audio"), viewer.streams_showing("video")
    return sum(s[name].packets for s in streams if name in s)


async def test_no_full_collection_while_a_room_is_live(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    gc_policy.flush()  # another test's due collection, if any
    gc_policy._STATE = state = gc_policy._Shell()
    rooms = [RoomSettings(name="demo", open=True), RoomSettings(name="annex", open=True)]
    server = await server_factory(rooms=rooms)
    await meet(server.ws_url, "demo", ["Dakar", "Oslo"], peers)
    await meet(server.ws_url, "annex", ["Lima", "Quito"], peers)
    dakar, leaving = peers[0], peers[2:]
    await dakar.wait_for(lambda: packets_from(dakar, "Oslo") > 50, timeout=15)
    assert gc.get_freeze_count() > 0  # the joins froze what lives

    for peer in leaving:
        await peer.close()
    heard = packets_from(dakar, "Oslo")
    await asyncio.sleep(gc_policy.COLLECT_DELAY_S + 0.5)
    assert state.collections == 0  # demo meets on: the annex's garbage waits, frozen
    assert state.plan.held >= 4 and state.plan.due_at is None
    assert state.plan.live and gc.get_freeze_count() > 0
    assert packets_from(dakar, "Oslo") > heard  # and demo's media flowed meanwhile

    for peer in peers[:2]:
        await peer.close()
    for _ in range(50):  # the collection is COLLECT_DELAY_S after the last close
        if state.collections:
            break
        await asyncio.sleep(0.1)
    assert state.collections == 1
    assert not state.plan.live and state.plan.held == 0
    assert gc.get_freeze_count() > 0  # what survived the collection is frozen again
