"""What the room tells whom when its meeting changes: each meeting event as the messages and
connection changes it calls for (the shell performs them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confsfu.conference import chat, floor, moderation
from confsfu.conference.meeting import MeetingEvent, ParticipantRemoved
from confsfu.conference.presence import ParticipantTimedOut
from confsfu.signalling.messages import Notice

KIND_WORDS = {"audio": "microphone", "video": "camera"}


@dataclass(frozen=True, slots=True)
class Tell:
    """Send `notice` to one participant."""

    pid: str
    notice: Notice


@dataclass(frozen=True, slots=True)
class TellChairs:
    notice: Notice


@dataclass(frozen=True, slots=True)
class TellEveryone:
    notice: Notice


@dataclass(frozen=True, slots=True)
class CloseAll:
    """Close every connection, with this reason (the meeting ended)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Remove:
    """The chair removed `pid`: close its connection, or, if it is away, it leaves now."""

    pid: str
    reason: str = "the chair removed you from the meeting"


@dataclass(frozen=True, slots=True)
class Gone:
    """`pid` did not come back in time: it has left."""

    pid: str
    reason: str


Outgoing = Tell | TellChairs | TellEveryone | CloseAll | Remove | Gone


def notices_for(
    event: MeetingEvent | ParticipantRemoved, names: Mapping[str, str]
) -> list[Outgoing]:
    """What `event` calls for; `names` are the participants' names by id."""
    match event:
        case moderation.ChairMuted(pid, kind):
            what = "muted your microphone" if kind == "audio" else "stopped your camera"
            notice = Notice(code="chair_muted", text=f"The chair {what}.", params={"kind": kind})
            return [Tell(pid, notice)]
        case moderation.ChairUnmuted(pid, kind):
            text = f"The chair allowed your {KIND_WORDS[kind]} again."
            return [Tell(pid, Notice(code="chair_unmuted", text=text, params={"kind": kind}))]
        case moderation.UnmuteRequested(pid, kind):
            text = f"{names.get(pid, pid)} asks to turn their {KIND_WORDS[kind]} back on."
            who = {"kind": kind, "participant_id": pid, "name": names.get(pid, pid)}
            return [TellChairs(Notice(code="unmute_requested", text=text, params=who))]
        case floor.FloorGranted(pid, _until):
            return [Tell(pid, Notice(code="floor_granted", text="You have the floor."))]
        case floor.FloorRevoked(pid, _) | floor.FloorExpired(pid):
            return [Tell(pid, Notice(code="floor_ended", text="Your turn to speak ended."))]
        case moderation.MeetingEndingSoon(_end, remaining_ms):
            minutes = max(1, round(remaining_ms / 60_000))
            text = f"The meeting is scheduled to end in {minutes} minutes."
            notice = Notice(code="ending_soon", text=text, params={"minutes": minutes})
            return [TellEveryone(notice)]
        case moderation.MeetingOvertime():
            text = "The scheduled end has passed; the meeting goes on until a chair ends it."
            return [TellChairs(Notice(code="overtime", text=text))]
        case moderation.MeetingEnded():
            return [CloseAll("the chair ended the meeting")]
        case chat.ChatToggled(enabled, _by):
            if enabled:
                text = "The chair turned the chat on: everyone may write again."
                return [TellEveryone(Notice(code="chat_on", text=text))]
            text = "The chair turned the chat off: only chairs may write now."
            return [TellEveryone(Notice(code="chat_off", text=text))]
        case ParticipantRemoved(pid):
            return [Remove(pid)]
        case ParticipantTimedOut(pid):
            return [Gone(pid, "connection lost")]
    return []
