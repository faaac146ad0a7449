"""A room's audience across workers (server/relay_decisions.py): each member tells the room's
authority how many listeners it holds, the authority's chairs count them all, and each member
hears how many are on the other workers; a member gone takes its count along."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from confsfu.conference.meeting import Meeting
from confsfu.conference.room import Room
from confsfu.scale import relay_frame as rf
from confsfu.server.relay_decisions import RoomDecisions


class Worker:
    """One worker's side of the room: its meeting and its decisions, frames out in a list."""

    def __init__(self, home: int) -> None:
        self.meeting = Meeting(Room("r", max_participants=6), now_ms=0, unix_ms=0, max_listeners=50)
        media = SimpleNamespace(meeting=self.meeting, room_plan=None, applied_plan=None)
        self.out: list[tuple[int, bytes]] = []
        self.counted = 0
        self.decisions = RoomDecisions(
            3,
            home,
            cast(Any, media),
            lambda peer, frame: self.out.append((peer, frame)),
            lambda now_ms, pid, name: None,
            lambda now_ms, pid: None,
            counted=self.count,
        )

    def count(self) -> None:
        self.counted += 1

    def listen(self, n: int) -> None:
        start = len(self.meeting.audience)
        for i in range(start, start + n):
            self.meeting.admit_listener(0, f"l{i}", "x", None)


def deliver(frm: int, sender: Worker, workers: dict[int, Worker], now_ms: int) -> None:
    for peer, frame in sender.out:
        workers[peer].decisions.on_room(frm, rf.decode(frame).payload, now_ms)
    sender.out.clear()


def test_the_chairs_count_every_worker_s_listeners() -> None:
    home, one, two = Worker(-1), Worker(0), Worker(0)
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
    member = Worker(0)
    member.listen(1)
    member.decisions.on_room(5, b'{"audience": 7}', 0)  # not the authority: ignored
    member.decisions.on_room(0, b'{"audience": -7}', 0)  # dropped, logged
    member.decisions.on_room(0, b'{"audience": "7"}', 0)
    assert member.meeting.audience.watching == 1
    home = Worker(-1)
    home.decisions.on_room(1, b'{"events": [{"e": "audience", "n": 2000000}]}', 0)
    home.decisions.on_room(1, b'{"events": [{"e": "audience", "n": 20}]}', 0)
    assert home.meeting.audience.watching == 20
