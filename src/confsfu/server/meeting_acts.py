"""A participant's meeting messages (signalling/routing.py's `MEETING` route) applied to its
room's meeting: the same code for a participant connected here and for one a relay member's
link speaks for (server/member_session.py), so the room authority decides them all alike."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from confsfu.conference.meeting import MeetingError
from confsfu.conference.permissions import Action, allowed
from confsfu.server.clock import clock_ms
from confsfu.server.live_room import LiveRoom
from confsfu.server.logs import ParticipantLog
from confsfu.signalling.connection import SignallingError
from confsfu.signalling.messages import (
    Chair,
    ChatSend,
    ClientMessage,
    GetReport,
    LowerHand,
    MediaState,
    Message,
    RaiseHand,
    Report,
    RequestUnmute,
)

Send = Callable[[Message], Awaitable[None]]


async def act(
    live: LiveRoom, pid: str, message: ClientMessage, send: Send, log: ParticipantLog
) -> bool:
    """Apply `message` as `pid`; False if it is not a meeting message. MeetingError and
    SignallingError go to the caller (the page gets an error)."""
    meeting, now_ms = live.meeting, clock_ms()
    match message:
        case MediaState(audio=audio, video=video):
            await live.announce(meeting.set_own_media(pid, audio, video))
        case RaiseHand():
            await live.announce(meeting.raise_hand(now_ms, pid))
        case LowerHand():
            await live.announce(meeting.lower_hand(now_ms, pid))
        case RequestUnmute(kind=kind):
            await live.announce(meeting.request_unmute(now_ms, pid, kind))
        case Chair():
            events = meeting.chair(
                now_ms,
                pid,
                message.action,
                target=message.participant_id,
                kind=message.kind,
                limit_s=message.limit_s,
                minutes=message.minutes,
                message_id=message.message_id,
            )
            log.info("chair did %s", message.action)
            await live.announce(events)
        case ChatSend(text=text):
            try:
                posted = meeting.send_chat(now_ms, pid, text)
            except MeetingError as exc:
                field = "text" if exc.code == "bad_message" else None
                raise SignallingError(
                    exc.code, exc.message, field=field, in_reply_to="chat_send", reason=exc.reason
                ) from exc
            await live.announce(posted)
        case GetReport(format=fmt):
            await send(report(live, pid, fmt))
        case _:
            return False
    return True


def report(live: LiveRoom, pid: str, fmt: str) -> Report:
    meeting = live.meeting
    role = meeting.role(pid)
    if not allowed(role, Action.DOWNLOAD_REPORT, meeting.standing(pid)):
        raise MeetingError(
            "forbidden", f"a {role} may not {Action.DOWNLOAD_REPORT.replace('_', ' ')}"
        )
    now_ms = clock_ms()
    meeting.report.set_speaking_ms(meeting.speakers.speaking_totals())
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime())
    content = meeting.report.full_csv(now_ms) if fmt == "csv" else meeting.report.to_json(now_ms)
    name = f"{live.room.name}-{stamp}.{fmt}"
    return Report(format="csv" if fmt == "csv" else "json", filename=name, content=content)
