"""Presence: who lost their connection and is being waited for, and until when.

A participant whose connection drops without a goodbye stays in the meeting, away, for a grace
period: a reload or a network change brings them back as the same person in the same state.
Once the grace period is over they have left.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParticipantAway:
    pid: str


@dataclass(frozen=True, slots=True)
class ParticipantBack:
    pid: str


@dataclass(frozen=True, slots=True)
class ParticipantTimedOut:
    """The grace period ended without the participant coming back: they have left."""

    pid: str


PresenceEvent = ParticipantAway | ParticipantBack | ParticipantTimedOut


class Presence:
    """Away participants and their deadlines; no IO, no clock."""

    def __init__(self, grace_ms: int) -> None:
        if grace_ms < 0:
            raise ValueError(f"grace_ms must not be negative, not {grace_ms}")
        self.grace_ms = grace_ms
        self._deadline_ms: dict[str, int] = {}

    def is_away(self, pid: str) -> bool:
        return pid in self._deadline_ms

    def away(self, now_ms: int, pid: str, grace_ms: int | None = None) -> list[PresenceEvent]:
        """`pid` is away; gone unless back within `grace_ms` (default: the room's grace)."""
        if pid in self._deadline_ms:
            return []
        self._deadline_ms[pid] = now_ms + (self.grace_ms if grace_ms is None else grace_ms)
        return [ParticipantAway(pid)]

    def back(self, pid: str) -> list[PresenceEvent]:
        """`pid` connected again (or took over from another window of theirs)."""
        if self._deadline_ms.pop(pid, None) is None:
            return []
        return [ParticipantBack(pid)]

    def forget(self, pid: str) -> None:
        self._deadline_ms.pop(pid, None)

    def expired(self, now_ms: int) -> list[ParticipantTimedOut]:
        """Those whose grace period is over; they are forgotten here."""
        gone = [p for p, deadline in self._deadline_ms.items() if now_ms >= deadline]
        for pid in gone:
            del self._deadline_ms[pid]
        return [ParticipantTimedOut(pid) for pid in gone]

    def next_deadline_ms(self) -> int | None:
        return min(self._deadline_ms.values(), default=None)
