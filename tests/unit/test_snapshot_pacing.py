"""The worker's snapshot pacer and the front's snapshot store (confsfu.scale.snapshots)."""

from __future__ import annotations

import pytest

from confsfu.scale.snapshots import COST_FACTOR, SnapshotPacer, SnapshotStore

# (what happens, at ms, then: the rooms due at that moment)
PACING = [
    ([("changed", "a", 0)], 0, ["a"]),
    ([("changed", "a", 0), ("sent", "a", 0), ("changed", "a", 10)], 10, []),
    ([("changed", "a", 0), ("sent", "a", 0), ("changed", "a", 10)], 250, ["a"]),
    ([("changed", "a", 0), ("sent", "a", 0)], 1_000, []),  # no change: nothing goes
    ([("changed", "a", 0), ("changed", "b", 5), ("sent", "a", 5)], 5, ["b"]),
    ([("changed", "a", 0), ("forget", "a", 0)], 0, []),
    ([("changed", "a", 0), ("sent", "a", 0), ("all", "a", 1)], 1, ["a"]),  # the front is back
]


@pytest.mark.parametrize(("steps", "at", "due"), PACING)
def test_pacing(steps: list[tuple[str, str, int]], at: int, due: list[str]) -> None:
    pacer = SnapshotPacer(min_interval_ms=250)
    for what, room, now in steps:
        if what == "changed":
            pacer.changed(room, now)
        elif what == "sent":
            pacer.sent(room, now, cost_ms=1.0)
        elif what == "forget":
            pacer.forget(room)
        else:
            pacer.all_changed([room], now)
    assert pacer.due(at) == due


def test_a_costly_snapshot_goes_less_often_and_changes_ride_together() -> None:
    pacer = SnapshotPacer(min_interval_ms=250)
    pacer.changed("a", 0)
    pacer.sent("a", 0, cost_ms=50.0)  # 50 ms of the loop: the next no sooner than 2 s
    for t in range(10, 1_900, 10):
        pacer.changed("a", t)
    assert pacer.next_deadline_ms() == 50 * COST_FACTOR == 2_000
    assert pacer.due(1_999) == [] and pacer.due(2_000) == ["a"]


def store(keep_ms: int = 1_000) -> SnapshotStore:
    return SnapshotStore(["east", "west"], max_bytes=100, keep_ms=keep_ms)


def test_the_store_keeps_configured_rooms_within_the_bound() -> None:
    s = store()
    assert s.keep("east", "{}", 1)
    assert not s.keep("nowhere", "{}", 1)
    assert not s.keep("west", "x" * 101, 1)
    assert list(s.rooms()) == ["east"]
    s.forget("east")
    assert s.rooms() == {}


def test_a_dead_workers_rooms_wait_for_their_next_home_once() -> None:
    s = store()
    s.keep("east", "A", 1)
    assert s.waiting("east") is None
    assert s.lost(["east", "west"], now_ms=0) == ["east"]  # west had no snapshot
    text = s.waiting("east")
    assert text == "A" and s.rooms()["east"]["state"] == "waiting"
    s.restored("east", text)
    assert s.waiting("east") is None and s.rooms()["east"]["state"] == "kept"


def test_a_newer_snapshot_is_not_cleared_by_handing_over_an_older() -> None:
    s = store()
    s.keep("east", "A", 1)
    s.lost(["east"], 0)
    old = s.waiting("east")
    assert old is not None
    s.keep("east", "B", 2)  # the next home's own
    s.lost(["east"], 5)  # ... which died too
    s.restored("east", old)
    assert s.waiting("east") == "B"


def test_a_snapshot_waiting_too_long_is_dropped() -> None:
    s = store(keep_ms=1_000)
    s.keep("east", "A", 1)
    s.keep("west", "B", 1)
    s.lost(["east"], 0)
    assert s.expire(999) == []
    assert s.expire(1_000) == ["east"]
    assert list(s.rooms()) == ["west"]  # a kept one (its worker lives) never expires
