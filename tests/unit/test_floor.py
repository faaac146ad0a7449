"""Floor control: every transition and refusal, the hand queue, time limits, the presenter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.conference.floor import (
    FLOOR_TRANSITIONS,
    HAND_TRANSITIONS,
    FloorControl,
    FloorError,
    FloorEvent,
    FloorExpired,
    FloorGranted,
    FloorRevoked,
    FloorState,
    HandLowered,
    HandRaised,
    HandState,
    PresenterChanged,
    RevokeReason,
)

T0 = 1_000
LIMIT = 60_000
Op = Callable[[FloorControl], list[FloorEvent]]


def snapshot(f: FloorControl) -> tuple[Any, ...]:
    raised = tuple((p, f.raised_at_ms(p)) for p in f.hands)
    return (f.state, f.holder, f.until_ms, raised, f.presenter, f.next_deadline_ms())


def idle() -> FloorControl:
    return FloorControl()


def idle_a_raised() -> FloorControl:
    f = FloorControl()
    f.raise_hand(T0 - 10, "a")
    return f


def a_holds_b_raised() -> FloorControl:
    f = FloorControl()
    f.grant(T0, "a", LIMIT)
    f.raise_hand(T0, "b")
    return f


SETUPS = {"idle": idle, "idle_a_raised": idle_a_raised, "a_holds_b_raised": a_holds_b_raised}
T1 = T0 + 500
UNTIL = T0 + LIMIT

# (setup, description, operation, expected events)
ALLOWED: list[tuple[str, str, Op, list[FloorEvent]]] = [
    ("idle", "raise", lambda f: f.raise_hand(T1, "a"), [HandRaised("a", T1)]),
    ("idle", "grant", lambda f: f.grant(T1, "a"), [FloorGranted("a", None)]),
    ("idle", "grant limit", lambda f: f.grant(T1, "a", 5_000), [FloorGranted("a", T1 + 5_000)]),
    ("idle", "timer", lambda f: f.on_timer(T1), []),
    ("idle", "left", lambda f: f.participant_left(T1, "a"), []),
    ("idle_a_raised", "lower", lambda f: f.lower_hand(T1, "a"), [HandLowered("a")]),
    ("idle_a_raised", "second hand", lambda f: f.raise_hand(T1, "b"), [HandRaised("b", T1)]),
    (
        "idle_a_raised",
        "grant to raised",
        lambda f: f.grant(T1, "a"),
        [HandLowered("a"), FloorGranted("a", None)],
    ),
    ("idle_a_raised", "grant other", lambda f: f.grant(T1, "b"), [FloorGranted("b", None)]),
    ("idle_a_raised", "raised left", lambda f: f.participant_left(T1, "a"), [HandLowered("a")]),
    ("a_holds_b_raised", "raise c", lambda f: f.raise_hand(T1, "c"), [HandRaised("c", T1)]),
    ("a_holds_b_raised", "lower b", lambda f: f.lower_hand(T1, "b"), [HandLowered("b")]),
    (
        "a_holds_b_raised",
        "regrant holder",
        lambda f: f.grant(T1, "a", LIMIT),
        [FloorGranted("a", T1 + LIMIT)],
    ),
    (
        "a_holds_b_raised",
        "grant to raised b",
        lambda f: f.grant(T1, "b"),
        [FloorRevoked("a", RevokeReason.REPLACED), HandLowered("b"), FloorGranted("b", None)],
    ),
    (
        "a_holds_b_raised",
        "grant to c",
        lambda f: f.grant(T1, "c", 10),
        [FloorRevoked("a", RevokeReason.REPLACED), FloorGranted("c", T1 + 10)],
    ),
    (
        "a_holds_b_raised",
        "revoke",
        lambda f: f.revoke(T1),
        [FloorRevoked("a", RevokeReason.REVOKED)],
    ),
    ("a_holds_b_raised", "timer early", lambda f: f.on_timer(UNTIL - 1), []),
    ("a_holds_b_raised", "timer due", lambda f: f.on_timer(UNTIL), [FloorExpired("a")]),
    ("a_holds_b_raised", "timer late", lambda f: f.on_timer(UNTIL + 9), [FloorExpired("a")]),
    (
        "a_holds_b_raised",
        "holder left",
        lambda f: f.participant_left(T1, "a"),
        [FloorRevoked("a", RevokeReason.LEFT)],
    ),
    ("a_holds_b_raised", "raised left", lambda f: f.participant_left(T1, "b"), [HandLowered("b")]),
    ("a_holds_b_raised", "stranger left", lambda f: f.participant_left(T1, "z"), []),
]

# (setup, operation, message)
REFUSED: list[tuple[str, Op, str]] = [
    ("idle", lambda f: f.lower_hand(T1, "a"), "cannot lower hand: a has no hand raised"),
    ("idle", lambda f: f.revoke(T1), "cannot revoke the floor: the floor is idle"),
    ("idle", lambda f: f.grant(T1, "a", 0), "time limit must be positive"),
    ("idle", lambda f: f.grant(T1, "a", -5), "time limit must be positive"),
    ("idle_a_raised", lambda f: f.raise_hand(T1, "a"), "cannot raise hand: a has a hand raised"),
    ("idle_a_raised", lambda f: f.lower_hand(T1, "b"), "b has no hand raised"),
    ("idle_a_raised", lambda f: f.revoke(T1), "the floor is idle"),
    ("a_holds_b_raised", lambda f: f.raise_hand(T1, "a"), "cannot raise hand: a holds the floor"),
    ("a_holds_b_raised", lambda f: f.lower_hand(T1, "a"), "cannot lower hand: a holds the floor"),
    ("a_holds_b_raised", lambda f: f.raise_hand(T1, "b"), "b has a hand raised"),
    ("a_holds_b_raised", lambda f: f.lower_hand(T1, "c"), "c has no hand raised"),
    ("a_holds_b_raised", lambda f: f.grant(T1, "b", 0), "time limit must be positive"),
]


@pytest.mark.parametrize(
    ("setup", "op", "expected"),
    [(s, op, e) for s, _, op, e in ALLOWED],
    ids=[f"{s}-{d}" for s, d, _, _ in ALLOWED],
)
def test_allowed(setup: str, op: Op, expected: list[FloorEvent]) -> None:
    f = SETUPS[setup]()
    assert op(f) == expected
    check_invariants(f)


@pytest.mark.parametrize(("setup", "op", "message"), REFUSED)
def test_refused_leaves_state_unchanged(setup: str, op: Op, message: str) -> None:
    f = SETUPS[setup]()
    before = snapshot(f)
    with pytest.raises(FloorError, match=message):
        op(f)
    assert snapshot(f) == before


# (setup, operation, reason): why in one word, for pages that word it themselves.
REASONS: list[tuple[str, Op, str]] = [
    ("idle", lambda f: f.lower_hand(T1, "a"), "hand_down"),
    ("idle", lambda f: f.revoke(T1), "floor_idle"),
    ("idle", lambda f: f.grant(T1, "a", 0), "bad_limit"),
    ("idle_a_raised", lambda f: f.raise_hand(T1, "a"), "hand_raised"),
    ("a_holds_b_raised", lambda f: f.raise_hand(T1, "a"), "hand_holding"),
]


@pytest.mark.parametrize(("setup", "op", "reason"), REASONS)
def test_a_refusal_says_why_in_one_word(setup: str, op: Op, reason: str) -> None:
    with pytest.raises(FloorError) as refused:
        op(SETUPS[setup]())
    assert refused.value.reason == reason


def test_states_after_transitions() -> None:
    f = FloorControl()
    assert (f.state, f.holder, f.until_ms, f.next_deadline_ms()) == (
        FloorState.IDLE,
        None,
        None,
        None,
    )
    f.grant(T0, "a", LIMIT)
    assert (f.state, f.holder, f.until_ms, f.next_deadline_ms()) == (
        FloorState.GRANTED,
        "a",
        UNTIL,
        UNTIL,
    )
    assert f.hand_state("a") is HandState.HOLDING
    f.grant(T1, "a")  # same holder, limit lifted
    assert (f.until_ms, f.next_deadline_ms()) == (None, None)
    assert f.on_timer(T0 + 10 * LIMIT) == []
    f.revoke(T1)
    assert (f.state, f.holder, f.hand_state("a")) == (FloorState.IDLE, None, HandState.DOWN)


def test_hand_queue_is_ordered_by_raising_time() -> None:
    f = FloorControl()
    for i, pid in enumerate(["c", "a", "b", "d"]):
        f.raise_hand(T0 + i, pid)
    assert f.hands == ("c", "a", "b", "d")
    assert f.raised_at_ms("b") == T0 + 2
    f.lower_hand(T1, "a")
    f.raise_hand(T1, "a")  # to the back of the queue
    f.grant(T1, "b")
    assert list(f.hands) == ["c", "d", "a"]
    assert f.hand_state("c") is HandState.RAISED


def test_presenter() -> None:
    f = FloorControl()
    assert f.set_presenter(T0, "p") == [PresenterChanged("p")]
    assert f.set_presenter(T0, "p") == []
    assert f.presenter == "p"
    assert f.set_presenter(T0, "q") == [PresenterChanged("q")]
    f.grant(T0, "q")
    f.raise_hand(T0, "x")
    assert f.participant_left(T1, "q") == [
        FloorRevoked("q", RevokeReason.LEFT),
        PresenterChanged(None),
    ]
    assert f.presenter is None
    assert f.holder is None
    assert list(f.hands) == ["x"]
    assert f.set_presenter(T1, None) == []


def test_events_are_frozen() -> None:
    event = FloorGranted("a", None)
    with pytest.raises(AttributeError):
        event.pid = "b"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


# ---- the tables themselves --------------------------------------------------------------

FLOOR_EVENTS: list[FloorEvent] = [
    FloorGranted("a", None),
    FloorRevoked("a", RevokeReason.REVOKED),
    FloorExpired("a"),
]


def in_floor_state(state: FloorState) -> FloorControl:
    f = FloorControl()
    if state is FloorState.GRANTED:
        f.grant(T0, "a")
    return f


@pytest.mark.parametrize("state", list(FloorState))
@pytest.mark.parametrize("event", FLOOR_EVENTS, ids=lambda e: type(e).__name__)
def test_floor_table_decides(state: FloorState, event: FloorEvent) -> None:
    f = in_floor_state(state)
    before = snapshot(f)
    target = FLOOR_TRANSITIONS[state].get(type(event))
    if target is None:
        with pytest.raises(FloorError):
            f._apply([event])
        assert snapshot(f) == before
    else:
        f._apply([event])
        assert f.state is target


def in_hand_state(state: HandState) -> FloorControl:
    f = FloorControl()
    if state is HandState.RAISED:
        f.raise_hand(T0, "a")
    elif state is HandState.HOLDING:
        f.grant(T0, "a")
    return f


HAND_EVENTS: list[FloorEvent] = [HandRaised("a", T1), HandLowered("a"), *FLOOR_EVENTS]


@pytest.mark.parametrize("state", list(HandState))
@pytest.mark.parametrize("event", HAND_EVENTS, ids=lambda e: type(e).__name__)
def test_hand_table_decides(state: HandState, event: FloorEvent) -> None:
    f = in_hand_state(state)
    before = snapshot(f)
    target = HAND_TRANSITIONS[state].get(type(event))
    floor_ok = type(event) not in (FloorRevoked, FloorExpired) or f.holder == "a"
    if target is None or not floor_ok:
        with pytest.raises(FloorError):
            f._apply([event])
        assert snapshot(f) == before
    else:
        f._apply([event])
        assert f.hand_state("a") is target


def test_second_holder_needs_the_first_revoked() -> None:
    f = FloorControl()
    f.grant(T0, "a")
    before = snapshot(f)
    with pytest.raises(FloorError, match="a holds the floor"):
        f._apply([FloorGranted("b", None)])
    assert snapshot(f) == before


def test_failed_multi_event_operation_is_atomic() -> None:
    f = a_holds_b_raised()
    before = snapshot(f)
    with pytest.raises(FloorError):
        f._apply([FloorRevoked("a", RevokeReason.REVOKED), HandLowered("zz")])
    assert snapshot(f) == before


# ---- random sequences -------------------------------------------------------------------


def check_invariants(f: FloorControl) -> None:
    hands = f.hands
    assert len(hands) == len(set(hands))
    assert f.holder not in hands
    assert (f.state is FloorState.GRANTED) == (f.holder is not None)
    if f.state is FloorState.IDLE:
        assert f.until_ms is None
    assert f.next_deadline_ms() == f.until_ms
    times = [f.raised_at_ms(p) for p in hands]
    assert times == sorted(times)  # type: ignore[type-var]


PIDS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.one_of(
    st.tuples(st.just("raise"), PIDS),
    st.tuples(st.just("lower"), PIDS),
    st.tuples(st.just("grant"), PIDS, st.one_of(st.none(), st.integers(-5, 3_000))),
    st.tuples(st.just("revoke")),
    st.tuples(st.just("left"), PIDS),
    st.tuples(st.just("timer")),
    st.tuples(st.just("present"), st.one_of(st.none(), PIDS)),
)


def replay(before: tuple[Any, ...], events: list[FloorEvent]) -> tuple[Any, ...]:
    """A reference model: the events alone must describe every change of state."""
    state, holder, until_ms, raised, presenter, _ = before
    hands = dict(raised)
    for e in events:
        if isinstance(e, HandRaised):
            hands[e.pid] = e.at_ms
        elif isinstance(e, HandLowered):
            del hands[e.pid]
        elif isinstance(e, FloorGranted):
            state, holder, until_ms = FloorState.GRANTED, e.pid, e.until_ms
        elif isinstance(e, FloorRevoked | FloorExpired):
            state, holder, until_ms = FloorState.IDLE, None, None
        else:
            presenter = e.pid
    return (state, holder, until_ms, tuple(hands.items()), presenter)


def run(f: FloorControl, now_ms: int, op: tuple[Any, ...]) -> list[FloorEvent]:
    name = op[0]
    if name == "raise":
        return f.raise_hand(now_ms, op[1])
    if name == "lower":
        return f.lower_hand(now_ms, op[1])
    if name == "grant":
        return f.grant(now_ms, op[1], op[2])
    if name == "revoke":
        return f.revoke(now_ms)
    if name == "left":
        return f.participant_left(now_ms, op[1])
    if name == "timer":
        return f.on_timer(now_ms)
    return f.set_presenter(now_ms, op[1])


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 2_000), OPS), max_size=60))
def test_random_sequences_keep_invariants(steps: list[tuple[int, tuple[Any, ...]]]) -> None:
    f = FloorControl()
    now_ms = 0
    for dt, op in steps:
        now_ms += dt
        before = snapshot(f)
        try:
            events = run(f, now_ms, op)
        except FloorError:
            assert snapshot(f) == before
            continue
        check_invariants(f)
        assert replay(before, events) == snapshot(f)[:5]
        if op[0] == "left":
            assert op[1] not in f.hands and f.holder != op[1] and f.presenter != op[1]
        if op[0] == "timer" and events:
            assert events == [FloorExpired(before[1])] and f.holder is None
