"""One participant's WebSocket: signalling messages in, room effects and replies out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from aiohttp import WSMsgType, web

from confsfu import __version__
from confsfu.conference.room import RoomFull
from confsfu.sdp import SdpError
from confsfu.server.hub import Hub, LiveRoom, participant_info
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
    IceServer,
    Join,
    Joined,
    Leave,
    MediaState,
    Message,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    Ping,
    Pong,
    PublishAnswer,
    PublishOffer,
    SubscribeAnswer,
    SubscribeOffer,
)
from confsfu.tokens import TokenError, verify_token

log = logging.getLogger(__name__)


class Session:
    """Drives one WebSocket from hello to bye; nothing it receives can take the room down."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse) -> None:
        self.hub = hub
        self.ws = ws
        self.phase = ConnectionPhase()
        self.pid = uuid.uuid4().hex[:12]
        self.live: LiveRoom | None = None
        self.leave_reason = "disconnected"
        self._send_lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(message.model_dump_json())

    async def run(self) -> None:
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
            await self._leave()

    async def _on_text(self, text: str) -> None:
        try:
            message = parse_client_message(text)
            self.phase.accept(message.type)
            await self._handle(message)
        except SignallingError as exc:
            await self._refuse(exc)
        except Exception:  # a bug in one handler must not close other connections
            log.exception("participant %s: message handling failed", self.pid)
            await self._refuse(SignallingError("internal", "the server could not handle that"))

    async def _refuse(self, exc: SignallingError, *, fatal: bool = False) -> None:
        await self.send(
            Error(
                code=exc.code,
                message=exc.message,
                field=exc.field,
                in_reply_to=exc.in_reply_to,
                fatal=fatal,
            )
        )
        if fatal:
            await self.send(Bye(reason=exc.message))
            self.phase.move(Phase.CLOSED)

    async def _handle(self, message: ClientMessage) -> None:
        match message:
            case Join():
                await self._join(message)
            case PublishOffer():
                await self._publish(message)
            case SubscribeAnswer():
                await self._subscribe_answer(message)
            case MediaState():
                await self._media_state(message)
            case Ping():
                await self.send(Pong())
            case Leave():
                self.leave_reason = "left"
                await self.send(Bye(reason="you left the meeting"))
                self.phase.move(Phase.CLOSED)

    async def _join(self, message: Join) -> None:
        settings = self.hub.settings
        if message.token is not None:
            try:
                claims = verify_token(settings.token_secret, message.token, now_s=int(time.time()))
            except TokenError as exc:
                await self._refuse(
                    SignallingError("bad_token", str(exc), in_reply_to="join"), fatal=True
                )
                return
            if message.room is not None and message.room != claims.room:
                await self._refuse(
                    SignallingError(
                        "wrong_room",
                        f"the token is for room {claims.room!r}, not {message.room!r}",
                        field="room",
                        in_reply_to="join",
                    ),
                    fatal=True,
                )
                return
            room_name, name, role = claims.room, message.name or claims.name, claims.role
            name = claims.name
            if settings.room(room_name) is None:
                await self._refuse(
                    SignallingError("no_such_room", f"there is no room {room_name!r}"), fatal=True
                )
                return
        else:
            if message.room is None or message.name is None:
                raise SignallingError(
                    "bad_message",
                    "join needs a token, or a room and a name",
                    field="token",
                    in_reply_to="join",
                )
            config = settings.room(message.room)
            if config is None or not config.open:
                await self._refuse(
                    SignallingError(
                        "no_such_room",
                        f"room {message.room!r} does not exist or needs an invitation token",
                        field="room",
                        in_reply_to="join",
                    ),
                    fatal=True,
                )
                return
            room_name, name, role = message.room, message.name, "participant"

        self.phase.move(Phase.JOINING)
        live = self.hub.room(room_name)
        try:
            me = live.room.join(int(time.monotonic() * 1000), self.pid, name, role)
        except RoomFull as exc:
            await self._refuse(
                SignallingError("room_full", str(exc), in_reply_to="join"), fatal=True
            )
            await self.hub.drop_if_empty(room_name)
            return
        self.live = live
        live.senders[self.pid] = self.send
        others = [participant_info(p) for p in live.room.participants.values() if p.id != self.pid]
        await self.send(
            Joined(
                participant_id=self.pid,
                room=room_name,
                name=name,
                role=role,
                participants=others,
                ice_servers=[IceServer(urls=[u]) for u in settings.ice.stun_servers],
            )
        )
        await live.broadcast(ParticipantJoined(participant=participant_info(me)), exclude=self.pid)
        log.info("room %s: %s (%s) joined as %s", room_name, name, self.pid, role)
        offer = await live.media.subscribe(self.pid)
        self.phase.move(Phase.JOINED)
        await self.send(SubscribeOffer(sdp=offer, slots=live.slot_infos(self.pid)))
        live.media.reassign()

    async def _publish(self, message: PublishOffer) -> None:
        assert self.live is not None
        try:
            answer = await self.live.media.publish(self.pid, message.sdp)
        except (SdpError, ValueError) as exc:
            raise SignallingError(
                "bad_sdp",
                f"the publish offer could not be used: {exc}",
                in_reply_to="publish_offer",
            ) from exc
        await self.send(PublishAnswer(sdp=answer))
        self.live.media.reassign()

    async def _subscribe_answer(self, message: SubscribeAnswer) -> None:
        assert self.live is not None
        try:
            await self.live.media.answer(self.pid, message.sdp)
        except (SdpError, ValueError, LookupError) as exc:
            raise SignallingError(
                "bad_sdp",
                f"the subscribe answer could not be used: {exc}",
                in_reply_to="subscribe_answer",
            ) from exc

    async def _media_state(self, message: MediaState) -> None:
        assert self.live is not None
        me = self.live.room.set_media(self.pid, message.audio, message.video)
        await self.live.broadcast(ParticipantUpdated(participant=participant_info(me)))

    async def _leave(self) -> None:
        self.phase.move(Phase.CLOSED)
        live, self.live = self.live, None
        if live is None:
            return
        live.senders.pop(self.pid, None)
        left = live.room.leave(self.pid)
        await live.media.remove(self.pid)
        if left is not None:
            log.info(
                "room %s: %s (%s) left: %s", live.room.name, left.name, self.pid, self.leave_reason
            )
            await live.broadcast(ParticipantLeft(participant_id=self.pid, reason=self.leave_reason))
        await self.hub.drop_if_empty(live.room.name)
