"""The audience: listeners who watch the stage and hear the room but publish nothing, how many a
room admits, and when the chairs are told how many are watching.

Listeners are not participants: they are never in the room's membership, so never in anyone's
participant list, lineup, grid, hand queue or floor, and they do not count toward the room's
participant limit. A listener is one connection: it has no state worth coming back to, so a
listener whose connection drops is gone at once (the page joins again as a new listener).

A room spanning workers has listeners on several (docs/scale-out.md, "An audience"): each
worker holds its own, and the count the chairs see is the room's, `watching`: this worker's
listeners plus those the others say they hold (`counted_elsewhere`, by worker).
"""

from __future__ import annotations

from dataclasses import dataclass

# The chairs hear of a changed count at most this often: an audience of hundreds joining at
# the start of a meeting is one message a second to each chair, not one per listener.
COUNT_EVERY_MS = 1000
MAX_ELSEWHERE = 64  # other workers (or nodes) a count is kept for
MAX_COUNT = 1_000_000  # listeners one of them may say it holds


class AudienceFull(Exception):
    """The room has its configured maximum of listeners (or admits none)."""


@dataclass(frozen=True, slots=True)
class Listener:
    pid: str
    name: str  # for the server's logs only: nobody in the room is told it
    joined_ms: int


@dataclass(frozen=True, slots=True)
class AudienceChanged:
    """The chairs are to be told that `listeners` are watching now."""

    listeners: int


class Audience:
    """A room's listeners and the count the chairs were last told; no IO, no clock."""

    def __init__(self, max_listeners: int, count_every_ms: int = COUNT_EVERY_MS) -> None:
        if max_listeners < 0:
            raise ValueError(f"max_listeners must not be negative, not {max_listeners}")
        self.max_listeners = max_listeners
        self.count_every_ms = count_every_ms
        self.peak = 0  # the most listeners at any one time
        self._listeners: dict[str, Listener] = {}
        self._elsewhere: dict[int, int] = {}  # another worker -> the listeners it holds
        self._told = 0  # the count the chairs were last told
        self._told_ms: int | None = None  # when (None: never)

    def __contains__(self, pid: object) -> bool:
        return pid in self._listeners

    def __len__(self) -> int:
        return len(self._listeners)

    def admit(self, now_ms: int, pid: str, name: str) -> Listener:
        """A new listener, or AudienceFull (the room's limit, counting the listeners the
        other workers last said they hold; a room with 0 admits nobody)."""
        if pid in self._listeners:
            raise ValueError(f"listener {pid} is already in the audience")
        if self.watching >= self.max_listeners:  # the room's, as last counted elsewhere
            if self.max_listeners == 0:
                raise AudienceFull("this meeting has no audience")
            raise AudienceFull(f"the audience is full ({self.max_listeners} listeners)")
        listener = self._listeners[pid] = Listener(pid, name, now_ms)
        self.peak = max(self.peak, self.watching)
        return listener

    @property
    def watching(self) -> int:
        """The room's listeners: this worker's and those counted elsewhere."""
        return len(self._listeners) + sum(self._elsewhere.values())

    def counted_elsewhere(self, worker: int, listeners: int) -> None:
        """Another worker of the room holds `listeners` (clamped to 0..MAX_COUNT; a count from
        one worker more than MAX_ELSEWHERE is ignored)."""
        if worker not in self._elsewhere and len(self._elsewhere) >= MAX_ELSEWHERE:
            return
        self._elsewhere[worker] = min(max(listeners, 0), MAX_COUNT)
        self.peak = max(self.peak, self.watching)

    def forget_elsewhere(self, worker: int | None = None) -> None:
        """A worker holds none of the room's listeners any more (None: no other worker)."""
        if worker is None:
            self._elsewhere.clear()
        else:
            self._elsewhere.pop(worker, None)

    def leave(self, pid: str) -> Listener | None:
        return self._listeners.pop(pid, None)

    def clear(self) -> list[str]:
        """Everyone leaves (the meeting ended); their ids."""
        gone = list(self._listeners)
        self._listeners.clear()
        return gone

    # ---- the chairs' count --------------------------------------------------------------------

    def on_timer(self, now_ms: int) -> list[AudienceChanged]:
        """The count for the chairs, if it changed since they were last told and the interval
        since then is over."""
        at = self.next_deadline_ms()
        if at is None or now_ms < at:
            return []
        self._told, self._told_ms = self.watching, now_ms
        return [AudienceChanged(self._told)]

    def next_deadline_ms(self) -> int | None:
        """When the chairs are next due a count (None: it has not changed)."""
        if self.watching == self._told:
            return None
        return 0 if self._told_ms is None else self._told_ms + self.count_every_ms
