"""The chaired meeting: roles, floor, mutes, speakers, stage and report composed behind one API.

Every method takes `now_ms` and returns the events that happened; the IO shell turns them into
messages. Refusals raise MeetingError with a protocol error code and leave every state unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from confsfu.conference.audience import Audience, AudienceChanged, AudienceFull, Listener
from confsfu.conference.chat import Chat, ChatError, ChatEvent, ChatPosted, ChatRemoved
from confsfu.conference.floor import FloorControl, FloorError, FloorEvent
from confsfu.conference.lineup import Lineup
from confsfu.conference.moderation import Moderation, ModerationError, ModerationEvent
from confsfu.conference.permissions import (
    Action,
    PermissionDenied,
    Role,
    Standing,
    allowed,
    check,
)
from confsfu.conference.presence import (
    Presence,
    PresenceEvent,
)
from confsfu.conference.report import MeetingReport
from confsfu.conference.room import Participant, Room, RoomFull
from confsfu.conference.slots import rank_for_audio
from confsfu.conference.speakers import DominantSpeakerChanged, SpeakerDetector
from confsfu.ids import Kind

StageKind = Literal["screen", "floor", "speaker"]
MeetingEvent = (
    FloorEvent
    | ModerationEvent
    | DominantSpeakerChanged
    | PresenceEvent
    | ChatEvent
    | AudienceChanged
)
MEDIA_KINDS: tuple[Kind, ...] = ("audio", "video")

# Chair commands of the protocol -> the permission they need.
CHAIR_ACTIONS: dict[str, Action] = {
    "mute": Action.MUTE_AUDIO,
    "unmute": Action.UNMUTE,
    "mute_all": Action.MUTE_ALL,
    "grant_floor": Action.GRANT_FLOOR,
    "revoke_floor": Action.REVOKE_FLOOR,
    "make_presenter": Action.MAKE_PRESENTER,
    "lower_hand": Action.REVOKE_FLOOR,
    "remove": Action.REMOVE_PARTICIPANT,
    "lock": Action.LOCK_ROOM,
    "unlock": Action.UNLOCK_ROOM,
    "extend": Action.EXTEND_MEETING,
    "end": Action.END_MEETING,
    "remove_chat": Action.MODERATE_CHAT,
    "chat_off": Action.MODERATE_CHAT,
    "chat_on": Action.MODERATE_CHAT,
}


class MeetingError(ValueError):
    """A request was refused; `code` is the protocol error code, `reason` (or None) why in one
    word (the protocol's `reason`)."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParticipantRemoved:
    pid: str


@dataclass(frozen=True, slots=True)
class Stage:
    pid: str | None
    kind: StageKind | None


class Meeting:
    """One room's meeting state; no IO, no clock."""

    def __init__(
        self,
        room: Room,
        *,
        now_ms: int,
        unix_ms: int,
        scheduled_minutes: int | None = None,
        reconnect_grace_ms: int = 20_000,
        max_listeners: int = 0,
    ) -> None:
        self.room = room
        self.audience = Audience(max_listeners)
        self.floor = FloorControl()
        end_ms = now_ms + scheduled_minutes * 60_000 if scheduled_minutes else None
        self.moderation = Moderation(scheduled_end_ms=end_ms)
        self.speakers = SpeakerDetector()
        self.chat = Chat()
        self.report = MeetingReport(room.name, now_ms=now_ms, unix_ms=unix_ms)
        self.screens: set[str] = set()  # participants publishing a screen share
        self._tokens: dict[str, str] = {}  # pid -> token id (or "guest:<key>" for guests)
        self.presence = Presence(reconnect_grace_ms)
        # Chair mutes outlive a leave: whoever comes back with the same token is still muted.
        self._muted_tokens: dict[str, set[Kind]] = {}
        self._empty_since_ms: int | None = now_ms  # since when nobody is in the room

    # ---- membership -------------------------------------------------------------------------

    def join(self, now_ms: int, pid: str, name: str, role: Role, token_id: str) -> Participant:
        if self.moderation.ended:
            raise MeetingError("meeting_ended", "the meeting has ended")
        if self.moderation.is_banned(token_id):
            raise MeetingError("removed", "the chair removed you from this meeting")
        if self.moderation.locked and role != Role.CHAIR:
            raise MeetingError("room_locked", "the chair has locked the meeting")
        try:
            p = self.room.join(now_ms, pid, name, "chair" if role == Role.CHAIR else "participant")
        except RoomFull as exc:
            raise MeetingError("room_full", str(exc)) from exc
        self.moderation.join(now_ms, pid)
        for kind in sorted(self._muted_tokens.pop(token_id, ())):
            self.moderation.chair_mute(now_ms, pid, kind)
        self.report.joined(now_ms, pid, name, role)
        self._tokens[pid] = token_id
        self._empty_since_ms = None
        return p

    def admit_listener(self, now_ms: int, pid: str, name: str, token_id: str | None) -> Listener:
        """`pid` joins the audience: refused once the meeting ended, to a token the chair
        removed, and beyond the room's listener limit. A chair's lock is on who may speak: it
        does not turn listeners away."""
        if self.moderation.ended:
            raise MeetingError("meeting_ended", "the meeting has ended")
        if token_id is not None and self.moderation.is_banned(token_id):
            raise MeetingError("removed", "the chair removed you from this meeting")
        try:
            listener = self.audience.admit(now_ms, pid, name)
        except AudienceFull as exc:
            raise MeetingError("audience_full", str(exc)) from exc
        self.report.audience_peak = self.audience.peak
        return listener

    def listeners_elsewhere(self, worker: int, listeners: int | None) -> None:
        """Another worker of the room holds `listeners` of its audience (None: none any more):
        counted in what the chairs are told and in the report's peak."""
        if listeners is None:
            self.audience.forget_elsewhere(worker)
        else:
            self.audience.counted_elsewhere(worker, listeners)
            self.report.audience_peak = max(self.report.audience_peak, self.audience.peak)

    def returning(self, token_id: str) -> str | None:
        """The participant who joined with `token_id` and is still in the meeting, if any."""
        return next((pid for pid, t in self._tokens.items() if t == token_id), None)

    def come_back(self, now_ms: int, pid: str) -> list[MeetingEvent]:
        """`pid` connects again (after a drop, or from another window): same person, same state."""
        if self.moderation.ended:
            raise MeetingError("meeting_ended", "the meeting has ended")
        if pid not in self.room.participants:
            raise MeetingError("no_such_participant", f"there is no participant {pid!r}")
        return list(self.presence.back(pid))

    def connection_lost(
        self, now_ms: int, pid: str, grace_ms: int | None = None
    ) -> list[MeetingEvent]:
        """`pid`'s connection dropped without a goodbye: away until it comes back or times out
        (after `grace_ms`, by default the meeting's reconnect grace)."""
        if pid not in self.room.participants:
            return []
        return list(self.presence.away(now_ms, pid, grace_ms))

    def leave(self, now_ms: int, pid: str) -> list[MeetingEvent]:
        if self.room.leave(pid) is None:
            return []
        floor_events = self.floor.participant_left(now_ms, pid)
        self._record(now_ms, floor_events)
        events: list[MeetingEvent] = list(floor_events)
        token_id = self._tokens.get(pid)
        state = self.moderation.state(pid) if pid in self.moderation.participants else None
        muted = {k for k in MEDIA_KINDS if state is not None and state.chair_muted(k)}
        if token_id is not None and muted:
            self._muted_tokens[token_id] = muted
        self.presence.forget(pid)
        self.chat.forget(pid)
        self.moderation.leave(pid)
        self.speakers.remove(pid)
        self.screens.discard(pid)
        self.report.set_speaking_ms(self.speakers.speaking_totals())
        if not self.moderation.ended:  # the report closed everyone's attendance at the end
            self.report.left(now_ms, pid)
        self._tokens.pop(pid, None)
        if not self.room.participants:
            self._empty_since_ms = now_ms
        return events

    # ---- an empty meeting ends ----------------------------------------------------------------

    def empty_end_ms(self, after_ms: int) -> int | None:
        """When the meeting ends for having been empty `after_ms`; None while anyone is in it
        or once it has ended."""
        if self._empty_since_ms is None or self.moderation.ended:
            return None
        return self._empty_since_ms + after_ms

    def end_if_empty(self, now_ms: int, after_ms: int) -> list[MeetingEvent]:
        """End the meeting (as the chair's "end" does) if nobody has been in it for `after_ms`:
        its report is complete and the room can be forgotten. Nothing otherwise."""
        due_ms = self.empty_end_ms(after_ms)
        if due_ms is None or now_ms < due_ms:
            return []
        return self._end(now_ms)

    def _end(self, now_ms: int) -> list[MeetingEvent]:
        events: list[MeetingEvent] = list(self.moderation.end(now_ms))
        self.report.set_speaking_ms(self.speakers.speaking_totals())
        self.report.ended(now_ms)
        return events

    def role(self, pid: str) -> Role:
        if pid in self.audience:
            return Role.LISTENER
        return Role(self.room.participants[pid].role)

    def standing(self, pid: str) -> Standing:
        return Standing(
            presenter=self.floor.presenter == pid, floor_holder=self.floor.holder == pid
        )

    # ---- participants' own requests ---------------------------------------------------------

    def raise_hand(self, now_ms: int, pid: str) -> list[MeetingEvent]:
        return self._floor(
            now_ms, pid, Action.RAISE_HAND, lambda: self.floor.raise_hand(now_ms, pid)
        )

    def lower_hand(self, now_ms: int, pid: str) -> list[MeetingEvent]:
        return self._floor(
            now_ms, pid, Action.LOWER_HAND, lambda: self.floor.lower_hand(now_ms, pid)
        )

    def request_unmute(self, now_ms: int, pid: str, kind: Kind) -> list[MeetingEvent]:
        self._check(pid, Action.REQUEST_UNMUTE)
        try:
            return list(self.moderation.request_unmute(pid, kind))
        except ModerationError as exc:
            raise MeetingError("refused", str(exc), exc.reason) from exc

    def set_own_media(self, pid: str, audio: bool, video: bool) -> list[MeetingEvent]:
        self._check(pid, Action.SET_OWN_MEDIA)
        self.room.set_media(pid, audio, video)
        return list(self.moderation.set_own(pid, audio, video))

    def send_chat(self, now_ms: int, pid: str, text: str) -> list[MeetingEvent]:
        """Post a chat message for `pid` (chat.py's limits; participants only while chat is on)."""
        self._check(pid, Action.SEND_CHAT)
        p = self.room.participants[pid]
        try:
            events = self.chat.post(now_ms, pid, p.name, chair=p.role == "chair", text=text)
        except ChatError as exc:
            raise MeetingError(exc.code, exc.message, exc.reason) from exc
        for event in events:
            if isinstance(event, ChatPosted):
                self.report.chat_posted(event.message)
        return list(events)

    def may_publish(self, pid: str) -> None:
        """Raise MeetingError (`forbidden`) unless `pid` may publish (listeners may not)."""
        self._check(pid, Action.PUBLISH)

    def start_screen(self, pid: str) -> None:
        self._check(pid, Action.SHARE_SCREEN)
        self.screens.add(pid)

    def stop_screen(self, pid: str) -> None:
        self.screens.discard(pid)

    # ---- the chair ---------------------------------------------------------------------------

    def chair(
        self,
        now_ms: int,
        actor: str,
        command: str,
        *,
        target: str | None = None,
        kind: Kind | None = None,
        limit_s: int | None = None,
        minutes: int | None = None,
        message_id: int | None = None,
    ) -> list[MeetingEvent | ParticipantRemoved]:
        action = CHAIR_ACTIONS.get(command)
        if action is None:
            raise MeetingError("bad_message", f"unknown chair action {command!r}")
        if command == "mute" and kind == "video":
            action = Action.STOP_VIDEO
        self._check(actor, action)
        needs_target = command in ("mute", "unmute", "grant_floor", "lower_hand", "remove")
        if needs_target and (target is None or target not in self.room.participants):
            raise MeetingError("no_such_participant", f"there is no participant {target!r}")
        if (
            command == "make_presenter"
            and target is not None
            and target not in self.room.participants
        ):
            raise MeetingError("no_such_participant", f"there is no participant {target!r}")
        if command in ("remove_chat", "chat_off", "chat_on"):
            return self._chat_chair(now_ms, actor, command, action, message_id)
        events = self._apply_chair(now_ms, command, target, kind, limit_s, minutes)
        self.report.chair_action(now_ms, actor, action, target, command)
        return events

    def _chat_chair(
        self, now_ms: int, actor: str, command: str, action: Action, message_id: int | None
    ) -> list[MeetingEvent | ParticipantRemoved]:
        events: list[ChatEvent]
        try:
            if command == "remove_chat":
                events = self.chat.remove(now_ms, actor, message_id)
            else:
                events = self.chat.set_enabled(now_ms, actor, command == "chat_on")
        except ChatError as exc:
            raise MeetingError(exc.code, exc.message, exc.reason) from exc
        target: str | None = None
        detail = command
        for event in events:
            if isinstance(event, ChatRemoved):
                self.report.chat_removed(now_ms, event.message_id, actor)
                target, detail = event.sender, f"remove_chat {event.message_id}"
        self.report.chair_action(now_ms, actor, action, target, detail)
        return list(events)

    def _apply_chair(
        self,
        now_ms: int,
        command: str,
        target: str | None,
        kind: Kind | None,
        limit_s: int | None,
        minutes: int | None,
    ) -> list[MeetingEvent | ParticipantRemoved]:
        try:
            match command:
                case "mute":
                    assert target is not None
                    return list(self.moderation.chair_mute(now_ms, target, kind or "audio"))
                case "unmute":
                    assert target is not None
                    return list(self.moderation.chair_unmute(now_ms, target, kind or "audio"))
                case "mute_all":
                    keep = [p for p in (self.floor.holder,) if p] + [
                        p for p, q in self.room.participants.items() if q.role == "chair"
                    ]
                    return list(self.moderation.mute_all(now_ms, keep))
                case "grant_floor":
                    assert target is not None
                    limit_ms = limit_s * 1000 if limit_s else None
                    return self._record(now_ms, self.floor.grant(now_ms, target, limit_ms))
                case "revoke_floor":
                    return self._record(now_ms, self.floor.revoke(now_ms))
                case "lower_hand":
                    assert target is not None
                    return self._record(now_ms, self.floor.lower_hand(now_ms, target))
                case "make_presenter":
                    return self._record(now_ms, self.floor.set_presenter(now_ms, target))
                case "remove":
                    assert target is not None
                    self.moderation.ban(self._tokens.get(target, f"pid:{target}"))
                    return [ParticipantRemoved(target)]
                case "lock":
                    return list(self.moderation.lock())
                case "unlock":
                    return list(self.moderation.unlock())
                case "extend":
                    return list(self.moderation.extend(now_ms, (minutes or 15) * 60_000))
                case "end":
                    return list(self._end(now_ms))
        except (FloorError, ModerationError) as exc:
            raise MeetingError("refused", str(exc), exc.reason) from exc
        raise MeetingError("bad_message", f"unknown chair action {command!r}")

    # ---- media decisions ----------------------------------------------------------------------

    def may_forward(self, pid: str, kind: Kind) -> bool:
        return self.moderation.may_forward(pid, kind)

    def on_audio_level(self, now_ms: int, pid: str, level_dbov: int, voice: bool) -> None:
        """Feed the speaker detector (a chair-muted participant is not heard, so not counted)."""
        self.speakers.on_audio_level(now_ms, pid, level_dbov, voice)
        if voice and level_dbov < 127:
            self.room.heard(now_ms, pid)

    def tick(self, now_ms: int) -> list[MeetingEvent]:
        events: list[MeetingEvent] = []
        floor_events = self.floor.on_timer(now_ms)
        self._record(now_ms, floor_events)
        events += floor_events
        events += self.moderation.on_timer(now_ms)
        events += self.speakers.update(now_ms)
        events += self.audience.on_timer(now_ms)
        for timed_out in self.presence.expired(now_ms):
            events += self.leave(now_ms, timed_out.pid)
            events.append(timed_out)
        return events

    def next_deadline_ms(self) -> int | None:
        """When `tick` has something to decide next (a floor's time limit, a mute request
        expiring, the speaker detector, an away participant's grace); None: nothing."""
        due = (
            self.floor.next_deadline_ms(),
            self.moderation.next_deadline_ms(),
            self.speakers.next_deadline_ms(),
            self.presence.next_deadline_ms(),
            self.audience.next_deadline_ms(),
        )
        return min((at for at in due if at is not None), default=None)

    def stage(self, now_ms: int) -> Stage:
        """The presenter's or floor holder's screen, else the floor holder, else the speaker."""
        for pid in (self.floor.presenter, self.floor.holder):
            if pid is not None and pid in self.screens:
                return Stage(pid, "screen")
        others = [
            p
            for p in self.screens
            if p in self.room.participants
            and allowed(self.role(p), Action.SHARE_SCREEN, self.standing(p))
        ]
        if others:
            return Stage(sorted(others)[0], "screen")
        if self.floor.holder is not None:
            return Stage(self.floor.holder, "floor")
        dominant = self.speakers.dominant(now_ms)
        if dominant is not None and dominant in self.room.participants:
            return Stage(dominant, "speaker")
        return Stage(None, None)

    def lineup(
        self, now_ms: int, audio_publishing: Iterable[str], video_publishing: Iterable[str]
    ) -> Lineup:
        """Who is heard (the floor holder first, then the loudest, then who spoke lately) and the
        grid's order (most recently heard first, then join order), for every subscriber as of
        `now_ms`."""
        audible = {p for p in audio_publishing if self.may_forward(p, "audio")}
        shown = set(video_publishing)
        grid = rank_for_audio(
            [p for p in self.room.participants if p in shown], self.room.last_heard_ms
        )
        # Those who spoke lately come after the recent talkers: a slot that hears one keeps them
        # (Lineup.audio_for), nobody new is given one over a recent talker.
        talkers = self.speakers.ranked(now_ms) + self.speakers.lately(now_ms)
        return Lineup(talkers, audible, self.floor.holder, grid)

    # ---- helpers -------------------------------------------------------------------------------

    def _check(self, pid: str, action: Action) -> None:
        try:
            check(self.role(pid), action, self.standing(pid))
        except PermissionDenied as exc:
            raise MeetingError("forbidden", str(exc)) from exc

    def _floor(
        self, now_ms: int, pid: str, action: Action, apply: Callable[[], list[FloorEvent]]
    ) -> list[MeetingEvent]:
        self._check(pid, action)
        try:
            events = apply()
        except FloorError as exc:
            raise MeetingError("refused", str(exc), exc.reason) from exc
        self._record(now_ms, events)
        return list(events)

    def _record(
        self, now_ms: int, events: list[FloorEvent]
    ) -> list[MeetingEvent | ParticipantRemoved]:
        for event in events:
            self.report.on_floor_event(now_ms, event)
        return list(events)
