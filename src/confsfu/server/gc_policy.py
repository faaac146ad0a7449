"""Keeps Python's full garbage collections off the media path.

A full (generation 2) collection walks every tracked object: with 46 participants' aiortc
objects that is 60-380 ms during which the event loop reads no socket, and joins trigger one
about every second (each join adds long-lived objects). So once a participant's subscribe
connection is answered, what survives a young collection is frozen (`gc.freeze`): full
collections no longer walk it.

A closed connection's objects include cycles (aiortc's transports and their handlers: a
loopback participant leaves about 7,700 objects), which only a collection frees, and a frozen
cycle is never collected: only a thaw (`gc.unfreeze`, all or nothing) and a full collection
free them. That collection cannot be split: it walks everything thawed and frees the garbage in
one go, stalling the loop 0.3-0.4 s after a 46-participant meeting and 1.3-3.6 s in the middle
of its departures (measured on a loaded 2-core machine; 50-200 ms in a test process). So
`GcPlan` thaws only when no room has a participant left (nobody's media to stall),
`COLLECT_DELAY_S` after the last close (once the departing handlers have finished), and then
gives the C allocator's free memory back (`malloc_trim`, 0.3-6 ms). While any room is live,
closed connections' garbage stays frozen, up to `HELD_CLOSES_LIMIT` connections: a server that
is never idle thaws there (one stall).

Thawed objects must be collected before anything is frozen again (frozen again uncollected, a
meeting's garbage stayed for good: a server grew by its participants' connections at every
meeting, issue 19): a join while a collection is due runs it first, and what survives the
collection is frozen at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()

HELD_CLOSES_LIMIT = 150  # closed connections (a participant has two or three) held frozen
COLLECT_DELAY_S = 1.0  # from a thaw to its full collection


@dataclass
class GcPlan:
    """When the collector may walk everything (sans-IO: rooms and time in, decisions out).
    Rooms are live from their first join to their last close."""

    limit: int = HELD_CLOSES_LIMIT
    delay_s: float = COLLECT_DELAY_S
    live: set[int] = field(default_factory=set)
    held: int = 0  # connections closed since the last full collection
    due_at: float | None = None  # thawed: the full collection's time
    trim: bool = False  # ... after which free memory goes back to the system

    def joined(self, room: int) -> Literal["collect", "young"]:
        """A participant of `room` is in: `collect` the due full collection before freezing,
        or only the `young` generations."""
        self.live.add(room)
        return "collect" if self.due_at is not None else "young"

    def closed(self, room: int, *, room_idle: bool, now: float) -> float | None:
        """A connection of `room` closed (`room_idle`: its last). Returns when to collect if
        everything is to be thawed now, else None."""
        self.held += 1
        if room_idle:
            self.live.discard(room)
        if self.due_at is not None or (self.live and self.held < self.limit):
            return None
        self.due_at = now + self.delay_s
        self.trim = not self.live
        return self.due_at

    def collected(self) -> bool:
        """The full collection ran; returns whether to give free memory back."""
        trim = self.trim
        self.held, self.due_at, self.trim = 0, None, False
        return trim


@dataclass
class _Shell:
    plan: GcPlan = field(default_factory=GcPlan)
    timer: asyncio.TimerHandle | None = None
    collections: int = 0  # full collections run (for tests and figures)


_STATE = _Shell()


def settle(room: int) -> None:
    """A participant of `room` has joined: collect the young garbage (or, if a thaw awaits
    its collection, everything), freeze what survives."""
    if _STATE.plan.joined(room) == "collect":
        collect()
    else:
        gc.collect(1)
        gc.freeze()


def release(room: int, *, idle: bool = False) -> None:
    """A connection of `room` was closed (`idle`: its room's last)."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # no loop to wait on (tests): at once
        loop = None
    due = _STATE.plan.closed(room, room_idle=idle, now=loop.time() if loop else 0.0)
    if due is None:
        return
    gc.unfreeze()
    if loop is None:
        collect()
    else:
        _STATE.timer = loop.call_at(due, collect)


def collect() -> None:
    """The due full collection, now; what survives is frozen again."""
    if _STATE.timer is not None:
        _STATE.timer.cancel()
        _STATE.timer = None
    trim = _STATE.plan.collected()
    gc.collect()
    gc.freeze()
    _STATE.collections += 1
    if trim and _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def flush() -> None:
    """The server has stopped: a due collection runs now rather than with its loop's timer
    (the loop may end first, and the collection would then wait for another server's join)."""
    if _STATE.plan.due_at is not None:
        collect()
