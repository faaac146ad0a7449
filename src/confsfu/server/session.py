"""One participant's WebSocket: signalling messages in, room effects and replies out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from dataclasses import replace

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from confsfu import __version__
from confsfu.conference.meeting import MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.pins import PinError
from confsfu.sdp import SdpError, announce_address
from confsfu.server.authority_link import (
    AuthorityLink,
    join_through_authority,
    leave_authority,
    start_screen_at_authority,
    stop_screen_at_authority,
)
from confsfu.server.clock import clock_ms
from confsfu.server.hub import Hub
from confsfu.server.ice import ice_servers
from confsfu.server.joining import admit_join
from confsfu.server.live_room import Connection, LiveRoom
from confsfu.server.logs import ParticipantLog
from confsfu.server.meeting_acts import act
from confsfu.server.ws_writer import QUEUE_FULL, SocketWriter
from confsfu.signalling.admission import fatal
from confsfu.signalling.connection import (
    ConnectionPhase,
    Phase,
    SignallingError,
    parse_client_message,
)
from confsfu.signalling.messages import (
    Bye,
    ClientMessage,
    Error,
    Hello,
    Join,
    Joined,
    Leave,
    Message,
    ParticipantJoined,
    Pin,
    Ping,
    Pong,
    PublishAnswer,
    PublishOffer,
    SlotsShown,
    StageSize,
    SubscribeAnswer,
    SubscribeOffer,
    Unpublish,
    ViewPage,
)
from confsfu.signalling.outbox import Outbox
from confsfu.signalling.ratelimit import InFlight, TokenBucket, utf8_longer_than
from confsfu.signalling.routing import Route, route
from confsfu.signalling.sdp_limits import SdpLimitError, SdpLimits, check_sdp

log = logging.getLogger(__name__)

DROPPED = "disconnected"  # the connection ended without a goodbye: the participant may come back
UNLOADING = "page closed"  # the page closed or reloads: a reload comes back within seconds


class Session:
    """Drives one WebSocket from hello to bye; nothing it receives can take the room down."""

    def __init__(
        self,
        hub: Hub,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None = None,
        authority: str | None = None,
    ) -> None:
        self.hub = hub
        # A relay member's session: the room authority's worker socket (the front said so);
        # the meeting's messages go there over `link` (server/authority_link.py).
        self.authority = authority
        self.link: AuthorityLink | None = None
        self.ws = ws
        self.phase = ConnectionPhase()
        self.pid = uuid.uuid4().hex[:12]
        self.live: LiveRoom | None = None
        self.listening = False  # joined as a listener (the audience)
        self.leave_reason = DROPPED
        settings = hub.settings
        outbox = Outbox(settings.send_queue_messages, settings.send_queue_bytes)
        self._writer = SocketWriter(ws, outbox, self._overflowed, transport)
        self.log = ParticipantLog(log, self.pid)
        self._bucket = TokenBucket(hub.settings.messages_per_s, hub.settings.message_burst)
        self._offers = InFlight()
        self._sdp_limits = hub.settings.sdp.limits()
        self._answer_limits = self._sdp_limits  # widened to the subscribe offer's m-lines

    async def send(self, message: Message | str) -> None:
        """Queue a message (or one already written as JSON) for this connection's writer; never
        waits for the socket. A page that lets its queue fill is closed."""
        if self.ws.closed:
            return
        self._writer.put(message if isinstance(message, str) else message.model_dump_json())

    def _overflowed(self, why: str) -> None:
        self.log.warning("closing the connection (%s): %s", QUEUE_FULL, why)
        self.hub.send_queue_overflows += 1

    def close_when_sent(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        self._writer.close_when_sent(code, message)

    async def close(self, reason: str) -> None:
        """The room ends this participant's stay (removed, meeting ended)."""
        self.leave_reason = reason
        await self.send(Bye(reason=reason))
        self.phase.move(Phase.CLOSED)
        self.close_when_sent()

    async def supersede(self, reason: str) -> None:
        """The participant came back on another connection: close this one, stay in the room."""
        self.live = None
        await self.send(Bye(reason=reason))
        self.phase.move(Phase.CLOSED)
        self.close_when_sent()

    async def run(self) -> None:
        self._writer.start()
        await self.send(Hello(server=f"confsfu {__version__}"))
        try:
            async for frame in self.ws:
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.BINARY:
                        await self._refuse(
                            SignallingError("bad_json", "binary frames are not used")
                        )
                    continue
                await self._on_text(frame.data)
                if self.phase.phase == Phase.CLOSED:
                    break
        finally:
            error = self.ws.exception()
            if isinstance(error, WebSocketError):  # broke the protocol: no coming back
                self.leave_reason = f"WebSocket protocol error: {error}"
            try:
                await self._leave()
            finally:
                await self._writer.finish()

    async def _on_text(self, text: str) -> None:
        if await self._over_limits(text):
            return
        await self.dispatch(text)

    async def dispatch(self, text: str) -> None:
        """A page's message, within its limits: handled, or refused with an error."""
        try:
            message = parse_client_message(text)
            self.phase.accept(message.type)
            await self._handle(message)
        except SignallingError as exc:
            await self._refuse(exc, fatal=exc.fatal)
        except MeetingError as exc:
            why = SignallingError(
                exc.code, exc.message, in_reply_to=_type_of(text), reason=exc.reason
            )
            await self._refuse(why)
        except Exception:  # a bug in one handler must not close other connections
            self.log.exception("message handling failed")
            await self._refuse(SignallingError("internal", "the server could not handle that"))

    async def _over_limits(self, text: str) -> bool:
        """A flood or an oversized message: refuse it, say bye and close; others see nothing."""
        settings = self.hub.settings
        if not self._bucket.allow(clock_ms()):
            why = f"more than {settings.messages_per_s:g} messages a second"
            exc, code = SignallingError("rate_limited", why), WSCloseCode.POLICY_VIOLATION
        elif utf8_longer_than(text, settings.max_message_bytes):
            why = f"a message may be at most {settings.max_message_bytes} bytes"
            exc, code = SignallingError("too_large", why), WSCloseCode.MESSAGE_TOO_BIG
        else:
            return False
        self.log.warning("closing the connection: %s", why)
        await self._refuse(exc, fatal=True)
        self.close_when_sent(code, exc.code.encode())
        return True

    async def _refuse(self, exc: SignallingError, *, fatal: bool = False) -> None:
        await self.send(
            Error(
                code=exc.code,
                message=exc.message,
                field=exc.field,
                in_reply_to=exc.in_reply_to,
                fatal=fatal,
                reason=exc.reason,
            )
        )
        if fatal:
            self.leave_reason = exc.message
            await self.send(Bye(reason=exc.message))
            self.phase.move(Phase.CLOSED)

    async def _handle(self, message: ClientMessage) -> None:
        if isinstance(message, Join):
            await self._join(message)
            return
        if isinstance(message, Ping):
            await self.send(Pong())
            return
        if isinstance(message, Leave):
            self.leave_reason = UNLOADING if message.unloading else "left"
            if self.link is not None:  # the authority's meeting is the one left
                await self.link.send(message.model_dump_json())
            await self.send(Bye(reason="you left the meeting"))
            self.phase.move(Phase.CLOSED)
            return
        if self.link is not None and route(message.type) is Route.MEETING:
            text = message.model_dump_json()
            # The room authority decides; a page held for a takeover (or whose authority just
            # went) keeps it for the meeting promoted here.
            if (self.link.ended or not await self.link.send(text)) and not self.link.held.offer(
                text
            ):
                why = "the meeting is being taken over: try again in a few seconds"
                raise SignallingError("busy", why, in_reply_to=message.type)
            return
        live = self.live
        assert live is not None
        if await act(live, self.pid, message, self.send, self.log):
            return
        meeting, now_ms = live.meeting, clock_ms()
        match message:
            case PublishOffer(purpose=purpose):
                if not self._offers.begin(purpose):
                    raise SignallingError(
                        "busy", f"a {purpose} offer is being handled", in_reply_to="publish_offer"
                    )
                try:
                    await self._publish(live, message)
                finally:
                    self._offers.end(purpose)
            case Unpublish(purpose=purpose):
                meeting.may_publish(self.pid)
                await live.media.unpublish(self.pid, purpose)
                if purpose == "screen":
                    meeting.stop_screen(self.pid)
                    await stop_screen_at_authority(self)
                    await live.announce([], also=[self.pid], state=True)
            case SubscribeAnswer():
                await self._subscribe_answer(live, message)
            case ViewPage(page=page):
                live.media.set_grid_page(self.pid, page)
            case StageSize(height=height):
                live.media.set_stage_size(self.pid, height)
            case Pin(participant_id=target):
                try:
                    live.media.set_pin(self.pid, target, meeting.room.participants)
                except PinError as exc:
                    raise SignallingError(
                        exc.code,
                        exc.message,
                        field="participant_id",
                        in_reply_to="pin",
                        reason=exc.reason,
                    ) from exc
            case SlotsShown(seq=seq):
                live.media.slots_shown(now_ms, self.pid, seq)

    async def _join(self, message: Join) -> None:
        settings = self.hub.settings
        admission = admit_join(message, settings)
        if admission.role == Role.LISTENER:
            await self._join_audience(message, admission.room, admission.name, admission.token_id)
            return
        if self.authority is not None:  # a relay member: the room authority admits
            await join_through_authority(self, message, admission)
            return
        room_name, name, role = admission.room, admission.name, admission.role
        token_id, resume_key = admission.token_id, admission.resume_key
        self.phase.move(Phase.JOINING)
        live = self.hub.room(room_name)
        now_ms = clock_ms()
        returning = live.meeting.returning(token_id) if token_id else None
        try:
            if returning is not None:
                events = live.meeting.come_back(now_ms, returning)
                me = live.room.participants[returning]
            else:
                if token_id is None or not admission.invited:  # a new guest, a new key
                    resume_key = secrets.token_urlsafe(16)
                    token_id = f"guest:{resume_key}"
                me = live.meeting.join(now_ms, self.pid, name, role, token_id)
        except MeetingError as exc:
            await self.hub.drop_if_empty(room_name)
            raise fatal(exc.code, exc.message) from exc
        if returning is not None:
            await self._take_over(live, returning)
        self.live = live
        live.connections[self.pid] = Connection(
            send=self.send, close=self.close, supersede=self.supersede
        )
        others = [live.participant_info(p) for p in live.room.participants.values() if p is not me]
        await self.send(
            Joined(
                participant_id=self.pid,
                room=room_name,
                name=me.name,
                role=me.role,
                participants=others,
                ice_servers=ice_servers(settings.ice, self.pid, now_s=int(time.time())),
                grid_page_size=settings.slots.video,
                you=live.participant_info(me),
                resumed=returning is not None,
                resume_key=resume_key,
                ice_transport_policy=settings.ice.browser_transport_policy,
            )
        )
        self.log.room = room_name
        if returning is not None:
            self.log.info("%s is back", me.name)
            await live.announce(events, also=[self.pid])
        else:
            await live.broadcast(
                ParticipantJoined(participant=live.participant_info(me)), exclude=self.pid
            )
            self.log.info("%s joined as %s", me.name, role)
        await self.send(live.room_state())
        if me.role == "chair":
            await self.send(live.audience_count())
        await self.send(live.chat_history())
        await self._subscribe(live, message)

    async def _join_audience(
        self, message: Join, room_name: str, name: str, token_id: str | None
    ) -> None:
        """Join as a listener: told nobody's list and nobody told of it (the chairs hear a
        count); a subscribe connection with the audio slots and the stage, nothing else."""
        self.phase.move(Phase.JOINING)
        live = self.hub.room(room_name)
        try:
            if (refused := live.authority_gate.refusal(token_id)) is not None:  # a member
                raise MeetingError(*refused)
            live.meeting.admit_listener(clock_ms(), self.pid, name, token_id)
        except MeetingError as exc:
            await self.hub.drop_if_empty(room_name)
            raise fatal(exc.code, exc.message) from exc
        self.live, self.listening = live, True
        live.admit_listener(
            self.pid, Connection(send=self.send, close=self.close, supersede=self.supersede)
        )
        settings = self.hub.settings
        await self.send(
            Joined(
                participant_id=self.pid,
                room=room_name,
                name=name,
                role="listener",
                participants=[],
                ice_servers=ice_servers(settings.ice, self.pid, now_s=int(time.time())),
                grid_page_size=0,
                ice_transport_policy=settings.ice.browser_transport_policy,
            )
        )
        self.log.room = room_name
        self.log.info("%s joined as a listener", name)
        await self.send(live.listener_state())
        await self._subscribe(live, message, listener=True)

    async def _subscribe(self, live: LiveRoom, message: Join, *, listener: bool = False) -> None:
        offer = await live.media.subscribe(
            self.pid, confirms=message.confirms_slots, listener=listener
        )
        limits = self._sdp_limits
        self._answer_limits = replace(
            limits,
            sections=max(limits.sections, offer.count("\nm=")),
            lines=max(limits.lines, 2 * offer.count("\n")),
        )
        self.phase.move(Phase.JOINED)
        await self.send(
            SubscribeOffer(sdp=self._announced(offer), slots=live.announce_slots(self.pid))
        )

    def _announced(self, sdp: str) -> str:
        public_ip = self.hub.settings.ice.public_ip
        return sdp if public_ip is None else announce_address(sdp, str(public_ip))

    async def _take_over(self, live: LiveRoom, pid: str) -> None:
        """Become participant `pid`: close its other connection, if any, and its old media."""
        old = live.connections.pop(pid, None)
        if old is not None:
            await old.supersede("you joined this meeting again from another window")
        await live.media.remove(pid, hold=True)
        self.pid = pid
        self.log = ParticipantLog(log, pid)

    async def _publish(self, live: LiveRoom, message: PublishOffer) -> None:
        live.meeting.may_publish(self.pid)  # listeners may not
        _within(message.sdp, self._sdp_limits, "publish_offer")
        if message.purpose == "screen" and self.link is not None:
            await start_screen_at_authority(self, live)  # the room's authority decides
        elif message.purpose == "screen":
            live.meeting.start_screen(self.pid)  # refused unless presenter, floor holder or chair
        try:
            answer = await live.media.publish(self.pid, message.sdp, message.purpose)
        except (SdpError, ValueError) as exc:
            if message.purpose == "screen":
                live.meeting.stop_screen(self.pid)
                await stop_screen_at_authority(self)
            raise SignallingError(
                "bad_sdp",
                f"the publish offer could not be used: {exc}",
                in_reply_to="publish_offer",
            ) from exc
        await self.send(PublishAnswer(sdp=self._announced(answer), purpose=message.purpose))
        if message.purpose == "screen":
            await live.announce([], also=[self.pid], state=True)
        live.media.reassign()

    async def _subscribe_answer(self, live: LiveRoom, message: SubscribeAnswer) -> None:
        _within(message.sdp, self._answer_limits, "subscribe_answer")
        try:
            await live.media.answer(self.pid, message.sdp)
        except (SdpError, ValueError, LookupError) as exc:
            raise SignallingError(
                "bad_sdp",
                f"the subscribe answer could not be used: {exc}",
                in_reply_to="subscribe_answer",
            ) from exc

    async def _leave(self) -> None:
        self.phase.move(Phase.CLOSED)
        if self.link is not None:
            await leave_authority(self)
            return
        live, self.live = self.live, None
        if live is None:
            return
        if self.listening:
            self.log.info("a listener left: %s", self.leave_reason)
            await live.listener_left(self.pid)
            return
        me = live.room.participants.get(self.pid)
        if me is None:
            live.connections.pop(self.pid, None)
            await live.media.remove(self.pid)
            await self.hub.drop_if_empty(live.room.name)
        elif self.leave_reason in (DROPPED, UNLOADING) and not live.meeting.moderation.ended:
            self.log.info("%s is away: %s", me.name, self.leave_reason)
            grace_s = self.hub.settings.unload_grace_s if self.leave_reason == UNLOADING else None
            await live.lost(self.pid, None if grace_s is None else int(grace_s * 1000))
        else:
            self.log.info("%s left: %s", me.name, self.leave_reason)
            await live.depart(self.pid, self.leave_reason)


def _type_of(text: str) -> str | None:
    with contextlib.suppress(Exception):
        return str(parse_client_message(text).type)
    return None


def _within(sdp: str, limits: SdpLimits, kind: str) -> None:
    """Refuse SDP beyond the limits before aiortc or the SDP model spend time on it."""
    try:
        check_sdp(sdp, limits)
    except SdpLimitError as exc:
        raise SignallingError("sdp_limit", str(exc), field="sdp", in_reply_to=kind) from exc
