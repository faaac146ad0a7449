"""One subscriber's view of a source through one slot: which layer the slot's forwarder carries,
at which frame rate, and what the page may be told the slot shows.

The identity rule lives here: a slot is announced as showing a participant ("live") only once a
keyframe of theirs has gone out on it; until then, or while paused, it is announced with the
participant it now belongs to as "waiting" or "paused" (the page shows their name card).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from confsfu.bandwidth.allocator import LayerDecision, Reason
from confsfu.forwarding.slot import SlotForwarder
from confsfu.ids import LayerKey, SourceId

SlotState = Literal["empty", "waiting", "paused", "live"]


@dataclass(frozen=True, slots=True)
class Shown:
    """What a slot's page is told it shows."""

    source: SourceId | None
    state: SlotState
    since_ts: int | None = None  # live video: the outgoing timestamp of the source's first frame
    decision: LayerDecision | None = None  # the allocator's word on it (video)


@dataclass(frozen=True, slots=True)
class RequestKeyframe:
    """Ask the publisher of this layer for a keyframe (the shell throttles per layer)."""

    key: LayerKey


@dataclass(frozen=True, slots=True)
class Reindex:
    """The layers the slot's forwarder carries or awaits changed: the packets routed to it must
    follow."""


@dataclass(frozen=True, slots=True)
class Announce:
    """What the slot shows may have changed: its subscriber's slot map is due."""


Effect = RequestKeyframe | Reindex | Announce
REINDEX = Reindex()
ANNOUNCE = Announce()
EMPTY = Shown(None, "empty")
# A slot changing hands takes up the new person no sooner than this after the page is told
# ("waiting"): their first frame must not reach the page while it still shows the previous one.
# A page that confirms the slot maps it has shown (docs/protocol.md, `slots_shown`) is waited
# for instead: a busy page can take longer than any margin to read a message.
ANNOUNCE_MARGIN_MS = 150
HELD_MS = 1 << 62  # switch_after_ms while the page has yet to confirm it heard of the change


class Subscription:
    """The decisions about one slot; its `forwarder` (C) decides per packet."""

    __slots__ = (
        "_applied_to",
        "_hold_seq",
        "_last_out",
        "_live",
        "_shown_seq",
        "_since_ts",
        "confirms",
        "decision",
        "forwarder",
    )

    def __init__(self, forwarder: SlotForwarder, *, confirms: bool = False) -> None:
        self.forwarder = forwarder
        self.confirms = confirms  # its page confirms the slot maps it showed
        self.decision: LayerDecision | None = None  # the allocator's latest word (video)
        self._applied_to: LayerKey | None = None  # the layer `decision` was applied with
        self._live: SourceId | None = None  # whose frames went out since `_since_ts`
        self._since_ts: int | None = None
        self._last_out: SourceId | None = None  # whose frames went out last (the page may show)
        self._hold_seq: int | None = None  # the slot map that told the page of a held switch
        self._shown_seq = 0  # the latest slot map the page confirmed it shows

    @property
    def wanted(self) -> LayerKey | None:
        """The layer this slot is to carry: the one switched to, else the one it carries."""
        f = self.forwarder
        return f.pending or f.source

    @property
    def wanted_source(self) -> SourceId | None:
        key = self.wanted
        return key.source if key is not None else None

    def shown(self) -> Shown:
        f = self.forwarder
        source, pending = f.source, f.pending
        if source is None and pending is None:
            return EMPTY
        if not f.is_video:
            key = source or pending
            assert key is not None
            return Shown(key.source, "live")
        # A hold while the link's queue drains is short: the page keeps the picture it has.
        draining = self.decision is not None and self.decision.reason == Reason.DRAINING
        paused = f.max_temporal < 0 and not draining
        if pending is not None and (source is None or pending.source is not source.source):
            # Changing hands (or its publisher restarted): no picture of theirs here yet.
            return Shown(pending.source, "paused" if paused else "waiting", None, self.decision)
        assert source is not None
        if paused or self._live is not source.source:
            return Shown(source.source, "paused", None, self.decision)
        return Shown(source.source, "live", self._since_ts, self.decision)

    def assign(self, now_ms: int, key: LayerKey | None) -> list[Effect]:
        """Carry `key` (a new source on the layer chosen for it, or None: nothing)."""
        effects: list[Effect] = [REINDEX, ANNOUNCE]
        f = self.forwarder
        last = self._last_out
        # The page may still show the last person whose frames went out (even on an emptied slot).
        if f.is_video and key is not None and last is not None and last is not key.source:
            f.switch_after_ms = HELD_MS if self.confirms else now_ms + ANNOUNCE_MARGIN_MS
            self._hold_seq = None
        elif key is not None and last is key.source and f.switch_after_ms == HELD_MS:
            f.switch_after_ms = 0  # back to whom the page shows: nothing to wait for
        if f.assign(now_ms, key) and key is not None and not self.held:
            effects.append(RequestKeyframe(key))
        if key is None:
            self._live = None
        return effects

    @property
    def held(self) -> bool:
        """A switch waits for the page to confirm it was told."""
        return self.forwarder.switch_after_ms == HELD_MS

    def told(self, now_ms: int, seq: int) -> list[Effect]:
        """Slot map `seq`, listing what this slot shows now, is the page's latest."""
        if self.held and self._hold_seq is None:
            self._hold_seq = seq
        return self._release(now_ms)

    def confirmed(self, now_ms: int, seq: int) -> list[Effect]:
        """The page shows slot map `seq`: a switch it announced may go ahead."""
        self._shown_seq = max(self._shown_seq, seq)
        return self._release(now_ms)

    def _release(self, now_ms: int) -> list[Effect]:
        if not self.held or self._hold_seq is None or self._shown_seq < self._hold_seq:
            return []
        f = self.forwarder
        f.switch_after_ms = now_ms
        self._hold_seq = None
        return [RequestKeyframe(f.pending)] if f.pending is not None else []

    def restart(self, now_ms: int) -> list[Effect]:
        """The source's publisher starts anew (new numbers): take it up again like a switch."""
        key = self.wanted
        if not self.forwarder.restart(now_ms) or key is None:
            return []
        self._live = None
        return [REINDEX, ANNOUNCE, RequestKeyframe(key)]

    def switched(self) -> list[Effect]:
        """The forwarder took up its pending layer on a packet it forwarded (fan_out says so)."""
        f = self.forwarder
        d = self.decision
        if f.is_video and d is not None and d.temporal is not None and f.max_temporal >= 0:
            f.max_temporal = d.temporal  # held down while the layer left went on
        source = f.source
        now_showing = source.source if source is not None else None
        if now_showing is not None:
            self._last_out = now_showing
        if now_showing is not self._live:  # a layer change of the same source is no new picture
            self._live = now_showing
            self._since_ts = self.forwarder.switched_ts if now_showing is not None else None
        return [REINDEX, ANNOUNCE]

    def apply(self, now_ms: int, decision: LayerDecision | None) -> list[Effect]:
        """Follow the allocator's decision for this slot's source (None: not a video tile)."""
        f = self.forwarder
        key = self.wanted
        if decision is self.decision and self._applied_to is key:
            return []  # applied already, to the layer the slot carries
        previous, self.decision = self.decision, decision
        effects: list[Effect] = []
        if decision is None or decision.reason == Reason.NOT_PUBLISHED:
            pass  # nothing measured yet (a new source): keep forwarding what arrives
        elif decision.spatial is None or decision.temporal is None:
            f.max_temporal = -1  # paused: nothing passes, the slot keeps its source
        else:
            resuming = f.max_temporal < 0
            wanted = key.source.layer(decision.spatial) if key is not None else None
            source = f.source
            if (
                not resuming
                and wanted is not None
                and source is not None
                and source.source is wanted.source
                and wanted.spatial < source.spatial
            ):
                # Going down: the layer left keeps its frame rate, no higher, until the switch
                # (`switched` then takes up the decision's).
                f.max_temporal = min(f.max_temporal, decision.temporal)
            else:
                f.max_temporal = decision.temporal
            if wanted is not None and wanted is not key:
                # resuming too: a keyframe of the layer left would resume that one
                if (f.assign(now_ms, wanted) or resuming) and not self.held:
                    effects.append(RequestKeyframe(wanted))
                effects.append(REINDEX)
            elif resuming and key is not None and not self.held:
                effects.append(RequestKeyframe(key))
        self._applied_to = self.wanted
        if _layer_of(previous) != _layer_of(decision):
            effects.append(ANNOUNCE)
        return effects


def _layer_of(d: LayerDecision | None) -> tuple[int | None, int | None, Reason] | None:
    return (d.spatial, d.temporal, d.reason) if d is not None else None
