"""The room authority's end of an authority link (server/authority_link.py): a relay member's
participant in this worker's meeting. It joins like a page does (the join's token checked here:
the role is the token's, whatever the member says), under the participant id the member gave
its connection, and then sends only meeting messages (signalling/routing.py); the room tells it
what it tells a page. Its media stays at the member: nothing here subscribes or publishes."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from confsfu.server.hub import Hub
from confsfu.server.live_room import LiveRoom
from confsfu.server.logs import ParticipantLog
from confsfu.server.session import Session
from confsfu.signalling.connection import Phase, SignallingError
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
        await super().supersede(reason)

    async def _leave(self) -> None:
        live = self.live
        await super()._leave()
        if live is not None:
            live.remote.discard(self.pid)
