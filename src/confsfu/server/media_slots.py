"""Which source each subscriber's slots carry, at which layer: the room's reassign pass (slot
plan, bandwidth allocation, dynacast) and the subscriptions' effects on the fan-out index."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from confsfu.bandwidth.allocator import Demand
from confsfu.bandwidth.budget import NO_LAYERS, BudgetRules, demand, fit_spatial
from confsfu.bandwidth.dynacast import Dynacast, highest_wanted
from confsfu.conference.meeting import Meeting
from confsfu.conference.pins import Pins
from confsfu.conference.slot_plan import RoomPlan, StageMemory, plan_listener, plan_slots
from confsfu.forwarding.subscription import Announce, Effect, Reindex, RequestKeyframe, Shown
from confsfu.ids import Kind, LayerKey, Purpose, SlotPurpose, SourceId
from confsfu.server.media_handles import FanOut, Publisher, Slot, Subscriber
from confsfu.settings import SlotSettings

log = logging.getLogger(__name__)

REASSIGN_CHUNK = 4  # subscribers reassigned per event-loop iteration by the periodic pass
# A grid tile keeps whom it was given this long (unless they may no longer be shown): with
# several talking at once, "most recently heard first" changed a one-tile grid on every pass
# and each change waits for the page and a keyframe (the tile said "connecting…" for 40 s).
GRID_DWELL_MS = 3000


class MediaSlots:
    """Slot assignment of a room's media (a part of `RoomMedia`, which holds the state)."""

    meeting: Meeting
    publishers: dict[tuple[str, Purpose], Publisher]
    subscribers: dict[str, Subscriber]
    dynacast: Dynacast
    _held: set[str]
    pins: Pins
    _stage_memory: StageMemory
    _slot_counts: SlotSettings
    _rules: BudgetRules
    _slots_by_key: dict[LayerKey, list[Slot]]
    _fan_out_by_key: dict[LayerKey, FanOut]
    _gradual: Iterator[None] | None
    _clock_ms: Callable[[], int]
    _on_slots_changed: Callable[[str], None]
    _on_layers_changed: Callable[[str, Purpose, list[str]], None]
    # A relay member's room applies its authority's plan (server/relay.py): None, its own.
    applied_plan: Callable[[], RoomPlan | None] | None = None
    room_plan: RoomPlan | None = None  # the latest pass's (what an authority sends its members)
    # Layers of local sources other workers need (server/relay.py): dynacast keeps them on.
    relay_wants: Callable[[], dict[SourceId, int]] | None = None
    wanted_layers: dict[SourceId, int] = {}  # the latest pass's highest_wanted (replaced)
    pass_started_ms = -(1 << 62)  # when the latest reassign pass started (periodic or not)

    if TYPE_CHECKING:  # RoomMedia's and MediaFeedback's

        def pump(self) -> None: ...

        def _publisher_of(self, source: SourceId) -> Publisher | None: ...

        def _request_keyframe(self, now_ms: int, key: LayerKey) -> None: ...

    # ---- who goes where ---------------------------------------------------------------------

    def reassign(self) -> None:
        """Recompute every ready subscriber's slots now: who is heard, the stage, one grid page.
        An unfinished gradual pass is dropped: this one is newer."""
        self._gradual = None
        for _ in self._reassign_pass():
            pass

    def reassign_gradually(self) -> None:
        """The same pass, `REASSIGN_CHUNK` subscribers per event-loop iteration: a pass over 46
        subscribers takes 10-30 ms, during which no socket is read, so it goes in pieces with
        the loop's I/O in between. A newer pass replaces an unfinished one. The periodic pass
        and the room's events (joins, departures, floor, pages) all reassign this way."""
        steps = self._gradual = self._reassign_pass()
        loop = asyncio.get_running_loop()

        def step() -> None:
            if self._gradual is not steps:
                return
            try:
                next(steps)
            except StopIteration:
                self._gradual = None
            except Exception:  # a timer's work must never stop the room
                log.exception("reassign pass failed")
                self._gradual = None
            else:
                loop.call_soon(step)

        step()

    def _reassign_pass(self) -> Iterator[None]:
        """Reassign, yielding after every `REASSIGN_CHUNK` subscribers (the room as of the pass's
        start; a subscriber gone meanwhile is skipped)."""
        now_ms = self.pass_started_ms = self._clock_ms()
        meeting = self.meeting
        stage = meeting.stage(now_ms)
        previous = self._stage_memory.see(stage)
        applied = self.applied_plan() if self.applied_plan is not None else None
        if applied is None:  # (a relay member applies its authority's: its own is not needed)
            lineup = meeting.lineup(now_ms, self._publishing("audio"), self._publishing("video"))
            counts = self._slot_counts
            applied = RoomPlan(stage, lineup, counts.audio, counts.video, previous)
        self.room_plan = room = applied
        demands: dict[tuple[object, SlotPurpose, int], Demand] = {}  # built once per pass
        for done, sub in enumerate(list(self.subscribers.values()), 1):
            me = sub.participant_id
            if not sub.ready or self.subscribers.get(me) is not sub:
                continue  # not answered yet, or gone
            if not sub.pc.route.ready and not sub.pc.refresh_route():
                continue  # not connected yet: a keyframe sent now would go nowhere
            slots: dict[SlotPurpose, list[Slot]] = {"audio": [], "stage": [], "grid": []}
            for slot in sub.slots:
                slots[slot.purpose].append(slot)
            now = tuple(tuple(s.subscription.wanted_source for s in slots[p]) for p in slots)
            pin = self.pins.of(me)
            if sub.planned != (room, sub.grid_page, pin, now):  # else the plan would be the same
                dwelling = {
                    source
                    for s in slots["grid"]
                    if (source := s.subscription.wanted_source) is not None
                    and s.given_ms is not None
                    and now_ms - s.given_ms < GRID_DWELL_MS
                }
                audio_now, stage_now, grid_now = now
                if sub.listener:
                    plan = plan_listener(room, audio_now, stage_now)
                else:
                    plan = plan_slots(
                        room, me, sub.grid_page, audio_now, stage_now, grid_now, dwelling, pin
                    )
                self._assign(now_ms, slots["audio"], plan.audio)
                self._assign(now_ms, slots["stage"], plan.stage)
                self._assign(now_ms, slots["grid"], plan.grid)
                now = tuple(tuple(s.subscription.wanted_source for s in slots[p]) for p in slots)
                sub.planned = (room, sub.grid_page, pin, now)
            self._allocate(now_ms, sub, demands)
            self.pump()
            if done % REASSIGN_CHUNK == 0:
                yield
        self._dynacast(now_ms)

    def _assign(self, now_ms: int, slots: list[Slot], chosen: list[SourceId | None]) -> None:
        for slot, source in zip(slots, chosen, strict=True):
            if source is not slot.subscription.wanted_source:
                key = self._layer_to_send(now_ms, source) if source is not None else None
                self._execute(now_ms, slot, slot.subscription.assign(now_ms, key))
                slot.given_ms = now_ms if slot.purpose == "grid" and source is not None else None

    # ---- layers: what each subscriber's bandwidth buys ----------------------------------------

    def _allocate(
        self, now_ms: int, sub: Subscriber, known: dict[tuple[object, SlotPurpose, int], Demand]
    ) -> None:
        """Pick each video slot's simulcast and temporal layer to fit the subscriber's budget.

        `known` holds this pass's demands by (source, slot purpose, the stage's highest fitting
        layer): every subscriber showing a source in the same kind of slot, as large, wants it
        the same way, so each is measured and built once per pass; and by (track, slot
        purpose, layer), renamed for a slot (subscribers' pages number their slots alike, so
        most share those too)."""
        fits = fit_spatial(sub.stage_height, self._rules.layer_heights)
        demands: list[Demand] = []
        slots: dict[str, Slot] = {}
        for slot in sub.slots:
            source = slot.subscription.wanted_source
            if slot.kind == "audio":
                continue
            if source is None:
                self._execute(now_ms, slot, slot.subscription.apply(now_ms, None))
                continue
            track = f"{slot.stream.mid}:{source}"
            d = known.get((track, slot.purpose, fits))
            if d is None:
                built = known.get((source, slot.purpose, fits))
                if built is None:
                    built = self._demand(now_ms, track, source, slot, sub.stage_height)
                    known[source, slot.purpose, fits] = built
                d = built if built.track_id == track else built.renamed(track)
                known[track, slot.purpose, fits] = d
            slots[track] = slot
            demands.append(d)
        budget = sub.budget
        changed = budget.allocate(
            now_ms, demands, sub.audio_bps, audio_counted=sub.estimate_counts_audio
        )
        if changed is not None:
            log.info(
                "subscriber %s at %d kbit/s (%s): %s",
                sub.participant_id,
                budget.estimate_bps(now_ms) // 1000,
                sub.estimator_kind,
                ", ".join(f"{d.track_id}={d.spatial}/{d.temporal} ({d.reason})" for d in changed),
            )
            if log.isEnabledFor(logging.DEBUG):  # what each rung cost when it was decided
                log.debug(
                    "subscriber %s ladders: %s",
                    sub.participant_id,
                    "; ".join(
                        f"{d.track_id} "
                        + " ".join(
                            f"{k // 3}/{k % 3}={c // 1000}"
                            for k, c in zip(d.ladder, d.ladder_costs, strict=True)
                        )
                        for d in demands
                    ),
                )
        for decision in budget.decisions:
            slot_or_none = slots.get(decision.track_id)
            if slot_or_none is not None:
                effects = slot_or_none.subscription.apply(now_ms, decision)
                self._execute(now_ms, slot_or_none, effects)

    def _demand(
        self, now_ms: int, track: str, source: SourceId, slot: Slot, stage_height: int
    ) -> Demand:
        pub = self._publisher_of(source)
        meter = pub.meters.get(source) if pub is not None else None
        measured = meter.costs_bps(now_ms) if meter is not None else NO_LAYERS
        return demand(self._rules, track, source, slot.purpose, measured, stage_height)

    def _dynacast(self, now_ms: int) -> None:
        """Tell publishers which simulcast layers anyone could use; the rest may stop."""
        wanted = highest_wanted(
            (s.subscription.wanted_source, s.subscription.decision)
            for sub in self.subscribers.values()
            for s in sub.slots
            if s.subscription.decision is not None and s.subscription.wanted_source is not None
        )
        self.wanted_layers = dict(wanted)
        for source, layer in (self.relay_wants() if self.relay_wants is not None else {}).items():
            wanted[source] = max(wanted.get(source, -1), layer)
        for change in self.dynacast.update(now_ms, wanted):
            source = change.source
            self._on_layers_changed(source.participant, source.purpose, list(change.rids))

    def _publishing(self, kind: Kind) -> set[str]:
        """Participants whose camera publisher sends `kind`."""
        held = self._held if kind == "video" else set()
        return held | {
            pid
            for (pid, purpose), pub in self.publishers.items()
            if purpose == "camera"
            and pub.router is not None
            and any(s.kind == kind for s in pub.router.sections)
        }

    def _layer_to_send(self, now_ms: int, source: SourceId) -> LayerKey:
        """The highest simulcast layer of `source` that arrived in the last second."""
        pub = self._publisher_of(source)
        best = 0
        if pub is not None and pub.router is not None:
            for stream in pub.router.streams.values():
                incoming = pub.receptions.get(stream.ssrc)
                if (
                    stream.section.source is source
                    and stream.repairs is None
                    and incoming is not None
                    and now_ms - incoming.last_packet_ms < 1000
                ):
                    best = max(best, stream.layer)
        return source.layer(best)

    # ---- performing what the cores decide -----------------------------------------------------

    def _execute(self, now_ms: int, slot: Slot, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Reindex):
                self._index_remove(slot)
                self._index_add(slot)
            elif isinstance(effect, RequestKeyframe):
                self._request_keyframe(now_ms, effect.key)
            elif isinstance(effect, Announce):
                self._on_slots_changed(slot.subscriber.participant_id)

    def _index_add(self, slot: Slot) -> None:
        f = slot.forwarder
        for key in (f.source, f.pending):
            if isinstance(key, LayerKey) and key not in slot.indexed:
                slot.indexed.add(key)
                self._slots_by_key.setdefault(key, []).append(slot)
                self._refresh_fan_out(key)

    def _index_remove(self, slot: Slot) -> None:
        for key in slot.indexed:
            slots = self._slots_by_key.get(key)
            if slots is not None:
                slots.remove(slot)
                if not slots:
                    del self._slots_by_key[key]
                self._refresh_fan_out(key)
        slot.indexed.clear()

    def _refresh_fan_out(self, key: LayerKey) -> None:
        entries = tuple(
            (slot, slot.forwarder, slot.wire)
            for slot in self._slots_by_key.get(key, ())
            if slot.wire is not None  # None: its subscriber has not answered yet
        )
        if entries:
            self._fan_out_by_key[key] = entries
        else:
            self._fan_out_by_key.pop(key, None)

    def _after_fan_out(self, switched: list[Slot] | None, unrouted: list[Slot] | None) -> None:
        for slot in unrouted or ():  # no route yet (or SRTP refused it)
            slot.subscriber.pc.refresh_route()
        for slot in switched or ():
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "subscriber %s slot %s switched to %s",
                    slot.subscriber.participant_id, slot.stream.mid, slot.forwarder.source,
                )  # fmt: skip
            self._execute(0, slot, slot.subscription.switched())

    def slots_told(self, now_ms: int, pid: str, seq: int) -> None:
        """Slot map `seq`, with every switch decided so far, is `pid`'s page's latest."""
        sub = self.subscribers.get(pid)
        for slot in sub.slots if sub is not None else ():
            self._execute(now_ms, slot, slot.subscription.told(now_ms, seq))

    def slots_shown(self, now_ms: int, pid: str, seq: int) -> None:
        """`pid`'s page shows slot map `seq`: the switches it announced may go ahead."""
        sub = self.subscribers.get(pid)
        for slot in sub.slots if sub is not None else ():
            self._execute(now_ms, slot, slot.subscription.confirmed(now_ms, seq))

    def shown(self, pid: str) -> list[tuple[Slot, Shown]]:
        """What each of `pid`'s slots shows, as its page is to be told."""
        sub = self.subscribers.get(pid)
        return [(s, s.subscription.shown()) for s in sub.slots] if sub is not None else []
