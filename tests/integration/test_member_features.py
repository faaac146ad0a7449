"""What a relay member's participants and listeners see and do as on one process (issue 23):
`confsfu serve --workers 2`, two connections a worker, so the room spans both. A member's
participant shares its screen (the room's authority decides who may, its media stays on the
member) and a subscriber on the home gets it on the stage; a second sharer is refused as on
one process; listeners on the home and on the member get the same room state (floor, stage);
a member's participant's connection quality reaches the pages on the home."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from confsfu.loadgen.media import vp8_slides
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.tokens import make_token
from tests.conftest import SECRET as CONFTEST_SECRET
from tests.integration.listeners import audience_config
from tests.integration.test_member_authority import info, join, latest
from tests.integration.test_quality import report_loss
from tests.integration.test_relay import health
from tests.integration.test_workers import serving, until

pytestmark = pytest.mark.loopback
SECRET = "member-features-secret-0123456789abcd"


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[int]:
    """`confsfu serve --workers 2` with `worker_max_connections: 2`: its port."""
    config = audience_config(SECRET, tmp_path, worker_max_connections=2)
    async with serving(tmp_path, config) as (port, _proc):
        yield port


def token(name: str, role: str = "participant") -> str:
    return make_token(SECRET, room="east", name=name, role=role, now_s=int(time.time()))  # type: ignore[arg-type]


async def connections(port: int) -> list[int]:
    return [w["connections"] for w in (await health(port))["workers"]]


async def where(port: int, counts: list[int]) -> tuple[int, int]:
    """Once the workers hold `counts` (the home's first): (home, member)."""

    async def placed() -> bool:
        body = await health(port)
        home = body["homes"].get("east")
        if home is None:
            return False
        return await connections(port) in (counts, counts[::-1]) and (
            body["workers"][home]["connections"] == counts[0]
        )

    await until(placed, 30, f"the workers hold {counts}")
    home = (await health(port))["homes"]["east"]
    return home, 1 - home


def state(peer: LoopbackPeer) -> dict[str, Any]:
    return latest(peer, "room_state")


def floor_and_stage(peer: LoopbackPeer) -> tuple[Any, Any, Any]:
    s = state(peer)
    return s.get("floor_holder"), s.get("stage"), s.get("stage_kind")


def screen_of(peer: LoopbackPeer, name: str) -> Any:
    """What `peer`'s stage slot carries of `name`'s screen (None: not showing it)."""
    for stream in peer.received.values():
        slot = peer.slots.get(stream.mid)
        if slot and (slot["purpose"], slot["name"], slot["source"]) == ("stage", name, "screen"):
            return stream
    return None


async def test_a_member_s_participant_shares_its_screen_and_listeners_see_the_authority(
    front: int, peers: list[LoopbackPeer]
) -> None:
    chair = await join(front, peers, "Osaka", token("Osaka", "chair"))
    lima = await join(front, peers, "Lima", token("Lima"))
    await where(front, [2, 0])
    kyiv = await join(front, peers, "Kyiv", token("Kyiv"), publish=True)  # the member
    quito = await join(front, peers, "Quito", token("Quito"))  # the member
    _home, member = await where(front, [2, 2])
    url = f"ws://127.0.0.1:{front}/ws"
    on_home = LoopbackPeer(url, name="Accra", token=token("Accra", "listener"))
    peers.append(on_home)
    await on_home.join()
    await where(front, [3, 2])
    on_member = LoopbackPeer(url, name="w", room="east", watch=True)
    peers.append(on_member)
    await on_member.join()
    await where(front, [3, 3])
    ids = {p.name: p.participant_id for p in (chair, lima, kyiv, quito)}
    slides = vp8_slides(640, 360, fps=5, slides=2, slide_s=2, bitrate_bps=150_000)

    # Not the floor holder: the member's participant is refused, as on one process.
    with pytest.raises(RuntimeError, match="may not share"):
        await kyiv.share_screen(slides, fps=5, duration_s=60)
    refused = kyiv.errors[-1]
    assert (refused["code"], refused["in_reply_to"]) == ("forbidden", "publish_offer"), refused

    # The chair gives Kyiv the floor: both listeners see it, the member's too.
    await chair.send({"type": "chair", "action": "grant_floor", "participant_id": ids["Kyiv"]})
    on_floor = (ids["Kyiv"], ids["Kyiv"], "floor")
    for peer in (chair, lima, kyiv, quito, on_home, on_member):
        await peer.wait_for(lambda p=peer: floor_and_stage(p) == on_floor, 30)  # type: ignore[misc]

    # Now Kyiv may share: the authority decides, the screen comes from the member.
    await kyiv.share_screen(slides, fps=5, duration_s=60)
    sharing = (ids["Kyiv"], ids["Kyiv"], "screen")
    for peer in (chair, lima, kyiv, quito, on_home, on_member):
        await peer.wait_for(lambda p=peer: floor_and_stage(p) == sharing, 30)  # type: ignore[misc]
    for peer in (lima, quito, on_home, on_member):  # on the home and on the member alike
        await peer.wait_for(
            lambda p=peer: (screen_of(p, "Kyiv") or _none()).packets >= 20,  # type: ignore[misc]
            60,
        )

    # A second sharer is refused as on one process: on the member and on the home.
    for second in (quito, lima):
        with pytest.raises(RuntimeError, match="may not share"):
            await second.share_screen(slides, fps=5, duration_s=60)
        assert second.errors[-1]["code"] == "forbidden", second.errors[-1]
    assert floor_and_stage(chair) == sharing

    # The share ends: the stage goes back to the floor holder's camera everywhere.
    await kyiv.send({"type": "unpublish", "purpose": "screen"})
    for peer in (chair, lima, on_home, on_member):
        await peer.wait_for(lambda p=peer: floor_and_stage(p) == on_floor, 30)  # type: ignore[misc]

    # The same room state on both listeners, whatever changed last (the floor taken back).
    await chair.send({"type": "chair", "action": "revoke_floor"})
    for peer in (on_home, on_member):
        await peer.wait_for(lambda p=peer: state(p).get("floor_holder") is None, 30)  # type: ignore[misc]
    keys = ("floor_holder", "hands", "presenter", "locked", "stage", "stage_kind")

    def same() -> bool:
        a, b = state(on_home), state(on_member)
        return all(a.get(k) == b.get(k) for k in keys)

    await on_member.wait_for(same, 30)
    assert (await connections(front))[member] == 3


async def test_a_member_s_participant_s_quality_reaches_the_home(
    front: int, peers: list[LoopbackPeer]
) -> None:
    chair = await join(front, peers, "Osaka", token("Osaka", "chair"))
    lima = await join(front, peers, "Lima", token("Lima"))
    await where(front, [2, 0])
    kyiv = await join(front, peers, "Kyiv", token("Kyiv"))  # the member
    await where(front, [2, 1])
    pid = kyiv.participant_id
    assert info(chair, pid).get("quality") == "unknown"
    pc = kyiv.subscribe_pc
    await kyiv.wait_for(lambda: pc is not None and pc.refresh_route(), 30)
    report_loss(kyiv, 1000, 0)
    report_loss(kyiv, 1100, 0)
    for peer in (chair, lima, kyiv):
        await peer.wait_for(lambda p=peer: info(p, pid).get("quality") == "good", 30)  # type: ignore[misc]
    report_loss(kyiv, 1200, 25)  # a quarter of the last 100 lost
    for peer in (chair, lima, kyiv):
        await peer.wait_for(lambda p=peer: info(p, pid).get("quality") == "poor", 30)  # type: ignore[misc]


def _none() -> Any:
    class Nothing:
        packets = 0

    return Nothing()


async def test_on_one_process_a_screen_share_started_or_ended_is_in_room_state(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    """The stage changes with a share: every page hears the new room state at once (it used
    to wait for another change of the meeting)."""
    now_s = int(time.time())
    chair_token = make_token(CONFTEST_SECRET, room="demo", name="Oslo", role="chair", now_s=now_s)
    chair = LoopbackPeer(server.ws_url, name="Oslo", token=chair_token)
    guest = LoopbackPeer(server.ws_url, name="Dakar")
    peers += [chair, guest]
    await chair.join(publish=False)
    await guest.join(publish=False)
    await chair.share_screen(vp8_slides(640, 360, slides=2, slide_s=2), duration_s=30)
    on_stage = (None, chair.participant_id, "screen")
    await guest.wait_for(lambda: floor_and_stage(guest) == on_stage, 30)
    await chair.send({"type": "unpublish", "purpose": "screen"})
    await guest.wait_for(lambda: floor_and_stage(guest)[2] != "screen", 30)
