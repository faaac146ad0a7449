"""The audience: listeners' admission and limit, their exclusion from everything a participant
does or is shown in, what their slots carry, and the count the chairs are told, as table rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from confsfu.conference.audience import MAX_ELSEWHERE, Audience, AudienceChanged, AudienceFull
from confsfu.conference.lineup import Lineup
from confsfu.conference.meeting import Meeting, MeetingError, Stage
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.slot_plan import RoomPlan, plan_listener
from confsfu.ids import SourceId


def meeting(max_participants: int = 100, max_listeners: int = 3) -> Meeting:
    m = Meeting(
        Room("council", max_participants=max_participants),
        now_ms=0,
        unix_ms=1_700_000_000_000,
        max_listeners=max_listeners,
    )
    m.join(0, "chair", "Los Angeles", Role.CHAIR, "t-chair")
    m.join(0, "a", "Seoul", Role.PARTICIPANT, "t-a")
    return m


# ---- the limit ---------------------------------------------------------------------------------

LIMITS = [
    # (case, max_listeners, joins, admitted, refusal)
    ("no audience at all", 0, 1, 0, "this meeting has no audience"),
    ("under the limit", 3, 2, 2, None),
    ("at the limit", 3, 3, 3, None),
    ("beyond it", 3, 5, 3, "the audience is full (3 listeners)"),
]


@pytest.mark.parametrize(("max_listeners", "joins", "admitted", "refusal"),
                         [r[1:] for r in LIMITS], ids=[r[0] for r in LIMITS])  # fmt: skip
def test_the_listener_limit(
    max_listeners: int, joins: int, admitted: int, refusal: str | None
) -> None:
    audience = Audience(max_listeners)
    refusals = []
    for i in range(joins):
        try:
            audience.admit(i, f"l{i}", "listener")
        except AudienceFull as exc:
            refusals.append(str(exc))
    assert len(audience) == admitted
    assert refusals == [refusal] * (joins - admitted)
    assert audience.peak == admitted


def test_a_listener_who_left_frees_a_place_and_the_peak_stays() -> None:
    audience = Audience(2)
    audience.admit(0, "l0", "x")
    audience.admit(0, "l1", "x")
    with pytest.raises(AudienceFull):
        audience.admit(0, "l2", "x")
    assert audience.leave("l0") is not None
    assert audience.leave("l0") is None  # twice is nothing
    audience.admit(1, "l2", "x")
    assert ("l2" in audience, "l0" in audience, len(audience), audience.peak) == (True, False, 2, 2)
    with pytest.raises(ValueError, match="already"):
        audience.admit(2, "l2", "x")


def test_listeners_do_not_count_toward_the_participant_limit() -> None:
    m = meeting(max_participants=2, max_listeners=2)  # the chair and "a": the room is full
    with pytest.raises(MeetingError) as full:
        m.join(1, "b", "Lima", Role.PARTICIPANT, "t-b")
    assert full.value.code == "room_full"
    m.admit_listener(1, "l1", "listener", None)
    m.admit_listener(1, "l2", "listener", None)
    with pytest.raises(MeetingError) as audience_full:
        m.admit_listener(1, "l3", "listener", None)
    assert audience_full.value.code == "audience_full"
    assert list(m.room.participants) == ["chair", "a"]
    m.audience.leave("l1")
    report = m.report.to_dict(2)
    assert report["audience_peak"] == 2  # the report counts them, names none
    assert [p["id"] for p in report["participants"]] == ["chair", "a"]


ADMISSIONS = [
    # (case, how the meeting is, token id, refusal code or None)
    ("an open meeting", lambda m: None, None, None),
    ("a locked meeting: the lock is on who may speak", lambda m: m.chair(1, "chair", "lock"),
     None, None),
    ("an ended meeting", lambda m: m.chair(1, "chair", "end"), None, "meeting_ended"),
    ("a token the chair removed", lambda m: m.chair(1, "chair", "remove", target="a"), "t-a",
     "removed"),
    ("another token after a removal", lambda m: m.chair(1, "chair", "remove", target="a"),
     "t-other", None),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "token_id", "code"), [r[1:] for r in ADMISSIONS],
                         ids=[r[0] for r in ADMISSIONS])  # fmt: skip
def test_admission_of_a_listener(
    setup: Callable[[Meeting], object], token_id: str | None, code: str | None
) -> None:
    m = meeting()
    setup(m)
    if code is None:
        m.admit_listener(2, "l1", "listener", token_id)
        assert m.role("l1") == Role.LISTENER
    else:
        with pytest.raises(MeetingError) as refused:
            m.admit_listener(2, "l1", "listener", token_id)
        assert refused.value.code == code
        assert "l1" not in m.audience


# ---- what a listener may not do, and is never part of --------------------------------------

REQUESTS: list[tuple[str, Callable[[Meeting], object], str]] = [
    ("publish", lambda m: m.may_publish("l1"), "a listener may not publish"),
    ("share a screen", lambda m: m.start_screen("l1"), "a listener may not share screen"),
    ("raise a hand", lambda m: m.raise_hand(5, "l1"), "a listener may not raise hand"),
    ("lower a hand", lambda m: m.lower_hand(5, "l1"), "a listener may not lower hand"),
    ("say its media", lambda m: m.set_own_media("l1", True, True),
     "a listener may not set own media"),
    ("ask to be unmuted", lambda m: m.request_unmute(5, "l1", "audio"),
     "a listener may not request unmute"),
    ("chat", lambda m: m.send_chat(5, "l1", "hello"), "a listener may not send chat"),
    ("grant itself the floor", lambda m: m.chair(5, "l1", "grant_floor", target="l1"),
     "a listener may not grant floor"),
    ("end the meeting", lambda m: m.chair(5, "l1", "end"), "a listener may not end meeting"),
    ("mute a speaker", lambda m: m.chair(5, "l1", "mute", target="a"),
     "a listener may not mute audio"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "message"), [r[1:] for r in REQUESTS],
                         ids=[r[0] for r in REQUESTS])  # fmt: skip
def test_a_listener_is_refused_every_request_and_nothing_changes(
    request_: Callable[[Meeting], object], message: str
) -> None:
    m = meeting()
    m.admit_listener(1, "l1", "listener", None)
    before = state(m)
    with pytest.raises(MeetingError) as refused:
        request_(m)
    assert (refused.value.code, refused.value.message) == ("forbidden", message)
    assert state(m) == before


def state(m: Meeting) -> tuple[object, ...]:
    return (m.floor.holder, list(m.floor.hands), m.screens, m.chat.history(), m.moderation.ended)


def test_a_chair_cannot_give_a_listener_the_floor_or_the_presenters_role() -> None:
    m = meeting()
    m.admit_listener(1, "l1", "listener", None)
    for command in ("grant_floor", "make_presenter", "mute", "remove"):
        with pytest.raises(MeetingError) as refused:
            m.chair(2, "chair", command, target="l1")
        assert refused.value.code == "no_such_participant"


def test_a_listener_is_in_no_lineup_and_no_participant_list() -> None:
    m = meeting()
    m.admit_listener(1, "l1", "listener", None)
    m.on_audio_level(2, "l1", 20, True)  # nothing of a listener's is heard: were it to say so
    lineup = m.lineup(3, ["chair", "a", "l1"], ["chair", "a", "l1"])
    assert "l1" not in lineup.grid_for("a", 0, 9)
    assert not lineup.may_show("a", "l1")
    assert "l1" not in m.room.participants
    assert m.stage(3).pid != "l1"


# ---- what a listener's slots carry -------------------------------------------------------------


def cam(p: str) -> SourceId:
    return SourceId.camera(p, "video")


def mic(p: str) -> SourceId:
    return SourceId.camera(p, "audio")


NOBODY = Stage(None, None)


def plan(
    stage: Stage = NOBODY,
    loudest: tuple[str, ...] = (),
    holder: str | None = None,
    audible: tuple[str, ...] = ("a", "b", "c", "d"),
) -> RoomPlan:
    return RoomPlan(stage, Lineup(loudest, set(audible), holder, ("a", "b", "c", "d")), 2, 9)


PLANS = [
    # (case, room, now (audio, stage), expected (audio, stage))
    ("nobody on the stage, nobody talking", plan(), ([None, None], [None]),
     ([None, None], [None])),
    ("the speaker on the stage, the loudest heard", plan(Stage("a", "speaker"), ("a", "b", "c")),
     ([None, None], [None]), ([mic("a"), mic("b")], [cam("a")])),
    ("the floor holder first", plan(Stage("c", "floor"), ("a", "b"), holder="c"),
     ([None, None], [None]), ([mic("c"), mic("a")], [cam("c")])),
    ("a presenter's screen", plan(Stage("d", "screen"), ("a",)), ([None, None], [None]),
     ([mic("a"), None], [SourceId.screen("d")])),
    ("whoever is heard keeps its slot", plan(Stage("a", "speaker"), ("a", "b", "c")),
     ([None, mic("c")], [cam("a")]), ([mic("a"), mic("c")], [cam("a")])),
    ("a muted talker is not heard", plan(loudest=("a", "b"), audible=("b",)),
     ([None, None], [None]), ([mic("b"), None], [None])),
]  # fmt: skip


@pytest.mark.parametrize(("room", "now", "expected"), [r[1:] for r in PLANS],
                         ids=[r[0] for r in PLANS])  # fmt: skip
def test_what_a_listeners_slots_carry(
    room: RoomPlan,
    now: tuple[list[SourceId | None], list[SourceId | None]],
    expected: tuple[list[SourceId | None], list[SourceId | None]],
) -> None:
    got = plan_listener(room, *now)
    assert (got.audio, got.stage, got.grid) == (*expected, [])


# ---- the count the chairs are told -------------------------------------------------------------

COUNTS = [
    # (case, steps: (at_ms, +joins / -leaves, or 0: just a tick), told: [(at_ms, count)])
    ("nobody comes", [(0, 0), (5000, 0)], []),
    ("the first comes: told at once", [(100, +1), (100, 0)], [(100, 1)]),
    ("a crowd in one second: one message", [(0, +1), (0, 0), (10, +1), (20, +1), (500, 0),
     (999, 0), (1000, 0)], [(0, 1), (1000, 3)]),
    ("a join and a leave cancel out", [(0, +1), (0, 0), (300, +1), (400, -1), (2000, 0)],
     [(0, 1)]),
    ("leaves are told too", [(0, +2), (0, 0), (5000, -2), (5000, 0)], [(0, 2), (5000, 0)]),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "told"), [r[1:] for r in COUNTS], ids=[r[0] for r in COUNTS])
def test_the_count_the_chairs_are_told(
    steps: list[tuple[int, int]], told: list[tuple[int, int]]
) -> None:
    audience = Audience(10)
    n, out = 0, []
    for at_ms, change in steps:
        for _ in range(change):
            audience.admit(at_ms, f"l{n}", "x")
            n += 1
        for _ in range(-change):
            audience.leave(next(f"l{i}" for i in range(n) if f"l{i}" in audience))
        if change == 0:
            due = audience.next_deadline_ms()
            events = audience.on_timer(at_ms)
            assert bool(events) == (due is not None and at_ms >= due)
            out += [(at_ms, e.listeners) for e in events if isinstance(e, AudienceChanged)]
    assert out == told


def test_the_meeting_ticks_the_count_out() -> None:
    m = meeting()
    assert m.next_deadline_ms() is None
    m.admit_listener(10, "l1", "listener", None)
    assert m.next_deadline_ms() is not None
    assert AudienceChanged(1) in m.tick(10)
    assert m.audience.next_deadline_ms() is None


def test_the_count_is_the_room_s_across_workers() -> None:
    audience = Audience(10)
    audience.admit(0, "l1", "x")
    assert audience.on_timer(0) == [AudienceChanged(1)]
    audience.counted_elsewhere(2, 5)
    audience.counted_elsewhere(3, -4)  # nonsense is clamped, never negative
    assert (len(audience), audience.watching, audience.peak) == (1, 6, 6)
    assert audience.on_timer(999) == [] and audience.on_timer(1000) == [AudienceChanged(6)]
    audience.counted_elsewhere(2, 5)  # said again: nothing new to tell
    assert audience.next_deadline_ms() is None
    audience.counted_elsewhere(3, 10**9)
    assert audience.watching == 1 + 5 + 1_000_000
    audience.forget_elsewhere(3)
    audience.forget_elsewhere(9)  # unknown: nothing
    assert audience.watching == 6
    audience.forget_elsewhere()
    assert audience.watching == 1 and audience.peak == 1_000_006


def test_counts_from_too_many_workers_are_ignored() -> None:
    audience = Audience(10)
    for worker in range(MAX_ELSEWHERE + 5):
        audience.counted_elsewhere(worker, 1)
    assert audience.watching == MAX_ELSEWHERE
    audience.counted_elsewhere(0, 3)  # one known already: updated
    assert audience.watching == MAX_ELSEWHERE + 2


def test_the_meeting_counts_listeners_elsewhere_in_its_report() -> None:
    m = meeting()
    m.admit_listener(10, "l1", "listener", None)
    m.listeners_elsewhere(1, 4)
    assert AudienceChanged(5) in m.tick(10)
    m.listeners_elsewhere(1, None)
    assert m.audience.watching == 1 and m.report.audience_peak == 5
