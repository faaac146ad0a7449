"""Moderation: chair mutes versus own media, room lock, bans, and the meeting's schedule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from confsfu.ids import Kind

MEDIA_KINDS: tuple[Kind, ...] = get_args(Kind)


class ModerationError(ValueError):
    """A moderation request that makes no sense in the current state; nothing was changed.
    `reason` says why in one word where a participant may be told (`not_muted`, `meeting_ended`,
    `no_schedule`), else None."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChairMuted:
    pid: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class ChairUnmuted:
    pid: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class UnmuteRequested:
    pid: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class OwnMediaChanged:
    pid: str
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class RoomLocked:
    pass


@dataclass(frozen=True, slots=True)
class RoomUnlocked:
    pass


@dataclass(frozen=True, slots=True)
class MeetingExtended:
    scheduled_end_ms: int
    by_ms: int


@dataclass(frozen=True, slots=True)
class MeetingEndingSoon:
    scheduled_end_ms: int
    remaining_ms: int


@dataclass(frozen=True, slots=True)
class MeetingOvertime:
    """The scheduled end has passed; the meeting goes on until the chair ends it."""

    scheduled_end_ms: int


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    at_ms: int


ModerationEvent = (
    ChairMuted
    | ChairUnmuted
    | UnmuteRequested
    | OwnMediaChanged
    | RoomLocked
    | RoomUnlocked
    | MeetingExtended
    | MeetingEndingSoon
    | MeetingOvertime
    | MeetingEnded
)


@dataclass(frozen=True, slots=True)
class MediaModeration:
    """One participant's media as seen by moderation: their own switches and the chair's mutes."""

    own_audio: bool
    own_video: bool
    chair_muted_audio: bool
    chair_muted_video: bool
    audio_unmute_requested: bool
    video_unmute_requested: bool

    def chair_muted(self, kind: Kind) -> bool:
        return self.chair_muted_audio if kind == "audio" else self.chair_muted_video


class _Media:
    __slots__ = ("own", "requested")

    def __init__(self, audio: bool, video: bool) -> None:
        self.own: dict[Kind, bool] = {"audio": audio, "video": video}
        self.requested: set[Kind] = set()


class Moderation:
    """Chair mutes, the participants' own media switches, room lock, bans and the schedule.

    `may_forward` answers from the chair's mutes only: a participant's own switch is enforced by
    their client, and gating on it would clip the first syllable when RTP overtakes the
    WebSocket message that says the microphone is on again.
    """

    def __init__(
        self,
        *,
        scheduled_end_ms: int | None = None,
        warn_before_ms: int = 5 * 60_000,
        mute_on_join: bool = False,
    ) -> None:
        if warn_before_ms < 0:
            raise ModerationError(f"warn_before_ms must not be negative, not {warn_before_ms}")
        self._media: dict[str, _Media] = {}
        self._blocked: set[tuple[str, Kind]] = set()  # (pid, kind) muted by a chair
        self._locked = False
        self._banned: dict[str, None] = {}  # removed tokens, in the order removed
        self._scheduled_end_ms = scheduled_end_ms
        self._warn_before_ms = warn_before_ms
        self._warned_for_ms: int | None = None  # the scheduled end already warned about
        self._overtime_for_ms: int | None = None  # the scheduled end already reported passed
        self._ended_ms: int | None = None
        self.mute_on_join = mute_on_join

    # ---- roster ---------------------------------------------------------------------------

    def join(
        self, now_ms: int, pid: str, *, audio: bool = True, video: bool = True
    ) -> list[ModerationEvent]:
        """Register `pid`; with `mute_on_join` the newcomer's audio starts chair-muted."""
        if pid in self._media:
            raise ModerationError(f"participant {pid} has already joined")
        self._media[pid] = _Media(audio, video)
        if self.mute_on_join:
            self._blocked.add((pid, "audio"))
            return [ChairMuted(pid, "audio")]
        return []

    def leave(self, pid: str) -> None:
        self._media.pop(pid, None)
        for kind in MEDIA_KINDS:
            self._blocked.discard((pid, kind))

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(self._media)

    # ---- mutes ----------------------------------------------------------------------------

    def chair_mute(self, now_ms: int, pid: str, kind: Kind) -> list[ModerationEvent]:
        self._get(pid)
        if (pid, kind) in self._blocked:
            return []
        self._blocked.add((pid, kind))
        return [ChairMuted(pid, kind)]

    def chair_unmute(self, now_ms: int, pid: str, kind: Kind) -> list[ModerationEvent]:
        """Lift a chair's mute (and any pending request); only a chair's action reaches here."""
        media = self._get(pid)
        media.requested.discard(kind)
        if (pid, kind) not in self._blocked:
            return []
        self._blocked.discard((pid, kind))
        return [ChairUnmuted(pid, kind)]

    def mute_all(self, now_ms: int, except_pids: Iterable[str] = ()) -> list[ModerationEvent]:
        """Chair-mute the audio of everyone present except `except_pids` (the chair, the floor)."""
        spared = set(except_pids)
        events: list[ModerationEvent] = []
        for pid in self._media:
            if pid not in spared and (pid, "audio") not in self._blocked:
                self._blocked.add((pid, "audio"))
                events.append(ChairMuted(pid, "audio"))
        return events

    def request_unmute(self, pid: str, kind: Kind = "audio") -> list[ModerationEvent]:
        """Record that `pid` asks the chair to lift a mute; a repeated request is not re-sent."""
        media = self._get(pid)
        if (pid, kind) not in self._blocked:
            raise ModerationError(f"{pid}'s {kind} is not muted by the chair", "not_muted")
        if kind in media.requested:
            return []
        media.requested.add(kind)
        return [UnmuteRequested(pid, kind)]

    def set_own(self, pid: str, audio: bool, video: bool) -> list[ModerationEvent]:
        """The participant's own switches; they never lift a chair's mute."""
        media = self._get(pid)
        if media.own["audio"] == audio and media.own["video"] == video:
            return []
        media.own["audio"], media.own["video"] = audio, video
        return [OwnMediaChanged(pid, audio, video)]

    def may_forward(self, pid: str, kind: Kind) -> bool:
        """False while a chair has muted `pid`'s `kind`, and for anyone who has not joined."""
        return pid in self._media and (pid, kind) not in self._blocked

    def state(self, pid: str) -> MediaModeration:
        media = self._get(pid)
        return MediaModeration(
            own_audio=media.own["audio"],
            own_video=media.own["video"],
            chair_muted_audio=(pid, "audio") in self._blocked,
            chair_muted_video=(pid, "video") in self._blocked,
            audio_unmute_requested="audio" in media.requested,
            video_unmute_requested="video" in media.requested,
        )

    def unmute_requests(self) -> list[tuple[str, Kind]]:
        """Pending requests, for the chair's view."""
        return [(pid, kind) for pid, m in self._media.items() for kind in sorted(m.requested)]

    def _get(self, pid: str) -> _Media:
        media = self._media.get(pid)
        if media is None:
            raise ModerationError(f"unknown participant {pid}")
        return media

    # ---- room lock and bans ---------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._locked

    def lock(self) -> list[ModerationEvent]:
        if self._locked:
            return []
        self._locked = True
        return [RoomLocked()]

    def unlock(self) -> list[ModerationEvent]:
        if not self._locked:
            return []
        self._locked = False
        return [RoomUnlocked()]

    def ban(self, token_id: str) -> None:
        """A removed participant's token may not join again."""
        self._banned[token_id] = None

    def is_banned(self, token_id: str) -> bool:
        return token_id in self._banned

    @property
    def ban_count(self) -> int:
        return len(self._banned)

    def banned(self) -> list[str]:
        """The removed tokens, oldest first."""
        return list(self._banned)

    # ---- schedule -------------------------------------------------------------------------

    @property
    def scheduled_end_ms(self) -> int | None:
        return self._scheduled_end_ms

    @property
    def ended(self) -> bool:
        return self._ended_ms is not None

    @property
    def ended_ms(self) -> int | None:
        return self._ended_ms

    def extend(self, now_ms: int, by_ms: int) -> list[ModerationEvent]:
        """Move the scheduled end later by `by_ms` (from the scheduled end, not from now)."""
        if self._ended_ms is not None:
            raise ModerationError("cannot extend: the meeting has ended", "meeting_ended")
        if by_ms <= 0:
            raise ModerationError(f"cannot extend by {by_ms} ms: must be positive")
        if self._scheduled_end_ms is None:
            raise ModerationError("cannot extend: the meeting has no scheduled end", "no_schedule")
        self._scheduled_end_ms += by_ms
        return [MeetingExtended(self._scheduled_end_ms, by_ms)]

    def end(self, now_ms: int) -> list[ModerationEvent]:
        """The meeting ends: the chair ends it, or it ends for having stayed empty."""
        if self._ended_ms is not None:
            return []
        self._ended_ms = now_ms
        return [MeetingEnded(now_ms)]

    def next_deadline_ms(self) -> int | None:
        end_ms = self._scheduled_end_ms
        if end_ms is None or self._ended_ms is not None:
            return None
        if self._warned_for_ms != end_ms and self._warn_before_ms > 0:
            return end_ms - self._warn_before_ms
        if self._overtime_for_ms != end_ms:
            return end_ms
        return None

    def on_timer(self, now_ms: int) -> list[ModerationEvent]:
        """Warn before the scheduled end and say when it has passed; never end the meeting."""
        end_ms = self._scheduled_end_ms
        if end_ms is None or self._ended_ms is not None:
            return []
        events: list[ModerationEvent] = []
        if now_ms >= end_ms:
            if self._overtime_for_ms != end_ms:
                self._warned_for_ms = self._overtime_for_ms = end_ms
                events.append(MeetingOvertime(end_ms))
        elif now_ms >= end_ms - self._warn_before_ms and self._warned_for_ms != end_ms:
            self._warned_for_ms = end_ms
            events.append(MeetingEndingSoon(end_ms, end_ms - now_ms))
        return events
