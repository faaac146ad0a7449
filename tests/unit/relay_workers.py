"""One worker's side of a room spanning workers, for the unit tests of
server/relay_decisions.py: its meeting, its RoomDecisions, a LiveRoom double, frames out in a
list (`deliver` hands them to the peers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from confsfu.conference.meeting import Meeting
from confsfu.conference.room import Room
from confsfu.scale import relay_frame as rf
from confsfu.scale.member_gate import MemberGate
from confsfu.server.relay_decisions import RoomDecisions
from confsfu.signalling.messages import RoomState


def state(floor: str | None, hands: list[str] | None = None) -> str:
    """A room state's JSON, as the authority tells its listeners."""
    return RoomState(
        server_time_ms=1,
        floor_holder=floor,
        floor_until_ms=None,
        hands=hands or [],
        presenter=None,
        locked=False,
        scheduled_end_ms=None,
        stage=floor,
        stage_kind="floor" if floor else None,
        dominant_speaker=None,
        chat_enabled=True,
    ).model_dump_json()


class Live:
    """What RoomDecisions needs of a LiveRoom: what its listeners were told, the gate."""

    def __init__(self) -> None:
        self.to_members: Any = None
        self.ended_to_members: Any = None
        self.authority_state: str | None = None
        self.audience_from_authority = False
        self.reports_elsewhere = False
        self.authority_gate = MemberGate()
        self.told: list[tuple[str, bool]] = []

    def room_state(self) -> RoomState:
        return RoomState.model_validate_json(state(None))

    def tell_listeners_soon(self, text: str, *, state: bool = False) -> None:
        self.told.append((text, state))

    def gate_from_authority(self, gate: MemberGate) -> None:
        self.authority_gate = gate


class Worker:
    """One worker (`home` -1: the authority), with a LiveRoom double if `live`."""

    def __init__(self, home: int, *, max_listeners: int = 50, live: bool = True) -> None:
        room = Room("r", max_participants=6)
        self.meeting = Meeting(room, now_ms=0, unix_ms=0, max_listeners=max_listeners)
        media = SimpleNamespace(meeting=self.meeting, room_plan=None, applied_plan=None)
        self.live = Live()
        self.out: list[tuple[int, bytes]] = []
        self.counted = 0
        self.decisions = RoomDecisions(
            3,
            home,
            cast(Any, media),
            lambda peer, frame: self.out.append((peer, frame)),
            lambda now_ms, pid, name: None,
            lambda now_ms, pid: None,
            counted=self.count,
            live=cast(Any, self.live) if live else None,
        )

    def count(self) -> None:
        self.counted += 1

    def listen(self, n: int) -> None:
        start = len(self.meeting.audience)
        for i in range(start, start + n):
            self.meeting.admit_listener(0, f"l{i}", "x", None)

    def frames(self, *starts: bytes) -> list[bytes]:
        """The payloads sent since the last call that start with one of `starts`."""
        payloads = [rf.decode(f).payload for _, f in self.out]
        self.out.clear()
        return [p for p in payloads if p.startswith(starts)]

    def listener_frames(self) -> list[bytes]:
        return self.frames(b'{"listeners"', b'{"notice"')


def deliver(frm: int, sender: Worker, workers: dict[int, Worker], now_ms: int) -> None:
    for peer, frame in sender.out:
        workers[peer].decisions.on_room(frm, rf.decode(frame).payload, now_ms)
    sender.out.clear()
