"""A front's part in a room taken over live (`node_spill`; the rules in scale/takeover.py):
each second, for every room this node serves as a relay member of another node's authority,
the room directory is read (and the room claimed if that node's lease lapsed); once this
node's claim holds, the room's home worker here is told to promote its follower part to the
meeting, from the snapshot the dead node left in Redis."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from confsfu.scale.takeover import Forget, Promote, front_step

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
        route = await nodes.route(room, hop=True)  # never piped; claimed if the lease lapsed
        step = front_step(
            home_here=home is not None, claim_held=nodes.directory.holds(room), route=route
        )
        if isinstance(step, Forget):
            front.member_rooms.discard(room)
        elif isinstance(step, Promote):
            await promote_member(front, room)


async def promote_member(front: Front, room: str) -> bool:
    """This node holds `room`'s claim: its home here (a follower) becomes the meeting, once.
    False if it was not a member room with a home here (nothing done)."""
    home = front.placement.home(room)
    if room not in front.member_rooms or home is None:
        front.member_rooms.discard(room)
        return False
    front.member_rooms.discard(room)  # (before any await: promoted once)
    log.info("room %s: its authority node is gone; this node takes the meeting over", room)
    worker = front.pool.workers[home]
    if not await front.snapshots.restore_at(room, worker, promote=True):
        log.warning("room %s: worker %d not reached for the takeover", room, home)
    return True
