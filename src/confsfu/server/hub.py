"""The hub: every live room of this server, made on first join and forgotten when its meeting
has ended and the room is empty."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from confsfu.conference.meeting import Meeting
from confsfu.conference.room import Room
from confsfu.conference.snapshot import restore as restore_meeting
from confsfu.conference.snapshot_model import SnapshotError
from confsfu.scale.takeover import worker_step
from confsfu.server.clock import clock_ms
from confsfu.server.live_room import LiveRoom
from confsfu.server.media import RoomMedia
from confsfu.server.reports import write_reports
from confsfu.server.rtc_adapter import RawPeerConnection
from confsfu.server.takeover import promote as promote_follower
from confsfu.settings import Settings

log = logging.getLogger(__name__)


class Hub:
    """All live rooms of this server."""

    def __init__(self, settings: Settings, *, report_dir: Path | None = None) -> None:
        self.settings = settings
        self.report_dir = report_dir  # where a meeting's report goes when it ends (None: kept)
        self.rooms: dict[str, LiveRoom] = {}
        self._empty_ends: dict[str, asyncio.TimerHandle] = {}  # by room: its meeting's end check
        self.send_queue_overflows = 0  # connections closed because their page stopped reading
        # A worker's: a room's meeting changed (its snapshot is due); a room was forgotten.
        self.on_change: Callable[[str], None] | None = None
        self.on_forget: Callable[[str], None] | None = None

    def room(self, name: str) -> LiveRoom:
        live = self.rooms.get(name)
        if live is None:
            config = self.settings.room(name)
            now_ms = clock_ms()
            meeting = Meeting(
                Room(name, max_participants=config.max_participants if config else 100),
                now_ms=now_ms,
                unix_ms=int(time.time() * 1000),
                scheduled_minutes=config.scheduled_minutes if config else None,
                reconnect_grace_ms=int(self.settings.reconnect_grace_s * 1000),
                max_listeners=config.max_listeners if config else 0,
            )
            live = self._live(name, meeting)
        live.start_timers()
        return live

    def restore(
        self, name: str, snapshot: str | bytes, *, takeover: bool = False
    ) -> Literal["restored", "promoted", "held", "ended"]:
        """Room `name` carries on from a meeting snapshot (its worker died): `held` if it is
        live here already, `ended` if its meeting had ended (nothing made), `promoted` if this
        worker's follower part of it, with pages connected, became the meeting (`takeover`: its
        authority's node died, server/takeover.py; an empty snapshot: there was none). Raises
        SnapshotError for a snapshot that cannot be used, or a room not configured."""
        live = self.rooms.get(name)
        step = (
            None
            if live is None
            else worker_step(
                follows=live.follows, connected=len(live.connections), takeover=takeover
            )
        )
        if step == "held":
            return "held"
        config = self.settings.room(name)
        if config is None:
            raise SnapshotError(f"there is no room {name!r}")
        now_ms = clock_ms()
        meeting = None
        if snapshot or step != "promote":  # (a promotion may have no snapshot to start from)
            meeting = restore_meeting(
                snapshot,
                room=name,
                now_ms=now_ms,
                unix_ms=int(time.time() * 1000),
                reconnect_grace_ms=int(self.settings.reconnect_grace_s * 1000),
                max_participants=config.max_participants,
                max_listeners=config.max_listeners,
            )
        if live is not None and step == "promote" and not (meeting and meeting.moderation.ended):
            promote_follower(live, meeting)  # a relay member's pages stay, with their media
            return "promoted"
        if live is not None:  # only a relay member's part of the room: the authority
            self._drop_follower(name, live)  # died, its snapshot is the meeting
        assert meeting is not None
        if meeting.moderation.ended:
            return "ended"
        self._live(name, meeting).start_timers()  # the away participants' grace runs out
        return "restored"

    def _live(self, name: str, meeting: Meeting) -> LiveRoom:
        holder: list[LiveRoom] = []
        media = RoomMedia(
            meeting,
            media=self.settings.media,
            slots=self.settings.slots,
            bandwidth=self.settings.bandwidth,
            clock_ms=clock_ms,
            make_pc=RawPeerConnection,
            on_slots_changed=lambda pid: holder[0].slots_changed(pid),
            on_layers_changed=lambda pid, purpose, rids: holder[0].layers_changed(
                pid, purpose, rids
            ),
            on_quality_changed=lambda pid: holder[0].quality_changed(pid),
        )
        live = LiveRoom(meeting, media, unix_offset_ms=meeting.report.unix_offset_ms)
        live.on_empty = lambda: self.drop_if_empty(name)
        if self.on_change is not None:
            on_change = self.on_change
            live.on_change = lambda: on_change(name)
        holder.append(live)
        self.rooms[name] = live
        return live

    async def drop_if_empty(self, name: str) -> None:
        """An empty room sleeps; it is forgotten only once its meeting has ended.

        Until then it keeps its state (removed participants stay removed, the lock holds).
        """
        live = self.rooms.get(name)
        if live is not None and live.empty:
            live.stop_timers()
            await live.media.close()
            if live.follows:  # a relay member's part of a room: no meeting of its own
                if self.rooms.get(name) is live:
                    del self.rooms[name]
            elif live.meeting.moderation.ended:
                self._forget(name, live)
            else:
                self._check_empty_end(name)

    def _drop_follower(self, name: str, live: LiveRoom) -> None:
        """Forget a relay member's part of a room at once (no report: it had no meeting)."""
        del self.rooms[name]
        live.stop_timers()
        task = asyncio.ensure_future(live.media.close())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _check_empty_end(self, name: str) -> None:
        """End the room's meeting if it has been empty long enough, else look again then."""
        if (old := self._empty_ends.pop(name, None)) is not None:
            old.cancel()
        live = self.rooms.get(name)
        if live is None:
            return
        after_ms = int(self.settings.empty_meeting_end_s * 1000)
        now_ms = clock_ms()
        if live.meeting.end_if_empty(now_ms, after_ms):
            log.info("meeting ended: the room stayed empty", extra={"room": name})
            self._forget(name, live)
            return
        due_ms = live.meeting.empty_end_ms(after_ms)
        if due_ms is not None:
            delay_s = max(0.0, (due_ms - now_ms) / 1000)
            loop = asyncio.get_running_loop()
            self._empty_ends[name] = loop.call_later(delay_s, self._check_empty_end, name)

    def _forget(self, name: str, live: LiveRoom) -> None:
        """An ended meeting's empty room: its report to the report directory, then gone."""
        if self.report_dir is not None and not live.reports_elsewhere:  # a member's: not the room's
            write_reports({name: live}, self.report_dir)
        del self.rooms[name]
        if self.on_forget is not None:
            self.on_forget(name)

    async def close(self) -> None:
        for handle in self._empty_ends.values():
            handle.cancel()
        self._empty_ends.clear()
        for name, live in list(self.rooms.items()):
            live.stop_timers()
            await live.media.close()
            del self.rooms[name]
