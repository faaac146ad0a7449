"""Moderation: chair mutes win over own media, mute_all, lock, bans, and the schedule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.floor import FloorControl
from confsfu.conference.moderation import (
    ChairMuted,
    ChairUnmuted,
    MeetingEnded,
    MeetingEndingSoon,
    MeetingExtended,
    MeetingOvertime,
    Moderation,
    ModerationError,
    OwnMediaChanged,
    RoomLocked,
    RoomUnlocked,
    UnmuteRequested,
)
from confsfu.ids import Kind

MIN = 60_000


def room(*pids: str) -> Moderation:
    m = Moderation()
    for pid in pids:
        m.join(0, pid)
    return m


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_chair_mute_stops_forwarding_whatever_the_client_does(kind: Kind) -> None:
    m = room("p")
    assert m.may_forward("p", kind)
    assert m.chair_mute(1, "p", kind) == [ChairMuted("p", kind)]
    assert not m.may_forward("p", kind)
    other: Kind = "video" if kind == "audio" else "audio"
    assert m.may_forward("p", other)
    # the participant switches everything on: recorded, but the chair's mute stands
    assert m.set_own("p", audio=False, video=False) == [OwnMediaChanged("p", False, False)]
    assert m.set_own("p", audio=True, video=True) == [OwnMediaChanged("p", True, True)]
    assert not m.may_forward("p", kind)
    assert m.state("p").chair_muted(kind)
    # only the chair's action lifts it
    assert m.chair_unmute(2, "p", kind) == [ChairUnmuted("p", kind)]
    assert m.may_forward("p", kind)


def test_participant_requests_and_chair_decides() -> None:
    m = room("p")
    with pytest.raises(ModerationError, match="not muted by the chair"):
        m.request_unmute("p")
    m.chair_mute(1, "p", "audio")
    assert m.request_unmute("p") == [UnmuteRequested("p", "audio")]
    assert m.request_unmute("p") == []  # not re-sent to the chair
    assert m.state("p").audio_unmute_requested
    assert m.unmute_requests() == [("p", "audio")]
    assert not m.may_forward("p", "audio")  # a request is not an unmute
    m.chair_unmute(2, "p", "audio")
    st_ = m.state("p")
    assert not st_.audio_unmute_requested and not st_.chair_muted_audio
    assert m.unmute_requests() == []


def test_own_media_state_is_reported_not_enforced() -> None:
    m = Moderation()
    m.join(0, "p", audio=False, video=True)
    s = m.state("p")
    assert (s.own_audio, s.own_video) == (False, True)
    assert m.set_own("p", audio=False, video=True) == []
    assert m.may_forward("p", "audio")  # the client keeps its own mic closed


def test_mute_all_spares_the_floor_holder_and_the_chair() -> None:
    m = room("chair", "holder", "a", "b", "c")
    floor = FloorControl()
    floor.grant(0, "holder")
    m.chair_mute(1, "b", "audio")  # already muted: no second event
    events = m.mute_all(2, except_pids=["chair", floor.holder or ""])
    assert events == [ChairMuted("a", "audio"), ChairMuted("c", "audio")]
    assert [p for p in m.participants if m.may_forward(p, "audio")] == ["chair", "holder"]
    assert all(m.may_forward(p, "video") for p in m.participants)
    assert m.mute_all(3, except_pids=["chair", "holder"]) == []


def test_idempotent_chair_commands() -> None:
    m = room("p")
    assert m.chair_unmute(1, "p", "audio") == []
    m.chair_mute(1, "p", "video")
    assert m.chair_mute(2, "p", "video") == []


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.chair_mute(0, "ghost", "audio"),
        lambda m: m.chair_unmute(0, "ghost", "audio"),
        lambda m: m.request_unmute("ghost"),
        lambda m: m.set_own("ghost", True, True),
        lambda m: m.state("ghost"),
        lambda m: m.join(0, "p"),
    ],
)
def test_unknown_or_duplicate_participant(call: object) -> None:
    m = room("p")
    with pytest.raises(ModerationError):
        call(m)  # type: ignore[operator]
    assert m.participants == ("p",)


def test_leave_forgets_and_denies() -> None:
    m = room("p")
    m.chair_mute(0, "p", "audio")
    m.leave("p")
    m.leave("p")
    assert not m.may_forward("p", "video")  # unknown participants are never forwarded
    m.join(1, "p")
    assert m.may_forward("p", "audio")  # a new session starts clean


def test_mute_on_join() -> None:
    m = Moderation(mute_on_join=True)
    assert m.join(0, "late") == [ChairMuted("late", "audio")]
    assert not m.may_forward("late", "audio")
    m.mute_on_join = False
    assert m.join(0, "later") == []


def test_lock_and_bans() -> None:
    m = Moderation()
    assert not m.locked
    assert m.unlock() == []
    assert m.lock() == [RoomLocked()]
    assert m.lock() == []
    assert m.locked
    assert m.unlock() == [RoomUnlocked()]
    assert not m.is_banned("tok-1")
    m.ban("tok-1")
    assert m.is_banned("tok-1") and not m.is_banned("tok-2")


# ---- schedule ---------------------------------------------------------------------------


def test_meeting_does_not_end_by_itself() -> None:
    """The meeting in the news: 45 minutes scheduled, 70 minutes run."""
    m = Moderation(scheduled_end_ms=45 * MIN, warn_before_ms=5 * MIN)
    assert m.next_deadline_ms() == 40 * MIN
    assert m.on_timer(40 * MIN - 1) == []
    assert m.on_timer(40 * MIN) == [MeetingEndingSoon(45 * MIN, 5 * MIN)]
    assert m.on_timer(41 * MIN) == []
    assert m.next_deadline_ms() == 45 * MIN
    assert m.on_timer(45 * MIN) == [MeetingOvertime(45 * MIN)]
    assert m.next_deadline_ms() is None
    assert m.on_timer(60 * MIN) == []
    assert not m.ended
    assert m.end(70 * MIN) == [MeetingEnded(70 * MIN)]
    assert m.ended and m.ended_ms == 70 * MIN
    assert m.end(71 * MIN) == []
    assert m.next_deadline_ms() is None


def test_extend_adds_to_the_scheduled_end_and_rearms_warnings() -> None:
    m = Moderation(scheduled_end_ms=45 * MIN, warn_before_ms=5 * MIN)
    m.on_timer(40 * MIN)
    assert m.extend(42 * MIN, 15 * MIN) == [MeetingExtended(60 * MIN, 15 * MIN)]
    assert m.scheduled_end_ms == 60 * MIN
    assert m.next_deadline_ms() == 55 * MIN
    assert m.on_timer(45 * MIN) == []  # the old end is gone
    assert m.on_timer(55 * MIN) == [MeetingEndingSoon(60 * MIN, 5 * MIN)]


def test_extend_inside_the_warning_period_warns_at_once() -> None:
    m = Moderation(scheduled_end_ms=45 * MIN, warn_before_ms=5 * MIN)
    m.on_timer(44 * MIN)
    m.extend(44 * MIN, 2 * MIN)
    assert m.next_deadline_ms() == 42 * MIN  # already due
    assert m.on_timer(44 * MIN) == [MeetingEndingSoon(47 * MIN, 3 * MIN)]


def test_a_late_timer_skips_the_warning() -> None:
    m = Moderation(scheduled_end_ms=45 * MIN)
    assert m.on_timer(50 * MIN) == [MeetingOvertime(45 * MIN)]
    assert m.next_deadline_ms() is None


def test_no_warning_when_lead_time_is_zero() -> None:
    m = Moderation(scheduled_end_ms=45 * MIN, warn_before_ms=0)
    assert m.next_deadline_ms() == 45 * MIN
    assert m.on_timer(45 * MIN) == [MeetingOvertime(45 * MIN)]


@pytest.mark.parametrize(
    ("end_ms", "by_ms", "message"),
    [
        (45 * MIN, 0, "must be positive"),
        (45 * MIN, -MIN, "must be positive"),
        (None, MIN, "no scheduled end"),
    ],
)
def test_extend_refusals(end_ms: int | None, by_ms: int, message: str) -> None:
    m = Moderation(scheduled_end_ms=end_ms)
    before = m.scheduled_end_ms
    with pytest.raises(ModerationError, match=message):
        m.extend(0, by_ms)
    assert m.scheduled_end_ms == before


def test_after_the_end() -> None:
    m = Moderation(scheduled_end_ms=45 * MIN)
    m.end(30 * MIN)
    with pytest.raises(ModerationError, match="has ended"):
        m.extend(31 * MIN, MIN)
    assert m.on_timer(50 * MIN) == []


def test_negative_lead_time_is_refused() -> None:
    with pytest.raises(ModerationError):
        Moderation(warn_before_ms=-1)


def test_no_schedule_no_timer() -> None:
    m = Moderation()
    assert m.next_deadline_ms() is None
    assert m.on_timer(10**9) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["mute", "unmute", "own", "request", "all"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["audio", "video"]),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_only_chair_actions_change_forwarding(
    ops: list[tuple[str, str, Kind, bool]],
) -> None:
    m = room("a", "b", "c")
    for op, pid, kind, flag in ops:
        before = {(p, k): m.may_forward(p, k) for p in "abc" for k in ("audio", "video")}
        if op == "mute":
            m.chair_mute(0, pid, kind)
        elif op == "unmute":
            m.chair_unmute(0, pid, kind)
        elif op == "all":
            m.mute_all(0, [pid])
        else:
            try:
                if op == "own":
                    m.set_own(pid, flag, not flag)
                else:
                    m.request_unmute(pid, kind)
            except ModerationError:
                pass
            after = {(p, k): m.may_forward(p, k) for p in "abc" for k in ("audio", "video")}
            assert after == before
        for p in "abc":
            for k in ("audio", "video"):
                assert m.may_forward(p, k) == (not m.state(p).chair_muted(k))
