"""Placement: which worker process is a room's home, decided by the front from its own
connections, the workers' reports of the rooms they hold, and their deaths (sans-IO)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ticket:
    """One connection placed: the room, its home worker, and that worker's life (epoch) it was
    placed in; a ticket of a worker's earlier life is ignored when it ends."""

    room: str
    worker: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Refused:
    """No home for the room: `no_worker` (none alive) or `too_many_rooms`."""

    reason: str


@dataclass(slots=True)
class _Home:
    worker: int
    connections: int = 0
    held: bool = False  # the worker's latest report names the room
    idle_since_ms: int = 0  # when its last connection ended (or it was placed)


@dataclass(slots=True)
class _Worker:
    alive: bool = False
    epoch: int = 0  # 1, 2, ...: one per life (start) of the worker process


class Placement:
    """The room-to-worker map. A room's home is the worker already holding it, else the live
    worker with the fewest connections (then fewest rooms, then lowest index). A home without
    connections, no longer reported by its worker, is forgotten after `linger_ms`."""

    def __init__(self, workers: int, *, max_rooms: int, linger_ms: int) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._workers = [_Worker() for _ in range(workers)]
        self._homes: dict[str, _Home] = {}
        self.max_rooms = max_rooms
        self.linger_ms = linger_ms

    # ---- the workers' lives --------------------------------------------------------------

    def worker_started(self, index: int) -> int:
        """A worker process is ready to take connections; returns the epoch of this life."""
        worker = self._workers[index]
        worker.alive = True
        worker.epoch += 1
        return worker.epoch

    def worker_died(self, index: int) -> list[str]:
        """A worker process ended: its rooms lose their home (their meeting state went with it);
        returns those rooms, in name order."""
        self._workers[index].alive = False
        lost = sorted(room for room, home in self._homes.items() if home.worker == index)
        for room in lost:
            del self._homes[room]
        return lost

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
        """A connection joins `room`: its home worker, counted until `left`."""
        home = self._homes.get(room)
        if home is None:
            if len(self._homes) >= self.max_rooms:
                return Refused("too_many_rooms")
            index = self._least_loaded()
            if index is None:
                return Refused("no_worker")
            home = self._homes[room] = _Home(index, idle_since_ms=now_ms)
        home.connections += 1
        return Ticket(room, home.worker, self._workers[home.worker].epoch)

    def left(self, ticket: Ticket, now_ms: int) -> None:
        """A placed connection ended. One of a worker's earlier life changes nothing."""
        home = self._homes.get(ticket.room)
        if home is None or home.worker != ticket.worker:
            return
        if self._workers[ticket.worker].epoch != ticket.epoch or home.connections == 0:
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
        return sum(h.connections for h in self._homes.values() if h.worker == index)

    def rooms_on(self, index: int) -> list[str]:
        return sorted(room for room, home in self._homes.items() if home.worker == index)

    def _least_loaded(self) -> int | None:
        live = [i for i, w in enumerate(self._workers) if w.alive]
        if not live:
            return None
        return min(live, key=lambda i: (self.connections(i), len(self.rooms_on(i)), i))
