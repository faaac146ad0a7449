"""The Meeting core: permissions, refusals that change nothing, stage, who is heard and seen."""

from __future__ import annotations

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
