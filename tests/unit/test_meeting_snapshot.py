"""The meeting snapshot: captured, encoded and restored, a meeting carries on as it was; a
garbled or hostile snapshot is refused with SnapshotError and nothing else."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confsfu.conference import chat
from confsfu.conference.meeting import Meeting, MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.snapshot import capture, capture_json, ended, restore
from confsfu.conference.snapshot_model import MAX_SNAPSHOT_BYTES, SnapshotError, parse

UNIX = 1_700_000_000_000  # the first worker's clock: now_ms 0 is this
LATER = 5_000_000  # the next home's monotonic clock at the same instant (another process)
GRACE = 30_000


def new_meeting(scheduled_minutes: int | None = 60) -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=UNIX, scheduled_minutes=scheduled_minutes)
    m.join(0, "chair", "Los Angeles", Role.CHAIR, "t-chair")
    m.join(10, "a", "Seoul", Role.PARTICIPANT, "t-a")
    m.join(20, "b", "Lima", Role.PARTICIPANT, "t-b")
    m.join(30, "c", "Oslo", Role.PARTICIPANT, "guest:key-c")
    return m


def carried_on(m: Meeting, at_ms: int) -> Meeting:
    """`m` through JSON to a next home whose clock reads LATER + at_ms at m's `at_ms`."""
    text = capture_json(m)
    return restore(
        text, room="council", now_ms=LATER + at_ms, unix_ms=UNIX + at_ms, reconnect_grace_ms=GRACE
    )


# ---- what a meeting went through, as a table ---------------------------------------------------


def floor_and_hands(m: Meeting) -> None:
    m.chair(100, "chair", "grant_floor", target="a", limit_s=120)
    m.raise_hand(200, "c")
    m.raise_hand(300, "b")


def mutes(m: Meeting) -> None:
    m.chair(100, "chair", "mute", target="b", kind="audio")
    m.chair(110, "chair", "mute", target="c", kind="video")
    m.request_unmute(120, "b", "audio")
    m.set_own_media("a", audio=False, video=True)


def chat_and_moderation(m: Meeting) -> None:
    m.send_chat(100, "a", "hello")
    m.send_chat(110, "chair", "welcome, all")
    m.send_chat(120, "b", "=1+1")
    m.chair(130, "chair", "remove_chat", message_id=3)
    m.chair(140, "chair", "chat_off")
    m.chair(150, "chair", "lock")
    m.chair(160, "chair", "extend", minutes=30)


def comings_and_goings(m: Meeting) -> None:
    m.chair(100, "chair", "grant_floor", target="b")
    m.chair(150, "chair", "mute", target="c", kind="audio")
    m.leave(200, "c")  # its mute stays with its token
    m.leave(300, "b")  # the floor goes with it
    m.join(400, "d", "Nairobi", Role.PARTICIPANT, "t-d")
    m.chair(500, "chair", "make_presenter", target="d")
    m.on_audio_level(600, "d", 20, True)
    m.on_audio_level(700, "d", 20, True)


def removal(m: Meeting) -> None:
    m.chair(100, "chair", "remove", target="b")
    m.leave(110, "b")


def nothing(m: Meeting) -> None:
    pass


SCRIPTS: list[Callable[[Meeting], None]] = [
    nothing,
    floor_and_hands,
    mutes,
    chat_and_moderation,
    comings_and_goings,
    removal,
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda f: f.__name__)
def test_a_snapshot_round_trips_exactly(script: Callable[[Meeting], None]) -> None:
    m = new_meeting()
    script(m)
    before = capture(m)
    json.dumps(before)  # a JSON value
    again = capture(carried_on(m, 1_000))
    assert again == before


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda f: f.__name__)
def test_the_next_home_carries_on_the_same_meeting(script: Callable[[Meeting], None]) -> None:
    m = new_meeting()
    script(m)
    r = carried_on(m, 1_000)
    assert list(r.room.participants) == list(m.room.participants)
    assert all(r.presence.is_away(p) for p in r.room.participants)
    for pid in m.room.participants:
        token = m._tokens[pid]
        assert r.returning(token) == pid  # the same token comes back as the same participant
        assert r.moderation.state(pid) == m.moderation.state(pid)
        assert r.role(pid) == m.role(pid)
    assert (r.floor.holder, r.floor.hands, r.floor.presenter) == (
        m.floor.holder,
        m.floor.hands,
        m.floor.presenter,
    )
    shift = LATER  # monotonic times move by the clocks' difference, unix times stay
    if m.floor.until_ms is not None:
        assert r.floor.until_ms == m.floor.until_ms + shift
    assert [c.text for c in r.chat.history()] == [c.text for c in m.chat.history()]
    assert r.chat.enabled == m.chat.enabled
    assert r.moderation.locked == m.moderation.locked
    end = m.moderation.scheduled_end_ms
    assert r.moderation.scheduled_end_ms == (None if end is None else end + shift)
    assert r.report.to_dict(900 + shift) == m.report.to_dict(900)
    assert r.report.full_csv(900 + shift) == m.report.full_csv(900)


def test_participants_come_back_and_carry_on() -> None:
    m = new_meeting()
    floor_and_hands(m)
    mutes(m)
    r = carried_on(m, 1_000)
    now = LATER + 2_000
    for pid in ("chair", "a", "b"):
        r.come_back(now, pid)
    assert not r.may_forward("b", "audio")  # the chair's mute held
    r.chair(now, "chair", "unmute", target="b", kind="audio")
    r.chair(now, "chair", "grant_floor", target="c")  # from the hand queue
    assert r.floor.holder == "c" and r.floor.hands == ("b",)
    r.send_chat(now, "a", "still here")
    assert r.chat.history()[-1].id == 1
    # c never came back: its grace ends and it leaves as anyone would (floor and all)
    events = r.tick(LATER + 1_000 + GRACE + 1)
    assert "c" not in r.room.participants and r.floor.holder is None, events
    summary = {s.pid: s for s in r.report.attendees()}
    assert summary["c"].left_ms is not None and summary["a"].left_ms is None


def test_a_floor_time_limit_runs_on_across_the_restart() -> None:
    m = new_meeting()
    m.chair(0, "chair", "grant_floor", target="a", limit_s=60)
    r = carried_on(m, 30_000)
    assert r.next_deadline_ms() is not None
    assert r.tick(LATER + 59_999) == [] or r.floor.holder == "a"
    r.tick(LATER + 60_000)
    assert r.floor.holder is None


def test_a_mute_of_someone_away_and_a_removal_hold_after_the_restart() -> None:
    m = new_meeting()
    m.chair(1, "chair", "mute", target="c", kind="audio")
    m.leave(2, "c")
    m.chair(3, "chair", "remove", target="b")
    m.leave(4, "b")
    r = carried_on(m, 10)
    r.join(LATER + 20, "c2", "Oslo", Role.PARTICIPANT, "guest:key-c")
    assert not r.may_forward("c2", "audio")
    with pytest.raises(MeetingError) as refused:
        r.join(LATER + 20, "b2", "Lima", Role.PARTICIPANT, "t-b")
    assert refused.value.code == "removed"


def test_an_ended_meeting_is_said_so() -> None:
    m = new_meeting()
    assert not ended(capture(m))
    m.chair(5, "chair", "end")
    assert ended(capture(m))


# ---- bounds ----------------------------------------------------------------------------------


def test_the_fullest_meeting_stays_under_the_bound() -> None:
    """Every chat message as long as allowed, in four-byte characters; chair actions, grants,
    comings and goings beyond what a snapshot keeps: it still encodes, under the bound."""
    m = Meeting(Room("council", max_participants=1000), now_ms=0, unix_ms=UNIX)
    m.chat = chat.Chat(rate_count=1_000_000)
    m.join(0, "chair", "C" * 64, Role.CHAIR, "t-chair")
    for i in range(100):
        m.join(1, f"p{i}", "N" * 64, Role.PARTICIPANT, f"t-{i}" + "x" * 200)
    t = 2
    for i in range(3_000):
        m.send_chat(t, f"p{i % 100}", "\U0001f600" * chat.MAX_CHARS)
        t += 1
    for i in range(2_500):
        m.chair(t, "chair", "grant_floor", target=f"p{i % 100}")
        t += 1
    for _ in range(30):  # sessions beyond what a snapshot keeps
        for i in range(100):
            m.connection_lost(t, f"p{i}")
            m.leave(t, f"p{i}")
            m.join(t + 1, f"p{i}", "N" * 64, Role.PARTICIPANT, f"t-{i}" + "x" * 200)
        t += 2
    text = capture_json(m)
    assert len(text.encode()) < MAX_SNAPSHOT_BYTES
    value = json.loads(text)
    assert value["report"]["omitted"]["chat"] > 0 and value["report"]["omitted"]["grants"] > 0
    r = restore(text, room="council", now_ms=t, unix_ms=UNIX + t, max_participants=1000)
    assert len(r.room.participants) == 101
    assert capture(r) == value


def test_too_large_another_version_another_room_and_not_json_are_refused() -> None:
    value = capture(new_meeting())
    with pytest.raises(SnapshotError, match="at most"):
        parse(" " * (MAX_SNAPSHOT_BYTES + 1))
    with pytest.raises(SnapshotError, match="version 2"):
        restore({**value, "version": 2}, room="council", now_ms=0, unix_ms=UNIX)
    with pytest.raises(SnapshotError, match="of room"):
        restore(value, room="annex", now_ms=0, unix_ms=UNIX)
    with pytest.raises(SnapshotError, match="JSON"):
        restore("{not json", room="council", now_ms=0, unix_ms=UNIX)
    with pytest.raises(SnapshotError, match="JSON"):
        restore(object(), room="council", now_ms=0, unix_ms=UNIX)
    for deep in ("[" * 100_000, '{"a":' * 100_000, [[[[[[[[[[]]]]]]]]]] * 3):
        with pytest.raises(SnapshotError):
            restore(deep, room="council", now_ms=0, unix_ms=UNIX)


def _set(value: dict[str, Any], path: tuple[str | int, ...], new: Any) -> dict[str, Any]:
    out = copy.deepcopy(value)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return out


CONTRADICTIONS = [
    (("floor", "holder"), "zz"),
    (("floor", "presenter"), "zz"),
    (("floor", "hands"), [{"pid": "a", "raised_unix_ms": UNIX}] * 2),
    (("floor", "until_unix_ms"), UNIX),  # a time limit, nobody holding the floor
    (("participants", 1, "pid"), "chair"),
    (("participants", 1, "unmute_requested"), ["audio"]),  # not muted
    (("chat", "next_id"), 1),
    (("report", "attendees"), []),  # the present not attending
    (("participants", 0, "role"), "listener"),
    (("chat", "history", 0, "text"), ""),
    (("report", "grants"), [{"pid": "a", "start_unix_ms": UNIX, "end_unix_ms": None}]),
]


@pytest.mark.parametrize(("path", "new"), CONTRADICTIONS)
def test_a_snapshot_contradicting_itself_is_refused(path: tuple[Any, ...], new: Any) -> None:
    m = new_meeting()
    m.send_chat(1, "a", "hi")
    value = capture(m)
    with pytest.raises(SnapshotError):
        restore(_set(value, path, new), room="council", now_ms=0, unix_ms=UNIX)


# ---- hostile snapshots -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


BASE = new_meeting()
floor_and_hands(BASE)
mutes(BASE)
chat_and_moderation(BASE)
BASE_VALUE = capture(BASE)
BASE_PATHS = _paths(BASE_VALUE)


def _survives(meeting: Meeting) -> None:
    """A restored meeting takes what a room does to it without raising."""
    meeting.tick(LATER + 1)
    for pid in list(meeting.room.participants)[:2]:
        with contextlib.suppress(MeetingError):  # the meeting has ended: refused, as documented
            meeting.come_back(LATER + 2, pid)
    meeting.tick(LATER + 10**9)
    for pid in list(meeting.room.participants):
        meeting.leave(LATER + 10**9, pid)
    meeting.report.to_json()
    meeting.report.full_csv()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(path=st.sampled_from(BASE_PATHS), new=json_values)
def test_a_garbled_snapshot_raises_only_snapshot_error(path: tuple[Any, ...], new: Any) -> None:
    garbled = _set(BASE_VALUE, path, new)
    try:
        meeting = restore(garbled, room="council", now_ms=LATER, unix_ms=UNIX)
    except SnapshotError:
        return
    _survives(meeting)


@settings(max_examples=200, deadline=None)
@given(value=json_values | st.binary(max_size=64) | st.text(max_size=64))
def test_arbitrary_values_raise_only_snapshot_error(value: Any) -> None:
    with pytest.raises(SnapshotError):
        restore(value, room="council", now_ms=LATER, unix_ms=UNIX)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(json.dumps(BASE_VALUE)) - 1))
def test_a_truncated_snapshot_raises_only_snapshot_error(cut: int) -> None:
    with pytest.raises(SnapshotError):
        restore(json.dumps(BASE_VALUE)[:cut], room="council", now_ms=LATER, unix_ms=UNIX)


def _mutate(value: dict[str, Any], rng: Any) -> dict[str, Any]:
    """A snapshot with a few keys gone, list items repeated, numbers and strings changed."""
    out = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(out))
        node: Any = out
        for key in path[:-1]:
            node = node[key]
        last, roll = path[-1], rng.random()
        if isinstance(node, dict) and roll < 0.3:
            del node[last]
        elif isinstance(node, list) and roll < 0.6:
            node.insert(last, copy.deepcopy(node[last]))
        elif isinstance(node[last], int) and not isinstance(node[last], bool):
            node[last] = rng.choice([0, -1, 1 << 53, node[last] + 1, node[last] - 10**12])
        elif isinstance(node[last], str):
            node[last] = rng.choice(["", "a", "chair", "x" * 5000, node[last] + "x"])
    return out


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_a_mutated_snapshot_raises_only_snapshot_error(rng: Any) -> None:
    try:
        meeting = restore(_mutate(BASE_VALUE, rng), room="council", now_ms=LATER, unix_ms=UNIX)
    except SnapshotError:
        return
    _survives(meeting)
