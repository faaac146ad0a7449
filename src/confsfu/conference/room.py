"""A room's membership: who is here, in which order they came, their role and their media state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["chair", "participant"]


class RoomFull(Exception):
    """The room has its configured maximum of participants."""


@dataclass(slots=True)
class Participant:
    id: str
    name: str
    role: Role
    joined_ms: int
    audio: bool = True  # the participant's own microphone switch
    video: bool = True  # the participant's own camera switch


@dataclass(slots=True)
class Room:
    """Membership and per-participant state; no IO."""

    name: str
    max_participants: int = 100
    participants: dict[str, Participant] = field(default_factory=dict)  # in join order
    last_heard_ms: dict[str, int] = field(default_factory=dict)

    def join(self, now_ms: int, pid: str, name: str, role: Role) -> Participant:
        if pid in self.participants:
            raise ValueError(f"participant {pid} is already in room {self.name}")
        if len(self.participants) >= self.max_participants:
            raise RoomFull(f"room {self.name} is full ({self.max_participants} participants)")
        p = Participant(id=pid, name=name, role=role, joined_ms=now_ms)
        self.participants[pid] = p
        return p

    def leave(self, pid: str) -> Participant | None:
        self.last_heard_ms.pop(pid, None)
        return self.participants.pop(pid, None)

    def set_media(self, pid: str, audio: bool, video: bool) -> Participant:
        p = self.participants[pid]
        p.audio, p.video = audio, video
        return p

    def heard(self, now_ms: int, pid: str) -> None:
        self.last_heard_ms[pid] = now_ms
