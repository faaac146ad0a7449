"""Which source each of a subscriber's fixed slots should carry: who is heard, the stage, one
page of the grid; someone already in a slot keeps it, and a grid tile given a moment ago
(`dwelling`) keeps its person while they may be shown at all, so that several people talking at
once do not make a small grid change hands on every pass.

A subscriber's stage shows the room's stage, except: whoever they pinned (one each), and, while
they are the room's stage themselves, whoever was on it before them. Whoever a subscriber's
stage shows with their camera is not in their grid too."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from confsfu.conference.lineup import Lineup
from confsfu.conference.meeting import Stage
from confsfu.conference.slots import stable_assign
from confsfu.ids import SourceId


@dataclass(frozen=True, slots=True)
class RoomPlan:
    """The room's side of every subscriber's plan, as of one pass."""

    stage: Stage
    lineup: Lineup
    audio_slots: int
    grid_slots: int
    previous: str | None = None  # on the stage before `stage.pid` (see StageMemory)

    @property
    def stage_source(self) -> SourceId | None:
        pid = self.stage.pid
        if pid is None:
            return None
        if self.stage.kind == "screen":
            return SourceId.screen(pid)
        return SourceId.camera(pid, "video")


class StageMemory:
    """Who was on the room's stage before whoever is on it now (None: nobody yet), so that the
    one on the stage sees them there rather than an empty stage."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: str | None = None
        self._previous: str | None = None

    def see(self, stage: Stage) -> str | None:
        """The stage as of this pass; returns whoever was on it before."""
        if stage.pid is not None and stage.pid != self._current:
            if self._current is not None:
                self._previous = self._current
            self._current = stage.pid
        return self._previous

    def forget(self, pid: str) -> None:
        """`pid` left the room."""
        if self._previous == pid:
            self._previous = None
        if self._current == pid:
            self._current = None


def stage_for(room: RoomPlan, me: str, pin: str | None = None) -> SourceId | None:
    """What `me`'s stage slot shows: whoever `me` pinned (their shared screen if that is the
    room's stage, else their camera), else the room's stage unless it is `me`, else (`me` is on
    it) the one before `me` if their camera is on."""
    stage = room.stage
    if pin is not None and pin != me:
        return room.stage_source if stage.pid == pin else SourceId.camera(pin, "video")
    if stage.pid is not None and stage.pid != me:
        return room.stage_source
    previous = room.previous
    if stage.pid == me and previous is not None and previous != me and room.lineup.shows(previous):
        return SourceId.camera(previous, "video")
    return None


@dataclass(frozen=True, slots=True)
class SubscriberPlan:
    """The sources a subscriber's slots are to carry, slot by slot (None: empty)."""

    audio: list[SourceId | None]
    stage: list[SourceId | None]
    grid: list[SourceId | None]


def plan_slots(
    room: RoomPlan,
    me: str,
    grid_page: int,
    audio_now: Sequence[SourceId | None],
    stage_now: Sequence[SourceId | None],
    grid_now: Sequence[SourceId | None],
    dwelling: Collection[SourceId] = (),
    pin: str | None = None,
) -> SubscriberPlan:
    """`me`'s slots given what they carry (or switch to) now: the floor holder and the loudest
    in the audio slots, whoever is heard already kept while they still talk; the stage (see
    `stage_for`, `pin` is whom `me` pinned); page `grid_page` of the grid without whoever the
    stage shows with their camera, before which the grid's `dwelling` sources that may still
    be shown."""
    heard = {s.participant for s in audio_now if s is not None}
    voices = room.lineup.audio_for(me, room.audio_slots, heard)
    stage = stage_for(room, me, pin)
    on_stage = [stage] if stage is not None else []
    large = stage.participant if stage is not None and stage.purpose == "camera" else None
    grid = room.lineup.grid_for(me, grid_page, room.grid_slots, large)
    kept = [
        s
        for s in grid_now
        if s is not None and s in dwelling and room.lineup.may_show(me, s.participant, large)
    ]
    return SubscriberPlan(
        audio=stable_assign(audio_now, [SourceId.camera(p, "audio") for p in voices]),
        stage=stable_assign(stage_now, on_stage),
        grid=stable_assign(grid_now, [*kept, *(SourceId.camera(p, "video") for p in grid)]),
    )


def plan_listener(
    room: RoomPlan,
    audio_now: Sequence[SourceId | None],
    stage_now: Sequence[SourceId | None],
) -> SubscriberPlan:
    """A listener's slots: the room's audio (the floor holder and the loudest, whoever is heard
    already kept while they still talk) and the stage; no grid. A listener is nobody in the
    lineup, so every listener's plan is the same sources, in slots of its own order."""
    heard = {s.participant for s in audio_now if s is not None}
    voices = room.lineup.audio_for(None, room.audio_slots, heard)
    stage = room.stage_source
    return SubscriberPlan(
        audio=stable_assign(audio_now, [SourceId.camera(p, "audio") for p in voices]),
        stage=stable_assign(stage_now, [stage] if stage is not None else []),
        grid=[],
    )
