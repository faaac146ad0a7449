"""The placement core: a room's home worker, load, dead workers, bounds, forgetting."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.scale.placement import Placement, Refused, Ticket


def started(workers: int = 2, *, max_rooms: int = 8, linger_ms: int = 1000) -> Placement:
    p = Placement(workers, max_rooms=max_rooms, linger_ms=linger_ms)
    for i in range(workers):
        p.worker_started(i)
    return p


# (steps, expected homes): a step is ("place", room) or ("left", room) (its latest ticket),
# ("died", worker), ("started", worker), ("report", worker, rooms), ("expire",), ("at", ms).
CASES: list[tuple[str, int, list[tuple[Any, ...]], dict[str, int]]] = [
    ("first room on the lowest index", 2, [("place", "a")], {"a": 0}),
    ("second room on the other worker", 2, [("place", "a"), ("place", "b")], {"a": 0, "b": 1}),
    (
        "a room stays home whatever the load",
        2,
        [("place", "a"), ("place", "b"), ("place", "a"), ("place", "a"), ("place", "b")],
        {"a": 0, "b": 1},
    ),
    (
        "the least loaded takes a new room",
        2,
        [("place", "a"), ("place", "a"), ("place", "b"), ("place", "c")],
        {"a": 0, "b": 1, "c": 1},
    ),
    (
        "ties by connections go to fewer rooms",
        3,
        [("place", "a"), ("left", "a"), ("place", "b"), ("place", "c"), ("place", "d")],
        {"a": 0, "b": 1, "c": 2, "d": 0},
    ),
    (
        "a dead worker's rooms go to a live one",
        2,
        [("place", "a"), ("place", "b"), ("died", 0), ("place", "a")],
        {"a": 1, "b": 1},
    ),
    (
        "a restarted worker takes rooms again",
        2,
        [("place", "a"), ("place", "b"), ("died", 0), ("started", 0), ("place", "a")],
        {"a": 0, "b": 1},
    ),
    (
        "a dead worker is never chosen",
        3,
        [("died", 0), ("place", "a"), ("place", "b"), ("place", "c")],
        {"a": 1, "b": 2, "c": 1},
    ),
    (
        "a room its worker holds stays after its connections left",
        2,
        [("place", "a"), ("report", 0, ["a"]), ("left", "a"), ("at", 5000), ("expire",)],
        {"a": 0},
    ),
    (
        "a room nobody holds is forgotten after the linger",
        2,
        [("place", "a"), ("left", "a"), ("at", 999), ("expire",)],
        {"a": 0},
    ),
    ("... and then gone", 2, [("place", "a"), ("left", "a"), ("at", 1000), ("expire",)], {}),
    (
        "the linger counts from the report that let the room go",
        2,
        [
            ("place", "a"),
            ("report", 0, ["a"]),
            ("left", "a"),
            ("at", 5000),
            ("report", 0, []),
            ("at", 5999),
            ("expire",),
        ],
        {"a": 0},
    ),
    (
        "a connected room is never forgotten",
        2,
        [("place", "a"), ("report", 0, []), ("at", 9000), ("expire",)],
        {"a": 0},
    ),
    ("a room a worker reports is adopted", 2, [("report", 1, ["x"])], {"x": 1}),
    ("a dead worker's report is ignored", 2, [("died", 1), ("report", 1, ["x"])], {}),
]


@pytest.mark.parametrize(
    ("workers", "steps", "homes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_placement(workers: int, steps: list[tuple[Any, ...]], homes: dict[str, int]) -> None:
    p = started(workers)
    now = 0
    tickets: dict[str, Ticket] = {}
    for step in steps:
        match step:
            case ("place", room):
                placed = p.place(room, now)
                assert isinstance(placed, Ticket)
                tickets[room] = placed
            case ("left", room):
                p.left(tickets[room], now)
            case ("died", worker):
                p.worker_died(worker)
            case ("started", worker):
                p.worker_started(worker)
            case ("report", worker, rooms):
                p.reported(worker, rooms, now)
            case ("expire",):
                p.expire(now)
            case ("at", ms):
                now = ms
    assert p.homes() == homes


def test_no_live_worker_refuses() -> None:
    p = Placement(2, max_rooms=4, linger_ms=0)
    assert p.place("a", 0) == Refused("no_worker")
    p.worker_started(1)
    p.worker_died(1)
    assert p.place("a", 0) == Refused("no_worker")
    assert p.homes() == {}


def test_rooms_are_bounded_even_by_reports() -> None:
    p = started(2, max_rooms=2)
    assert isinstance(p.place("a", 0), Ticket)
    assert isinstance(p.place("b", 0), Ticket)
    assert p.place("c", 0) == Refused("too_many_rooms")
    assert isinstance(p.place("a", 0), Ticket), "a room with a home still takes connections"
    p.reported(1, ["x", "y"], 0)
    assert len(p.homes()) == 2


def test_death_returns_the_lost_rooms_and_old_tickets_change_nothing() -> None:
    p = started(2)
    a = p.place("a", 0)
    b = p.place("b", 0)
    c = p.place("c", 0)
    assert isinstance(a, Ticket) and isinstance(b, Ticket) and isinstance(c, Ticket)
    assert (a.worker, b.worker, c.worker) == (0, 1, 0)
    assert p.worker_died(0) == ["a", "c"]
    assert p.epoch(0) == 1 and not p.alive(0)
    again = p.place("a", 10)
    assert isinstance(again, Ticket) and again.worker == 1
    p.worker_started(0)
    p.left(a, 20)  # the connection of worker 0's first life ends after the room moved
    assert p.connections(1) == 2, "the moved room keeps its new connection counted"
    back = p.place("c", 30)
    assert isinstance(back, Ticket) and (back.worker, back.epoch) == (0, 2)
    p.left(back, 40)
    p.left(back, 40)  # twice: never below zero
    assert p.connections(0) == 0


def test_load_is_connections() -> None:
    p = started(2)
    for _ in range(3):
        p.place("a", 0)
    p.place("b", 0)
    assert (p.connections(0), p.connections(1)) == (3, 1)
    assert p.rooms_on(0) == ["a"] and p.rooms_on(1) == ["b"]


# Spill: (name, workers, per-worker bound, steps, the workers the "place" steps went to, the
# rooms spanning workers at the end). Steps as above; ("left", room) ends the room's latest.
SPILL: list[tuple[str, int, int, list[tuple[Any, ...]], list[int], dict[str, list[int]]]] = [
    ("no bound: one worker", 2, 0, [("place", "a")] * 3, [0, 0, 0], {}),
    ("under the bound: the home", 2, 3, [("place", "a")] * 3, [0, 0, 0], {}),
    ("a full home spills", 2, 2, [("place", "a")] * 3, [0, 0, 1], {"a": [0, 1]}),
    (
        "the member takes more until it is full, then the home again",
        2,
        2,
        [("place", "a")] * 5,
        [0, 0, 1, 1, 0],
        {"a": [0, 1]},
    ),
    (
        "a spill goes to the least loaded of the others",
        3,
        2,
        [("place", "b"), ("place", "a"), ("place", "a"), ("place", "a")],
        [0, 1, 1, 2],
        {"a": [1, 2]},
    ),
    (
        "an existing member first, even if another has fewer",
        3,
        3,
        [("place", "a")] * 4 + [("place", "b"), ("place", "a")],
        [0, 0, 0, 1, 2, 1],
        {"a": [0, 1]},
    ),
    (
        "a member with nobody left is no member",
        2,
        1,
        [("place", "a"), ("place", "a"), ("left", "a")],
        [0, 1],
        {},
    ),
    (
        "a home freed takes the next itself",
        2,
        1,
        [("place", "a"), ("place", "a"), ("left-home", "a"), ("place", "a")],
        [0, 1, 0],
        {"a": [0, 1]},
    ),
    ("a dead worker is no member", 2, 1, [("place", "a")] * 2 + [("died", 1)], [0, 1], {}),
    (
        "a dead worker takes no spill",
        3,
        1,
        [("died", 1), ("place", "a"), ("place", "a")],
        [0, 2],
        {"a": [0, 2]},
    ),
]


@pytest.mark.parametrize(
    ("workers", "bound", "steps", "went", "spans"),
    [c[1:] for c in SPILL],
    ids=[c[0] for c in SPILL],
)
def test_spill(
    workers: int,
    bound: int,
    steps: list[tuple[Any, ...]],
    went: list[int],
    spans: dict[str, list[int]],
) -> None:
    p = Placement(workers, max_rooms=8, linger_ms=1000, per_worker=bound)
    for i in range(workers):
        p.worker_started(i)
    placed: list[Ticket] = []
    for step in steps:
        match step:
            case ("place", room):
                ticket = p.place(room, 0)
                assert isinstance(ticket, Ticket)
                assert ticket.spilled == (ticket.worker != p.home(room))
                placed.append(ticket)
            case ("left", room):
                p.left(next(t for t in reversed(placed) if t.room == room), 0)
            case ("left-home", room):
                p.left(next(t for t in placed if t.room == room and not t.spilled), 0)
            case ("died", worker):
                p.worker_died(worker)
    assert [t.worker for t in placed] == went
    assert p.spans() == spans
    total = sum(p.connections(i) for i in range(workers))
    assert total <= len(placed)


def test_spilled_connections_count_and_keep_the_room() -> None:
    p = Placement(2, max_rooms=8, linger_ms=1000, per_worker=1)
    p.worker_started(0)
    p.worker_started(1)
    home, member = p.place("a", 0), p.place("a", 0)
    assert isinstance(home, Ticket) and isinstance(member, Ticket)
    assert (home.spilled, member.spilled, member.home) == (False, True, 0)
    assert (p.connections(0), p.connections(1)) == (1, 1)
    assert p.members("a") == [1] and p.rooms_on(1) == []
    p.left(home, 10)
    assert p.expire(5000) == [], "a room with a member's connections stays"
    p.left(member, 20)
    p.left(member, 20)  # twice: never below zero
    assert p.connections(1) == 0 and p.members("a") == []
    assert p.expire(5000) == ["a"]


def test_a_member_ticket_of_a_moved_room_changes_nothing() -> None:
    p = Placement(3, max_rooms=8, linger_ms=0, per_worker=1)
    for i in range(3):
        p.worker_started(i)
    p.place("a", 0)
    member = p.place("a", 0)
    assert isinstance(member, Ticket) and member.worker == 1
    assert p.worker_died(0) == ["a"]  # the front closes its members' connections too
    again = p.place("a", 0)
    assert isinstance(again, Ticket) and (again.worker, again.spilled) == (1, False)
    assert p.spans() == {}
    p.left(member, 0)  # its old home is gone: nothing to take from the new one
    assert p.connections(1) == 1


def test_a_dead_home_s_room_is_taken_over_by_its_member() -> None:
    p = Placement(3, max_rooms=8, linger_ms=0, per_worker=1)
    for i in range(3):
        p.worker_started(i)
    p.place("a", 0)
    one, two = p.place("a", 0), p.place("a", 0)
    assert isinstance(one, Ticket) and isinstance(two, Ticket)
    assert (one.worker, two.worker) == (1, 2)
    assert p.take_over(1, 5) == {}  # not a home: nothing moves
    assert p.take_over(0, 10) == {"a": 1}  # the lowest index among equal members
    assert p.worker_died(0) == []  # nothing else lost
    assert p.home("a") == 1 and p.members("a") == []  # the other member's pages come again
    assert (p.connections(0), p.connections(1), p.connections(2)) == (0, 1, 0)
    p.left(two, 20)  # a ticket of the member that was dropped: nothing changes
    assert p.connections(1) == 1
    again = p.place("a", 30)  # the dead home's page comes again: to its new home, spilled
    assert isinstance(again, Ticket) and (again.worker, again.home) == (2, 1)
    p.left(one, 40)  # the member's own ticket now counts as the home's
    assert p.connections(1) == 0 and p.expire(50) == [], "a member's connection keeps it"
    p.left(again, 60)
    assert p.expire(70) == ["a"]


def test_another_node_s_room_is_not_taken_over() -> None:
    p = Placement(2, max_rooms=8, linger_ms=0, per_worker=1)
    p.worker_started(0)
    p.worker_started(1)
    p.place("a", 0)
    p.place("a", 0)
    assert p.take_over(0, 10, exclude={"a"}) == {}
    assert p.worker_died(0) == ["a"]


def test_a_dead_home_without_a_live_member_loses_its_room() -> None:
    p = Placement(2, max_rooms=8, linger_ms=0, per_worker=1)
    p.worker_started(0)
    p.worker_started(1)
    p.place("a", 0)
    p.place("a", 0)
    p.worker_died(1)  # the member first
    assert p.take_over(0, 10) == {}
    assert p.worker_died(0) == ["a"]


# Listeners: (name, workers, per-worker bound, steps, the workers the "place" and "listen"
# steps went to, the rooms spanning workers, each worker's listeners of room "a" at the end).
LISTEN: list[
    tuple[str, int, int, list[tuple[Any, ...]], list[int], dict[str, list[int]], dict[int, int]]
] = [
    (
        "spread by connections",
        2,
        0,
        [("place", "a")] * 2 + [("listen", "a")] * 4,
        [0, 0, 1, 1, 0, 1],
        {"a": [0, 1]},
        {0: 1, 1: 3},
    ),
    (
        "whatever the per-worker bound says",
        2,
        1,
        [("place", "a"), ("listen", "a"), ("listen", "a"), ("listen", "a"), ("place", "a")],
        [0, 1, 0, 1, 0],
        {"a": [0, 1]},
        {0: 1, 1: 2},
    ),
    (
        "one worker holds them all",
        1,
        0,
        [("place", "a")] + [("listen", "a")] * 3,
        [0] * 4,
        {},
        {0: 3},
    ),
    (
        "a listener first makes the home",
        2,
        0,
        [("listen", "a"), ("listen", "a"), ("place", "a"), ("place", "a")],
        [0, 1, 0, 0],
        {"a": [0, 1]},
        {0: 1, 1: 1},
    ),
    (
        "among equals the home, then a member, then another",
        3,
        0,
        [("place", "b"), ("place", "a")] + [("listen", "a")] * 3,
        [0, 1, 2, 1, 2],
        {"a": [1, 2]},
        {1: 1, 2: 2},
    ),
    (
        "a new member when it is the least loaded",
        3,
        0,
        [("place", "a"), ("place", "a"), ("place", "b"), ("listen", "a"), ("listen", "a")],
        [0, 0, 1, 2, 2],
        {"a": [0, 2]},
        {2: 2},
    ),
    (
        "a listener leaving is a connection less",
        2,
        0,
        [("place", "a"), ("listen", "a"), ("left", "a"), ("listen", "a")],
        [0, 1, 1],
        {"a": [0, 1]},
        {1: 1},
    ),
    (
        "a dead member's listeners are gone",
        2,
        0,
        [("place", "a"), ("listen", "a"), ("listen", "a"), ("died", 1)],
        [0, 1, 0],
        {},
        {0: 1},
    ),
]


@pytest.mark.parametrize(
    ("workers", "bound", "steps", "went", "spans", "listeners"),
    [c[1:] for c in LISTEN],
    ids=[c[0] for c in LISTEN],
)
def test_listeners_spread(
    workers: int,
    bound: int,
    steps: list[tuple[Any, ...]],
    went: list[int],
    spans: dict[str, list[int]],
    listeners: dict[int, int],
) -> None:
    p = Placement(workers, max_rooms=8, linger_ms=1000, per_worker=bound)
    for i in range(workers):
        p.worker_started(i)
    placed: list[Ticket] = []
    for step in steps:
        match step:
            case ("place", room):
                ticket = p.place(room, 0)
            case ("listen", room):
                ticket = p.place_listener(room, 0, 100)
            case ("left", room):
                p.left(next(t for t in reversed(placed) if t.room == room), 0)
                continue
            case ("died", worker):
                p.worker_died(worker)
                continue
        assert isinstance(ticket, Ticket)
        assert ticket.listener == (step[0] == "listen")
        assert ticket.spilled == (ticket.worker != p.home(ticket.room))
        placed.append(ticket)
    assert [t.worker for t in placed] == went
    assert p.spans() == spans
    assert p.listeners("a") == listeners


def test_the_audience_bound_is_the_room_s_across_workers() -> None:
    p = started(2)
    p.place("a", 0)
    tickets = [p.place_listener("a", 0, 3) for _ in range(3)]
    assert [t.worker for t in tickets if isinstance(t, Ticket)] == [1, 0, 1]
    assert p.place_listener("a", 0, 3) == Refused("audience_full")
    assert isinstance(p.place("a", 0), Ticket), "a participant is never refused for them"
    p.left(tickets[0], 10)
    assert p.listeners("a") == {0: 1, 1: 1}
    again = p.place_listener("a", 0, 3)
    assert isinstance(again, Ticket) and again.worker == 1
    assert p.place_listener("b", 0, 0) == Refused("audience_full")
    assert p.homes() == {"a": 0}, "a room admitting no listener gets no home from one"


def test_a_listener_of_a_moved_room_changes_nothing() -> None:
    p = started(2, linger_ms=0)
    p.place("a", 0)
    member = p.place_listener("a", 0, 10)
    assert isinstance(member, Ticket) and (member.worker, member.home) == (1, 0)
    p.worker_died(0)
    again = p.place_listener("a", 0, 10)
    assert isinstance(again, Ticket) and (again.worker, again.spilled) == (1, False)
    p.left(member, 0)  # its old home is gone: nothing to take from the new one
    assert p.listeners("a") == {1: 1} and p.connections(1) == 1
    p.left(again, 0)
    assert p.listeners("a") == {} and p.connections(1) == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["place", "listen", "left", "died", "started"]),
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 2),
        ),
        max_size=60,
    )
)
def test_listeners_never_refuse_a_participant(steps: list[tuple[str, str, int]]) -> None:
    """Whatever the listeners did, a participant is refused only when no worker lives or every
    configured room is placed; a room never holds more listeners than its bound; counts never
    go below zero."""
    p = Placement(3, max_rooms=2, linger_ms=0, per_worker=2)
    for i in range(3):
        p.worker_started(i)
    placed: list[Ticket] = []
    for op, room, worker in steps:
        if op == "place":
            got = p.place(room, 0)
            if isinstance(got, Refused):
                live = any(p.alive(i) for i in range(3))
                assert got.reason == ("too_many_rooms" if live else "no_worker")
                assert not live or (room not in p.homes() and len(p.homes()) == 2)
            else:
                placed.append(got)
        elif op == "listen":
            got = p.place_listener(room, 0, 4)
            if isinstance(got, Ticket):
                assert p.alive(got.worker)
                placed.append(got)
        elif op == "left" and placed:
            p.left(placed.pop(worker % len(placed)), 0)
        elif op == "died":
            p.worker_died(worker)
        elif op == "started" and not p.alive(worker):
            p.worker_started(worker)
        for name in p.homes():
            assert 0 <= sum(p.listeners(name).values()) <= 4
            assert all(n > 0 for n in p.listeners(name).values())
        assert all(p.connections(i) >= 0 for i in range(3))
