"""plan_slots: which source each of a subscriber's slots is to carry, as table rows."""

from __future__ import annotations

import pytest

from confsfu.conference.lineup import Lineup
from confsfu.conference.meeting import Stage
from confsfu.conference.slot_plan import RoomPlan, plan_slots, showable
from confsfu.ids import SourceId

NOBODY = Stage(None, None)


def cam(p: str) -> SourceId:
    return SourceId.camera(p, "video")


def mic(p: str) -> SourceId:
    return SourceId.camera(p, "audio")


def room(
    stage: Stage = NOBODY,
    loudest: tuple[str, ...] = (),
    grid: tuple[str, ...] = ("a", "b", "c", "d"),
    holder: str | None = None,
    audio_slots: int = 2,
    grid_slots: int = 2,
) -> RoomPlan:
    lineup = Lineup(loudest, set(grid) | set(loudest), holder, grid)
    return RoomPlan(stage, lineup, audio_slots, grid_slots)


ROWS = [
    # (case, room, me, page, now (audio, stage, grid), expected (audio, stage, grid))
    (
        "an empty room",
        room(grid=()),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [None, None]),
    ),
    (
        "the first page of the grid, in order",
        room(),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [cam("a"), cam("b")]),
    ),
    (
        "the second page",
        room(),
        "me",
        1,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [cam("c"), cam("d")]),
    ),
    (
        "a page past the end shows the last",
        room(),
        "me",
        7,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [cam("c"), cam("d")]),
    ),
    (
        "never oneself",
        room(),
        "a",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [cam("b"), cam("c")]),
    ),
    (
        "someone shown keeps their slot",
        room(),
        "me",
        0,
        ([None, None], [None], [cam("b"), None]),
        ([None, None], [None], [cam("b"), cam("a")]),
    ),
    (
        "the stage: the speaker's camera",
        room(Stage("c", "speaker"), grid=()),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [cam("c")], [None, None]),
    ),
    (
        "nobody sees themselves on the stage",
        room(Stage("me", "floor"), grid=()),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [None], [None, None]),
    ),
    (
        "a screen on the stage",
        room(Stage("b", "screen"), grid=()),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([None, None], [SourceId.screen("b")], [None, None]),
    ),
    (
        "the loudest are heard, the holder first",
        room(loudest=("a", "b", "c"), holder="c", grid=()),
        "me",
        0,
        ([None, None], [None], [None, None]),
        ([mic("c"), mic("a")], [None], [None, None]),
    ),
    (
        "whoever is heard keeps the slot while still talking",
        room(loudest=("a", "b", "c"), grid=()),
        "me",
        0,
        ([None, mic("c")], [None], [None, None]),
        ([mic("a"), mic("c")], [None], [None, None]),
    ),
]


@pytest.mark.parametrize(("room_", "me", "page", "now", "expected"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])  # fmt: skip
def test_plan_table(
    room_: RoomPlan,
    me: str,
    page: int,
    now: tuple[list[SourceId | None], ...],
    expected: tuple[list[SourceId | None], ...],
) -> None:
    plan = plan_slots(room_, me, page, *now)
    assert (plan.audio, plan.stage, plan.grid) == expected


def test_whoever_is_on_the_stage_with_a_camera_is_not_also_in_the_grid() -> None:
    assert showable(Stage("a", "speaker"), {"a", "b"}) == {"b"}
    assert showable(Stage("a", "screen"), {"a", "b"}) == {"a", "b"}  # a screen: the face too
    assert showable(Stage(None, None), {"a"}) == {"a"}


@pytest.mark.parametrize(
    ("grid", "stage", "now", "dwelling", "expected"),
    [
        # b was heard last and would take the one tile; a got it a moment ago and keeps it
        (("b", "a", "c"), NOBODY, [cam("a")], {cam("a")}, [cam("a")]),
        (("b", "a", "c"), NOBODY, [cam("a")], set(), [cam("b")]),  # its dwell is over
        # one who may no longer be shown goes at once: gone from the grid (left, camera off, or
        # on the stage: the room's grid leaves out whoever is there)
        (("b", "c"), NOBODY, [cam("a")], {cam("a")}, [cam("b")]),
    ],
)
def test_a_grid_tile_given_a_moment_ago_keeps_its_person(
    grid: tuple[str, ...],
    stage: Stage,
    now: list[SourceId | None],
    dwelling: set[SourceId],
    expected: list[SourceId | None],
) -> None:
    plan = plan_slots(room(stage, grid=grid, grid_slots=1), "me", 0, [None, None], [None], now,
                      dwelling)  # fmt: skip
    assert plan.grid == expected
