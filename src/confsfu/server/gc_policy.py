"""Keeps Python's full garbage collections off the media path.

A full (generation 2) collection walks every tracked object: with 46 participants' aiortc
objects that is 60-380 ms during which the event loop reads no socket, and joins trigger one
about every second (each join adds long-lived objects). So once a participant's subscribe
connection is answered, what survives a young collection is frozen (`gc.freeze`): full
collections no longer walk it.

A closed connection's objects include cycles, which only a collection frees, and a frozen
cycle is never collected: so closed connections thaw everything (`gc.unfreeze`), and the full
collection that follows frees them, stalling every participant's media once (270 ms with 30
participants). To keep a meeting where weak links drop and come back from stalling at every
departure, the thaw waits until `CLOSES_PER_THAW` connections have closed: one stall per few
departures, and their garbage (a few MB each) held until then.
"""

from __future__ import annotations

import gc

CLOSES_PER_THAW = 12  # closed connections (a participant has two or three) per thaw


class _Closes:
    since_thaw = 0


def settle() -> None:
    """A participant has joined: collect the young garbage, freeze what survives."""
    gc.collect(1)
    gc.freeze()


def release() -> None:
    """A connection was closed: every `CLOSES_PER_THAW`-th close lets the collector see (and
    free) everything again."""
    _Closes.since_thaw += 1
    if _Closes.since_thaw >= CLOSES_PER_THAW:
        _Closes.since_thaw = 0
        gc.unfreeze()
