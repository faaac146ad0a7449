"""The server's GC policy: joined participants' objects are frozen, every few closed
connections (and a room's last) thaw them, and what a thaw let go is collected before anything
is frozen again."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from confsfu.server import gc_policy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc_policy._Closes.since_thaw = 0
    yield
    gc_policy.collect()
    gc.unfreeze()


def close_connections(n: int) -> None:
    for _ in range(n):
        gc_policy.release()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_frees_young_cycles_and_freezes_what_lives() -> None:
    kept = Node()
    dropped = cycle()
    gc_policy.settle()
    assert dropped() is None  # young garbage is collected before freezing
    assert gc.get_freeze_count() > 0
    del kept  # freed by its reference count, frozen or not
    before = gc.get_freeze_count()
    close_connections(gc_policy.CLOSES_PER_THAW - 1)
    assert gc.get_freeze_count() == before  # a few departures do not thaw yet
    gc_policy.release()
    assert gc.get_freeze_count() == 0 and before > 0


def test_a_cycle_frozen_at_a_join_is_freed_once_enough_connections_closed() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc_policy.settle()  # a and b are alive: frozen
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: full collections do not walk it
    close_connections(gc_policy.CLOSES_PER_THAW - 1)
    gc.collect()
    assert gone() is not None  # held until enough connections have closed
    gc_policy.release()
    gc.collect()
    assert gone() is None


def test_a_rooms_last_close_thaws_at_once() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc_policy.settle()
    del a, b
    gc_policy.release()
    gc.collect()
    assert gone() is not None  # one close of many: still frozen
    gc_policy.release(idle=True)  # nobody is left in the room: nothing to stall
    assert gone() is None


async def test_a_thaw_collects_soon_and_a_join_before_then_does_not_freeze_its_garbage() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc_policy.settle()
    del a, b
    gc_policy.release(idle=True)  # thawed; the full collection waits for the handlers to end
    assert gone() is not None and gc.get_freeze_count() == 0
    gc_policy.settle()  # someone joins first: the thawed garbage is collected, not frozen
    assert gone() is None
    assert gc_policy._Closes.collection is None  # nothing left due

    c, d = Node(), Node()
    c.other, d.other = d, c
    also_gone = weakref.ref(c)
    gc_policy.settle()
    del c, d
    gc_policy.release(idle=True)
    assert also_gone() is not None
    await asyncio.sleep(gc_policy.COLLECT_DELAY_S + 0.2)
    assert also_gone() is None  # nobody joined: the collection ran by itself


def test_the_collection_after_a_room_went_idle_gives_memory_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []

    def trim(pad: int) -> int:
        trims.append(pad)
        return 1

    monkeypatch.setattr(gc_policy, "_MALLOC_TRIM", trim)
    close_connections(gc_policy.CLOSES_PER_THAW)  # a thaw in a meeting: memory is reused soon
    assert trims == []
    gc_policy.release(idle=True)
    assert trims == [0]
