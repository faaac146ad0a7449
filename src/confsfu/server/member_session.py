"""The room authority's end of an authority link (server/authority_link.py): a relay member's
participant in this worker's meeting. It joins like a page does (the join's token checked here:
the role is the token's, whatever the member says), under the participant id the member gave
its connection, and then sends only meeting messages (signalling/routing.py); the room tells it
what it tells a page. Its media stays at the member: nothing here subscribes or publishes."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from confsfu.conference.meeting import MeetingError
from confsfu.server.hub import Hub
from confsfu.server.live_room import LiveRoom
from confsfu.server.logs import ParticipantLog
from confsfu.server.session import Session
from confsfu.signalling.connection import Phase, SignallingError
from confsfu.signalling.link_messages import (
    MemberQuality,
    MemberScreen,
    MemberScreenDecision,
    is_link_message,
    parse_link_message,
)
from confsfu.signalling.messages import ClientMessage, Join
from confsfu.signalling.routing import Route, route

log = logging.getLogger(__name__)
PID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def member_pid(value: str) -> str | None:
    """The participant id a member gives its link (None: not one)."""
    return value if PID.fullmatch(value) else None


class MemberSession(Session):
    """A member's participant, spoken for over its link."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, pid: str) -> None:
        super().__init__(hub, ws)
        self.pid = pid
        self.log = ParticipantLog(log, pid)

    async def _on_text(self, text: str) -> None:
        if not is_link_message(text):
            await super()._on_text(text)
        elif not await self._over_limits(text):  # the page's own rate limit covers these too
            try:
                await self._on_link_message(text)
            except Exception:  # nothing a member sends raises out of here
                self.log.exception("a link message failed")

    async def _on_link_message(self, text: str) -> None:
        """The member's word on what happens at its end: a screen share asked for or ended,
        the participant's connection quality."""
        live = self.live
        try:
            message = parse_link_message(text)
        except ValueError:
            self.log.warning("a malformed link message dropped: %r", text[:80])
            return
        if live is None or self.phase.phase != Phase.JOINED:
            return
        match message:
            case MemberScreen(on=True):
                try:
                    live.meeting.start_screen(self.pid)  # as for a page here
                except MeetingError as exc:
                    refused = MemberScreenDecision(
                        allowed=False, code=exc.code, message=exc.message, reason=exc.reason
                    )
                    await self.send(refused)
                    return
                await self.send(MemberScreenDecision(allowed=True))
                await live.announce([], also=[self.pid], state=True)
            case MemberScreen(on=False):
                if self.pid in live.meeting.screens:
                    live.meeting.stop_screen(self.pid)
                    await live.announce([], also=[self.pid], state=True)
            case MemberQuality(quality=quality):
                if live.remote_quality.get(self.pid) != quality:
                    live.remote_quality[self.pid] = quality
                    live.quality_changed(self.pid)

    async def _handle(self, message: ClientMessage) -> None:
        if route(message.type) is Route.MEDIA:  # the member's own business
            raise SignallingError("not_here", f"{message.type} is the participant's own worker's")
        await super()._handle(message)

    async def _join_audience(self, *args: object, **kwargs: object) -> None:
        raise SignallingError("forbidden", "listeners are not spoken for", fatal=True)

    async def _subscribe(self, live: LiveRoom, message: Join, *, listener: bool = False) -> None:
        """Joined: its media is the member's."""
        self.phase.move(Phase.JOINED)
        live.remote.add(self.pid)

    async def supersede(self, reason: str) -> None:
        if self.live is not None:
            self.live.remote.discard(self.pid)
            self.live.remote_quality.pop(self.pid, None)
        await super().supersede(reason)

    async def _leave(self) -> None:
        live = self.live
        await super()._leave()
        if live is not None:
            live.remote.discard(self.pid)
            live.remote_quality.pop(self.pid, None)
