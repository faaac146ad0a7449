"""A front's part in a room taken over live (`node_spill`; the rules in scale/takeover.py):
each second, for every room this node serves as a relay member of another node's authority,
the room directory is read (and the room claimed if that node's lease lapsed); once this
node's claim holds, the room's home worker here is told to promote its follower part to the
meeting, from the snapshot the dead node left in Redis. On one node, a room's home *worker*
that died is taken over the same way at once (`take_over_worker`): no claim, the front saw the
death and holds the room's last snapshot."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

import aiohttp

from confsfu.scale.takeover import Forget, Lost, Promote, front_step
from confsfu.server.clock import clock_ms

if TYPE_CHECKING:
    from confsfu.server.front import Front

log = logging.getLogger(__name__)


async def take_over_members(front: Front) -> None:
    """The poll's step: every member room followed, forgotten, or promoted."""
    nodes = front.nodes
    if nodes is None:
        return
    for room in sorted(front.member_rooms):  # configured rooms only: bounded
        if room not in front.member_rooms:
            continue  # promoted meanwhile, by a join
        home = front.placement.home(room)
        # Read only (nothing is piped from here): a live authority answers Remote, so a node
        # other than the one followed is seen (Lost); claimed if the lease lapsed.
        route = await nodes.route(room, hop=False)
        step = front_step(
            home_here=home is not None,
            claim_held=nodes.directory.holds(room),
            route=route,
            authority=front.member_of.get(room),
        )
        if isinstance(step, Forget):
            front.member_rooms.discard(room)
            front.member_of.pop(room, None)
        elif isinstance(step, Promote):
            await promote_member(front, room)
        elif isinstance(step, Lost) and home is not None:
            front.member_of[room] = step.node  # new pages here follow that node's meeting
            log.info("room %s: node %s took it over; the pages held here go", room, step.node)
            await release_held(front, room, home)


async def promote_member(front: Front, room: str) -> bool:
    """This node holds `room`'s claim: its home here (a follower) becomes the meeting, once.
    False if it was not a member room with a home here (nothing done)."""
    home = front.placement.home(room)
    if room not in front.member_rooms or home is None:
        front.member_rooms.discard(room)
        return False
    front.member_rooms.discard(room)  # (before any await: promoted once)
    front.member_of.pop(room, None)
    log.info("room %s: its authority node is gone; this node takes the meeting over", room)
    worker = front.pool.workers[home]
    if not await front.snapshots.restore_at(room, worker, promote=True):
        log.warning("room %s: worker %d not reached for the takeover", room, home)
    return True


def take_over_worker(front: Front, index: int) -> list[str]:
    """Worker `index` died (before the placement loses its rooms): each room it was the home
    of with a live relay member moves there (`Placement.take_over`), and that worker is told
    to promote its follower part from the snapshot the front holds, at once. Returns those
    rooms (their snapshots wait for the new home, which the promotion takes)."""
    # Not another node's room: its pages here link to that node, whose meeting it stays.
    moved = front.placement.take_over(index, clock_ms(), exclude=front.member_rooms)
    for room, new in moved.items():
        log.info(
            "room %s: its home worker %d died; worker %d takes the meeting over", room, index, new
        )
        task = asyncio.ensure_future(_promote_worker(front, room, new))
        front.promoting[room] = task
        task.add_done_callback(functools.partial(_promoted, front, room))
    return sorted(moved)


async def _promote_worker(front: Front, room: str, index: int) -> None:
    worker = front.pool.workers[index]
    if not await front.snapshots.restore_at(room, worker, promote=True):
        log.warning("room %s: worker %d not reached for the takeover", room, index)


def _promoted(front: Front, room: str, task: asyncio.Future[None]) -> None:
    if front.promoting.get(room) is task:
        del front.promoting[room]
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        log.error("room %s: the takeover failed", room, exc_info=exc)


async def promoted(front: Front, room: str) -> None:
    """A join of `room` waits for its promotion under way, if any (its restore must not
    replace the follower the promotion keeps)."""
    task = front.promoting.get(room)
    if task is not None:
        await asyncio.shield(task)


RELEASE_TIMEOUT_S = 10.0


async def release_held(front: Front, room: str, index: int) -> None:
    """Worker `index` closes its pages of `room` held for a takeover (1012): another node
    won the room's claim. Not reached: they go at their hold's end anyway."""
    worker = front.pool.workers[index]
    client = worker.client
    if client is None:
        return
    timeout = aiohttp.ClientTimeout(total=RELEASE_TIMEOUT_S)
    try:
        async with client.post(
            worker.url("/release"), params={"room": room}, timeout=timeout
        ) as response:
            log.info(
                "room %s: worker %d released its held pages: %s", room, index, await response.text()
            )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning(
            "room %s: worker %d not reached to release its held pages: %r", room, index, exc
        )
