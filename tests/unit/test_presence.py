"""Presence and comebacks: a dropped participant is away for the grace period, then gone; coming
back keeps every state, and a chair's mute outlives even a full leave."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.meeting import Meeting, MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.presence import (
    ParticipantAway,
    ParticipantBack,
    ParticipantTimedOut,
    Presence,
)
from confsfu.conference.room import Room


def meeting(grace_ms: int = 10_000) -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=1_700_000_000_000, reconnect_grace_ms=grace_ms)
    m.join(0, "chair", "Los Angeles", Role.CHAIR, "t-chair")
    m.join(0, "a", "Seoul", Role.PARTICIPANT, "t-a")
    m.join(0, "b", "Lima", Role.PARTICIPANT, "t-b")
    return m


def test_presence_table() -> None:
    p = Presence(grace_ms=1000)
    assert p.away(0, "a") == [ParticipantAway("a")]
    assert p.away(500, "a") == []  # already away: the first drop counts
    assert p.next_deadline_ms() == 1000
    assert p.expired(999) == []
    assert p.back("a") == [ParticipantBack("a")]
    assert p.back("a") == []
    assert p.next_deadline_ms() is None
    p.away(2000, "b")
    assert p.expired(3000) == [ParticipantTimedOut("b")]
    assert not p.is_away("b")
    with pytest.raises(ValueError):
        Presence(grace_ms=-1)


def test_a_dropped_participant_keeps_mute_hand_and_floor_when_back_in_time() -> None:
    m = meeting()
    m.chair(1, "chair", "mute", target="a", kind="audio")
    m.raise_hand(2, "b")
    m.chair(3, "chair", "grant_floor", target="a")
    assert m.connection_lost(4, "a") == [ParticipantAway("a")]
    m.connection_lost(4, "b")
    assert m.presence.is_away("a") and "a" in m.room.participants
    assert m.tick(9_000) == []
    assert m.returning("t-a") == "a" and m.returning("t-x") is None
    assert m.come_back(9_500, "a") == [ParticipantBack("a")]
    assert not m.may_forward("a", "audio")
    assert m.floor.holder == "a" and m.stage(9_500).pid == "a"
    assert m.come_back(9_600, "b") == [ParticipantBack("b")]
    assert "b" in m.floor.hands


def test_away_too_long_is_a_leave_with_its_floor_events() -> None:
    m = meeting(grace_ms=5000)
    m.chair(1, "chair", "grant_floor", target="a")
    m.connection_lost(10, "a")
    events = m.tick(5_010)
    assert events[-1] == ParticipantTimedOut("a")
    assert "a" not in m.room.participants and m.floor.holder is None
    assert m.returning("t-a") is None
    assert '"left": null' not in m.report.to_json(5_020).split('"Seoul"')[1].split("}")[0]


def test_a_chair_mute_outlives_a_full_leave_of_the_same_token() -> None:
    m = meeting()
    m.chair(1, "chair", "mute", target="a", kind="audio")
    m.chair(1, "chair", "mute", target="a", kind="video")
    m.leave(2, "a")
    m.join(3, "a2", "Seoul", Role.PARTICIPANT, "t-a")
    assert not m.may_forward("a2", "audio") and not m.may_forward("a2", "video")
    m.join(3, "c", "Quito", Role.PARTICIPANT, "t-c")
    assert m.may_forward("c", "audio")


def test_no_comeback_into_an_ended_meeting_or_as_a_stranger() -> None:
    m = meeting()
    m.connection_lost(1, "a")
    with pytest.raises(MeetingError):
        m.come_back(2, "nobody")
    m.chair(3, "chair", "end")
    with pytest.raises(MeetingError) as refused:
        m.come_back(4, "a")
    assert refused.value.code == "meeting_ended"


@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(["lost", "back"]),
                          st.integers(0, 4000)), max_size=40))  # fmt: skip
def test_away_participants_are_in_the_room_until_their_grace_ends(
    steps: list[tuple[str, str, int]],
) -> None:
    m = meeting(grace_ms=3000)
    now = 0
    for pid, what, dt in steps:
        now += dt
        m.tick(now)
        if pid not in m.room.participants:
            continue
        if what == "lost":
            m.connection_lost(now, pid)
        else:
            m.come_back(now, pid)
        assert m.presence.is_away(pid) == (what == "lost")
    while (deadline := m.presence.next_deadline_ms()) is not None:
        assert deadline > now - 1  # nobody is overdue after a tick
        away = {p for p in m.room.participants if m.presence.is_away(p)}
        m.tick(deadline)
        assert away - set(m.room.participants)  # the earliest deadline removed someone
        now = deadline
