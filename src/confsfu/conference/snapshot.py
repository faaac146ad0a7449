"""The meeting snapshot: a room's meeting state as a versioned JSON value, and a meeting rebuilt
from one, so the room's next home (after its worker died) carries on the same meeting.

`capture` is a pure read of a Meeting; `restore` builds a new Meeting in which every participant
of the snapshot is away (their connection went with the worker) for the reconnect grace:
whoever comes back with the same token (or a guest's resume key) is the same participant, with
their floor, hand, mutes and chat. Media is not in it: the pages publish and subscribe again.
What a snapshot holds is listed in snapshot_model.py; this module (with report_snapshot.py) is
the cores' persistence friend and reads their own state.
"""

from __future__ import annotations

from typing import Any

from confsfu.conference.chat import Chat
from confsfu.conference.floor import FloorState, _Draft
from confsfu.conference.meeting import MEDIA_KINDS, Meeting
from confsfu.conference.moderation import MediaModeration
from confsfu.conference.report import MAX_ATTENDEE_RECORDS
from confsfu.conference.report_snapshot import (
    capture_report,
    check_report,
    message_dict,
    message_of,
    restore_report,
)
from confsfu.conference.room import Participant, Room
from confsfu.conference.snapshot_cache import SnapshotCache
from confsfu.conference.snapshot_model import (
    MAX_PARTICIPANTS,
    VERSION,
    MeetingSnapshot,
    SnapshotError,
    encode,
    encode_bytes,
    parse,
)
from confsfu.ids import Kind

__all__ = [
    "SnapshotCache",
    "SnapshotError",
    "capture",
    "capture_bytes",
    "capture_json",
    "ended",
    "restore",
]


def capture(meeting: Meeting, cache: SnapshotCache | None = None) -> dict[str, Any]:
    """The meeting's state as a snapshot (JSON-serialisable), times in Unix ms by the
    meeting's own clock pair. Changes nothing. With the meeting's `cache` the records built
    by its last capture are reused (and shared: the value is then read-only)."""
    report = meeting.report
    offset = report.unix_offset_ms
    if cache is None:
        cache = SnapshotCache()
    cache.begin(offset)

    def unix(t: int) -> int:
        return t + offset

    def opt(t: int | None) -> int | None:
        return None if t is None else t + offset

    mod, floor, room = meeting.moderation, meeting.floor, meeting.room
    participants = []
    moderated = set(mod.participants)  # once: it is a fresh tuple each time
    for pid, p in list(room.participants.items())[:MAX_PARTICIPANTS]:
        state = mod.state(pid) if pid in moderated else None
        participants.append(
            {
                "pid": pid,
                "name": p.name,
                "role": p.role,
                "token_id": meeting._tokens.get(pid, f"pid:{pid}"),
                "joined_unix_ms": unix(p.joined_ms),
                "audio": p.audio,
                "video": p.video,
                "chair_muted": [k for k in MEDIA_KINDS if state and state.chair_muted(k)],
                "unmute_requested": [k for k in MEDIA_KINDS if state and _requested(state, k)],
            }
        )
    history = cache.dicts("history", meeting.chat.history(), lambda m: message_dict(m, unix))
    report_value = capture_report(report, unix, cache)
    cache.end()
    listed = set(room.participants) | set(report._attendees)
    speaking = {p: ms for p, ms in meeting.speakers.speaking_totals().items() if p in listed}
    return {
        "version": VERSION,
        "room": room.name,
        "at_unix_ms": unix(report._last_ms),
        "participants": participants,
        "muted_tokens": [
            {"token_id": t, "kinds": sorted(kinds)} for t, kinds in meeting._muted_tokens.items()
        ],
        "banned": sorted(mod._banned),
        "locked": mod.locked,
        "schedule": {
            "scheduled_end_unix_ms": opt(mod._scheduled_end_ms),
            "warned_for_unix_ms": opt(mod._warned_for_ms),
            "overtime_for_unix_ms": opt(mod._overtime_for_ms),
            "ended_unix_ms": opt(mod._ended_ms),
        },
        "floor": {
            "holder": floor.holder,
            "until_unix_ms": opt(floor.until_ms),
            "hands": [
                {"pid": pid, "raised_unix_ms": unix(floor.raised_at_ms(pid) or 0)}
                for pid in floor.hands
            ],
            "presenter": floor.presenter,
        },
        "chat": {
            "enabled": meeting.chat.enabled,
            "next_id": meeting.chat._next_id,
            "history": history,
        },
        "speaking_ms": dict(list(speaking.items())[:MAX_ATTENDEE_RECORDS]),
        "report": report_value,
    }


def _requested(state: MediaModeration, kind: Kind) -> bool:
    return state.audio_unmute_requested if kind == "audio" else state.video_unmute_requested


def capture_json(meeting: Meeting) -> str:
    """`capture` as JSON text; SnapshotError should it be over MAX_SNAPSHOT_BYTES."""
    return encode(capture(meeting))


def capture_bytes(meeting: Meeting, cache: SnapshotCache | None = None) -> bytes:
    """`capture` as UTF-8 JSON (what goes on the wire); SnapshotError as capture_json."""
    return encode_bytes(capture(meeting, cache))


def ended(value: object) -> bool:
    """Whether a (valid) snapshot's meeting has ended: nothing to carry on."""
    return parse(value).schedule.ended_unix_ms is not None


def restore(
    value: object,
    *,
    room: str,
    now_ms: int,
    unix_ms: int,
    reconnect_grace_ms: int = 20_000,
    max_participants: int = 100,
    max_listeners: int = 0,
) -> Meeting:
    """A meeting of `room` carrying on from the snapshot `value` (JSON text or its value),
    on a clock where `now_ms` is `unix_ms`; its participants are away for the reconnect grace.
    Raises SnapshotError (and builds nothing) for anything that is not such a snapshot."""
    snap = parse(value)
    if snap.room != room:
        raise SnapshotError(f"the meeting snapshot is of room {snap.room!r}, not {room!r}")
    _check(snap)
    offset = unix_ms - now_ms

    def mono(t: int) -> int:
        return t - offset

    def opt(t: int | None) -> int | None:
        return None if t is None else t - offset

    meeting = Meeting(
        Room(room, max_participants=max_participants),
        now_ms=now_ms,
        unix_ms=unix_ms,
        reconnect_grace_ms=reconnect_grace_ms,
        max_listeners=max_listeners,
    )
    mod = meeting.moderation
    for p in snap.participants:
        meeting.room.participants[p.pid] = Participant(
            p.pid, p.name, p.role, mono(p.joined_unix_ms), p.audio, p.video
        )
        mod.join(now_ms, p.pid, audio=p.audio, video=p.video)
        for kind in p.chair_muted:
            mod.chair_mute(now_ms, p.pid, kind)
        for kind in p.unmute_requested:
            mod.request_unmute(p.pid, kind)
        meeting._tokens[p.pid] = p.token_id
        meeting.presence.away(now_ms, p.pid)
    meeting._muted_tokens = {t.token_id: set(t.kinds) for t in snap.muted_tokens}
    for token_id in snap.banned:
        mod.ban(token_id)
    if snap.locked:
        mod.lock()
    s = snap.schedule
    mod._scheduled_end_ms = opt(s.scheduled_end_unix_ms)
    mod._warned_for_ms = opt(s.warned_for_unix_ms)
    mod._overtime_for_ms = opt(s.overtime_for_unix_ms)
    mod._ended_ms = opt(s.ended_unix_ms)
    f = snap.floor
    meeting.floor._d = _Draft(
        FloorState.GRANTED if f.holder is not None else FloorState.IDLE,
        f.holder,
        opt(f.until_unix_ms),
        {h.pid: mono(h.raised_unix_ms) for h in f.hands},
        f.presenter,
    )
    meeting.chat = _chat(snap, mono)
    meeting.speakers._spoken_before_ms = dict(snap.speaking_ms)
    restore_report(meeting.report, snap.report, mono)
    meeting.audience.peak = snap.report.audience_peak
    meeting._empty_since_ms = None if snap.participants else now_ms
    return meeting


def _chat(snap: MeetingSnapshot, mono: Any) -> Chat:
    chat = Chat(enabled=snap.chat.enabled)
    for m in snap.chat.history:
        chat._history.append(message_of(m, mono))
    chat._next_id = snap.chat.next_id
    return chat


def _check(snap: MeetingSnapshot) -> None:
    """SnapshotError where the snapshot contradicts itself (the cores would not hold it)."""
    pids = [p.pid for p in snap.participants]
    present = set(pids)
    if len(present) != len(pids):
        raise SnapshotError("a participant is listed twice")
    for p in snap.participants:
        if len(set(p.chair_muted)) != len(p.chair_muted):
            raise SnapshotError(f"participant {p.pid}: a mute listed twice")
        if not set(p.unmute_requested) <= set(p.chair_muted):
            raise SnapshotError(f"participant {p.pid} asks to lift a mute it does not have")
    f = snap.floor
    hands = [h.pid for h in f.hands]
    if f.holder is not None and f.holder not in present:
        raise SnapshotError("the floor holder is not a participant")
    if f.holder is None and f.until_unix_ms is not None:
        raise SnapshotError("a floor time limit without a holder")
    if len(set(hands)) != len(hands) or not set(hands) <= present or f.holder in hands:
        raise SnapshotError("the hand queue names someone twice, or someone not here")
    if f.presenter is not None and f.presenter not in present:
        raise SnapshotError("the presenter is not a participant")
    ids = [m.id for m in snap.chat.history]
    if ids != sorted(set(ids)) or (ids and ids[-1] >= snap.chat.next_id):
        raise SnapshotError("the chat history's ids are out of order")
    ended = snap.schedule.ended_unix_ms is not None
    check_report(snap.report, present, f.holder, ended)
