"""A relay member's participant, spoken for at the room authority (docs/scale-out.md, "Who decides
for a room"): the member's session opens an **authority link**, a WebSocket to the home worker's
`/member` route on its Unix socket, sends the page's join there (the authority checks its token
and decides the role, the participant id, a resumption), and then the page's meeting messages
(signalling/routing.py). Whatever the authority's meeting sends that participant (its joined,
room_state, chat, participant updates, errors, its bye) comes back on the link and goes to the
page as it is; a chair's mute of the participant is applied to this worker's intake. What only
this worker knows goes the other way (signalling/link_messages.py): a screen share asked for
(the authority decides, the media stays here) and ended, the participant's connection quality
(at most once a second). The link ends when the session does; an authority gone without a bye
(its worker or its node died) holds the page for this worker to take the room over
(server/takeover.py; its meeting messages meanwhile queued, bounded, for the promoted meeting),
then 1012 if it does not: the page comes back into the room's next home as itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from yarl import URL

from confsfu.bandwidth.quality import Quality
from confsfu.conference.meeting import MeetingError
from confsfu.scale.node_spans import MEMBER_KEY_HEADER, member_key
from confsfu.scale.takeover import HeldMessages, Hold, hold_over, link_ended
from confsfu.server.clock import clock_ms
from confsfu.server.live_room import Connection, LiveRoom
from confsfu.server.logs import ParticipantLog
from confsfu.signalling.admission import Admission, fatal
from confsfu.signalling.connection import Phase, SignallingError
from confsfu.signalling.link_messages import (
    MemberQuality,
    MemberScreen,
    MemberScreenDecision,
    is_link_message,
    parse_link_message,
)
from confsfu.signalling.messages import Join, Joined

if TYPE_CHECKING:
    from confsfu.server.session import Session

log = logging.getLogger(__name__)
OPEN_TIMEOUT_S = 10.0  # the authority's answer to a join
LINK_MESSAGE_BYTES = 8 << 20  # our own worker's messages (a report, a chat history)
GONE = b"authority"  # the close reason a page gets when the room's authority went
QUALITY_EVERY_S = 1.0  # a participant's quality goes to the authority at most this often


class AuthorityLink:
    """One participant's WebSocket to its room's authority."""

    def __init__(self, target: str, key: str | None = None) -> None:
        """`target`: the home worker's socket path, or (a room spanning nodes) the URL of the
        authority node's front `/member` route, shown `key` (node_spans.member_key)."""
        self._path = target
        self._key = key
        self.across_nodes = target.startswith("http://")  # another node's front
        self._client: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self._screen: asyncio.Future[MemberScreenDecision] | None = None  # asked, unanswered
        self._quality: Quality = "unknown"  # the latest; `_quality_told` the authority's
        self._quality_told: Quality = "unknown"
        self._quality_at = -QUALITY_EVERY_S
        self._quality_task: asyncio.Task[None] | None = None
        self.ended = False  # without a bye: the page is held for a takeover
        self.held = HeldMessages()  # its meeting messages meanwhile (scale/takeover.py)

    async def open(self, pid: str, join_text: str) -> str:
        """Connect, send the join as `pid`; the authority's first answer (its `joined`, or an
        `error`). Raises aiohttp.ClientError, OSError or TimeoutError."""
        url, headers = URL("http://authority/member"), {}
        if self._path.startswith("http://"):  # another node's front, over TCP
            self._client = aiohttp.ClientSession()
            url = URL(self._path)
            headers = {MEMBER_KEY_HEADER: self._key or ""}
        else:
            connector = aiohttp.UnixConnector(path=self._path)
            self._client = aiohttp.ClientSession(connector=connector)
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            self._ws = await self._client.ws_connect(
                url.update_query(pid=pid), headers=headers, max_msg_size=LINK_MESSAGE_BYTES
            )
            await self._ws.send_str(join_text)
            async for text in self.messages():
                if _type(text) != "hello":
                    return text
        raise ConnectionError("the authority closed the link before it answered")

    async def send(self, text: str) -> bool:
        """False: not sent (the link is closed, or its authority just went)."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(text)
                return True
        return False

    async def messages(self) -> AsyncIterator[str]:
        """The authority's messages until the link ends."""
        ws = self._ws
        while ws is not None:
            frame = await ws.receive()
            if frame.type != WSMsgType.TEXT:
                return
            yield frame.data

    async def ask_screen(self) -> MemberScreenDecision:
        """May the participant share a screen? The authority's answer (raises TimeoutError,
        ConnectionError). One at a time (the session handles one screen offer at a time)."""
        fut = self._screen = asyncio.get_running_loop().create_future()
        try:
            await self.send(MemberScreen(on=True).model_dump_json())
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                decision: MemberScreenDecision = await fut
            return decision
        finally:
            self._screen = None

    def answered(self, text: str) -> None:
        """A link message from the authority (never the page's)."""
        with contextlib.suppress(ValueError):
            message = parse_link_message(text)
            asked = self._screen
            if isinstance(message, MemberScreenDecision) and asked and not asked.done():
                asked.set_result(message)

    def tell_quality(self, quality: Quality) -> None:
        """The participant's connection quality changed here: the authority hears of it (the
        latest, at most once a second)."""
        self._quality = quality
        if self._quality_task is None or self._quality_task.done():
            self._quality_task = asyncio.ensure_future(self._send_quality())

    async def _send_quality(self) -> None:
        loop = asyncio.get_running_loop()
        while self._quality != self._quality_told:
            wait_s = self._quality_at + QUALITY_EVERY_S - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            quality = self._quality
            self._quality_told, self._quality_at = quality, loop.time()
            await self.send(MemberQuality(quality=quality).model_dump_json())

    def _stop(self) -> None:
        if self._screen is not None and not self._screen.done():
            self._screen.set_exception(ConnectionError("the authority link ended"))
        if self._quality_task is not None:
            self._quality_task.cancel()

    async def close(self) -> None:
        self._stop()
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._client is not None:
            await self._client.close()


def _type(text: str) -> str | None:
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            return str(message["type"])
    return None


async def join_through_authority(session: Session, message: Join, admission: Admission) -> None:
    """The member's join: admitted by the authority first (who, as which participant), then
    joined to this worker's meeting (which holds the media) under the same id and role."""
    assert session.authority is not None
    session.phase.move(Phase.JOINING)
    secret = session.hub.settings.relay_secret
    key = member_key(secret.get_secret_value().encode()) if secret is not None else None
    link = AuthorityLink(session.authority, key)
    try:
        answer = await link.open(session.pid, message.model_dump_json())
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        session.log.warning("the room's authority did not answer the join: %r", exc)
        await link.close()
        session.phase.move(Phase.CLOSED)
        session.close_when_sent(WSCloseCode.SERVICE_RESTART, GONE)  # the page comes again
        return
    if _type(answer) != "joined":  # refused there (a locked room, a ban): the page is told
        await session.send(answer)
        async for text in link.messages():  # its bye
            await session.send(text)
            break
        await link.close()
        session.phase.move(Phase.CLOSED)
        session.close_when_sent()
        return
    try:
        joined = Joined.model_validate_json(answer)
    except ValueError as exc:  # pydantic's ValidationError: our own worker, but checked
        session.log.error("the room's authority answered a join with %r: %s", answer[:80], exc)
        await link.close()
        session.phase.move(Phase.CLOSED)
        session.close_when_sent(WSCloseCode.SERVICE_RESTART, GONE)
        return
    hub, pid = session.hub, joined.participant_id
    live = hub.room(admission.room)
    live.follows = True  # (before any await: this worker's meeting tells its pages nothing)
    live.reports_elsewhere = True
    if pid in live.connections:  # this participant again, on this worker: this one wins
        await session._take_over(live, pid)
    elif pid not in live.room.participants:  # (a mirror of it is taken over as it is)
        token_id = admission.token_id
        if token_id is None or not admission.invited:
            token_id = f"guest:{joined.resume_key}"
        try:
            role = "chair" if joined.role == "chair" else "participant"
            live.meeting.join(clock_ms(), pid, joined.name, role, token_id)  # type: ignore[arg-type]
        except MeetingError as exc:
            await link.close()
            await hub.drop_if_empty(admission.room)
            raise fatal(exc.code, exc.message) from exc
    session.pid, session.log = pid, ParticipantLog(log, pid)
    session.log.room = admission.room
    session.live, session.link = live, link
    live.linked.add(pid)
    live.connections[pid] = Connection(
        send=session.send,
        close=session.close,
        supersede=session.supersede,
        quality=link.tell_quality,
        adopt=lambda: _adopted(session, link),
        release=lambda: _released(session, link),
    )
    if joined.you is not None:
        apply_orders(live, joined.you.model_dump())
    await session.send(answer)
    session.log.info("%s joined as %s, at the room's authority", joined.name, joined.role)
    link.reader = asyncio.ensure_future(_read(session, link, live))
    await session._subscribe(live, message)


async def _read(session: Session, link: AuthorityLink, live: LiveRoom) -> None:
    """The authority's messages to the page, until its bye or the link's end."""
    try:
        async for text in link.messages():
            if session.phase.phase == Phase.CLOSED:
                return
            if is_link_message(text):  # the authority's answer to this worker
                link.answered(text)
                continue
            message = _object(text)
            kind = message.get("type")
            if kind in ("participant_updated", "participant_joined"):
                participant = message.get("participant")
                if isinstance(participant, dict):
                    apply_orders(live, participant)
            await session.send(text)
            if kind == "bye":
                reason = message.get("reason")
                session.leave_reason = reason if isinstance(reason, str) else "left"
                session.phase.move(Phase.CLOSED)
                session.close_when_sent()
                return
        link._stop()
        # The authority went without a bye: its node's death is taken over by this one
        # (scale/takeover.py), its worker's by the room's next home on this node.
        lease_ms = int(session.hub.settings.node_lease_s * 1000)
        end = link_ended(
            bye=False,
            across_nodes=link.across_nodes,
            closing=session.phase.phase == Phase.CLOSED,
            now_ms=clock_ms(),
            lease_ms=lease_ms,
        )
        if isinstance(end, Hold):
            link.ended = True
            session.log.warning("the room's authority is gone: held for a takeover")
            if live.on_authority_lost is not None:
                live.on_authority_lost()  # its slots planned here meanwhile
            await asyncio.sleep(max(0, end.until_ms - clock_ms()) / 1000)
            now_ms = max(clock_ms(), end.until_ms)  # (slept that long: never held for ever)
            if not hold_over(end, adopted=session.link is not link, now_ms=now_ms):
                return
        if end is not None and session.phase.phase != Phase.CLOSED:
            session.log.warning("the room's authority is gone: the page reconnects")
            session.phase.move(Phase.CLOSED)
            session.close_when_sent(WSCloseCode.SERVICE_RESTART, GONE)
    except asyncio.CancelledError:
        raise
    except Exception:  # nothing the link brings may outlive the session unseen
        session.log.exception("the authority link failed")
        session.close_when_sent(WSCloseCode.SERVICE_RESTART, GONE)


async def start_screen_at_authority(session: Session, live: LiveRoom) -> None:
    """A member's participant asks to share a screen: the authority decides (who may, as
    for a page there), this worker's meeting notes it. Raises MeetingError as the
    authority's meeting refused, SignallingError if it did not answer."""
    link = session.link
    assert link is not None
    try:
        decision = await link.ask_screen()
    except (TimeoutError, ConnectionError) as exc:
        raise SignallingError(
            "internal", "the room's authority did not answer", in_reply_to="publish_offer"
        ) from exc
    if not decision.allowed:
        code, message = decision.code or "forbidden", decision.message or "refused"
        raise MeetingError(code, message, decision.reason)
    live.meeting.screens.add(session.pid)


async def stop_screen_at_authority(session: Session) -> None:
    if session.link is not None:
        await session.link.send(MemberScreen(on=False).model_dump_json())


async def _adopted(session: Session, link: AuthorityLink) -> None:
    """The room's meeting is this worker's now (server/takeover.py): the session is answered
    here; its link (ended, or cut if it was not) goes."""
    if session.link is link:
        session.link = None
        await link.close()  # (its reader, held for this, ends)
        session.log.info("the room's meeting is on this worker now")
        held = link.held.take()
        for text in held:  # what the page asked of the meeting while held, in order
            if session.phase.phase == Phase.CLOSED:
                break
            await session.dispatch(text)
        if held or link.held.refused:
            session.log.info("held messages handled: %d (refused %d)", len(held), link.held.refused)


def _released(session: Session, link: AuthorityLink) -> bool:
    """Another node took the room over: a page held here goes now (1012), it comes again."""
    if session.link is not link or not link.ended or session.phase.phase == Phase.CLOSED:
        return False
    session.log.warning("another node took the room over: the page reconnects")
    session.phase.move(Phase.CLOSED)
    session.close_when_sent(WSCloseCode.SERVICE_RESTART, GONE)
    return True


def _object(text: str) -> dict[str, Any]:
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        if isinstance(message, dict):
            return message
    return {}


def apply_orders(live: LiveRoom, participant: dict[str, Any]) -> None:
    """The authority's word on a participant connected here: its chair mutes gate this
    worker's intake of its media (the authority's meeting decided them)."""
    pid = participant.get("id")
    moderation = live.meeting.moderation
    if not isinstance(pid, str) or pid not in live.linked or pid not in moderation.participants:
        return
    now_ms, state = clock_ms(), moderation.state(pid)
    for kind, had in (("audio", state.chair_muted_audio), ("video", state.chair_muted_video)):
        muted = participant.get(f"chair_muted_{kind}")
        if muted is True and not had:
            moderation.chair_mute(now_ms, pid, kind)  # type: ignore[arg-type]
        elif muted is False and had:
            moderation.chair_unmute(now_ms, pid, kind)  # type: ignore[arg-type]
    live.media.refresh_gates()


async def leave_authority(session: Session) -> None:
    """The member's session ended: the link closes (the authority's meeting decides whether
    the participant is away or gone); this worker lets its part of the participant go."""
    link, live, pid = session.link, session.live, session.pid
    session.link, session.live = None, None
    if link is not None:
        await link.close()
    if live is None:
        return
    conn = live.connections.get(pid)
    if conn is None or conn.send != session.send:
        return  # taken over by a newer connection of the participant
    del live.connections[pid]
    live.linked.discard(pid)
    session.log.info("left this worker: %s", session.leave_reason)
    await live.media.remove(pid)
    live.meeting.leave(clock_ms(), pid)  # a follower's meeting: nobody is told
    await session.hub.drop_if_empty(live.room.name)
