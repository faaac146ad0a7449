"""The meeting report: who attended, who held the floor, who spoke, what was written in the chat
and what the chair did."""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confsfu.conference.chat import ChatMessage
from confsfu.conference.floor import FloorEvent, FloorExpired, FloorGranted, FloorRevoked
from confsfu.conference.permissions import Action, Role

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Chat messages the report keeps (the latest; earlier ones are counted as omitted): bounded
# whatever the participants write, and far more than a meeting's minutes need.
MAX_CHAT_RECORDS = 10_000
# The same for what participants and chairs can grow by coming and going: beyond these the
# oldest records are folded into totals (time present, time on the floor) and counted as
# omitted. A 70-minute meeting of 46 needs a few hundred of each.
MAX_ATTENDEE_RECORDS = 1_000  # participants; beyond, the absent one present least goes
MAX_SESSIONS_PER_ATTENDEE = 100  # one participant's join/leave intervals
MAX_GRANT_RECORDS = 10_000
MAX_ACTION_RECORDS = 10_000


class ReportError(ValueError):
    """A record that contradicts what the report already holds; nothing was recorded."""


@dataclass(slots=True)
class _Session:
    joined_ms: int
    left_ms: int | None = None  # None: still present


@dataclass(slots=True)
class _Attendee:
    pid: str
    name: str
    role: Role
    sessions: list[_Session]
    first_joined_ms: int
    folded_ms: int = 0  # time present in sessions no longer listed
    folded_sessions: int = 0

    def present_ms(self, as_of: int) -> int:
        present = self.folded_ms
        for session in self.sessions:
            end_ms = session.left_ms if session.left_ms is not None else as_of
            present += max(0, end_ms - session.joined_ms)
        return present


@dataclass(slots=True)
class _Grant:
    pid: str
    start_ms: int
    end_ms: int | None = None
    ended_by: str | None = None  # revoked / replaced / left / expired


@dataclass(slots=True)
class _ChatRecord:
    message: ChatMessage
    removed_ms: int | None = None
    removed_by: str | None = None


@dataclass(frozen=True, slots=True)
class ChairActionRecord:
    at_ms: int
    actor: str
    action: Action
    target: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class AttendeeSummary:
    pid: str
    name: str
    role: Role
    joined_ms: int
    left_ms: int | None  # None: still present
    present_ms: int
    floor_ms: int
    speaking_ms: int


class MeetingReport:
    """Records the meeting as it happens; exports JSON and CSV with ISO 8601 UTC times.

    Times come in as the shell's monotonic `now_ms`; wall-clock time is derived from one
    (`now_ms`, `unix_ms`) pair given at construction, so the report never reads a clock.
    """

    def __init__(self, room: str, *, now_ms: int, unix_ms: int) -> None:
        self.room = room
        self._offset_ms = unix_ms - now_ms
        self._started_ms = now_ms
        self._ended_ms: int | None = None
        self._last_ms = now_ms
        self._attendees: dict[str, _Attendee] = {}
        self._grants: deque[_Grant] = deque()
        self._actions: deque[ChairActionRecord] = deque()
        self._speaking_ms: dict[str, int] = {}
        self._floor_before_ms: dict[str, int] = {}  # floor time in grants no longer listed
        self._chat: dict[int, _ChatRecord] = {}  # by message id, in order of posting
        self._chat_omitted = 0
        self._attendees_omitted = 0
        self._grants_omitted = 0
        self._actions_omitted = 0
        self.audience_peak = 0  # the most listeners watching at once (nobody's name: a count)

    @property
    def unix_offset_ms(self) -> int:
        """Unix ms = the report's (monotonic) ms + this."""
        return self._offset_ms

    # ---- recording ------------------------------------------------------------------------

    def _seen(self, now_ms: int) -> None:
        self._last_ms = max(self._last_ms, now_ms)

    def joined(self, now_ms: int, pid: str, name: str, role: Role) -> None:
        a = self._attendees.get(pid)
        if a is None:
            if len(self._attendees) >= MAX_ATTENDEE_RECORDS:
                self._omit_an_attendee(now_ms)
            self._attendees[pid] = _Attendee(pid, name, role, [_Session(now_ms)], now_ms)
        elif a.sessions[-1].left_ms is None:
            raise ReportError(f"participant {pid} joined twice without leaving")
        else:
            a.name, a.role = name, role
            if len(a.sessions) >= MAX_SESSIONS_PER_ATTENDEE:
                oldest = a.sessions.pop(0)  # closed: only the last can be open
                a.folded_ms += max(0, (oldest.left_ms or oldest.joined_ms) - oldest.joined_ms)
                a.folded_sessions += 1
            a.sessions.append(_Session(now_ms))
        self._seen(now_ms)

    def _omit_an_attendee(self, now_ms: int) -> None:
        """Make room: the absent participant who was present least goes (someone joining
        and leaving over and over, rather than a mayor who left early); none when everyone
        listed is present (then max_participants bounds them)."""
        absent = [a for a in self._attendees.values() if a.sessions[-1].left_ms is not None]
        if not absent:
            return
        gone = min(absent, key=lambda a: a.present_ms(now_ms))
        del self._attendees[gone.pid]
        self._speaking_ms.pop(gone.pid, None)
        self._floor_before_ms.pop(gone.pid, None)
        self._attendees_omitted += 1

    def left(self, now_ms: int, pid: str) -> None:
        a = self._attendees.get(pid)
        if a is None or a.sessions[-1].left_ms is not None:
            raise ReportError(f"participant {pid} left without being present")
        a.sessions[-1].left_ms = now_ms
        self._seen(now_ms)

    def on_floor_event(self, now_ms: int, event: FloorEvent) -> None:
        """Feed every event FloorControl returns; hand and presenter events are ignored, and
        all of them once the meeting has ended (its end closed the open grant)."""
        if self._ended_ms is not None:
            return
        open_grant = self._grants[-1] if self._grants and self._grants[-1].end_ms is None else None
        if isinstance(event, FloorGranted):
            if open_grant is not None and open_grant.pid == event.pid:
                return  # the same holder with a new time limit: one continuous grant
            if open_grant is not None:
                open_grant.end_ms, open_grant.ended_by = now_ms, "replaced"
            if len(self._grants) >= MAX_GRANT_RECORDS:
                oldest = self._grants.popleft()  # closed: only the last can be open
                if oldest.pid in self._attendees:
                    before = self._floor_before_ms.get(oldest.pid, 0)
                    duration = (oldest.end_ms or oldest.start_ms) - oldest.start_ms
                    self._floor_before_ms[oldest.pid] = before + max(0, duration)
                self._grants_omitted += 1
            self._grants.append(_Grant(event.pid, now_ms))
        elif isinstance(event, FloorRevoked | FloorExpired):
            if open_grant is None or open_grant.pid != event.pid:
                raise ReportError(f"floor of {event.pid} ended but no such grant is open")
            open_grant.end_ms = now_ms
            open_grant.ended_by = event.reason if isinstance(event, FloorRevoked) else "expired"
        else:
            return
        self._seen(now_ms)

    def chair_action(
        self, now_ms: int, actor: str, action: Action, target: str | None = None, detail: str = ""
    ) -> None:
        if len(self._actions) >= MAX_ACTION_RECORDS:
            self._actions.popleft()
            self._actions_omitted += 1
        self._actions.append(ChairActionRecord(now_ms, actor, action, target, detail))
        self._seen(now_ms)

    def chat_posted(self, message: ChatMessage) -> None:
        self._chat[message.id] = _ChatRecord(message)
        while len(self._chat) > MAX_CHAT_RECORDS:
            del self._chat[next(iter(self._chat))]
            self._chat_omitted += 1
        self._seen(message.at_ms)

    def chat_removed(self, now_ms: int, message_id: int, by: str) -> None:
        """A chair removed the message: the report keeps it, marked removed."""
        record = self._chat.get(message_id)
        if record is not None and record.removed_ms is None:
            record.removed_ms, record.removed_by = now_ms, by
        self._seen(now_ms)

    def set_speaking_ms(self, totals: Mapping[str, int]) -> None:
        """Speaking time per participant, e.g. SpeakerDetector.speaking_totals(); only of
        participants the report lists."""
        for pid, ms in totals.items():
            if pid in self._attendees:
                self._speaking_ms[pid] = ms

    def ended(self, now_ms: int) -> None:
        """The meeting ended: closes open attendances and the open grant at `now_ms`."""
        for a in self._attendees.values():
            if a.sessions[-1].left_ms is None:
                a.sessions[-1].left_ms = now_ms
        if self._grants and self._grants[-1].end_ms is None:
            self._grants[-1].end_ms, self._grants[-1].ended_by = now_ms, "meeting ended"
        self._ended_ms = now_ms
        self._seen(now_ms)

    # ---- summaries ------------------------------------------------------------------------

    def _as_of(self, now_ms: int | None) -> int:
        if now_ms is not None:
            return now_ms
        return self._ended_ms if self._ended_ms is not None else self._last_ms

    def iso(self, now_ms: int) -> str:
        """`now_ms` as an ISO 8601 UTC time with milliseconds."""
        t = datetime.fromtimestamp((now_ms + self._offset_ms) / 1000, tz=UTC)
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def attendees(self, now_ms: int | None = None) -> list[AttendeeSummary]:
        """Per participant, in order of first joining; open intervals end at `now_ms`."""
        as_of = self._as_of(now_ms)
        floor_ms = dict(self._floor_before_ms)
        for g in self._grants:
            end = g.end_ms if g.end_ms is not None else as_of
            floor_ms[g.pid] = floor_ms.get(g.pid, 0) + max(0, end - g.start_ms)
        out: list[AttendeeSummary] = []
        for a in self._attendees.values():
            out.append(
                AttendeeSummary(
                    pid=a.pid,
                    name=a.name,
                    role=a.role,
                    joined_ms=a.first_joined_ms,
                    left_ms=a.sessions[-1].left_ms,
                    present_ms=a.present_ms(as_of),
                    floor_ms=floor_ms.get(a.pid, 0),
                    speaking_ms=self._speaking_ms.get(a.pid, 0),
                )
            )
        return out

    def _name(self, pid: str) -> str:
        a = self._attendees.get(pid)
        return a.name if a is not None else pid

    # ---- exports --------------------------------------------------------------------------

    def to_dict(self, now_ms: int | None = None) -> dict[str, Any]:
        as_of = self._as_of(now_ms)
        return {
            "room": self.room,
            "started": self.iso(self._started_ms),
            "ended": None if self._ended_ms is None else self.iso(self._ended_ms),
            "as_of": self.iso(as_of),
            "audience_peak": self.audience_peak,
            "participants": [
                {
                    "id": s.pid,
                    "name": s.name,
                    "role": str(s.role),
                    "joined": self.iso(s.joined_ms),
                    "left": None if s.left_ms is None else self.iso(s.left_ms),
                    "present_ms": s.present_ms,
                    "floor_ms": s.floor_ms,
                    "speaking_ms": s.speaking_ms,
                    "sessions": [
                        {
                            "joined": self.iso(x.joined_ms),
                            "left": None if x.left_ms is None else self.iso(x.left_ms),
                        }
                        for x in self._attendees[s.pid].sessions
                    ],
                    "sessions_omitted": self._attendees[s.pid].folded_sessions,
                }
                for s in self.attendees(as_of)
            ],
            "participants_omitted": self._attendees_omitted,
            "floor_grants": [
                {
                    "holder": g.pid,
                    "name": self._name(g.pid),
                    "start": self.iso(g.start_ms),
                    "end": None if g.end_ms is None else self.iso(g.end_ms),
                    "duration_ms": max(
                        0, (g.end_ms if g.end_ms is not None else as_of) - g.start_ms
                    ),
                    "ended_by": g.ended_by,
                }
                for g in self._grants
            ],
            "floor_grants_omitted": self._grants_omitted,
            "chair_actions": [
                {
                    "at": self.iso(r.at_ms),
                    "actor": r.actor,
                    "actor_name": self._name(r.actor),
                    "action": str(r.action),
                    "target": r.target,
                    "detail": r.detail,
                }
                for r in self._actions
            ],
            "chair_actions_omitted": self._actions_omitted,
            "chat": [
                {
                    "id": c.message.id,
                    "at": self.iso(c.message.at_ms),
                    "sender": c.message.sender,
                    "name": c.message.name,
                    "text": c.message.text,
                    "removed": c.removed_ms is not None,
                    "removed_at": None if c.removed_ms is None else self.iso(c.removed_ms),
                    "removed_by": c.removed_by,
                }
                for c in self._chat.values()
            ],
            "chat_omitted": self._chat_omitted,
        }

    def to_json(self, now_ms: int | None = None) -> str:
        """The whole report; open attendances and grants are measured up to `now_ms` (default:
        the end of the meeting, or the last recorded moment)."""
        return json.dumps(self.to_dict(now_ms), ensure_ascii=False, indent=2)

    def to_csv(self, now_ms: int | None = None) -> str:
        """One row per participant; durations as H:MM:SS."""
        as_of = self._as_of(now_ms)
        rows = [
            [
                s.pid,
                s.name,
                str(s.role),
                self.iso(s.joined_ms),
                "" if s.left_ms is None else self.iso(s.left_ms),
                _hms(s.present_ms),
                _hms(s.floor_ms),
                _hms(s.speaking_ms),
            ]
            for s in self.attendees(as_of)
        ]
        header = ["id", "name", "role", "joined", "left", "present", "floor", "speaking"]
        return _csv(header, rows)

    def grants_to_csv(self, now_ms: int | None = None) -> str:
        """One row per floor grant."""
        as_of = self._as_of(now_ms)
        rows = [
            [
                g.pid,
                self._name(g.pid),
                self.iso(g.start_ms),
                "" if g.end_ms is None else self.iso(g.end_ms),
                _hms(max(0, (g.end_ms if g.end_ms is not None else as_of) - g.start_ms)),
                g.ended_by or "",
            ]
            for g in self._grants
        ]
        return _csv(["holder", "name", "start", "end", "duration", "ended_by"], rows)

    def actions_to_csv(self) -> str:
        """One row per chair action (chat actions too)."""
        rows = [
            [
                self.iso(r.at_ms),
                r.actor,
                self._name(r.actor),
                str(r.action),
                r.target or "",
                "" if r.target is None else self._name(r.target),
                r.detail,
            ]
            for r in self._actions
        ]
        header = ["at", "actor", "actor_name", "action", "target", "target_name", "detail"]
        return _csv(header, rows)

    def chat_to_csv(self) -> str:
        """One row per chat message the report keeps, removed ones marked."""
        rows = [
            [
                str(c.message.id),
                self.iso(c.message.at_ms),
                c.message.sender,
                c.message.name,
                c.message.text,
                "yes" if c.removed_ms is not None else "no",
                "" if c.removed_ms is None else self.iso(c.removed_ms),
                c.removed_by or "",
            ]
            for c in self._chat.values()
        ]
        header = ["id", "at", "sender", "name", "text", "removed", "removed_at", "removed_by"]
        return _csv(header, rows)

    def full_csv(self, now_ms: int | None = None) -> str:
        """Every table, each after a blank line: participants, floor grants, chair actions,
        chat."""
        return "\n".join(
            (
                self.to_csv(now_ms),
                self.grants_to_csv(now_ms),
                self.actions_to_csv(),
                self.chat_to_csv(),
            )
        )


def _hms(duration_ms: int) -> str:
    seconds = duration_ms // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _cell(value: str) -> str:
    """Defuse spreadsheet formulas in names participants chose (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()
