"""A room taken over live when its authority's node dies: the rules (scale/takeover.py: a held
page, who promotes and when, what a worker does with a snapshot) as tables, and the merge of
the dead node's snapshot with the follower meeting (conference/adopt.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.adopt import adopt, connected_here
from confsfu.conference.meeting import Meeting
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.slot_plan import RoomPlan
from confsfu.conference.snapshot import capture_json, restore
from confsfu.scale.authority import plan_json
from confsfu.scale.directory import Local, Remote, Wait
from confsfu.scale.takeover import (
    HELD_BYTES,
    HELD_MESSAGES,
    WORKER_HOLD_MS,
    Follow,
    Forget,
    HeldMessages,
    Hold,
    Lost,
    Promote,
    front_step,
    hold_ms,
    hold_over,
    link_ended,
    new_home,
    worker_step,
)
from confsfu.server.relay_decisions import RoomDecisions

LEASE_MS = 3_000
UNIX = 1_700_000_000_000


@pytest.mark.parametrize(
    ("bye", "across_nodes", "closing", "expected"),
    [
        (True, True, False, None),  # the authority said goodbye: the page was told
        (True, False, False, None),
        (False, True, True, None),  # the page's session is ending anyway
        (False, False, True, None),
        (False, False, False, Hold(1_000 + WORKER_HOLD_MS)),  # a worker of this node: held
        (False, True, False, Hold(1_000 + 2 * LEASE_MS + 2_000)),  # another node: held
    ],
)
def test_a_link_that_ended_without_a_bye_is_held(
    bye: bool, across_nodes: bool, closing: bool, expected: object
) -> None:
    got = link_ended(
        bye=bye, across_nodes=across_nodes, closing=closing, now_ms=1_000, lease_ms=LEASE_MS
    )
    assert got == expected


@pytest.mark.parametrize(
    ("adopted", "now_ms", "closed"),
    [
        (False, 9_999, False),  # still waiting
        (False, 10_000, True),  # no promotion in time: 1012, the page comes again
        (True, 10_000, False),  # adopted: the page stays
        (True, 99_999, False),
    ],
)
def test_a_held_page_is_closed_only_if_not_adopted_in_time(
    adopted: bool, now_ms: int, closed: bool
) -> None:
    assert hold_over(Hold(10_000), adopted=adopted, now_ms=now_ms) is closed


@given(st.integers(min_value=0, max_value=600_000))
def test_a_hold_outlasts_the_dead_nodes_lease_and_a_look(lease_ms: int) -> None:
    assert hold_ms(lease_ms) >= lease_ms + 1_000 + 1_000  # lapse, a front's second, slack


@pytest.mark.parametrize(
    ("home_here", "claim_held", "route", "expected"),
    [
        (True, True, Local(fresh=True), Promote()),  # our claim won just now
        (True, True, Local(fresh=False), Promote()),  # held already (a join claimed it)
        (True, False, Local(fresh=False), Follow()),  # Redis unreachable: not a claim
        (True, False, Wait("held by node a"), Follow()),  # the authority lives
        (True, False, Remote("node-a", "10.0.0.1:8080"), Follow()),
        (True, False, Wait("the room's claim is changing hands"), Follow()),  # lost the race
        (False, True, Local(fresh=True), Forget()),  # nothing here to promote
        (False, False, Wait("held by node a"), Forget()),
    ],
)
def test_only_a_node_whose_claim_won_promotes(
    home_here: bool, claim_held: bool, route: Local | Remote | Wait, expected: object
) -> None:
    assert front_step(home_here=home_here, claim_held=claim_held, route=route) == expected


@pytest.mark.parametrize(
    ("authority", "claim_held", "route", "expected"),
    [
        ("node-a", False, Remote("node-a", "10.0.0.1:8080"), Follow()),  # A lives
        ("node-a", False, Remote("node-c", "10.0.0.3:8080"), Lost("node-c")),  # C won
        ("node-a", False, Wait("the room's claim is changing hands"), Follow()),
        ("node-a", True, Local(fresh=True), Promote()),  # this node won
        (None, False, Remote("node-c", "10.0.0.3:8080"), Follow()),  # followed: not known
    ],
)
def test_a_node_that_lost_the_claim_race_knows_it(
    authority: str | None, claim_held: bool, route: Local | Remote | Wait, expected: object
) -> None:
    got = front_step(home_here=True, claim_held=claim_held, route=route, authority=authority)
    assert got == expected


@pytest.mark.parametrize(
    ("follows", "connected", "takeover", "expected"),
    [
        (True, 2, True, "promote"),  # pages here: their media stays
        (True, 0, True, "replace"),  # nobody here: the snapshot's meeting replaces it
        (True, 2, False, "replace"),  # not a takeover: the snapshot is the meeting
        (False, 2, True, "held"),  # the meeting is here already
        (False, 0, False, "held"),
    ],
)
def test_a_worker_promotes_a_follower_with_pages_on_a_takeover(
    follows: bool, connected: int, takeover: bool, expected: str
) -> None:
    got = worker_step(follows=follows, connected=connected, takeover=takeover)
    assert got == expected


# ---- the merge ------------------------------------------------------------------------------


def authority_meeting() -> Meeting:
    """Node A's meeting: Osaka (chair, on A), Kyiv and Lima (on B, over their links)."""
    m = Meeting(Room("east"), now_ms=0, unix_ms=UNIX)
    m.join(0, "osaka", "Osaka", Role.CHAIR, "t-osaka")
    m.join(10, "kyiv", "Kyiv", Role.PARTICIPANT, "t-kyiv")
    m.join(20, "lima", "Lima", Role.PARTICIPANT, "t-lima")
    m.chair(100, "osaka", "grant_floor", target="kyiv")
    m.raise_hand(110, "lima")
    m.chair(120, "osaka", "mute", target="kyiv", kind="audio")
    m.send_chat(130, "osaka", "welcome")
    return m


def follower_meeting() -> Meeting:
    """Node B's follower: its two participants as the authority admitted them (chair mutes
    applied), Osaka a relay mirror."""
    m = Meeting(Room("east"), now_ms=0, unix_ms=UNIX)
    m.join(0, "kyiv", "Kyiv", Role.PARTICIPANT, "t-kyiv")
    m.join(0, "lima", "Lima", Role.PARTICIPANT, "t-lima")
    m.join(0, "osaka", "Osaka", Role.PARTICIPANT, "relay:osaka")
    m.moderation.chair_mute(0, "kyiv", "audio")
    return m


def promoted(follower: Meeting, snapshot: Meeting | None, here: set[str]) -> list[str]:
    restored = None
    if snapshot is not None:
        text = capture_json(snapshot)
        restored = restore(text, room="east", now_ms=5_000, unix_ms=UNIX + 5_000)
    return adopt(follower, restored, connected_here(follower, here), 5_000)


def test_the_follower_becomes_the_meeting_of_the_snapshot_with_its_own_here() -> None:
    follower = follower_meeting()
    same = follower
    assert promoted(follower, authority_meeting(), {"kyiv", "lima"}) == []
    assert follower is same  # the same object: the media plane and sessions hold it
    assert follower.floor.holder == "kyiv" and list(follower.floor.hands) == ["lima"]
    assert follower.moderation.state("kyiv").chair_muted_audio
    assert [m.text for m in follower.chat.history()] == ["welcome"]
    assert follower.role("osaka") == Role.CHAIR  # the snapshot's word, not the mirror's
    assert follower.presence.is_away("osaka")  # comes back resumed, with its token
    assert follower.returning("t-osaka") == "osaka"
    assert not follower.presence.is_away("kyiv") and not follower.presence.is_away("lima")


def test_who_is_heard_carries_on_and_speaking_times_come_from_the_snapshot() -> None:
    snapshot = authority_meeting()
    follower = follower_meeting()
    for t in range(0, 3_000, 20):  # Lima talks: both meetings heard it (every mic is relayed)
        snapshot.on_audio_level(t, "lima", 20, True)
        follower.on_audio_level(t, "lima", 20, True)
    detector = follower.speakers
    spoken = snapshot.speakers.speaking_totals()["lima"]
    snapshot.speakers.remove("lima")  # (a snapshot holds totals only: as if removed)
    assert promoted(follower, snapshot, {"kyiv", "lima"}) == []
    assert follower.speakers is detector and follower.speakers.ranked(3_000)[0] == "lima"
    assert follower.speakers.speaking_totals()["lima"] == spoken  # not counted twice


def test_what_this_worker_applied_after_the_snapshot_wins_for_its_own() -> None:
    follower = follower_meeting()
    follower.moderation.chair_unmute(0, "kyiv", "audio")  # unmuted after the last snapshot
    follower.room.set_media("lima", False, True)  # Lima switched its microphone off
    assert promoted(follower, authority_meeting(), {"kyiv", "lima"}) == []
    assert not follower.moderation.state("kyiv").chair_muted_audio
    assert follower.room.participants["lima"].audio is False


def test_one_who_joined_after_the_snapshot_joins_now() -> None:
    follower = follower_meeting()
    follower.join(0, "quito", "Quito", Role.PARTICIPANT, "t-quito")
    assert promoted(follower, authority_meeting(), {"kyiv", "lima", "quito"}) == []
    assert "quito" in follower.room.participants and not follower.presence.is_away("quito")
    assert follower.floor.holder == "kyiv"


def test_one_the_meeting_refuses_is_said_so() -> None:
    snapshot = authority_meeting()
    snapshot.chair(140, "osaka", "lock")
    follower = follower_meeting()
    follower.join(0, "quito", "Quito", Role.PARTICIPANT, "t-quito")  # not let in by A
    assert promoted(follower, snapshot, {"kyiv", "lima", "quito"}) == ["quito"]
    assert "quito" not in follower.room.participants


def test_without_a_snapshot_the_follower_keeps_its_own_state() -> None:
    follower = follower_meeting()
    assert promoted(follower, None, {"kyiv", "lima"}) == []
    assert set(follower.room.participants) == {"kyiv", "lima", "osaka"}
    assert follower.moderation.state("kyiv").chair_muted_audio


# ---- a member's plan while its pages are held --------------------------------------------------


def test_a_member_whose_authority_died_plans_itself_and_ignores_late_plans() -> None:
    meeting = Meeting(Room("east"), now_ms=0, unix_ms=UNIX)
    meeting.join(0, "lima", "Lima", Role.PARTICIPANT, "t-lima")
    reassigned: list[int] = []
    media = SimpleNamespace(
        meeting=meeting,
        room_plan=None,
        applied_plan=None,
        reassign_gradually=lambda: reassigned.append(1),
    )
    decisions = RoomDecisions(
        1, 64, cast(Any, media), lambda *_: None, lambda *_: None, lambda *_: None
    )
    plan = RoomPlan(meeting.stage(0), meeting.lineup(0, ["lima"], ["lima"]), 3, 4)
    frame = json.dumps({"plan": plan_json(plan)}).encode()
    decisions.on_room(64, frame, 0)
    assert media.applied_plan() == plan  # following the authority's plan
    assert decisions.orphan() is True and media.applied_plan() is None  # planned here now
    assert decisions.orphan() is False  # once
    decisions.on_room(64, frame, 100)  # a late plan of the dead authority: not applied
    assert media.applied_plan() is None
    authority = RoomDecisions(
        1, -1, cast(Any, media), lambda *_: None, lambda *_: None, lambda *_: None
    )
    assert authority.orphan() is False  # an authority has nobody to follow


@pytest.mark.parametrize(
    ("members", "dead", "expected"),
    [
        ({}, set(), None),  # no member: the room waits for a join (its snapshot restored)
        ({1: 3}, set(), 1),
        ({1: 3}, {1}, None),  # the only member died too
        ({1: 2, 2: 5}, set(), 2),  # the most connections: the fewest pages move
        ({1: 5, 2: 5}, set(), 1),  # equals: the lowest index
        ({2: 5, 1: 5}, set(), 1),  # (whatever the order)
        ({1: 2, 2: 5}, {2}, 1),  # a dead member is never picked
        ({1: 0, 2: 0}, set(), 1),  # members whose pages all left: still live parts
    ],
)
def test_a_dead_home_worker_s_room_goes_to_a_live_member(
    members: dict[int, int], dead: set[int], expected: int | None
) -> None:
    assert new_home(members, lambda i: i not in dead) == expected


def test_held_messages_are_kept_in_order_up_to_their_bounds() -> None:
    held = HeldMessages()
    texts = [json.dumps({"type": "chat_send", "text": f"m{i}"}) for i in range(HELD_MESSAGES)]
    assert all(held.offer(t) for t in texts)
    assert not held.offer(texts[0]) and held.refused == 1  # the count's bound
    assert held.take() == texts and len(held) == 0 and held.take() == []
    big = "x" * (HELD_BYTES // 2)
    assert held.offer(big) and held.offer(big)
    assert not held.offer("y") and held.refused == 2  # the bytes' bound
    assert held.take() == [big, big]
    assert held.offer("y")  # room again once taken


@given(st.lists(st.text(max_size=5_000), max_size=100))
def test_held_messages_never_exceed_their_bounds(texts: list[str]) -> None:
    held = HeldMessages()
    taken = [t for t in texts if held.offer(t)]
    assert len(held) <= HELD_MESSAGES
    assert sum(len(t.encode()) for t in taken) <= HELD_BYTES
    assert held.refused == len(texts) - len(taken)
    assert held.take() == taken
