"""Placement: which worker process is a room's home, where a room's connections go once its
home is full (spill), and where its listeners go (spread over the least loaded workers),
decided by the front from its own connections, the workers' reports of the rooms they hold,
and their deaths (sans-IO)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from confsfu.scale.takeover import new_home


@dataclass(frozen=True, slots=True)
class Ticket:
    """One connection placed: the room, the worker it goes to, and that worker's life (epoch) it
    was placed in; a ticket of a worker's earlier life is ignored when it ends. `home` is the
    room's home worker (its authority): another than `worker` when the connection spilled."""

    room: str
    worker: int
    epoch: int
    home: int = -1  # -1: the same as `worker`
    listener: bool = False  # one of the room's audience (`place_listener`)

    @property
    def spilled(self) -> bool:
        """The connection went to a relay member of the room, not its home."""
        return self.home not in (-1, self.worker)


@dataclass(frozen=True, slots=True)
class Refused:
    """No home for the room: `no_worker` (none alive) or `too_many_rooms`; for a listener
    also `audience_full` (the room has its most listeners, across its workers)."""

    reason: str


@dataclass(slots=True)
class _Home:
    worker: int
    connections: int = 0
    members: dict[int, int] = field(default_factory=dict)  # relay member -> its connections
    listeners: dict[int, int] = field(default_factory=dict)  # worker -> its listeners (of those)
    held: bool = False  # the worker's latest report names the room
    idle_since_ms: int = 0  # when its last connection ended (or it was placed)
    taken_from: int = -1  # the home worker that died, its room taken over here (`take_over`)


@dataclass(slots=True)
class _Worker:
    alive: bool = False
    epoch: int = 0  # 1, 2, ...: one per life (start) of the worker process


class Placement:
    """The room-to-worker map. A room's home is the worker already holding it, else the live
    worker with the fewest connections (then fewest rooms, then lowest index). A home without
    connections, no longer reported by its worker, is forgotten after `linger_ms`.

    With `per_worker` (connections; 0: no bound), a new connection of a room whose home holds
    that many spills: to the room's relay member with the fewest connections that has fewer,
    else to the live worker with the fewest connections below the bound, which becomes a relay
    member of the room. When every live worker is full the home takes it: the bound spreads
    load, it admits nobody (the room's own limits do)."""

    def __init__(
        self, workers: int, *, max_rooms: int, linger_ms: int, per_worker: int = 0
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._workers = [_Worker() for _ in range(workers)]
        self._homes: dict[str, _Home] = {}
        self.max_rooms = max_rooms
        self.linger_ms = linger_ms
        self.per_worker = per_worker

    # ---- the workers' lives --------------------------------------------------------------

    def worker_started(self, index: int) -> int:
        """A worker process is ready to take connections; returns the epoch of this life."""
        worker = self._workers[index]
        worker.alive = True
        worker.epoch += 1
        return worker.epoch

    def worker_died(self, index: int) -> list[str]:
        """A worker process ended: its rooms lose their home (their meeting state went with it)
        and it is no relay member of any room any more; returns the rooms lost, in name order."""
        self._workers[index].alive = False
        lost = sorted(room for room, home in self._homes.items() if home.worker == index)
        for room in lost:
            del self._homes[room]
        for home in self._homes.values():
            home.members.pop(index, None)
            home.listeners.pop(index, None)
        return lost

    def take_over(self, index: int, now_ms: int, exclude: Collection[str] = ()) -> dict[str, int]:
        """Worker `index` died: each room it was the home of and that has a live relay member
        moves there (`takeover.new_home`), its connections there now the home's; returns those
        rooms and their new home. Call before `worker_died` (which loses the others). Any other
        member's part of such a room is no member any more: its pages (held, linked to the dead
        home) are closed at their hold's end and come again into the new home. Rooms in
        `exclude` (another node's meeting: this node's parts link there) are not moved."""
        moved = {}
        for room, home in sorted(self._homes.items()):
            if home.worker != index or room in exclude:
                continue
            home.members.pop(index, None)
            new = new_home(home.members, lambda i: i != index and self._workers[i].alive)
            if new is None:
                continue
            home.worker, home.connections = new, home.members[new]
            home.members = {}  # another member's pages, held for nothing, come again (1012)
            home.listeners = {new: home.listeners.get(new, 0)}
            home.held, home.idle_since_ms, home.taken_from = False, now_ms, index
            moved[room] = new
        return moved

    def reported(self, index: int, rooms: Iterable[str], now_ms: int) -> None:
        """What a live worker says it holds. A room it holds without a home here (placed in a
        window this map forgot) is adopted while there is room for it."""
        if not self._workers[index].alive:
            return
        holding = set(rooms)
        for room, home in self._homes.items():
            if home.worker == index:
                if home.held and room not in holding and home.connections == 0:
                    home.idle_since_ms = now_ms  # the worker let it go: linger from now
                home.held = room in holding
        for room in sorted(holding - self._homes.keys()):
            if len(self._homes) >= self.max_rooms:
                break
            self._homes[room] = _Home(index, held=True, idle_since_ms=now_ms)

    # ---- connections ---------------------------------------------------------------------

    def place(self, room: str, now_ms: int) -> Ticket | Refused:
        """A connection joins `room`: the worker it goes to (its home, or a relay member when
        the home is full), counted until `left`."""
        home = self._home_for(room, now_ms)
        if isinstance(home, Refused):
            return home
        spill = self._spill_to(home)
        if spill is None:
            home.connections += 1
            return Ticket(room, home.worker, self._workers[home.worker].epoch)
        home.members[spill] = home.members.get(spill, 0) + 1
        return Ticket(room, spill, self._workers[spill].epoch, home.worker)

    def place_listener(self, room: str, now_ms: int, max_listeners: int) -> Ticket | Refused:
        """A listener joins `room`: to the live worker with the fewest connections (a worker
        already holding the room first among equals: no new relay for nothing), whatever
        `per_worker` says; a worker other than the home becomes a relay member of the room.
        At most `max_listeners` of the room's listeners at once, wherever they are. Listeners
        are load like any connection (a participant may spill sooner), but no bound here
        refuses a participant, so no listener does."""
        known = self._homes.get(room)
        if (sum(known.listeners.values()) if known else 0) >= max_listeners:
            return Refused("audience_full")
        home = self._home_for(room, now_ms)
        if isinstance(home, Refused):
            return home
        live = [i for i, w in enumerate(self._workers) if w.alive]
        index = min(
            live,
            key=lambda i: (
                self.connections(i),
                i != home.worker and i not in home.members,
                i != home.worker,
                i,
            ),
        )
        home.listeners[index] = home.listeners.get(index, 0) + 1
        epoch = self._workers[index].epoch
        if index == home.worker:
            home.connections += 1
            return Ticket(room, index, epoch, listener=True)
        home.members[index] = home.members.get(index, 0) + 1
        return Ticket(room, index, epoch, home.worker, listener=True)

    def _home_for(self, room: str, now_ms: int) -> _Home | Refused:
        """The room's home, placed on the least loaded live worker if it has none."""
        home = self._homes.get(room)
        if home is None:
            if len(self._homes) >= self.max_rooms:
                return Refused("too_many_rooms")
            index = self._least_loaded()
            if index is None:
                return Refused("no_worker")
            home = self._homes[room] = _Home(index, idle_since_ms=now_ms)
        return home

    def _spill_to(self, home: _Home) -> int | None:
        """Where a new connection of a room goes instead of its home (None: the home)."""
        bound = self.per_worker
        if not bound or self.connections(home.worker) < bound:
            return None
        members = [i for i in home.members if self.connections(i) < bound]
        if members:
            return min(members, key=lambda i: (self.connections(i), i))
        others = [
            i
            for i, w in enumerate(self._workers)
            if w.alive and i != home.worker and self.connections(i) < bound
        ]
        if not others:
            return None
        return min(others, key=lambda i: (self.connections(i), len(self.rooms_on(i)), i))

    def left(self, ticket: Ticket, now_ms: int) -> None:
        """A placed connection ended. One of a worker's earlier life changes nothing."""
        home = self._homes.get(ticket.room)
        if home is None or self._workers[ticket.worker].epoch != ticket.epoch:
            return
        if ticket.spilled and (ticket.home, ticket.worker) == (home.taken_from, home.worker):
            # A connection to the member that took the room over from its dead home.
            ticket = Ticket(ticket.room, ticket.worker, ticket.epoch, listener=ticket.listener)
        if ticket.listener and home.worker == (ticket.worker if ticket.home < 0 else ticket.home):
            _take_one(home.listeners, ticket.worker)
        if ticket.spilled:
            if home.worker != ticket.home:
                return  # the room moved since: that member went with its old home
            _take_one(home.members, ticket.worker)
            return
        if home.worker != ticket.worker or home.connections == 0:
            return
        home.connections -= 1
        if home.connections == 0:
            home.idle_since_ms = now_ms

    def expire(self, now_ms: int) -> list[str]:
        """Forget homes idle (no connection, not held by their worker) for `linger_ms`."""
        gone = sorted(
            room
            for room, home in self._homes.items()
            if home.connections == 0
            and not home.members
            and not home.held
            and now_ms - home.idle_since_ms >= self.linger_ms
        )
        for room in gone:
            del self._homes[room]
        return gone

    # ---- reading -------------------------------------------------------------------------

    def home(self, room: str) -> int | None:
        home = self._homes.get(room)
        return None if home is None else home.worker

    def homes(self) -> dict[str, int]:
        return {room: home.worker for room, home in sorted(self._homes.items())}

    def alive(self, index: int) -> bool:
        return self._workers[index].alive

    def epoch(self, index: int) -> int:
        return self._workers[index].epoch

    def connections(self, index: int) -> int:
        """The worker's connections: of the rooms it is home to and those it is a member of."""
        return sum(
            (h.connections if h.worker == index else 0) + h.members.get(index, 0)
            for h in self._homes.values()
        )

    def members(self, room: str) -> list[int]:
        """The room's relay members (workers other than its home holding some of its
        connections), in index order."""
        home = self._homes.get(room)
        return [] if home is None else sorted(home.members)

    def spans(self) -> dict[str, list[int]]:
        """Every room held by more than one worker: its home first, then its relay members."""
        return {
            room: [home.worker, *sorted(home.members)]
            for room, home in sorted(self._homes.items())
            if home.members
        }

    def listeners(self, room: str) -> dict[int, int]:
        """The room's listeners placed on each worker (only those with some)."""
        home = self._homes.get(room)
        return {} if home is None else dict(sorted(home.listeners.items()))

    def rooms_on(self, index: int) -> list[str]:
        return sorted(room for room, home in self._homes.items() if home.worker == index)

    def _least_loaded(self) -> int | None:
        live = [i for i, w in enumerate(self._workers) if w.alive]
        if not live:
            return None
        return min(live, key=lambda i: (self.connections(i), len(self.rooms_on(i)), i))


def _take_one(counts: dict[int, int], index: int) -> None:
    """One less at `index` (never below zero; a zero is no entry)."""
    count = counts.get(index, 0)
    if count > 1:
        counts[index] = count - 1
    elif count == 1:
        del counts[index]
