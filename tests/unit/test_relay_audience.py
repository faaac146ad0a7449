"""A room's audience across workers (server/relay_decisions.py): each member tells the room's
authority how many listeners it holds, the authority's chairs count them all, and each member
hears how many are on the other workers; a member gone takes its count along."""

from __future__ import annotations

import pytest

from confsfu.conference.meeting import MeetingError

from .relay_workers import Worker, deliver


def test_the_chairs_count_every_worker_s_listeners() -> None:
    home, one, two = Worker(-1, live=False), Worker(0, live=False), Worker(0, live=False)
    workers = {0: home, 1: one, 2: two}
    home.listen(2)
    one.listen(3)
    two.listen(4)
    for now_ms in (0, 100):
        home.decisions.tick(now_ms, frozenset({1, 2}), set())
        one.decisions.tick(now_ms, frozenset({0}), set())
        two.decisions.tick(now_ms, frozenset({0}), set())
        deliver(1, one, workers, now_ms)
        deliver(2, two, workers, now_ms)
        deliver(0, home, workers, now_ms)
    assert [w.meeting.audience.watching for w in (home, one, two)] == [9, 9, 9]
    assert home.meeting.report.audience_peak == 9 and home.counted >= 2
    assert home.meeting.tick(100)[-1:] and home.meeting.audience.next_deadline_ms() is None

    # Unchanged: said again only each second.
    home.decisions.tick(200, frozenset({1, 2}), set())
    one.decisions.tick(200, frozenset({0}), set())
    assert (home.out, one.out) == ([], [])

    # Member two leaves the span: its listeners no longer count; the others hear it.
    one.listen(1)
    one.decisions.tick(300, frozenset({0}), set())
    deliver(1, one, workers, 300)
    home.decisions.tick(300, frozenset({1}), set())
    deliver(0, home, workers, 300)
    assert [w.meeting.audience.watching for w in (home, one)] == [6, 6]

    # The span ended: each worker counts its own.
    one.decisions.close()
    assert one.meeting.audience.watching == 4


def test_a_stranger_s_audience_message_is_ignored_and_a_bad_one_dropped() -> None:
    member = Worker(0, live=False)
    member.listen(1)
    member.decisions.on_room(5, b'{"audience": 7}', 0)  # not the authority: ignored
    member.decisions.on_room(0, b'{"audience": -7}', 0)  # dropped, logged
    member.decisions.on_room(0, b'{"audience": "7"}', 0)
    assert member.meeting.audience.watching == 1
    home = Worker(-1, live=False)
    home.decisions.on_room(1, b'{"events": [{"e": "audience", "n": 2000000}]}', 0)
    home.decisions.on_room(1, b'{"events": [{"e": "audience", "n": 20}]}', 0)
    assert home.meeting.audience.watching == 20


def test_the_room_s_listener_bound_counts_the_other_workers() -> None:
    """`max_listeners` is the room's, not each worker's (or node's): a member that heard of
    listeners elsewhere admits only what is left; stale by at most one count (docs)."""
    home, one = Worker(-1, max_listeners=5, live=False), Worker(0, max_listeners=5, live=False)
    workers = {0: home, 1: one}
    home.listen(3)
    home.decisions.tick(0, frozenset({1}), set())
    deliver(0, home, workers, 0)
    one.listen(2)
    with pytest.raises(MeetingError) as refused:
        one.listen(1)
    assert refused.value.code == "audience_full"
    one.decisions.tick(0, frozenset({0}), set())
    deliver(1, one, workers, 0)
    with pytest.raises(MeetingError):
        home.listen(1)
