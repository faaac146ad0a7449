"""Live rooms: each room's membership, media plane, connected sessions and timers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from confsfu.conference.room import Participant, Room
from confsfu.server.media import RoomMedia
from confsfu.server.rtc_adapter import RawPeerConnection
from confsfu.settings import Settings
from confsfu.signalling.messages import Message, ParticipantInfo, SlotInfo, SlotMap

log = logging.getLogger(__name__)

Send = Callable[[Message], Awaitable[None]]

TICK_MS = 20
REPORT_EVERY_MS = 1000
REASSIGN_EVERY_MS = 250


def clock_ms() -> int:
    return int(asyncio.get_running_loop().time() * 1000)


def participant_info(p: Participant) -> ParticipantInfo:
    return ParticipantInfo(id=p.id, name=p.name, role=p.role, audio=p.audio, video=p.video)


@dataclass(eq=False)
class LiveRoom:
    """One room while anyone is in it."""

    room: Room
    media: RoomMedia
    senders: dict[str, Send] = field(default_factory=dict)
    _timer: asyncio.TimerHandle | None = None
    _last_report_ms: int = 0
    _last_reassign_ms: int = 0
    _slot_maps_due: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)

    async def broadcast(self, message: Message, *, exclude: str | None = None) -> None:
        for pid, send in list(self.senders.items()):
            if pid != exclude:
                await send(message)

    def slot_infos(self, pid: str) -> list[SlotInfo]:
        infos = []
        for stream, owner in self.media.slot_owners(pid):
            p = self.room.participants.get(owner) if owner is not None else None
            infos.append(
                SlotInfo(
                    mid=stream.mid,
                    kind=stream.kind,
                    participant_id=p.id if p else None,
                    name=p.name if p else None,
                )
            )
        return infos

    def slots_changed(self, pid: str) -> None:
        """Coalesce slot switches into one slot_map per subscriber per loop iteration."""
        if not self._slot_maps_due:
            asyncio.get_running_loop().call_soon(self._send_slot_maps)
        self._slot_maps_due.add(pid)

    def _send_slot_maps(self) -> None:
        due, self._slot_maps_due = self._slot_maps_due, set()
        for pid in due:
            send = self.senders.get(pid)
            if send is not None:
                task = asyncio.ensure_future(send(SlotMap(slots=self.slot_infos(pid))))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def start_timers(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(TICK_MS / 1000, self._tick)

    def stop_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        now_ms = clock_ms()
        try:
            self.media.on_tick(now_ms)
            if now_ms - self._last_reassign_ms >= REASSIGN_EVERY_MS:
                self._last_reassign_ms = now_ms
                self.media.reassign()
            if now_ms - self._last_report_ms >= REPORT_EVERY_MS:
                self._last_report_ms = now_ms
                self.media.on_report_tick(now_ms)
        except Exception:  # a timer must never stop the room
            log.exception("room %s: timer failed", self.room.name)
        self._timer = asyncio.get_running_loop().call_later(TICK_MS / 1000, self._tick)


class Hub:
    """All live rooms of this server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rooms: dict[str, LiveRoom] = {}

    def room(self, name: str) -> LiveRoom:
        live = self.rooms.get(name)
        if live is None:
            config = self.settings.room(name)
            room = Room(name, max_participants=config.max_participants if config else 100)
            holder: list[LiveRoom] = []
            media = RoomMedia(
                room,
                media=self.settings.media,
                slots=self.settings.slots,
                clock_ms=clock_ms,
                make_pc=RawPeerConnection,
                on_slots_changed=lambda pid: holder[0].slots_changed(pid),
            )
            live = LiveRoom(room, media)
            holder.append(live)
            self.rooms[name] = live
            live.start_timers()
        return live

    async def drop_if_empty(self, name: str) -> None:
        live = self.rooms.get(name)
        if live is not None and not live.room.participants:
            live.stop_timers()
            await live.media.close()
            del self.rooms[name]

    async def close(self) -> None:
        for name, live in list(self.rooms.items()):
            live.stop_timers()
            await live.media.close()
            del self.rooms[name]
