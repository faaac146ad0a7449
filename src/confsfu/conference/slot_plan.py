"""Which source each of a subscriber's fixed slots should carry: who is heard, the stage, one
page of the grid; someone already in a slot keeps it, and a grid tile given a moment ago
(`dwelling`) keeps its person while they may be shown at all, so that several people talking at
once do not make a small grid change hands on every pass."""

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

    @property
    def stage_source(self) -> SourceId | None:
        pid = self.stage.pid
        if pid is None:
            return None
        if self.stage.kind == "screen":
            return SourceId.screen(pid)
        return SourceId.camera(pid, "video")


def showable(stage: Stage, video: Collection[str]) -> set[str]:
    """Those the grid may show: whoever is on the stage with their camera is large there."""
    if stage.kind == "screen" or stage.pid is None:
        return set(video)
    return set(video) - {stage.pid}


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
) -> SubscriberPlan:
    """`me`'s slots given what they carry (or switch to) now: the floor holder and the loudest
    in the audio slots, whoever is heard already kept while they still talk; the stage unless
    it is `me`; page `grid_page` of the grid, before which the grid's `dwelling` sources that
    may still be shown."""
    heard = {s.participant for s in audio_now if s is not None}
    voices = room.lineup.audio_for(me, room.audio_slots, heard)
    stage = room.stage_source
    on_stage = [stage] if stage is not None and stage.participant != me else []
    grid = room.lineup.grid_for(me, grid_page, room.grid_slots)
    kept = [
        s
        for s in grid_now
        if s is not None and s in dwelling and room.lineup.may_show(me, s.participant)
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
