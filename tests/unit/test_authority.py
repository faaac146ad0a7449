"""One decision point per room (confsfu.scale.authority): a room split over two workers (the
authority and a relay member applying its plans, with events and plans through JSON) gives
every subscriber the slots a one-process room gives them; and bad messages."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.conference.meeting import Meeting, MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.slot_plan import RoomPlan, StageMemory, SubscriberPlan, plan_slots
from confsfu.ids import SourceId
from confsfu.scale.authority import (
    AuthorityMessageError,
    MemberAudience,
    MemberEvent,
    MemberJoined,
    MemberLeft,
    MemberLevel,
    MemberPublishing,
    PlanApplier,
    RoomAuthority,
    event_from_json,
    event_json,
    plan_from_json,
    plan_json,
)

AUDIO, GRID = 2, 3
PIDS = [f"p{i}" for i in range(7)]
Slots = dict[str, SubscriberPlan]


def new_meeting() -> Meeting:
    return Meeting(Room("r", max_participants=6), now_ms=0, unix_ms=0)


class OneProcess:
    """A room as one worker runs it (server/media_slots.py's pass, without media)."""

    def __init__(self) -> None:
        self.meeting = new_meeting()
        self.audio: set[str] = set()
        self.video: set[str] = set()
        self.memory = StageMemory()

    def on(self, now_ms: int, event: MemberEvent) -> None:
        m = self.meeting
        if isinstance(event, MemberJoined):
            with contextlib.suppress(MeetingError):  # a full room
                m.join(now_ms, event.pid, event.name, Role.PARTICIPANT, event.pid)
        elif event.pid not in m.room.participants:
            return
        elif isinstance(event, MemberLeft):
            m.leave(now_ms, event.pid)
            self.audio.discard(event.pid)
            self.video.discard(event.pid)
            self.memory.forget(event.pid)
        elif isinstance(event, MemberLevel):
            m.on_audio_level(now_ms, event.pid, event.level_dbov, event.voice)
        else:
            for kind, on in ((self.audio, event.audio), (self.video, event.video)):
                (kind.add if on else kind.discard)(event.pid)

    def plan(self, now_ms: int) -> RoomPlan:
        stage = self.meeting.stage(now_ms)
        lineup = self.meeting.lineup(now_ms, self.audio, self.video)
        return RoomPlan(stage, lineup, AUDIO, GRID, self.memory.see(stage))


def subscriber_slots(
    plan: RoomPlan | None, present: list[str], before: Slots, pages: dict[str, int]
) -> Slots:
    out: Slots = {}
    for me in present:
        now = before.get(me) or SubscriberPlan([None] * AUDIO, [None], [None] * GRID)
        if plan is not None:
            out[me] = plan_slots(plan, me, pages.get(me, 0), now.audio, now.stage, now.grid)
    return out


def through_json(value: dict[str, Any]) -> Any:
    return json.loads(json.dumps(value))


events = st.one_of(
    st.builds(lambda i, w: ("join", i, w), st.integers(0, 6), st.integers(0, 1)),
    st.builds(lambda i: ("leave", i), st.integers(0, 6)),
    st.builds(
        lambda i, db, v: ("level", i, db, v), st.integers(0, 6), st.integers(0, 127), st.booleans()
    ),
    st.builds(
        lambda i, a, v: ("publish", i, a, v), st.integers(0, 6), st.booleans(), st.booleans()
    ),
    st.builds(lambda i, p: ("page", i, p), st.integers(0, 6), st.integers(0, 2)),
    st.builds(lambda ms: ("time", ms), st.integers(1, 3000)),
)


# A room that fills first (each on either worker, most publishing), then anything happens.
rooms = st.builds(
    lambda workers, media, rest: [
        *(("join", i, w) for i, w in enumerate(workers)),
        *(("publish", i, a, v) for i, (a, v) in enumerate(media)),
        *(("level", i, 20 + 10 * i, True) for i in range(7)),  # all talking at first
        *rest,
    ],
    st.lists(st.integers(0, 1), min_size=7, max_size=7),
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=7, max_size=7),
    st.lists(events, max_size=80),
)


@settings(max_examples=150, deadline=None)
@given(rooms)
def test_a_split_room_gives_the_slots_of_a_one_process_room(steps: list[tuple[Any, ...]]) -> None:
    one = OneProcess()
    authority = RoomAuthority(new_meeting(), AUDIO, GRID)
    member = PlanApplier()
    where: dict[str, int] = {}  # participant -> the worker they are connected to
    pages: dict[str, int] = {}
    one_slots: Slots = {}
    split_slots: Slots = {}
    now = 0
    for step in steps:
        event: MemberEvent | None = None
        match step:
            case ("join", i, worker):
                pid = PIDS[i]
                if pid not in where:
                    where[pid] = worker
                    event = MemberJoined(pid, pid.upper())
            case ("leave", i):
                if PIDS[i] in where:
                    event = MemberLeft(PIDS[i])
            case ("level", i, dbov, voice):
                event = MemberLevel(PIDS[i], dbov, voice)
            case ("publish", i, audio, video):
                event = MemberPublishing(PIDS[i], audio, video)
            case ("page", i, page):
                pages[PIDS[i]] = page
            case ("time", ms):
                now += ms
        if event is not None:
            one.on(now, event)
            if where.get(event.pid, 0) == 1:  # the member's participant: told over the relay
                authority.on_event(now, event_from_json(through_json(event_json(event))))
            else:
                authority.on_event(now, event)
            if isinstance(event, MemberLeft):
                where.pop(event.pid, None)
        present = list(one.meeting.room.participants)
        assert present == list(authority.meeting.room.participants)
        # Each pass: the one process plans for everyone; the authority plans for its own and
        # sends the member its room plan, which the member applies to its own.
        one_slots = subscriber_slots(one.plan(now), present, one_slots, pages)
        plan = authority.plan(now)
        member.on_plan(plan_from_json(through_json(plan_json(plan))))
        mine = [p for p in present if where.get(p) == 0]
        theirs = [p for p in present if where.get(p) == 1]
        split_slots = {
            **subscriber_slots(plan, mine, split_slots, pages),
            **subscriber_slots(member.plan, theirs, split_slots, pages),
        }
        assert split_slots == one_slots, step


def test_the_applier_applies_nothing_before_a_plan() -> None:
    applier = PlanApplier()
    assert applier.slots_for("a", 0, [None], [None], [None]) is None
    authority = RoomAuthority(new_meeting(), 1, 1)
    for event in (
        MemberJoined("a", "A"),
        MemberJoined("b", "B"),
        MemberPublishing("b", True, True),
        MemberLevel("b", 20, True),
    ):
        authority.on_event(10, event)
    applier.on_plan(plan_from_json(through_json(plan_json(authority.plan(10)))))
    got = applier.slots_for("a", 0, [None], [None], [None])
    assert got is not None and got.audio == [SourceId.camera("b", "audio")]
    authority.on_event(20, MemberLevel("ghost", 20, True))  # nobody: nothing
    authority.on_event(20, MemberLeft("ghost"))


BAD_EVENTS = [
    [],
    {"e": "joined"},
    {"e": "joined", "pid": "", "name": "x"},
    {"e": "joined", "pid": "a" * 201, "name": "x"},
    {"e": "level", "pid": "a", "dbov": 128, "voice": True},
    {"e": "level", "pid": "a", "dbov": 3, "voice": 1},
    {"e": "level", "pid": "a", "dbov": True, "voice": True},
    {"e": "publishing", "pid": "a", "audio": True},
    {"e": "party", "pid": "a"},
    {"e": "audience"},
    {"e": "audience", "n": -1},
    {"e": "audience", "n": 1_000_001},
    {"e": "audience", "n": 2.0},
    {"e": "audience", "n": True},
]


@pytest.mark.parametrize("data", BAD_EVENTS)
def test_bad_events(data: Any) -> None:
    with pytest.raises(AuthorityMessageError):
        event_from_json(data)


GOOD_PLAN = {
    "stage": ["a", "speaker"],
    "loudest": ["a"],
    "audible": ["a"],
    "holder": None,
    "grid": ["a", "b"],
    "audio_slots": 3,
    "grid_slots": 4,
    "previous": None,
}
BAD_PLANS = [
    ("not an object", []),
    ("stage kind without pid", {**GOOD_PLAN, "stage": [None, "speaker"]}),
    ("stage kind", {**GOOD_PLAN, "stage": ["a", "dance"]}),
    ("stage shape", {**GOOD_PLAN, "stage": "a"}),
    ("slots", {**GOOD_PLAN, "audio_slots": 65}),
    ("slots type", {**GOOD_PLAN, "grid_slots": "4"}),
    ("grid", {**GOOD_PLAN, "grid": "ab"}),
    ("grid entry", {**GOOD_PLAN, "grid": [1]}),
    ("too many", {**GOOD_PLAN, "loudest": ["x"] * 1001}),
    ("holder", {**GOOD_PLAN, "holder": 5}),
]


@pytest.mark.parametrize("data", [b[1] for b in BAD_PLANS], ids=[b[0] for b in BAD_PLANS])
def test_bad_plans(data: Any) -> None:
    with pytest.raises(AuthorityMessageError):
        plan_from_json(data)


def test_a_good_plan_round_trips() -> None:
    assert plan_json(plan_from_json(GOOD_PLAN)) == GOOD_PLAN


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                          max_size=6)))  # fmt: skip
def test_arbitrary_json_raises_only_the_documented_error(data: Any) -> None:
    for read in (event_from_json, plan_from_json):
        with contextlib.suppress(AuthorityMessageError):
            read(data)


def test_a_member_s_audience_count_round_trips_and_changes_no_meeting() -> None:
    event = MemberAudience(1_000_000)
    assert event_from_json(json.loads(json.dumps(event_json(event)))) == event
    authority = RoomAuthority(new_meeting(), 1, 1)
    authority.on_event(5, MemberAudience(3))  # a count, not a participant
    assert not authority.meeting.room.participants
