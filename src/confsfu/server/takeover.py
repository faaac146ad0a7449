"""A relay member's follower room promoted to the room's meeting, in place (the IO of
conference/adopt.py; scale/takeover.py says when): the node of the room's authority died and
this node's front won the room's claim. Nothing of the media plane is touched, so the pages
connected here keep their PeerConnections and each other's media; their sessions stop
speaking through the authority link and are answered here; every page is told the meeting's
state as this worker now has it."""

from __future__ import annotations

import asyncio
import logging

from confsfu.conference.adopt import adopt, connected_here
from confsfu.conference.meeting import Meeting
from confsfu.scale.member_gate import MemberGate
from confsfu.server.clock import clock_ms
from confsfu.server.live_room import LiveRoom
from confsfu.signalling.messages import ParticipantUpdated

log = logging.getLogger(__name__)
REFUSED = "the meeting could not take you back"


def promote(live: LiveRoom, restored: Meeting | None) -> None:
    """`live`, a follower with pages connected, becomes the room's meeting: `restored` (from
    the authority's last snapshot; None: there was none) merged with this worker's
    participants. Before any await: from here on the room answers as the meeting."""
    now_ms = clock_ms()
    here = connected_here(live.meeting, set(live.connections))
    refused = adopt(live.meeting, restored, here, now_ms)
    live.follows = False
    live.linked.clear()
    live.audience_from_authority, live.authority_state = False, None  # its listeners hear it
    live.authority_gate, live.reports_elsewhere = MemberGate(), False  # the room's meeting now
    live.unix_offset_ms = live.meeting.report.unix_offset_ms
    if live.on_promote is not None:
        live.on_promote()  # the relay: its mirrors are the meeting's participants now
    live.media.refresh_gates()
    live.media.reassign_gradually()
    log.info(
        "room %s: this worker's part became the meeting (%d here, %d away)",
        live.room.name,
        len(here) - len(refused),
        sum(1 for p in live.room.participants if live.meeting.presence.is_away(p)),
    )
    task = asyncio.ensure_future(_tell(live, refused))
    live._tasks.add(task)
    task.add_done_callback(live._tasks.discard)
    task.add_done_callback(_logged)


async def _tell(live: LiveRoom, refused: list[str]) -> None:
    """The sessions answer here now; every page hears the meeting's state."""
    for pid, conn in list(live.connections.items()):
        if conn.adopt is not None:
            await conn.adopt()
        if pid in refused:
            await conn.close(REFUSED)
    for p in list(live.room.participants.values()):
        await live.broadcast(ParticipantUpdated(participant=live.participant_info(p)))
    await live.broadcast(live.room_state(), audience=True)
    if (at := live.meeting.next_deadline_ms()) is not None:
        live.wake(at)  # the away participants' grace, a floor's limit


def _logged(task: asyncio.Future[None]) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        log.error("telling the pages of a promotion failed", exc_info=exc)
