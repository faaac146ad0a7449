"""The Meeting core: permissions, refusals that change nothing, stage, who is heard and seen."""

from __future__ import annotations

import json

import pytest

from confsfu.conference.meeting import CHAIR_ACTIONS, Meeting, MeetingError, ParticipantRemoved
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room


def meeting(**kwargs: int) -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=1_700_000_000_000, **kwargs)
    m.join(0, "chair", "Los Angeles", Role.CHAIR, "t-chair")
    m.join(0, "a", "Seoul", Role.PARTICIPANT, "t-a")
    m.join(0, "b", "Lima", Role.PARTICIPANT, "t-b")
    return m


def snapshot(m: Meeting) -> tuple[object, ...]:
    return (
        m.floor.state,
        m.floor.holder,
        m.floor.hands,
        m.floor.presenter,
        m.moderation.locked,
        m.moderation.scheduled_end_ms,
        m.moderation.ended,
        tuple(m.moderation.state(p) for p in m.room.participants),
        tuple(m.room.participants),
    )


@pytest.mark.parametrize("command", sorted(CHAIR_ACTIONS))
def test_every_chair_action_by_a_participant_is_refused_and_changes_nothing(command: str) -> None:
    m = meeting(scheduled_minutes=45)
    before = snapshot(m)
    with pytest.raises(MeetingError) as refused:
        m.chair(10, "a", command, target="b", kind="audio", limit_s=60, minutes=15)
    assert refused.value.code == "forbidden"
    assert "participant may not" in refused.value.message
    assert snapshot(m) == before


def test_chair_mute_blocks_forwarding_and_only_a_chair_lifts_it() -> None:
    m = meeting()
    m.chair(1, "chair", "mute", target="a", kind="audio")
    assert not m.may_forward("a", "audio") and m.may_forward("a", "video")
    m.set_own_media("a", audio=True, video=True)  # the participant's own switch changes nothing
    assert not m.may_forward("a", "audio")
    m.request_unmute(2, "a", "audio")
    assert m.moderation.state("a").audio_unmute_requested
    with pytest.raises(MeetingError):
        m.chair(3, "a", "unmute", target="a", kind="audio")
    m.chair(4, "chair", "unmute", target="a", kind="audio")
    assert m.may_forward("a", "audio")


def test_mute_all_spares_the_floor_holder_and_chairs() -> None:
    m = meeting()
    m.chair(1, "chair", "grant_floor", target="b")
    m.chair(2, "chair", "mute_all")
    assert not m.may_forward("a", "audio")
    assert m.may_forward("b", "audio") and m.may_forward("chair", "audio")


def test_stage_prefers_screen_then_floor_then_speaker() -> None:
    m = meeting()
    assert m.stage(0).pid is None
    for t in range(0, 2500, 20):
        m.on_audio_level(t, "a", 20, voice=True)
    m.tick(2500)
    assert (m.stage(2500).pid, m.stage(2500).kind) == ("a", "speaker")
    m.chair(2600, "chair", "grant_floor", target="b", limit_s=30)
    assert (m.stage(2600).pid, m.stage(2600).kind) == ("b", "floor")
    m.chair(2700, "chair", "make_presenter", target="a")
    m.start_screen("a")
    assert (m.stage(2700).pid, m.stage(2700).kind) == ("a", "screen")
    m.stop_screen("a")
    assert m.stage(2800).kind == "floor"
    m.tick(2600 + 30_000)  # the grant expires
    assert m.floor.holder is None


def test_screen_share_needs_presenter_floor_or_chair() -> None:
    m = meeting()
    with pytest.raises(MeetingError) as refused:
        m.start_screen("a")
    assert refused.value.code == "forbidden"
    m.start_screen("chair")
    m.chair(1, "chair", "grant_floor", target="a")
    m.start_screen("a")
    assert m.screens == {"chair", "a"}


def test_audio_goes_to_floor_holder_first_then_loudest() -> None:
    m = meeting()
    for pid in ("d", "e", "f"):
        m.join(0, pid, pid.upper(), Role.PARTICIPANT, f"t-{pid}")
    for t in range(0, 1000, 20):
        for pid, level in (("a", 10), ("d", 20), ("e", 30), ("f", 40)):
            m.on_audio_level(t, pid, level, voice=True)
    everyone = ["chair", "a", "b", "d", "e", "f"]
    assert m.lineup(1000, everyone, ()).audio_for("chair", 3) == ["a", "d", "e"]
    m.chair(1000, "chair", "grant_floor", target="b")  # silent, but holds the floor
    assert m.lineup(1000, everyone, ()).audio_for("chair", 3) == ["b", "a", "d"]
    m.chair(1000, "chair", "mute", target="a", kind="audio")
    assert "a" not in m.lineup(1000, everyone, ()).audio_for("chair", 3)
    assert "b" not in m.lineup(1000, everyone, ()).audio_for("b", 3)  # nobody hears themselves


def test_grid_pages_order_by_recent_speech() -> None:
    m = meeting()
    for i in range(5):
        m.join(0, f"p{i}", f"City {i}", Role.PARTICIPANT, f"t{i}")
    m.on_audio_level(100, "p3", 20, voice=True)
    everyone = list(m.room.participants)
    first = m.lineup(100, (), everyone).grid_for("chair", 0, 3)
    assert first[0] == "p3" and len(first) == 3
    second = m.lineup(100, (), everyone).grid_for("chair", 1, 3)
    assert not set(first) & set(second)
    assert m.lineup(100, (), everyone).grid_for("chair", 99, 3) == m.lineup(
        100, (), everyone
    ).grid_for("chair", 2, 3)


def test_removed_token_cannot_rejoin_and_lock_holds_participants_out() -> None:
    m = meeting()
    assert m.chair(1, "chair", "remove", target="a") == [ParticipantRemoved("a")]
    m.leave(2, "a")
    with pytest.raises(MeetingError) as refused:
        m.join(3, "a2", "Seoul", Role.PARTICIPANT, "t-a")
    assert refused.value.code == "removed"
    m.chair(4, "chair", "lock")
    with pytest.raises(MeetingError) as locked:
        m.join(5, "x", "Quito", Role.PARTICIPANT, "t-x")
    assert locked.value.code == "room_locked"
    m.join(6, "chair2", "Paris", Role.CHAIR, "t-c2")  # a chair may still come in


def test_schedule_extends_and_the_chair_ends_the_meeting() -> None:
    m = meeting(scheduled_minutes=45)
    assert m.moderation.scheduled_end_ms == 45 * 60_000
    m.chair(10, "chair", "extend", minutes=25)
    assert m.moderation.scheduled_end_ms == 70 * 60_000
    assert m.tick(70 * 60_000 + 1)  # overtime is announced, the meeting goes on
    assert not m.moderation.ended
    m.chair(71 * 60_000, "chair", "end")
    assert m.moderation.ended
    with pytest.raises(MeetingError) as refused:
        m.join(72 * 60_000, "late", "Oslo", Role.PARTICIPANT, "t-late")
    assert refused.value.code == "meeting_ended"


def test_report_records_floor_and_leaves() -> None:
    m = meeting()
    m.chair(1000, "chair", "grant_floor", target="a")
    m.chair(61_000, "chair", "revoke_floor")
    m.leave(62_000, "b")
    data = m.report.to_dict(70_000)
    (grant,) = data["floor_grants"]
    assert (grant["holder"], grant["duration_ms"], grant["ended_by"]) == ("a", 60_000, "revoked")
    lima = next(p for p in data["participants"] if p["id"] == "b")
    assert lima["present_ms"] == 62_000
    assert [a["action"] for a in data["chair_actions"]] == ["grant_floor", "revoke_floor"]
    csv_text = m.report.to_csv(70_000)
    assert "Seoul" in csv_text and "Lima" in csv_text


def test_unknown_target_is_refused() -> None:
    m = meeting()
    with pytest.raises(MeetingError) as refused:
        m.chair(1, "chair", "grant_floor", target="nobody")
    assert refused.value.code == "no_such_participant"


# ---- an empty meeting ends ----------------------------------------------------------------------

EMPTY_AFTER_MS = 60_000


@pytest.mark.parametrize(
    ("steps", "now_ms", "ends"),
    [
        # (who leaves or joins at which time), when we look, whether the meeting ends then
        ([("leave", "chair", 10), ("leave", "a", 20), ("leave", "b", 30)], 30 + 59_999, False),
        ([("leave", "chair", 10), ("leave", "a", 20), ("leave", "b", 30)], 30 + 60_000, True),
        ([("leave", "chair", 10), ("leave", "a", 20)], 10_000_000, False),  # b is still in
        # someone came back in between: the wait starts again from the room's last emptying
        (
            [
                ("leave", "chair", 1),
                ("leave", "a", 2),
                ("leave", "b", 3),
                ("join", "c", 50_000),
                ("leave", "c", 70_000),
            ],
            3 + 60_000,
            False,
        ),
        (
            [
                ("leave", "chair", 1),
                ("leave", "a", 2),
                ("leave", "b", 3),
                ("join", "c", 50_000),
                ("leave", "c", 70_000),
            ],
            70_000 + 60_000,
            True,
        ),
    ],
)
def test_a_meeting_ends_once_nobody_has_been_in_it_for_the_wait(
    steps: list[tuple[str, str, int]], now_ms: int, ends: bool
) -> None:
    m = meeting()
    for step, pid, at_ms in steps:
        if step == "leave":
            m.leave(at_ms, pid)
        else:
            m.join(at_ms, pid, "Quito", Role.PARTICIPANT, f"t-{pid}")
    events = m.end_if_empty(now_ms, EMPTY_AFTER_MS)
    assert bool(events) is ends
    assert m.moderation.ended is ends
    if ends:
        assert m.empty_end_ms(EMPTY_AFTER_MS) is None  # ended once, never again
        assert m.end_if_empty(now_ms + 1, EMPTY_AFTER_MS) == []
        assert json.loads(m.report.to_json(now_ms))["ended"] is not None


def test_a_meeting_that_ended_empty_admits_nobody_and_a_new_room_is_made_by_the_hub() -> None:
    m = meeting()
    for pid in ("chair", "a", "b"):
        m.leave(5, pid)
    assert m.empty_end_ms(EMPTY_AFTER_MS) == 5 + EMPTY_AFTER_MS
    m.end_if_empty(5 + EMPTY_AFTER_MS, EMPTY_AFTER_MS)
    with pytest.raises(MeetingError) as refused:
        m.join(5 + EMPTY_AFTER_MS, "d", "Accra", Role.PARTICIPANT, "t-d")
    assert refused.value.code == "meeting_ended"


def test_a_new_meeting_that_nobody_joins_ends_too() -> None:
    m = Meeting(Room("council"), now_ms=1_000, unix_ms=1_700_000_000_000)
    assert m.empty_end_ms(EMPTY_AFTER_MS) == 1_000 + EMPTY_AFTER_MS
    m.join(2_000, "a", "Seoul", Role.PARTICIPANT, "t-a")
    assert m.empty_end_ms(EMPTY_AFTER_MS) is None
    assert m.end_if_empty(10_000_000, EMPTY_AFTER_MS) == []


def test_the_floor_holder_leaves_after_the_end() -> None:
    """The end closed the grant in the report; the holder's leaving then must not raise."""
    m = meeting()
    m.chair(1, "chair", "grant_floor", target="a")
    m.chair(2, "chair", "end")
    m.leave(3, "a")
    grants = json.loads(m.report.to_json())["floor_grants"]
    assert [g["ended_by"] for g in grants] == ["meeting ended"]


@pytest.mark.parametrize(
    ("case", "a_stops_at", "read_until", "c_talks", "now", "heard_after"),
    [
        # A listener with two audio slots hears a and b; c talks as loud as they do.
        ("everyone talking: the heard keep their slots", 10**9, 10**9, True, 2_000, ["a", "b"]),
        ("a pauses 0.7 s: a keeps the slot", 1_300, 10**9, True, 2_000, ["a", "b"]),
        ("a silent 1.6 s: c gets the slot", 1_000, 10**9, True, 2_600, ["b", "c"]),
        ("nothing read for 1.2 s (a stalled server)", 10**9, 800, True, 2_000, ["a", "b"]),
        ("a silent 1.6 s, nobody else talks: a's slot is free", 1_000, 10**9, False, 2_600, ["b"]),
    ],
)
def test_a_heard_talker_keeps_the_audio_slot_through_a_pause(
    case: str, a_stops_at: int, read_until: int, c_talks: bool, now: int, heard_after: list[str]
) -> None:
    m = meeting()
    m.join(0, "c", "C", Role.PARTICIPANT, "t-c")
    for t in range(0, min(now, read_until), 20):
        for pid, talking in (("a", t < a_stops_at), ("b", True), ("c", c_talks)):
            m.on_audio_level(t, pid, 30 if talking else 127, voice=talking)
    lineup = m.lineup(now, ["a", "b", "c"], ())
    assert sorted(lineup.audio_for(None, 2, heard={"a", "b"})) == heard_after, case
