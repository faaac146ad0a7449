"""One decision point for a room spanning workers, the IO shell around scale/authority.py: the
room's home worker (its authority) sends its latest room plan to the relay members, which apply
it to their own subscribers (`RoomMedia.applied_plan`); a member tells the authority who of the
room is connected to it without an authority link (`MemberJoined`, `MemberLeft`: a linked one is
in the authority's meeting as itself, server/authority_link.py), and the meeting holds them;
and how many listeners it holds (`MemberAudience`): the authority's chairs see the sum, and each
member hears how many are on the other workers (`{"audience": n}`) for its own chairs; and what
the authority tells its listeners (its room state, the audience's notices) goes to every
member for the listeners there (`{"listeners": seq, "state": room_state}`, `{"notice": ...}`),
with what a member needs to admit them (`{"gate": ...}`: ended, the chairs' removals).
Audio levels need no message: every microphone is relayed to every worker of the room, and the
authority's intake reads the levels as it does its own publishers'."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from confsfu.conference.slot_plan import RoomPlan
from confsfu.scale import relay_frame as rf
from confsfu.scale.authority import (
    MAX_LISTENERS,
    AuthorityMessageError,
    MemberAudience,
    MemberEvent,
    MemberJoined,
    MemberLeft,
    PlanApplier,
    event_from_json,
    event_json,
    listener_count,
    plan_from_json,
    plan_json,
)
from confsfu.scale.member_gate import MemberGate, gate_from_json, gate_json, gate_of
from confsfu.signalling.messages import Notice, RoomState

if TYPE_CHECKING:
    from confsfu.server.live_room import LiveRoom
    from confsfu.server.media import RoomMedia

log = logging.getLogger(__name__)
SAY_AGAIN_MS = 1000  # the plan and the roster are sent again this often, changed or not
MAX_EVENTS = 100  # per ROOM frame (a bigger roster goes in several)
ROOM_FRAMES_PER_TICK = 8  # per peer: more in one tick are dropped (each is parsed JSON)
MAX_NOTICES = 8  # the audience's notices waiting for the next tick (more are dropped)
STATE_PREFIX = '{"type":"room_state"'
STATE_ROOM = 40  # the bytes of a ROOM frame's `{"listeners": seq, "state": ...}` around a state
ENDED_REPEATS = 3  # the gate saying the meeting ended, sent this many times at once


def for_listeners(state: str) -> str:
    """A room state as the members' listeners get it: as it is, or, too large for a ROOM
    frame (about 1,100 hands), without the hands (a listener's page shows no hand queue; the
    rest is a few ids and numbers, so what is left always fits)."""
    if len(state.encode()) + STATE_ROOM <= rf.MAX_ROOM_BYTES:
        return state
    return RoomState.model_validate_json(state).model_copy(update={"hands": []}).model_dump_json()


class RoomDecisions:
    """For one room on one worker: the authority's plan out, or in and applied; the members'
    rosters in, or this member's out."""

    def __init__(
        self,
        room: int,
        home: int,
        media: RoomMedia,
        send: Callable[[int, bytes], None],
        mirror: Callable[[int, str, str], None],
        unmirror: Callable[[int, str], None],
        counted: Callable[[], None] = lambda: None,
        live: LiveRoom | None = None,
    ) -> None:
        self.room = room
        self.home = home  # the authority's worker index (-1: this worker is the authority)
        self.media = media
        self._send = send
        self._mirror = mirror  # (now_ms, pid, name): into this worker's meeting
        self._unmirror = unmirror
        self._counted = counted  # a listener count from another worker changed the room's
        self.applier = PlanApplier()
        self._sent_plan: RoomPlan | None = None
        self._told: dict[str, str] = {}  # the roster the authority has heard of
        self._said_ms = -SAY_AGAIN_MS
        self._members: dict[int, set[str]] = {}  # authority: each member's participants
        self._audiences: dict[int, int] = {}  # authority: each member's listeners
        self._told_listeners: dict[int, int] = {}  # the count each peer was last told
        self._frames: dict[int, int] = {}  # ROOM frames this tick, by peer
        self._live = live
        self._state: str | None = None  # authority: the latest room state, for listeners
        self._state_seq = 0
        self._sent_state_seq = 0
        self._notices: list[str] = []  # authority: the audience's notices not yet sent
        self._heard_seq: int | None = None  # member: the authority's room state last heard
        self._gate, self._gate_key = MemberGate(), (False, 0)  # authority: its meeting's
        self._sent_gate: MemberGate | None = None  # authority: the gate last sent
        self.orphaned = False  # the authority's node died: its plans no longer applied
        if home >= 0:
            media.applied_plan = lambda: self.applier.plan
        if live is not None and home >= 0:
            live.audience_from_authority = live.reports_elsewhere = True
        elif live is not None:
            live.to_members = self._to_listeners
            live.ended_to_members = self._ended
        self._peers: frozenset[int] = frozenset()  # authority: the members at the last tick

    @property
    def authority(self) -> bool:
        return self.home < 0

    def tick(self, now_ms: int, peers: frozenset[int], mirrored: set[str]) -> None:
        self._frames.clear()
        again = now_ms - self._said_ms >= SAY_AGAIN_MS
        if again:
            self._said_ms = now_ms
        if self.authority:
            plan = self.media.room_plan
            if plan is not None and (again or plan != self._sent_plan):
                self._sent_plan = plan
                frame = self._frame({"plan": plan_json(plan)})
                for peer in peers:
                    self._send(peer, frame)
            for peer in [p for p in self._members if p not in peers]:
                for pid in self._members.pop(peer):
                    self._unmirror(now_ms, pid)
            self._tell_audience(again, peers)
            self._tell_listeners(again, peers)
            self._peers = peers
            self._tell_gate(again, peers)
            return
        room = self.media.meeting.room
        local = {p: room.participants[p].name for p in room.participants if p not in mirrored}
        events: list[MemberEvent] = [
            MemberJoined(p, n) for p, n in local.items() if again or p not in self._told
        ]
        events += [MemberLeft(p) for p in self._told if p not in local]
        self._told = local
        listeners = len(self.media.meeting.audience)
        if again or listeners != self._told_listeners.get(self.home):
            self._told_listeners[self.home] = listeners
            events.append(MemberAudience(listeners))
        for start in range(0, len(events), MAX_EVENTS):
            chunk = events[start : start + MAX_EVENTS]
            self._send(self.home, self._frame({"events": [event_json(e) for e in chunk]}))

    def orphan(self) -> bool:
        """A member whose authority's node died: its plan is dropped and none applied again
        (until the relay is made again); True the first time."""
        if self.authority or self.orphaned:
            return False
        self.orphaned = True
        self.applier.plan = None
        return True

    def on_room(self, peer: int, payload: bytes, now_ms: int) -> None:
        """A ROOM frame from a peer; anything malformed is counted and dropped."""
        count = self._frames.get(peer, 0) + 1
        self._frames[peer] = count
        if count > ROOM_FRAMES_PER_TICK:
            return
        try:
            message = json.loads(payload)
            if not isinstance(message, dict):
                raise AuthorityMessageError("a room message is an object")
            if "plan" in message and peer == self.home and not self.orphaned:
                plan = plan_from_json(message["plan"])
                if plan != self.applier.plan:
                    self.applier.on_plan(plan)
                    self.media.reassign_gradually()
            elif "audience" in message and peer == self.home:  # listeners on the others
                self._count(peer, listener_count(message["audience"]))
            elif ("listeners" in message or "notice" in message) and peer == self.home:
                self._listeners_told(message)
            elif "gate" in message and peer == self.home and self._live is not None:
                self._live.gate_from_authority(gate_from_json(message["gate"]))
            elif "events" in message and self.authority:
                events = message["events"]
                if not isinstance(events, list) or len(events) > MAX_EVENTS:
                    raise AuthorityMessageError("at most 100 events")
                for event in (event_from_json(e) for e in events):
                    self._member_event(peer, event, now_ms)
        except (ValueError, RecursionError) as exc:  # JSON or AuthorityMessageError
            log.info("room message from worker %d dropped: %s", peer, exc)

    def _member_event(self, peer: int, event: MemberEvent, now_ms: int) -> None:
        if isinstance(event, MemberAudience):
            self._audiences[peer] = event.listeners
            self._count(peer, event.listeners)
            return
        mine = self._members.setdefault(peer, set())
        if isinstance(event, MemberJoined):
            if event.pid in mine or len(mine) < 1000:
                mine.add(event.pid)
                self._mirror(now_ms, event.pid, event.name)  # again: a no-op if there
        elif isinstance(event, MemberLeft) and event.pid in mine:
            mine.discard(event.pid)
            self._unmirror(now_ms, event.pid)

    def _tell_audience(self, again: bool, peers: frozenset[int]) -> None:
        """The authority tells each member the room's listeners on the other workers (its
        own and the other members'), when that changed and each second."""
        for peer in [p for p in self._audiences if p not in peers]:
            del self._audiences[peer]
            self._count(peer, None)
        here = len(self.media.meeting.audience)
        total = here + sum(self._audiences.values())
        for peer in peers:
            others = min(total - self._audiences.get(peer, 0), MAX_LISTENERS)
            if again or others != self._told_listeners.get(peer):
                self._told_listeners[peer] = others
                self._send(peer, self._frame({"audience": others}))
        for peer in [p for p in self._told_listeners if p not in peers]:
            del self._told_listeners[peer]

    def _to_listeners(self, text: str) -> None:
        """The authority's room told its listeners `text` (a room state or a notice): the
        members' listeners hear it at the next tick."""
        if text.startswith(STATE_PREFIX):
            self._state, self._state_seq = for_listeners(text), self._state_seq + 1
        elif len(self._notices) < MAX_NOTICES:
            self._notices.append(text)

    def _tell_listeners(self, again: bool, peers: frozenset[int]) -> None:
        """The latest room state when it changed and each second (a datagram may be lost;
        a member joining the span hears it), the notices once."""
        if self._state is None and self._live is not None:  # unchanged since the span began
            self._to_listeners(self._live.room_state().model_dump_json())
        frames = [self._frame_text(f'{{"notice":{text}}}') for text in self._notices]
        self._notices.clear()
        state = self._state
        if state is not None and (again or self._state_seq != self._sent_state_seq):
            self._sent_state_seq = self._state_seq
            frames.append(self._frame_text(f'{{"listeners":{self._state_seq},"state":{state}}}'))
        for frame in frames:
            for peer in peers:
                self._send(peer, frame)

    def _tell_gate(self, again: bool, peers: frozenset[int]) -> None:
        """Whether the meeting ended and whom the chairs removed, when changed and each second
        (a member admits its listeners by it, and closes them once the meeting ended)."""
        moderation = self.media.meeting.moderation
        key = (moderation.ended, moderation.ban_count)  # removals only grow
        if key != self._gate_key:
            self._gate_key, self._gate = key, gate_of(moderation.ended, moderation.banned())
        gate = self._gate
        if peers and (again or gate is not self._sent_gate):  # (a new one when changed)
            self._sent_gate = gate
            frame = self._frame({"gate": gate_json(gate)})
            for peer in peers:
                self._send(peer, frame)

    def _ended(self) -> None:
        """The authority's meeting ended: the members hear it now, not at the next tick (the
        room is forgotten here once its pages are gone, and its relay with it). Sent thrice:
        a datagram may be lost, and the member applies it once."""
        for _ in range(ENDED_REPEATS):
            self._tell_gate(True, self._peers)

    def _listeners_told(self, message: dict[str, Any]) -> None:
        """A member: what the authority told its listeners, for the listeners here (checked
        as a page would; raises ValueError)."""
        live = self._live
        if live is None:
            return
        if "notice" in message:
            live.tell_listeners_soon(Notice.model_validate(message["notice"]).model_dump_json())
            return
        seq = message["listeners"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise AuthorityMessageError("listeners: a sequence number")
        if seq != self._heard_seq:
            state = RoomState.model_validate(message.get("state")).model_dump_json()
            self._heard_seq = seq
            live.tell_listeners_soon(state, state=True)

    def _count(self, peer: int, listeners: int | None) -> None:
        self.media.meeting.listeners_elsewhere(peer, listeners)
        self._counted()

    def _frame(self, message: dict[str, Any]) -> bytes:
        """The ROOM frame of a message (an empty object if it is too large to send)."""
        return self._frame_text(json.dumps(message, separators=(",", ":")))

    def _frame_text(self, text: str) -> bytes:
        payload = text.encode()
        if len(payload) > rf.MAX_ROOM_BYTES:
            log.warning("a room message of %d bytes is too large to relay", len(payload))
            payload = b"{}"
        return rf.encode(rf.RelayFrame(rf.ROOM, self.room, 0, 0, 0, payload))

    def close(self) -> None:
        if self._live is not None:
            self._live.to_members = self._live.ended_to_members = None
            self._live.audience_from_authority = False
            self._live.authority_state = None
        self.media.applied_plan = None
        self.media.meeting.audience.forget_elsewhere()  # the span ended: listeners here only
        self._counted()
