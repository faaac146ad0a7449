"""Floor control: who holds the floor, the queue of raised hands, time limits, the presenter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class FloorError(ValueError):
    """An operation the floor's state does not allow; the state is left unchanged. `reason` says
    why in one word (`floor_idle`, `floor_granted`, `floor_taken`, `hand_down`, `hand_raised`,
    `hand_holding`), for pages that word it themselves."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class FloorState(StrEnum):
    IDLE = "idle"  # nobody holds the floor
    GRANTED = "granted"  # someone holds it


class HandState(StrEnum):
    """One participant's standing, derived from the holder and the hand queue."""

    DOWN = "down"
    RAISED = "raised"
    HOLDING = "holding"


class RevokeReason(StrEnum):
    REVOKED = "revoked"  # by the chair
    REPLACED = "replaced"  # the chair granted the floor to someone else
    LEFT = "left"  # the holder left the room


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandRaised:
    pid: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class HandLowered:
    pid: str


@dataclass(frozen=True, slots=True)
class FloorGranted:
    pid: str
    until_ms: int | None  # None: no time limit


@dataclass(frozen=True, slots=True)
class FloorRevoked:
    pid: str
    reason: RevokeReason


@dataclass(frozen=True, slots=True)
class FloorExpired:
    pid: str


@dataclass(frozen=True, slots=True)
class PresenterChanged:
    pid: str | None


FloorEvent = (
    HandRaised | HandLowered | FloorGranted | FloorRevoked | FloorExpired | PresenterChanged
)

# ---- the tables (h11 style: {state: {event type: new state}}) -------------------------------

FLOOR_TRANSITIONS: Mapping[FloorState, Mapping[type[FloorEvent], FloorState]] = MappingProxyType(
    {
        FloorState.IDLE: {FloorGranted: FloorState.GRANTED},
        FloorState.GRANTED: {
            FloorGranted: FloorState.GRANTED,  # the same holder again: new time limit
            FloorRevoked: FloorState.IDLE,
            FloorExpired: FloorState.IDLE,
        },
    }
)

HAND_TRANSITIONS: Mapping[HandState, Mapping[type[FloorEvent], HandState]] = MappingProxyType(
    {
        HandState.DOWN: {HandRaised: HandState.RAISED, FloorGranted: HandState.HOLDING},
        HandState.RAISED: {HandLowered: HandState.DOWN},
        HandState.HOLDING: {
            FloorGranted: HandState.HOLDING,
            FloorRevoked: HandState.DOWN,
            FloorExpired: HandState.DOWN,
        },
    }
)

_DESCRIPTIONS: Mapping[HandState, str] = MappingProxyType(
    {
        HandState.DOWN: "has no hand raised",
        HandState.RAISED: "has a hand raised",
        HandState.HOLDING: "holds the floor",
    }
)

_VERBS: Mapping[type[FloorEvent], str] = MappingProxyType(
    {
        HandRaised: "raise hand",
        HandLowered: "lower hand",
        FloorGranted: "grant the floor",
        FloorRevoked: "revoke the floor",
        FloorExpired: "expire the floor",
    }
)


@dataclass(slots=True)
class _Draft:
    """A copy of the mutable state; an operation's events are applied here before committing."""

    state: FloorState
    holder: str | None
    until_ms: int | None
    hands: dict[str, int]  # pid -> raised at; insertion order is the queue order
    presenter: str | None

    def hand_state(self, pid: str) -> HandState:
        if pid == self.holder:
            return HandState.HOLDING
        if pid in self.hands:
            return HandState.RAISED
        return HandState.DOWN


class FloorControl:
    """Who holds the floor (at most one), the ordered hand queue, and the presenter."""

    def __init__(self) -> None:
        self._d = _Draft(FloorState.IDLE, None, None, {}, None)

    # ---- queries --------------------------------------------------------------------------

    @property
    def state(self) -> FloorState:
        return self._d.state

    @property
    def holder(self) -> str | None:
        return self._d.holder

    @property
    def until_ms(self) -> int | None:
        return self._d.until_ms

    @property
    def hands(self) -> tuple[str, ...]:
        """Raised hands, earliest first."""
        return tuple(self._d.hands)

    @property
    def presenter(self) -> str | None:
        return self._d.presenter

    def hand_state(self, pid: str) -> HandState:
        return self._d.hand_state(pid)

    def raised_at_ms(self, pid: str) -> int | None:
        return self._d.hands.get(pid)

    def next_deadline_ms(self) -> int | None:
        return self._d.until_ms if self._d.state is FloorState.GRANTED else None

    # ---- operations -----------------------------------------------------------------------

    def raise_hand(self, now_ms: int, pid: str) -> list[FloorEvent]:
        return self._apply([HandRaised(pid, now_ms)])

    def lower_hand(self, now_ms: int, pid: str) -> list[FloorEvent]:
        return self._apply([HandLowered(pid)])

    def grant(self, now_ms: int, pid: str, limit_ms: int | None = None) -> list[FloorEvent]:
        """Give `pid` the floor, replacing any other holder; lowers the grantee's hand."""
        if limit_ms is not None and limit_ms <= 0:
            raise FloorError(
                f"cannot grant the floor: time limit must be positive, not {limit_ms}", "bad_limit"
            )
        events: list[FloorEvent] = []
        holder = self._d.holder
        if holder is not None and holder != pid:
            events.append(FloorRevoked(holder, RevokeReason.REPLACED))
        if pid in self._d.hands:
            events.append(HandLowered(pid))
        until_ms = None if limit_ms is None else now_ms + limit_ms
        events.append(FloorGranted(pid, until_ms))
        return self._apply(events)

    def revoke(self, now_ms: int) -> list[FloorEvent]:
        self._require_floor(FloorRevoked)
        assert self._d.holder is not None
        return self._apply([FloorRevoked(self._d.holder, RevokeReason.REVOKED)])

    def participant_left(self, now_ms: int, pid: str) -> list[FloorEvent]:
        """Drop everything `pid` had: raised hand, the floor, the presenter role. Never refuses."""
        events: list[FloorEvent] = []
        if pid in self._d.hands:
            events.append(HandLowered(pid))
        if pid == self._d.holder:
            events.append(FloorRevoked(pid, RevokeReason.LEFT))
        if pid == self._d.presenter:
            events.append(PresenterChanged(None))
        return self._apply(events)

    def on_timer(self, now_ms: int) -> list[FloorEvent]:
        """Expire the grant if its time limit has passed; spurious calls return no events."""
        d = self._d
        if d.holder is None or d.until_ms is None or now_ms < d.until_ms:
            return []
        return self._apply([FloorExpired(d.holder)])

    def set_presenter(self, now_ms: int, pid: str | None) -> list[FloorEvent]:
        if pid == self._d.presenter:
            return []
        return self._apply([PresenterChanged(pid)])

    # ---- the state machine ----------------------------------------------------------------

    def _require_floor(self, event_type: type[FloorEvent]) -> None:
        if event_type not in FLOOR_TRANSITIONS[self._d.state]:
            raise FloorError(
                f"cannot {_VERBS[event_type]}: the floor is {self._d.state}",
                f"floor_{self._d.state}",
            )

    def _apply(self, events: list[FloorEvent]) -> list[FloorEvent]:
        """Apply `events` to a copy of the state through both tables; commit only if all pass."""
        cur = self._d
        d = _Draft(cur.state, cur.holder, cur.until_ms, dict(cur.hands), cur.presenter)
        for event in events:
            if isinstance(event, PresenterChanged):
                d.presenter = event.pid
                continue
            kind = type(event)
            hand = d.hand_state(event.pid)
            new_hand = HAND_TRANSITIONS[hand].get(kind)
            if new_hand is None:
                why = f"cannot {_VERBS[kind]}: {event.pid} {_DESCRIPTIONS[hand]}"
                raise FloorError(why, f"hand_{hand}")
            if isinstance(event, FloorGranted) and d.holder not in (None, event.pid):
                # a new holder needs the old one's FloorRevoked first: one holder at a time
                raise FloorError(
                    f"cannot {_VERBS[kind]}: {d.holder} holds the floor", "floor_taken"
                )
            if isinstance(event, FloorGranted | FloorRevoked | FloorExpired):
                new_state = FLOOR_TRANSITIONS[d.state].get(kind)
                if new_state is None:
                    raise FloorError(
                        f"cannot {_VERBS[kind]}: the floor is {d.state}", f"floor_{d.state}"
                    )
                d.state = new_state
            if isinstance(event, HandRaised):
                d.hands[event.pid] = event.at_ms
            elif isinstance(event, HandLowered):
                del d.hands[event.pid]
            elif isinstance(event, FloorGranted):
                d.holder, d.until_ms = event.pid, event.until_ms
            else:
                d.holder, d.until_ms = None, None
            assert new_hand is d.hand_state(event.pid)
        self._d = d
        return events
