"""The meeting report's part of a meeting snapshot: captured (the newest records, within the
snapshot's bounds) and restored, times moved between the report's monotonic clock and Unix ms.

Like snapshot.py this module is the report's persistence friend: it reads and writes the
report's own records, and the round-trip tests hold the two together.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from confsfu.conference.chat import ChatMessage
from confsfu.conference.report import (
    ChairActionRecord,
    MeetingReport,
    _Attendee,
    _ChatRecord,
    _Grant,
    _Session,
)
from confsfu.conference.snapshot_cache import SnapshotCache
from confsfu.conference.snapshot_model import (
    KEPT_ACTIONS,
    KEPT_GRANTS,
    KEPT_REPORT_CHAT,
    KEPT_REPORT_CHAT_CHARS,
    KEPT_SESSIONS,
    MessageSnap,
    ReportSnap,
    SnapshotError,
)

Shift = Callable[[int], int]
_GRANT_STATE = attrgetter("end_ms", "ended_by")  # what may change of a grant (C-fast)
_RECORD_STATE = attrgetter("removed_ms", "removed_by")  # ... of a report's chat record


def message_dict(message: ChatMessage, unix: Shift) -> dict[str, Any]:
    return {
        "id": message.id,
        "at_unix_ms": unix(message.at_ms),
        "sender": message.sender,
        "name": message.name,
        "chair": message.chair,
        "text": message.text,
    }


def message_of(snap: MessageSnap, mono: Shift) -> ChatMessage:
    at_ms = mono(snap.at_unix_ms)
    return ChatMessage(snap.id, at_ms, snap.sender, snap.name, snap.chair, snap.text)


def capture_report(r: MeetingReport, unix: Shift, cache: SnapshotCache) -> dict[str, Any]:
    """The report as a snapshot's `report`; beyond the KEPT_* bounds the oldest records are
    folded into totals or counted as omitted, as the report itself does beyond its own. The
    records' dicts come from `cache` (begun by the capture) where they are unchanged."""
    opt: Callable[[int | None], int | None] = lambda t: None if t is None else unix(t)  # noqa: E731
    grants = list(r._grants)
    dropped_grants, grants = grants[: -KEPT_GRANTS or None], grants[-KEPT_GRANTS:]
    floor_before = dict(r._floor_before_ms)
    for g in dropped_grants:  # closed: only the last can be open
        if g.pid in r._attendees:
            duration = (g.end_ms or g.start_ms) - g.start_ms
            floor_before[g.pid] = floor_before.get(g.pid, 0) + max(0, duration)
    actions = list(r._actions)[-KEPT_ACTIONS:]
    chat: list[_ChatRecord] = []
    chars = 0
    for record in reversed(r._chat.values()):
        chars += len(record.message.text)
        if len(chat) >= KEPT_REPORT_CHAT or chars > KEPT_REPORT_CHAT_CHARS:
            break
        chat.append(record)
    chat.reverse()
    return {
        "started_unix_ms": unix(r._started_ms),
        "last_unix_ms": unix(r._last_ms),
        "ended_unix_ms": opt(r._ended_ms),
        "attendees": [
            _attendee(a, unix, r._speaking_ms.get(a.pid, 0), floor_before.get(a.pid, 0))
            for a in r._attendees.values()
        ],
        "grants": cache.dicts(
            "grants",
            grants,
            lambda g: {
                "pid": g.pid,
                "start_unix_ms": unix(g.start_ms),
                "end_unix_ms": opt(g.end_ms),
                "ended_by": g.ended_by,
            },
            _GRANT_STATE,  # only the last may still end
        ),
        "actions": cache.dicts(
            "actions",
            actions,
            lambda a: {
                "at_unix_ms": unix(a.at_ms),
                "actor": a.actor,
                "action": str(a.action),
                "target": a.target,
                "detail": a.detail,
            },
        ),
        "chat": cache.dicts(
            "report_chat",
            chat,
            lambda c: {
                "message": message_dict(c.message, unix),
                "removed_unix_ms": opt(c.removed_ms),
                "removed_by": c.removed_by,
            },
            _RECORD_STATE,
        ),
        "omitted": {
            "chat": r._chat_omitted + len(r._chat) - len(chat),
            "attendees": r._attendees_omitted,
            "grants": r._grants_omitted + len(dropped_grants),
            "actions": r._actions_omitted + len(r._actions) - len(actions),
        },
        "audience_peak": r.audience_peak,
    }


def _attendee(a: _Attendee, unix: Shift, speaking_ms: int, floor_ms: int) -> dict[str, Any]:
    dropped, kept = a.sessions[:-KEPT_SESSIONS], a.sessions[-KEPT_SESSIONS:]
    folded_ms = a.folded_ms + sum(max(0, (s.left_ms or s.joined_ms) - s.joined_ms) for s in dropped)
    return {
        "pid": a.pid,
        "name": a.name,
        "role": str(a.role),
        "first_joined_unix_ms": unix(a.first_joined_ms),
        "sessions": [
            {
                "joined_unix_ms": unix(s.joined_ms),
                "left_unix_ms": None if s.left_ms is None else unix(s.left_ms),
            }
            for s in kept
        ],
        "folded_ms": folded_ms,
        "folded_sessions": a.folded_sessions + len(dropped),
        "speaking_ms": speaking_ms,
        "floor_before_ms": floor_ms,
    }


def check_report(snap: ReportSnap, present: set[str], holder: str | None, ended: bool) -> None:
    """SnapshotError where the report contradicts itself or the meeting: the present must be
    attending (their leaving closes their attendance), the floor's holder the open grant."""
    pids = [a.pid for a in snap.attendees]
    if len(set(pids)) != len(pids):
        raise SnapshotError("the report lists an attendee twice")
    open_now = set()
    for a in snap.attendees:
        if any(s.left_unix_ms is None for s in a.sessions[:-1]):
            raise SnapshotError(f"attendee {a.pid} has an open session before its last")
        if a.sessions[-1].left_unix_ms is None:
            open_now.add(a.pid)
    if any(g.end_unix_ms is None for g in snap.grants[:-1]):
        raise SnapshotError("the report has an open floor grant before its last")
    last = snap.grants[-1] if snap.grants else None
    open_grant = last.pid if last is not None and last.end_unix_ms is None else None
    ids = [c.message.id for c in snap.chat]
    if len(set(ids)) != len(ids):
        raise SnapshotError("the report lists a chat message twice")
    if ended:
        return
    if not present <= open_now:
        raise SnapshotError("a participant present is not attending in the report")
    if open_grant != holder:
        raise SnapshotError("the report's open floor grant is not the floor holder's")


def restore_report(r: MeetingReport, snap: ReportSnap, mono: Shift) -> None:
    """Fill the new meeting's empty report `r` from `snap` (checked by check_report)."""
    opt: Callable[[int | None], int | None] = lambda t: None if t is None else mono(t)  # noqa: E731
    r._started_ms = mono(snap.started_unix_ms)
    r._last_ms = mono(snap.last_unix_ms)
    r._ended_ms = opt(snap.ended_unix_ms)
    for a in snap.attendees:
        sessions = [_Session(mono(s.joined_unix_ms), opt(s.left_unix_ms)) for s in a.sessions]
        first = mono(a.first_joined_unix_ms)
        r._attendees[a.pid] = _Attendee(
            a.pid, a.name, a.role, sessions, first, a.folded_ms, a.folded_sessions
        )
        if a.speaking_ms:
            r._speaking_ms[a.pid] = a.speaking_ms
        if a.floor_before_ms:
            r._floor_before_ms[a.pid] = a.floor_before_ms
    r._grants = deque(
        _Grant(g.pid, mono(g.start_unix_ms), opt(g.end_unix_ms), g.ended_by) for g in snap.grants
    )
    r._actions = deque(
        ChairActionRecord(mono(a.at_unix_ms), a.actor, a.action, a.target, a.detail)
        for a in snap.actions
    )
    for c in snap.chat:
        message = message_of(c.message, mono)
        r._chat[message.id] = _ChatRecord(message, opt(c.removed_unix_ms), c.removed_by)
    r._chat_omitted = snap.omitted.chat
    r._attendees_omitted = snap.omitted.attendees
    r._grants_omitted = snap.omitted.grants
    r._actions_omitted = snap.omitted.actions
    r.audience_peak = snap.audience_peak
