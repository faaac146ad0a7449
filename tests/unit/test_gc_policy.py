"""The server's GC policy: joined participants' objects are frozen; a full collection (which
stalls the loop for as long as it walks everything) runs only once no room is live, or after
many closes, and never at a close or at a join unless one is due; what a thaw let go is
collected before anything is frozen again."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from confsfu.server import gc_policy
from confsfu.server.gc_policy import GcPlan

A, B = 1, 2  # rooms


# ---- the plan's decisions ------------------------------------------------------------------


def test_a_close_while_another_room_is_live_thaws_nothing() -> None:
    plan = GcPlan()
    assert plan.joined(A) == "young" and plan.joined(B) == "young"
    assert plan.closed(B, room_idle=False, now=10.0) is None
    assert plan.closed(B, room_idle=True, now=10.5) is None  # B is empty, A still meets
    assert plan.held == 2 and plan.due_at is None


def test_the_last_live_rooms_last_close_thaws_and_collects_a_moment_later() -> None:
    plan = GcPlan(delay_s=1.0)
    plan.joined(A)
    assert plan.closed(A, room_idle=False, now=10.0) is None
    assert plan.closed(A, room_idle=True, now=10.2) == 11.2
    assert plan.closed(A, room_idle=True, now=10.4) is None  # already due: no second thaw
    assert plan.collected() is True  # nobody was live: give memory back
    assert plan.held == 0 and plan.due_at is None


def test_a_server_never_idle_thaws_after_the_limit_without_trimming() -> None:
    plan = GcPlan(limit=5, delay_s=1.0)
    plan.joined(A)
    decisions = [plan.closed(B, room_idle=False, now=float(t)) for t in range(5)]
    assert decisions == [None, None, None, None, 5.0]
    assert plan.collected() is False  # a room is live: its memory is reused soon


def test_a_join_runs_a_due_collection_first_and_only_then() -> None:
    plan = GcPlan()
    plan.joined(A)
    assert plan.closed(A, room_idle=True, now=0.0) is not None
    assert plan.joined(B) == "collect"  # thawed garbage must not be frozen again
    plan.collected()
    assert plan.joined(B) == "young"
    assert plan.live == {B}


def test_a_meetings_departures_thaw_once_at_its_end() -> None:
    """46 participants leave one by one (three connections each): one thaw, after the last."""
    plan = GcPlan()
    for _ in range(46):
        plan.joined(A)
    thaws = [plan.closed(A, room_idle=(k == 46 * 3 - 1), now=k * 0.1) for k in range(46 * 3)]
    assert [t for t in thaws if t is not None] == [pytest.approx(13.7 + gc_policy.COLLECT_DELAY_S)]


# ---- the shell: real collections -----------------------------------------------------------


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def fresh_policy() -> Iterator[None]:
    gc_policy._STATE = gc_policy._Shell()
    yield
    gc_policy.flush()
    gc.unfreeze()


def frozen_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc_policy.settle(A)  # a and b are alive: frozen
    return gone


def test_settle_frees_young_cycles_and_freezes_what_lives() -> None:
    kept = Node()
    a, b = Node(), Node()
    a.other, b.other = b, a
    dropped = weakref.ref(a)
    del a, b
    gc_policy.settle(A)
    assert dropped() is None  # young garbage is collected before freezing
    assert gc.get_freeze_count() > 0 and kept is not None


def test_a_frozen_cycle_is_held_while_a_room_is_live_and_freed_when_none_is() -> None:
    gone = frozen_cycle()
    gc_policy.settle(B)
    gc.collect()
    assert gone() is not None  # frozen: full collections do not walk it
    gc_policy.release(A, idle=True)
    gc.collect()
    assert gone() is not None and gc.get_freeze_count() > 0  # B is live: no thaw
    assert gc_policy._STATE.collections == 0
    gc_policy.release(B, idle=True)  # no room is live: thaw, collect (at once: no loop)
    assert gone() is None and gc_policy._STATE.collections == 1
    assert gc.get_freeze_count() > 0  # what survived is frozen again


async def test_the_collection_waits_for_the_handlers_and_a_join_before_then_runs_it() -> None:
    gone = frozen_cycle()
    gc_policy.release(A, idle=True)  # thawed; the collection is a moment away
    assert gone() is not None and gc.get_freeze_count() == 0
    gc_policy.settle(B)  # someone joins first: the thawed garbage is collected, not frozen
    assert gone() is None and gc_policy._STATE.timer is None

    also_gone = frozen_cycle()
    gc_policy.release(A, idle=False)
    gc_policy.release(B, idle=True)
    gc_policy.release(A, idle=True)
    assert also_gone() is not None
    await asyncio.sleep(gc_policy.COLLECT_DELAY_S + 0.2)
    assert also_gone() is None  # nobody joined: the collection ran by itself
    assert gc_policy._STATE.collections == 2


async def test_a_stopped_server_collects_at_once() -> None:
    gone = frozen_cycle()
    gc_policy.release(A, idle=True)
    gc_policy.flush()  # its loop may end before the timer: not left to the next join
    assert gone() is None and gc_policy._STATE.timer is None


def test_memory_goes_back_only_after_a_collection_with_no_room_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []

    def trim(pad: int) -> int:
        trims.append(pad)
        return 1

    monkeypatch.setattr(gc_policy, "_MALLOC_TRIM", trim)
    gc_policy.settle(A)
    for _ in range(gc_policy.HELD_CLOSES_LIMIT):  # a never-idle server's thaw
        gc_policy.release(B)
    assert gc_policy._STATE.collections == 1 and trims == []
    gc_policy.release(A, idle=True)
    assert gc_policy._STATE.collections == 2 and trims == [0]
