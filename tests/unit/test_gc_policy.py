"""The server's GC policy: joined participants' objects are frozen, every few closed
connections thaw them."""

from __future__ import annotations

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
