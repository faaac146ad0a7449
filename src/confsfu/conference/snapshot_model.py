"""The meeting snapshot's shape (version 1): what a room's next home restores, checked field by
field before anything is built from it.

Times are Unix milliseconds (the snapshot crosses processes, whose monotonic clocks mean
nothing to each other); durations are milliseconds. Every list and string is bounded here, and
the encoded snapshot as a whole by MAX_SNAPSHOT_BYTES.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from confsfu.conference import chat, report
from confsfu.conference.permissions import Action, Role

VERSION = 1
MAX_SNAPSHOT_BYTES = 4 << 20  # encoded; capture() keeps a meeting well under it
MAX_PARTICIPANTS = 1_000  # present (away) participants a snapshot may hold
MAX_TOKENS = 10_000  # banned tokens, tokens muted while away
# What capture() keeps of the report (the newest; the rest counted as omitted): bounded so a
# snapshot stays a few MB whatever was written, and far more than a meeting's minutes need.
KEPT_REPORT_CHAT = 1_000
KEPT_REPORT_CHAT_CHARS = 100_000  # of text, newest first
KEPT_ACTIONS = 2_000
KEPT_GRANTS = 2_000
KEPT_SESSIONS = 20  # per attendee; older ones folded into its total

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(max_length=4096)]  # a token may carry a long one
TokenId = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=chat.MAX_CHARS)]
Detail = Annotated[str, StringConstraints(max_length=512)]
UnixMs = Annotated[int, Field(ge=0, le=1 << 52)]
Ms = Annotated[int, Field(ge=0, le=1 << 52)]
Kind = Literal["audio", "video"]
Kinds = Annotated[list[Kind], Field(max_length=2)]


_NOT_JSON = object()


class SnapshotError(ValueError):
    """A meeting snapshot that cannot be restored (malformed, too large, of another version,
    another room, or contradicting itself); nothing was built."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ParticipantSnap(_Model):
    pid: Id
    name: Name
    role: Literal["chair", "participant"]
    token_id: TokenId
    joined_unix_ms: UnixMs
    audio: bool  # their own switches
    video: bool
    chair_muted: Kinds
    unmute_requested: Kinds


class MutedToken(_Model):
    token_id: TokenId
    kinds: Kinds


class HandSnap(_Model):
    pid: Id
    raised_unix_ms: UnixMs


class FloorSnap(_Model):
    holder: Id | None
    until_unix_ms: UnixMs | None
    hands: Annotated[list[HandSnap], Field(max_length=MAX_PARTICIPANTS)]  # queue order
    presenter: Id | None


class MessageSnap(_Model):
    id: Annotated[int, Field(ge=1, le=1 << 52)]
    at_unix_ms: UnixMs
    sender: Id
    name: Name
    chair: bool
    text: Text


class ChatSnap(_Model):
    enabled: bool
    next_id: Annotated[int, Field(ge=1, le=1 << 52)]
    history: Annotated[list[MessageSnap], Field(max_length=chat.HISTORY)]


class ScheduleSnap(_Model):
    scheduled_end_unix_ms: UnixMs | None
    warned_for_unix_ms: UnixMs | None
    overtime_for_unix_ms: UnixMs | None
    ended_unix_ms: UnixMs | None


class SessionSnap(_Model):
    joined_unix_ms: UnixMs
    left_unix_ms: UnixMs | None


class AttendeeSnap(_Model):
    pid: Id
    name: Name
    role: Role
    first_joined_unix_ms: UnixMs
    sessions: Annotated[list[SessionSnap], Field(min_length=1, max_length=KEPT_SESSIONS)]
    folded_ms: Ms
    folded_sessions: Annotated[int, Field(ge=0, le=1 << 52)]
    speaking_ms: Ms
    floor_before_ms: Ms  # floor time in grants no longer listed


class GrantSnap(_Model):
    pid: Id
    start_unix_ms: UnixMs
    end_unix_ms: UnixMs | None
    ended_by: Detail | None


class ActionSnap(_Model):
    at_unix_ms: UnixMs
    actor: Id
    action: Action
    target: Id | None
    detail: Detail


class ChatRecordSnap(_Model):
    message: MessageSnap
    removed_unix_ms: UnixMs | None
    removed_by: Id | None


class Omitted(_Model):
    chat: Annotated[int, Field(ge=0, le=1 << 52)]
    attendees: Annotated[int, Field(ge=0, le=1 << 52)]
    grants: Annotated[int, Field(ge=0, le=1 << 52)]
    actions: Annotated[int, Field(ge=0, le=1 << 52)]


class ReportSnap(_Model):
    started_unix_ms: UnixMs
    last_unix_ms: UnixMs
    ended_unix_ms: UnixMs | None
    attendees: Annotated[list[AttendeeSnap], Field(max_length=report.MAX_ATTENDEE_RECORDS)]
    grants: Annotated[list[GrantSnap], Field(max_length=KEPT_GRANTS)]
    actions: Annotated[list[ActionSnap], Field(max_length=KEPT_ACTIONS)]
    chat: Annotated[list[ChatRecordSnap], Field(max_length=KEPT_REPORT_CHAT)]
    omitted: Omitted
    audience_peak: Annotated[int, Field(ge=0, le=1 << 31)]


class MeetingSnapshot(_Model):
    """One room's meeting state, as its next home starts from it."""

    version: Literal[1]
    room: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    at_unix_ms: UnixMs  # when it was taken
    participants: Annotated[list[ParticipantSnap], Field(max_length=MAX_PARTICIPANTS)]
    muted_tokens: Annotated[list[MutedToken], Field(max_length=MAX_TOKENS)]
    banned: Annotated[list[TokenId], Field(max_length=MAX_TOKENS)]
    locked: bool
    schedule: ScheduleSnap
    floor: FloorSnap
    chat: ChatSnap
    speaking_ms: Annotated[dict[Id, Ms], Field(max_length=report.MAX_ATTENDEE_RECORDS)]
    report: ReportSnap


def encode_bytes(value: dict[str, Any]) -> bytes:
    """A captured snapshot as compact UTF-8 JSON (orjson: a few times faster than json, and no
    str to encode again for the wire); SnapshotError beyond MAX_SNAPSHOT_BYTES, or for what
    JSON cannot hold (a lone surrogate, a key that is not a string, an int over 64 bits)."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise SnapshotError(f"the meeting snapshot is not JSON: {exc}") from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"the meeting snapshot is over {MAX_SNAPSHOT_BYTES} bytes")
    return data


def encode(value: dict[str, Any]) -> str:
    """`encode_bytes` as text."""
    return encode_bytes(value).decode()


def parse(value: object) -> MeetingSnapshot:
    """The snapshot `value` holds (its JSON text, or the decoded value); SnapshotError if it
    is not one: too large, not JSON, another version, or any field out of shape."""
    try:
        text = value if isinstance(value, str | bytes) else json.dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SnapshotError(f"a meeting snapshot is a JSON value: {exc}") from None
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"a meeting snapshot may be at most {MAX_SNAPSHOT_BYTES} bytes")
    try:
        return MeetingSnapshot.model_validate_json(text)
    except ValidationError as exc:
        version = _version(text)
        if version is _NOT_JSON:
            raise SnapshotError("a meeting snapshot is JSON text") from None
        if version != VERSION:
            raise SnapshotError(
                f"meeting snapshot version {version!r}; this server reads {VERSION}"
            ) from None
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first["loc"]) or "snapshot"
        raise SnapshotError(f"malformed meeting snapshot at {where}: {first['msg']}") from None


def _version(text: str | bytes) -> object:
    """The `version` of a snapshot's JSON text (None: not an object; _NOT_JSON)."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON
    return value.get("version") if isinstance(value, dict) else None
