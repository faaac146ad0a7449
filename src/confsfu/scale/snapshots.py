"""When a worker sends its rooms' meeting snapshots to the front, and what the front keeps of
them and hands to a room's next home (sans-IO; docs/scale-out.md, "A worker that dies")."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

MIN_INTERVAL_MS = 250  # a room's snapshots go at most this often ...
COST_FACTOR = 40  # ... and at most once per this many times what taking the last one cost


class SnapshotPacer:
    """The worker's side: rooms changed since their last snapshot went, and when each may go
    next. A change starts the clock; changes until then ride in the same snapshot."""

    def __init__(self, min_interval_ms: int = MIN_INTERVAL_MS) -> None:
        self.min_interval_ms = min_interval_ms
        self._due_ms: dict[str, int] = {}  # changed rooms: when their snapshot may go
        self._next_ms: dict[str, int] = {}  # every room: the earliest its next one may go

    def changed(self, room: str, now_ms: int) -> None:
        if room not in self._due_ms:
            self._due_ms[room] = max(now_ms, self._next_ms.get(room, now_ms))

    def all_changed(self, rooms: Iterable[str], now_ms: int) -> None:
        """The front (re)connected: it needs every room's state now."""
        for room in rooms:
            self._next_ms.pop(room, None)
            self._due_ms[room] = now_ms

    def due(self, now_ms: int) -> list[str]:
        """Rooms whose snapshot should go now (each then reported by `sent` or `forget`)."""
        return sorted(room for room, at in self._due_ms.items() if at <= now_ms)

    def sent(self, room: str, now_ms: int, cost_ms: float) -> None:
        """`room`'s snapshot went (or could not be taken), taking `cost_ms` of the loop."""
        self._due_ms.pop(room, None)
        wait_ms = max(self.min_interval_ms, int(COST_FACTOR * cost_ms))
        self._next_ms[room] = now_ms + wait_ms

    def forget(self, room: str) -> None:
        self._due_ms.pop(room, None)
        self._next_ms.pop(room, None)

    def next_deadline_ms(self) -> int | None:
        return min(self._due_ms.values(), default=None)


@dataclass(slots=True)
class _Kept:
    text: str  # the snapshot as the worker wrote it: the front does not read it
    taken_unix_ms: int  # when the worker took it (its header says)
    lost_ms: int | None = None  # its worker died then: the next home starts from it


class SnapshotStore:
    """The front's side: the latest snapshot of each configured room, and which of them a
    room's next home must start from (their worker died). A snapshot waiting for a next home
    is dropped after `keep_ms` (by then the meeting would have ended for being empty)."""

    def __init__(self, rooms: Collection[str], *, max_bytes: int, keep_ms: int) -> None:
        self._rooms = frozenset(rooms)
        self.max_bytes = max_bytes
        self.keep_ms = keep_ms
        self._kept: dict[str, _Kept] = {}

    def keep(self, room: str, text: str, taken_unix_ms: int) -> bool:
        """A worker's latest snapshot of `room`; refused (False) for a room not configured or
        a snapshot over `max_bytes` (characters, a bound on bytes / 4 too)."""
        if room not in self._rooms or len(text) > self.max_bytes:
            return False
        self._kept[room] = _Kept(text, taken_unix_ms)
        return True

    def forget(self, room: str) -> None:
        """The room's meeting ended and its worker let it go: nothing to carry on."""
        self._kept.pop(room, None)

    def lost(self, rooms: Iterable[str], now_ms: int) -> list[str]:
        """These rooms' worker died: of them, those with a snapshot for their next home."""
        waiting = []
        for room in rooms:
            kept = self._kept.get(room)
            if kept is not None:
                kept.lost_ms = now_ms
                waiting.append(room)
        return waiting

    def waiting(self, room: str) -> str | None:
        """The snapshot `room`'s next home must start from, if it is waiting for one."""
        kept = self._kept.get(room)
        return kept.text if kept is not None and kept.lost_ms is not None else None

    def restored(self, room: str, text: str) -> None:
        """The next home has it (or has said it cannot use it): it no longer waits. A newer
        snapshot kept meanwhile stays as it is."""
        kept = self._kept.get(room)
        if kept is not None and kept.text is text:
            kept.lost_ms = None

    def expire(self, now_ms: int) -> list[str]:
        """Drop snapshots that waited `keep_ms` for a next home; returns their rooms."""
        gone = sorted(
            room
            for room, kept in self._kept.items()
            if kept.lost_ms is not None and now_ms - kept.lost_ms >= self.keep_ms
        )
        for room in gone:
            del self._kept[room]
        return gone

    def rooms(self) -> dict[str, dict[str, object]]:
        """Each kept room: "kept", or "waiting" for its next home; when it was taken, its
        size (for /healthz)."""
        return {
            room: {
                "state": "waiting" if kept.lost_ms is not None else "kept",
                "taken_unix_ms": kept.taken_unix_ms,
                "chars": len(kept.text),
            }
            for room, kept in sorted(self._kept.items())
        }

    def texts(self) -> dict[str, str]:
        """Every kept snapshot's text, by room."""
        return {room: kept.text for room, kept in self._kept.items()}

    def total_chars(self) -> int:
        return sum(len(kept.text) for kept in self._kept.values())
