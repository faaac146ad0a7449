"""Keeps Python's full garbage collections off the media path.

A full (generation 2) collection walks every tracked object: with 46 participants' aiortc
objects that is 60-380 ms during which the event loop reads no socket, and joins trigger one
about every second (each join adds long-lived objects). So once a participant's subscribe
connection is answered, what survives a young collection is frozen (`gc.freeze`): full
collections no longer walk it.

A closed connection's objects include cycles, which only a collection frees, and a frozen
cycle is never collected: so closed connections thaw everything (`gc.unfreeze`), and a full
collection `COLLECT_DELAY_S` later (once the departing participant's handlers have finished)
frees them, stalling every participant's media once (270 ms with 30 participants). To keep a
meeting where weak links drop and come back from stalling at every departure, the thaw waits
until `CLOSES_PER_THAW` connections have closed, or until a room's last connection has closed
(nobody's media to stall there): one stall per few departures, and their garbage (a few MB
each) held until then.

Thawed objects must be collected before anything is frozen again: a join that comes before the
delayed collection runs it first. (Frozen again uncollected, a meeting's garbage stayed for good:
a server grew by its participants' connections at every meeting, issue 19.) The collection that
follows a room's last close also hands the C allocator's free memory back to the system
(glibc's `malloc_trim`), which it otherwise keeps: a few ms, with no room's media to stall.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()

CLOSES_PER_THAW = 12  # closed connections (a participant has two or three) per thaw
COLLECT_DELAY_S = 1.0  # from a thaw to its full collection


class _Closes:
    since_thaw = 0
    thawed = False  # unfrozen since the last full collection
    trim = False  # ... and a room went idle since: give free memory back after it
    collection: asyncio.TimerHandle | None = None  # the thaw's full collection, when due


def settle() -> None:
    """A participant has joined: collect the young garbage (and what a thaw let go: it must not
    be frozen again), freeze what survives."""
    if _Closes.thawed:
        collect()
    else:
        gc.collect(1)
    gc.freeze()


def release(*, idle: bool = False) -> None:
    """A connection was closed (`idle`: its room's last one): every `CLOSES_PER_THAW`-th close,
    and an idle room's last, lets the collector see (and soon free) everything again."""
    _Closes.since_thaw += 1
    if idle or _Closes.since_thaw >= CLOSES_PER_THAW:
        _Closes.since_thaw = 0
        gc.unfreeze()
        _Closes.thawed = True
        _Closes.trim |= idle
        if _Closes.collection is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to wait on (tests): now
                collect()
            else:
                _Closes.collection = loop.call_later(COLLECT_DELAY_S, collect)


def collect() -> None:
    """A full collection of everything not frozen, now (a due one is then not needed); after
    a room went idle, the freed memory goes back to the system."""
    if _Closes.collection is not None:
        _Closes.collection.cancel()
        _Closes.collection = None
    trim, _Closes.thawed, _Closes.trim = _Closes.trim, False, False
    gc.collect()
    if trim and _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
