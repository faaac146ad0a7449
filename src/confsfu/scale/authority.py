"""One decision point per room (docs/scale-out.md, "Who decides for a room"), sans-IO: the room
authority (its home worker) holds the meeting and decides the room's plan (who is heard, the
stage, the grid's order); a relay member tells it of its own participants (`MemberEvent`s) and
applies the plan it gets back to its local subscribers with the same `plan_slots` a one-process
room runs. Both travel between workers as JSON (`event_json`, `plan_json`), checked on the way
in: bad input raises `AuthorityMessageError` (a ValueError) and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from confsfu.conference.lineup import Lineup
from confsfu.conference.meeting import Meeting, MeetingError, Stage
from confsfu.conference.permissions import Role
from confsfu.conference.slot_plan import RoomPlan, StageMemory, SubscriberPlan, plan_slots
from confsfu.ids import SourceId

MAX_PARTICIPANTS: Final = 1000  # names in one plan
MAX_ID_CHARS: Final = 200
MAX_LISTENERS: Final = 1_000_000  # a member's audience count, at most
_STAGE_KINDS: Final = ("screen", "floor", "speaker")


class AuthorityMessageError(ValueError):
    """A member event or a plan that does not hold together (the reason says why)."""


@dataclass(frozen=True, slots=True)
class MemberJoined:
    pid: str
    name: str


@dataclass(frozen=True, slots=True)
class MemberLeft:
    pid: str


@dataclass(frozen=True, slots=True)
class MemberLevel:
    pid: str
    level_dbov: int
    voice: bool


@dataclass(frozen=True, slots=True)
class MemberPublishing:
    pid: str
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class MemberAudience:
    """How many of the room's listeners the member holds (they are in no meeting)."""

    listeners: int


MemberEvent = MemberJoined | MemberLeft | MemberLevel | MemberPublishing | MemberAudience


class RoomAuthority:
    """The room's one decision point: its meeting, fed the authority's own participants' events
    and the members' alike, and who publishes what."""

    def __init__(self, meeting: Meeting, audio_slots: int, grid_slots: int) -> None:
        self.meeting = meeting
        self.audio_slots = audio_slots
        self.grid_slots = grid_slots
        self.audio: set[str] = set()
        self.video: set[str] = set()
        self._memory = StageMemory()

    def on_event(self, now_ms: int, event: MemberEvent) -> None:
        """One participant's event, wherever they are connected; an event the meeting refuses
        (a full or locked room, an unknown participant) changes nothing."""
        meeting = self.meeting
        if isinstance(event, MemberAudience):
            return  # a count per member: the shell keeps it (server/relay_decisions.py)
        if isinstance(event, MemberJoined):
            with contextlib.suppress(MeetingError):  # a full or locked room: not joined
                meeting.join(now_ms, event.pid, event.name, Role.PARTICIPANT, f"member:{event.pid}")
        elif event.pid not in meeting.room.participants:
            return
        elif isinstance(event, MemberLeft):
            meeting.leave(now_ms, event.pid)
            self.audio.discard(event.pid)
            self.video.discard(event.pid)
            self._memory.forget(event.pid)
        elif isinstance(event, MemberLevel):
            meeting.on_audio_level(now_ms, event.pid, event.level_dbov, event.voice)
        else:
            for kind, on in ((self.audio, event.audio), (self.video, event.video)):
                if on:
                    kind.add(event.pid)
                else:
                    kind.discard(event.pid)

    def plan(self, now_ms: int) -> RoomPlan:
        """The room's plan as of `now_ms` (one per reassign pass)."""
        stage = self.meeting.stage(now_ms)
        lineup = self.meeting.lineup(now_ms, self.audio, self.video)
        return RoomPlan(stage, lineup, self.audio_slots, self.grid_slots, self._memory.see(stage))


class PlanApplier:
    """A relay member's side: the authority's latest plan, applied to local subscribers."""

    def __init__(self) -> None:
        self.plan: RoomPlan | None = None

    def on_plan(self, plan: RoomPlan) -> None:
        self.plan = plan

    def slots_for(
        self,
        me: str,
        grid_page: int,
        audio_now: Sequence[SourceId | None],
        stage_now: Sequence[SourceId | None],
        grid_now: Sequence[SourceId | None],
        dwelling: Collection[SourceId] = (),
        pin: str | None = None,
    ) -> SubscriberPlan | None:
        """`me`'s slots by the authority's plan (None until one came)."""
        if self.plan is None:
            return None
        return plan_slots(self.plan, me, grid_page, audio_now, stage_now, grid_now, dwelling, pin)


# ---- on the wire ------------------------------------------------------------------------------


def event_json(event: MemberEvent) -> dict[str, Any]:
    if isinstance(event, MemberAudience):
        return {"e": "audience", "n": event.listeners}
    if isinstance(event, MemberJoined):
        return {"e": "joined", "pid": event.pid, "name": event.name}
    if isinstance(event, MemberLeft):
        return {"e": "left", "pid": event.pid}
    if isinstance(event, MemberLevel):
        return {"e": "level", "pid": event.pid, "dbov": event.level_dbov, "voice": event.voice}
    return {"e": "publishing", "pid": event.pid, "audio": event.audio, "video": event.video}


def event_from_json(data: Any) -> MemberEvent:
    if not isinstance(data, dict):
        raise AuthorityMessageError("an event is an object")
    if data.get("e") == "audience":
        return MemberAudience(listener_count(data.get("n")))
    pid = _name(data.get("pid"))
    match data.get("e"):
        case "joined":
            return MemberJoined(pid, _name(data.get("name"), empty=True))
        case "left":
            return MemberLeft(pid)
        case "level":
            dbov, voice = data.get("dbov"), data.get("voice")
            if type(dbov) is not int or not 0 <= dbov <= 127 or type(voice) is not bool:
                raise AuthorityMessageError("a level is 0..127 dBov and a voice flag")
            return MemberLevel(pid, dbov, voice)
        case "publishing":
            audio, video = data.get("audio"), data.get("video")
            if type(audio) is not bool or type(video) is not bool:
                raise AuthorityMessageError("publishing says audio and video")
            return MemberPublishing(pid, audio, video)
    raise AuthorityMessageError("unknown event")


def plan_json(plan: RoomPlan) -> dict[str, Any]:
    loudest, audible, holder, grid = plan.lineup.parts()
    return {
        "stage": [plan.stage.pid, plan.stage.kind],
        "loudest": list(loudest),
        "audible": list(audible),
        "holder": holder,
        "grid": list(grid),
        "audio_slots": plan.audio_slots,
        "grid_slots": plan.grid_slots,
        "previous": plan.previous,
    }


def plan_from_json(data: Any) -> RoomPlan:
    if not isinstance(data, dict):
        raise AuthorityMessageError("a plan is an object")
    stage = data.get("stage")
    if not isinstance(stage, list) or len(stage) != 2:
        raise AuthorityMessageError("a stage is [pid, kind]")
    pid, kind = stage
    if (pid is None) != (kind is None) or (kind is not None and kind not in _STAGE_KINDS):
        raise AuthorityMessageError("a stage is a participant and its kind, or nobody")
    audio_slots, grid_slots = data.get("audio_slots"), data.get("grid_slots")
    if not (type(audio_slots) is int and type(grid_slots) is int):
        raise AuthorityMessageError("slot counts are numbers")
    if not (0 <= audio_slots <= 64 and 0 <= grid_slots <= 64):
        raise AuthorityMessageError("slot counts are 0..64")
    lineup = Lineup(
        _names(data.get("loudest")),
        _names(data.get("audible")),
        _optional(data.get("holder")),
        _names(data.get("grid")),
    )
    stage_pid = _optional(pid)
    return RoomPlan(
        Stage(stage_pid, kind), lineup, audio_slots, grid_slots, _optional(data.get("previous"))
    )


def listener_count(value: Any) -> int:
    """A listener count: an integer 0..MAX_LISTENERS."""
    if type(value) is not int or not 0 <= value <= MAX_LISTENERS:
        raise AuthorityMessageError("a count is 0..1000000")
    return value


def _name(value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or (not value and not empty):
        raise AuthorityMessageError("a participant id is a string of 1 to 200 characters")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _name(value)


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_PARTICIPANTS:
        raise AuthorityMessageError("a list of at most 1000 participant ids")
    return [_name(v) for v in value]
