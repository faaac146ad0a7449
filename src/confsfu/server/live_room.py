"""A live room: its meeting, media plane, connected sessions and timer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from confsfu.bandwidth.quality import Quality
from confsfu.conference import chat, moderation
from confsfu.conference.audience import AudienceChanged
from confsfu.conference.meeting import Meeting, MeetingEvent, ParticipantRemoved
from confsfu.conference.presence import ParticipantAway, ParticipantBack
from confsfu.conference.room import Participant, Room
from confsfu.ids import Purpose
from confsfu.scale.member_gate import ENDED_REASON, MemberGate
from confsfu.server.clock import clock_ms
from confsfu.server.media import RoomMedia
from confsfu.signalling.messages import (
    AudienceCount,
    ChatHistory,
    ChatInfo,
    ChatPosted,
    ChatRemoved,
    Message,
    ParticipantInfo,
    ParticipantLeft,
    ParticipantUpdated,
    PublisherLayers,
    RoomState,
    SlotInfo,
)
from confsfu.signalling.notices import (
    CloseAll,
    Gone,
    Remove,
    Tell,
    TellChairs,
    TellEveryone,
    notices_for,
)

log = logging.getLogger(__name__)

Send = Callable[[Message | str], Awaitable[None]]  # a message, or one already in JSON
Close = Callable[[str], Awaitable[None]]

# The room's one timer runs when its cores next have something to do (their deadlines), at
# most this often and at least this seldom.
MIN_TIMER_MS = 5
MAX_TIMER_MS = 250
REPORT_EVERY_MS = 1000
REASSIGN_EVERY_MS = 250
AUDIENCE_NOTICES = frozenset({"ending_soon"})  # of the notices to everyone, the listeners' too


class SlotRow(NamedTuple):
    """One slot of a slot map, as `SlotInfo` has it."""

    mid: str
    kind: Literal["audio", "video"]
    participant_id: str | None
    name: str | None
    purpose: Literal["audio", "stage", "grid"]
    source: Literal["camera", "screen"] | None
    spatial: int | None
    temporal: int | None
    reason: str | None
    state: Literal["empty", "waiting", "paused", "live"]
    since_ts: int | None


def _slot_infos(rows: Iterable[SlotRow]) -> list[SlotInfo]:
    return [SlotInfo(**row._asdict()) for row in rows]


def slot_map_json(rows: Iterable[SlotRow], seq: int) -> str:
    """The `slot_map` message of these rows as `SlotMap(...).model_dump_json()` writes it,
    without building and validating a model per slot: the room sends some 50 a second, as the
    talkers change. (The rows' types are SlotInfo's; a test holds the two to each other.)"""
    slots = [row._asdict() for row in rows]
    return json.dumps(
        {"type": "slot_map", "slots": slots, "seq": seq}, separators=(",", ":"), ensure_ascii=False
    )


@dataclass(eq=False)
class Connection:
    """What the room needs of a participant's session."""

    send: Send
    close: Close  # close with a reason (bye)
    supersede: Close  # close without leaving: the participant came back on another connection
    # A relay member's participant: its quality goes to the room's authority this way.
    quality: Callable[[Quality], None] | None = None
    # A relay member's session: it stops speaking through its authority link (the room's
    # meeting is this worker's now: server/takeover.py).
    adopt: Callable[[], Awaitable[None]] | None = None
    # ... and, held for a takeover another node won, it closes its page (1012): True if held.
    release: Callable[[], bool] | None = None


@dataclass(eq=False)
class LiveRoom:
    """One room while anyone is in it."""

    meeting: Meeting
    media: RoomMedia
    unix_offset_ms: int  # unix ms = loop ms + this
    connections: dict[str, Connection] = field(default_factory=dict)  # the participants'
    listeners: dict[str, Connection] = field(default_factory=dict)  # the audience's
    on_empty: Callable[[], Awaitable[None]] | None = None  # the last participant left
    on_change: Callable[[], None] | None = None  # the meeting may have changed (a snapshot)
    # A room spanning workers (docs/scale-out.md, "Who decides for a room"). On a relay member:
    # its participants whose meeting is the authority's (server/authority_link.py); once it
    # had one (`follows`) this worker's meeting only holds the media, and tells its pages
    # nothing (the authority does). On the authority: the participants a member speaks for.
    linked: set[str] = field(default_factory=set)
    follows: bool = False
    remote: set[str] = field(default_factory=set)
    remote_quality: dict[str, Quality] = field(default_factory=dict)  # of `remote`, as told
    # The room's listeners across workers: on the authority, where its room states and the
    # audience's notices go for the members' listeners too (server/relay_decisions.py); on a
    # member, the authority's latest room state (its own meeting's would be wrong), as JSON.
    to_members: Callable[[str], None] | None = None
    ended_to_members: Callable[[], None] | None = None  # the meeting ended: the members now
    authority_state: str | None = None
    audience_from_authority: bool = False  # a member: its listeners hear the authority only
    # A member: whether the authority's meeting ended, whose tokens its chairs removed.
    authority_gate: MemberGate = field(default_factory=MemberGate)
    # This worker's meeting was (or is) a relay member's, not the room's: the room's report is
    # its authority's, never written here (until a takeover makes this one the room's).
    reports_elsewhere: bool = False
    on_promote: Callable[[], None] | None = None  # the follower became the meeting (its relay)
    on_authority_lost: Callable[[], None] | None = None  # its node died: plan here (its relay)
    _timer: asyncio.TimerHandle | None = None
    _timer_at_ms: int = 0  # when `_timer` runs
    _timers_on: bool = False
    _last_report_ms: int = 0
    _last_reassign_ms: int = 0
    _slot_maps_due: set[str] = field(default_factory=set)
    _slots_announced: dict[str, list[SlotRow]] = field(default_factory=dict)  # as pages know them
    _slot_seq: dict[str, int] = field(default_factory=dict)  # the last slot map's seq, by page
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def room(self) -> Room:
        return self.meeting.room

    # ---- messages ---------------------------------------------------------------------------

    async def broadcast(
        self, message: Message, *, exclude: str | None = None, audience: bool = False
    ) -> None:
        """To every participant (and with `audience` every listener: the room's state, the
        notices everyone gets; never who is here or what they do). A follower's: nobody.
        A room spanning workers: the authority's audience messages go to the members'
        listeners too, and a member's own go to none of its listeners."""
        if self.follows:
            return
        if self.on_change is not None:
            self.on_change()
        text = message.model_dump_json()  # once, not once per connection
        if audience and self.to_members is not None:
            self.to_members(text)
        audience = audience and not self.audience_from_authority
        groups = (self.connections, self.listeners) if audience else (self.connections,)
        for group in groups:
            for pid, conn in list(group.items()):
                if pid != exclude:
                    await conn.send(text)  # queues: a page that stopped reading holds up nobody
                    self.media.pump()

    async def tell(self, pid: str, message: Message | str) -> None:
        conn = self.connections.get(pid) or self.listeners.get(pid)
        if conn is not None:
            await conn.send(message)

    def audience_count(self) -> AudienceCount:
        audience = self.meeting.audience
        return AudienceCount(listeners=audience.watching, max_listeners=audience.max_listeners)

    def participant_info(self, p: Participant) -> ParticipantInfo:
        m = self.meeting
        mod = m.moderation.state(p.id) if p.id in m.moderation.participants else None
        return ParticipantInfo(
            id=p.id,
            name=p.name,
            role=p.role,
            audio=p.audio,
            video=p.video,
            chair_muted_audio=bool(mod and mod.chair_muted_audio),
            chair_muted_video=bool(mod and mod.chair_muted_video),
            hand_raised=p.id in m.floor.hands,
            unmute_requested=bool(
                mod and (mod.audio_unmute_requested or mod.video_unmute_requested)
            ),
            quality=self.remote_quality.get(p.id) or self.media.quality(p.id),
            connection="reconnecting" if m.presence.is_away(p.id) else "connected",
        )

    def room_state(self) -> RoomState:
        m, now_ms = self.meeting, clock_ms()
        stage = m.stage(now_ms)
        unix = self.unix_offset_ms
        until, end = m.floor.until_ms, m.moderation.scheduled_end_ms
        return RoomState(
            server_time_ms=now_ms + unix,
            floor_holder=m.floor.holder,
            floor_until_ms=until + unix if until is not None else None,
            hands=list(m.floor.hands),
            presenter=m.floor.presenter,
            locked=m.moderation.locked,
            scheduled_end_ms=end + unix if end is not None else None,
            stage=stage.pid,
            stage_kind=stage.kind,
            dominant_speaker=m.speakers.dominant(now_ms),
            chat_enabled=m.chat.enabled,
        )

    def listener_state(self) -> RoomState | str:
        """The room state a listener joining here gets: the authority's if this is a member."""
        if self.audience_from_authority and self.authority_state is not None:
            return self.authority_state
        return self.room_state()

    def gate_from_authority(self, gate: MemberGate) -> None:
        """A member: the authority's gate; once its meeting ended, the listeners here are told
        so and closed (as the home's are), and no more are admitted (by the gate, then by this
        worker's own meeting, ended as well)."""
        ended = gate.ended and not self.authority_gate.ended
        self.authority_gate = gate
        if ended:
            # This worker's part ends too: forgotten once empty (without a report: not the
            # room's), never kept asleep with an ended gate for the room's next meeting.
            self.meeting.moderation.end(clock_ms())
            for conn in list(self.listeners.values()):
                self._spawn(conn.close(ENDED_REASON))

    def tell_listeners_soon(self, text: str, *, state: bool = False) -> None:
        """A member: an audience message of the authority's (`state`: a room state) for the
        listeners here."""
        if state:
            self.authority_state = text
        self._spawn(self._tell_listeners(text))

    async def _tell_listeners(self, text: str) -> None:
        for conn in list(self.listeners.values()):
            await conn.send(text)
            self.media.pump()

    def chat_info(self, message: chat.ChatMessage) -> ChatInfo:
        return ChatInfo(
            id=message.id,
            sender=message.sender,
            name=message.name,
            role="chair" if message.chair else "participant",
            sent_ms=message.at_ms + self.unix_offset_ms,
            text=message.text,
        )

    def chat_history(self) -> ChatHistory:
        return ChatHistory(messages=[self.chat_info(m) for m in self.meeting.chat.history()])

    async def announce(
        self,
        events: Iterable[MeetingEvent | ParticipantRemoved],
        also: Iterable[str] = (),
        *,
        state: bool = False,
    ) -> None:
        """Tell everyone what changed: room state (with `state` even without an event that
        changes it: a screen share started or ended), updated participants, personal notices
        (a follower only applies the gates: the authority tells its pages)."""
        if self.follows:
            self.media.refresh_gates()
            self.media.reassign_gradually()
            return
        if self.on_change is not None:
            self.on_change()
        self.media.refresh_gates()  # before any await: a chair's mute takes effect at once
        changed = set(also)
        state_changed = state
        for event in events:
            pid = getattr(event, "pid", None)
            if isinstance(pid, str):
                changed.add(pid)
            state_changed = state_changed or not isinstance(
                event,
                moderation.OwnMediaChanged
                | moderation.UnmuteRequested
                | chat.ChatPosted
                | chat.ChatRemoved
                | AudienceChanged,
            )
            await self._notify(event)
        for pid in changed:
            p = self.room.participants.get(pid)
            if p is not None:
                await self.broadcast(ParticipantUpdated(participant=self.participant_info(p)))
        if state_changed:
            await self.broadcast(self.room_state(), audience=True)
            self.media.reassign_gradually()
        if (at := self.meeting.next_deadline_ms()) is not None:
            self.wake(at)  # e.g. a floor granted with a time limit

    async def _notify(self, event: MeetingEvent | ParticipantRemoved) -> None:
        names = {pid: p.name for pid, p in self.room.participants.items()}
        for out in notices_for(event, names):
            match out:
                case Tell(pid, notice):
                    await self.tell(pid, notice)
                case TellChairs(notice):
                    await self._tell_chairs(notice)
                case TellEveryone(notice):  # the audience has no chat to be told of
                    await self.broadcast(notice, audience=notice.code in AUDIENCE_NOTICES)
                case CloseAll(reason):
                    if self.ended_to_members is not None:  # their listeners are closed too
                        self.ended_to_members()
                    for conn in [*self.connections.values(), *self.listeners.values()]:
                        await conn.close(reason)
                case Remove(pid, reason):
                    target = self.connections.get(pid)
                    if target is not None:
                        await target.close(reason)
                    else:  # away: nobody to tell, but they are out all the same
                        await self.depart(pid, "removed by the chair")
                case Gone(pid, reason):
                    log.info("room %s: %s did not come back in time", self.room.name, pid)
                    await self._gone(pid, reason)
        match event:
            case chat.ChatPosted(message):
                await self.broadcast(ChatPosted(message=self.chat_info(message)))
            case chat.ChatRemoved(message_id, _by, _sender):
                await self.broadcast(ChatRemoved(message_id=message_id))
            case ParticipantAway(pid):
                log.info("room %s: %s lost the connection; waiting", self.room.name, pid)
            case ParticipantBack(pid):
                log.info("room %s: %s is back", self.room.name, pid)
            case AudienceChanged():
                await self._tell_chairs(self.audience_count())

    async def depart(self, pid: str, reason: str) -> None:
        """`pid` leaves the meeting for good: tell everyone and release its media."""
        self.connections.pop(pid, None)
        self._slots_announced.pop(pid, None)
        self._slot_seq.pop(pid, None)
        events = self.meeting.leave(clock_ms(), pid)
        await self._gone(pid, reason)
        await self.announce(events)

    async def lost(self, pid: str, grace_ms: int | None = None) -> None:
        """`pid`'s connection dropped: its media goes, it stays (away) for the grace period."""
        self.connections.pop(pid, None)
        self._slots_announced.pop(pid, None)
        self._slot_seq.pop(pid, None)
        await self.media.remove(pid, hold=True)
        await self.announce(self.meeting.connection_lost(clock_ms(), pid, grace_ms))

    async def _gone(self, pid: str, reason: str) -> None:
        await self.media.remove(pid)
        await self.broadcast(ParticipantLeft(participant_id=pid, reason=reason))
        if self.empty and self.on_empty is not None:
            await self.on_empty()

    @property
    def empty(self) -> bool:
        """Nobody is here: no participant (not even an away one) and no listener."""
        return not self.room.participants and not self.listeners

    def admit_listener(self, pid: str, conn: Connection) -> None:
        """`pid`, admitted to the meeting's audience, is connected: the chairs will hear of it."""
        self.listeners[pid] = conn
        self.audience_changed()

    async def listener_left(self, pid: str) -> None:
        """A listener left (or its connection dropped: it has nothing to come back to)."""
        self.listeners.pop(pid, None)
        self._slots_announced.pop(pid, None)
        self._slot_seq.pop(pid, None)
        self.meeting.audience.leave(pid)
        await self.media.remove(pid)
        self.audience_changed()
        if self.empty and self.on_empty is not None:
            await self.on_empty()

    def audience_changed(self) -> None:
        """The room's audience count may have changed (here or on another worker): the chairs
        are told at their next due time."""
        if (at := self.meeting.audience.next_deadline_ms()) is not None:
            self.wake(at)

    async def _tell_chairs(self, message: Message) -> None:
        """Every chair connected now (listeners never are chairs)."""
        for pid, p in self.room.participants.items():
            if p.role == "chair":
                await self.tell(pid, message)

    # ---- slot maps --------------------------------------------------------------------------

    def _slot_rows(self, pid: str) -> list[SlotRow]:
        """`pid`'s slot map as plain tuples: cheap to build and compare every pass."""
        rows = []
        participants = self.room.participants
        for slot, shown in self.media.shown(pid):
            source = shown.source
            p = participants.get(source.participant) if source is not None else None
            decision = shown.decision if p else None
            rows.append(
                SlotRow(
                    slot.stream.mid,
                    slot.stream.kind,
                    p.id if p else None,
                    p.name if p else None,
                    slot.purpose,
                    source.purpose if p and source else None,
                    decision.spatial if decision else None,
                    decision.temporal if decision else None,
                    str(decision.reason) if decision else None,
                    shown.state if p else "empty",
                    shown.since_ts if p else None,
                )
            )
        return rows

    def quality_changed(self, pid: str) -> None:
        """A participant's connection quality changed: every page hears of it now."""
        p = self.room.participants.get(pid)
        conn = self.connections.get(pid)
        if pid in self.linked and conn is not None and conn.quality is not None:
            conn.quality(self.media.quality(pid))  # the authority tells every page
        elif p is not None:
            self._spawn(self.broadcast(ParticipantUpdated(participant=self.participant_info(p))))

    def layers_changed(self, pid: str, purpose: Purpose, rids: list[str]) -> None:
        log.info("room %s: %s's %s sends %s", self.room.name, pid, purpose, rids)
        self._spawn(self.tell(pid, PublisherLayers(purpose=purpose, active=rids)))

    def slots_changed(self, pid: str) -> None:
        """Coalesce slot switches into one slot_map per subscriber per loop iteration."""
        if not self._slot_maps_due:
            asyncio.get_running_loop().call_soon(self._send_slot_maps)
        self._slot_maps_due.add(pid)

    def announce_slots(self, pid: str) -> list[SlotInfo]:
        """The slot map to give `pid`'s page now (with a subscribe offer); later slot_maps only
        go out when it changes."""
        rows = self._slots_announced[pid] = self._slot_rows(pid)
        self._slot_seq[pid] = 0
        return _slot_infos(rows)

    def _send_slot_maps(self) -> None:
        due, self._slot_maps_due = self._slot_maps_due, set()
        for pid in due:
            if pid not in self.connections and pid not in self.listeners:
                continue
            rows = self._slot_rows(pid)
            seq = self._slot_seq.get(pid, 0)
            if rows != self._slots_announced.get(pid):  # changes can cancel out in one pass
                self._slots_announced[pid] = rows
                seq = self._slot_seq[pid] = seq + 1
                self._spawn(self.tell(pid, slot_map_json(rows, seq)))
                self.media.pump()
            if seq:
                self.media.slots_told(clock_ms(), pid, seq)  # unchanged rows: the last map told

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- timers -----------------------------------------------------------------------------

    def start_timers(self) -> None:
        if not self._timers_on:
            self._timers_on = True
            self.media.wake = self.wake
            self.wake(clock_ms() + MIN_TIMER_MS)

    def stop_timers(self) -> None:
        self._timers_on = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def wake(self, at_ms: int) -> None:
        """Have the room's timer run by `at_ms` (a core has something to do then)."""
        if not self._timers_on or (self._timer is not None and self._timer_at_ms <= at_ms):
            return
        if self._timer is not None:
            self._timer.cancel()
        delay_ms = max(at_ms - clock_ms(), 0)
        self._timer_at_ms = at_ms
        self._timer = asyncio.get_running_loop().call_later(delay_ms / 1000, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now_ms = clock_ms()
        try:
            self.media.on_tick(now_ms)
            events = self.meeting.tick(now_ms)
            if events:
                self.media.refresh_gates()
                self._spawn(self.announce(events))
            if now_ms - self._last_pass_ms() >= REASSIGN_EVERY_MS:
                self._last_reassign_ms = now_ms
                self.media.reassign_gradually()
            if now_ms - self._last_report_ms >= REPORT_EVERY_MS:
                self._last_report_ms = now_ms
                self.media.on_report_tick(now_ms)
        except Exception:  # a timer must never stop the room
            log.exception("room %s: timer failed", self.room.name)
        self.wake(max(self._next_deadline_ms(now_ms), now_ms + MIN_TIMER_MS))

    def _last_pass_ms(self) -> int:
        """When the latest reassign pass started: an event's pass (or, on a relay member, the
        authority's plan's) counts as the periodic one, which runs only when none ran for
        `REASSIGN_EVERY_MS` (a member ran both, twice the passes of its authority)."""
        return max(self._last_reassign_ms, self.media.pass_started_ms)

    def _next_deadline_ms(self, now_ms: int) -> int:
        """The earliest of the cores' deadlines and the periodic passes (reassign, reports)."""
        due = [
            self._last_pass_ms() + REASSIGN_EVERY_MS,
            self._last_report_ms + REPORT_EVERY_MS,
            now_ms + MAX_TIMER_MS,
        ]
        for at in (self.meeting.next_deadline_ms(), self.media.next_deadline_ms(now_ms)):
            if at is not None:
                due.append(at)
        return min(due)
