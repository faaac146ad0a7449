"""Slot assignment (stable_assign, rank_for_audio) and room membership (Room)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.room import Participant, Room, RoomFull
from confsfu.conference.slots import rank_for_audio, stable_assign

# ---- stable_assign ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [
        ([None, None, None], ["a", "b"], ["a", "b", None]),
        ([None, None], ["a", "b", "c"], ["a", "b"]),
        (["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]),  # reordering moves nobody
        (["a", "b", "c"], ["a", "c", "d"], ["a", "d", "c"]),  # d takes b's freed slot
        (["a", None, "c"], ["x", "c"], ["x", None, "c"]),  # a left; c stays put
        (["a", "b"], [], [None, None]),
        ([], ["a"], []),
        ([None, None], ["a", "a", "b"], ["a", "b"]),  # duplicates in wanted count once
        (["b", None], ["a", "b"], ["b", "a"]),
    ],
)
def test_stable_assign_table(
    current: list[str | None], wanted: list[str], expected: list[str | None]
) -> None:
    assert stable_assign(current, wanted) == expected


def test_nobody_moves_while_still_wanted_through_a_series_of_changes() -> None:
    slots: list[str | None] = [None] * 4
    slots = stable_assign(slots, ["a", "b", "c", "d", "e"])
    assert slots == ["a", "b", "c", "d"]
    slots = stable_assign(slots, ["e", "a", "c", "d"])  # b drops out, e comes in
    assert slots == ["a", "e", "c", "d"]
    slots = stable_assign(slots, ["c", "d"])
    assert slots == [None, None, "c", "d"]
    slots = stable_assign(slots, ["f", "c", "g", "d"])
    assert slots == ["f", "g", "c", "d"]


people = st.sampled_from(list("abcdefghij"))


@given(
    current=st.lists(st.one_of(st.none(), people), max_size=8, unique_by=lambda p: p or object()),
    wanted=st.lists(people, max_size=12),
)
def test_stable_assign_properties(current: list[str | None], wanted: list[str]) -> None:
    result = stable_assign(current, wanted)
    n = len(current)
    chosen = list(dict.fromkeys(wanted))[:n]
    assert len(result) == n
    members = [p for p in result if p is not None]
    assert len(members) == len(set(members)), "nobody takes two slots"
    assert set(members) == set(chosen), "the slots hold exactly the first n wanted"
    for i, p in enumerate(current):
        if p is not None and p in chosen:
            assert result[i] == p, f"{p} moved although still wanted"
    # Applying the same wish again changes nothing.
    assert stable_assign(result, wanted) == result


# ---- rank_for_audio -----------------------------------------------------------------------


def test_rank_for_audio_most_recent_first_then_join_order() -> None:
    order = ["a", "b", "c", "d", "e"]
    heard = {"c": 100, "e": 300, "a": 200}
    assert rank_for_audio(order, heard) == ["e", "a", "c", "b", "d"]


def test_rank_for_audio_ignores_people_not_in_the_list() -> None:
    assert rank_for_audio(["a", "b"], {"zz": 999, "b": 1}) == ["b", "a"]
    assert rank_for_audio([], {"a": 1}) == []


def test_rank_for_audio_ties_keep_join_order() -> None:
    assert rank_for_audio(["a", "b", "c"], {"c": 5, "b": 5}) == ["b", "c", "a"]


@given(
    order=st.lists(people, unique=True),
    heard=st.dictionaries(people, st.integers(0, 10_000)),
)
def test_rank_for_audio_is_a_permutation(order: list[str], heard: dict[str, int]) -> None:
    ranked = rank_for_audio(order, heard)
    assert sorted(ranked) == sorted(order)
    times = [heard[p] for p in ranked if p in heard]
    assert times == sorted(times, reverse=True)
    n_heard = len(times)
    assert all(p in heard for p in ranked[:n_heard])
    assert ranked[n_heard:] == [p for p in order if p not in heard]


# ---- Room ---------------------------------------------------------------------------------


def test_join_keeps_order_and_state() -> None:
    room = Room("demo")
    chair = room.join(10, "p1", "Ada", "chair")
    room.join(20, "p2", "Bob", "participant")
    room.join(30, "p3", "Cy", "participant")
    assert chair == Participant("p1", "Ada", "chair", 10, audio=True, video=True)
    assert list(room.participants) == ["p1", "p2", "p3"]


def test_joining_twice_is_refused() -> None:
    room = Room("demo")
    room.join(0, "p1", "Ada", "participant")
    with pytest.raises(ValueError, match="already"):
        room.join(1, "p1", "Ada again", "participant")
    assert room.participants["p1"].name == "Ada"


def test_a_full_room_refuses_and_a_leave_makes_space() -> None:
    room = Room("small", max_participants=2)
    room.join(0, "p1", "A", "participant")
    room.join(0, "p2", "B", "participant")
    with pytest.raises(RoomFull, match="full"):
        room.join(0, "p3", "C", "participant")
    assert "p3" not in room.participants
    room.leave("p1")
    room.join(1, "p3", "C", "participant")
    assert list(room.participants) == ["p2", "p3"]


def test_leave_forgets_the_participant_and_their_audio() -> None:
    room = Room("demo")
    room.join(0, "p1", "A", "participant")
    room.heard(50, "p1")
    assert room.last_heard_ms == {"p1": 50}
    left = room.leave("p1")
    assert left is not None and left.id == "p1"
    assert room.participants == {} and room.last_heard_ms == {}
    assert room.leave("p1") is None


def test_media_state_and_heard() -> None:
    room = Room("demo")
    room.join(0, "p1", "A", "participant")
    p = room.set_media("p1", audio=False, video=True)
    assert (p.audio, p.video) == (False, True)
    room.set_media("p1", audio=True, video=False)
    assert (room.participants["p1"].audio, room.participants["p1"].video) == (True, False)
    with pytest.raises(KeyError):
        room.set_media("ghost", audio=True, video=True)
    room.heard(10, "p1")
    room.heard(20, "p1")
    assert room.last_heard_ms["p1"] == 20


def test_room_feeds_slot_assignment() -> None:
    room = Room("demo")
    for i, pid in enumerate(["a", "b", "c", "d"]):
        room.join(i, pid, pid.upper(), "participant")
    room.heard(100, "c")
    room.heard(200, "d")
    others = [p for p in room.participants if p != "a"]
    audio = stable_assign([None, None], rank_for_audio(others, room.last_heard_ms))
    assert audio == ["d", "c"]
    room.leave("d")
    others = [p for p in room.participants if p != "a"]
    audio = stable_assign(audio, rank_for_audio(others, room.last_heard_ms))
    assert audio == ["b", "c"]
