"""plan_slots: which source each of a subscriber's slots is to carry, as table rows."""

from __future__ import annotations

import pytest

from confsfu.conference.lineup import Lineup
from confsfu.conference.meeting import Stage
from confsfu.conference.slot_plan import RoomPlan, StageMemory, plan_slots, stage_for
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
    previous: str | None = None,
) -> RoomPlan:
    lineup = Lineup(loudest, set(grid) | set(loudest), holder, grid)
    return RoomPlan(stage, lineup, audio_slots, grid_slots, previous)


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
    plan = plan_slots(room(Stage("a", "speaker")), "me", 0, [None, None], [None], [None, None])
    assert (plan.stage, plan.grid) == ([cam("a")], [cam("b"), cam("c")])
    # a screen on the stage: the face stays in the grid
    plan = plan_slots(room(Stage("a", "screen")), "me", 0, [None, None], [None], [None, None])
    assert (plan.stage, plan.grid) == ([SourceId.screen("a")], [cam("a"), cam("b")])


def test_on_the_stage_yourself_you_see_the_one_before_you() -> None:
    r = room(Stage("me", "speaker"), previous="a")
    plan = plan_slots(r, "me", 0, [None, None], [None], [None, None])
    assert (plan.stage, plan.grid) == ([cam("a")], [cam("b"), cam("c")])
    # everyone else sees "me" on the stage as before
    assert plan_slots(r, "b", 0, [None, None], [None], [None, None]).stage == [cam("me")]
    # the one before has no camera on (not in the lineup's grid), or was nobody: an empty stage
    assert stage_for(room(Stage("me", "speaker"), previous="zed"), "me") is None
    assert stage_for(room(Stage("me", "speaker")), "me") is None


@pytest.mark.parametrize(
    ("stage", "pin", "expected_stage", "expected_grid"),
    [
        # the pinned camera replaces the speaker on my stage; the speaker comes back to my grid
        (Stage("a", "speaker"), "c", cam("c"), [cam("a"), cam("b")]),
        # pinning whoever is on the stage anyway changes nothing
        (Stage("a", "speaker"), "a", cam("a"), [cam("b"), cam("c")]),
        # pinned while sharing the room's screen: their screen, their face in the grid
        (Stage("c", "screen"), "c", SourceId.screen("c"), [cam("a"), cam("b")]),
        # pinned while someone else's screen is the stage: the pinned camera
        (Stage("a", "screen"), "b", cam("b"), [cam("a"), cam("c")]),
        # a pin also holds while I am the stage myself, and with nobody on the stage
        (Stage("me", "floor"), "d", cam("d"), [cam("a"), cam("b")]),
        (NOBODY, "b", cam("b"), [cam("a"), cam("c")]),
        # pinning oneself is no pin
        (Stage("a", "speaker"), "me", cam("a"), [cam("b"), cam("c")]),
    ],
)
def test_a_pin_puts_that_participant_on_my_stage_only(
    stage: Stage, pin: str, expected_stage: SourceId, expected_grid: list[SourceId]
) -> None:
    r = room(stage)
    plan = plan_slots(r, "me", 0, [None, None], [None], [None, None], pin=pin)
    assert (plan.stage, plan.grid) == ([expected_stage], expected_grid)
    # nobody else's stage changes
    other = plan_slots(r, "d", 0, [None, None], [None], [None, None])
    assert other.stage == [r.stage_source]


def test_stage_memory_remembers_the_one_before() -> None:
    memory = StageMemory()
    assert memory.see(NOBODY) is None
    assert memory.see(Stage("a", "speaker")) is None
    assert memory.see(Stage("a", "speaker")) is None
    assert memory.see(NOBODY) is None  # a pause with nobody on the stage: a is still the last
    assert memory.see(Stage("b", "speaker")) == "a"
    assert memory.see(Stage("b", "screen")) == "a"  # the same person, now their screen
    assert memory.see(Stage("a", "floor")) == "b"
    memory.forget("b")
    assert memory.see(Stage("a", "floor")) is None
    memory.forget("a")
    assert memory.see(Stage("c", "speaker")) is None


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
