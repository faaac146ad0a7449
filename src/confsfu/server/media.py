"""A room's media plane: publishers' RTP in, each subscriber's slots out, RTCP both ways."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np

from confsfu._wire import Intake, Track, Wire, fan_out, flush, pump
from confsfu.bandwidth.allocator import (
    AllocatorConfig,
    Demand,
    LayerDecision,
    Priority,
    Reason,
    SubscriberAllocator,
    wanted_bps,
)
from confsfu.bandwidth.dynacast import LayerGate
from confsfu.bandwidth.estimators import BandwidthEstimator, EstimatorConfig, make_estimator
from confsfu.bandwidth.layer_meter import TEMPORAL_LAYERS, LayerBitrateMeter
from confsfu.bandwidth.probe import ProbeConfig, ProbeController
from confsfu.codecs.vp8 import parse_vp8
from confsfu.conference.meeting import Meeting
from confsfu.conference.slots import stable_assign
from confsfu.forwarding.inbound import Inbound
from confsfu.forwarding.ingress import IngressRouter, IngressStream, layer_key, source_of
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp import rtcp
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import ExtensionIds, abs_send_time, parse_audio_level
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp
from confsfu.server import gc_policy
from confsfu.server.rtc_adapter import Kind, OutgoingStream, RawPeerConnection
from confsfu.server.sdp_plan import publish_plan, subscribe_plan
from confsfu.settings import BandwidthSettings, MediaSettings, SlotSettings
from confsfu.signalling.messages import Purpose

log = logging.getLogger(__name__)

CLOCK_RATE = {"audio": 48000, "video": 90000}
REASSIGN_CHUNK = 4  # subscribers reassigned per event-loop iteration by the periodic pass
KEYFRAME_SCAN_EVERY_MS = 100  # re-requests are throttled to one per 500 ms per layer anyway
MAX_PACKET_BYTES = 1500  # larger RTP is refused: forwarded packets are built in fixed buffers
SlotPurpose = Literal["audio", "stage", "grid"]


@dataclass(slots=True, eq=False)  # identity: compared and hashed as objects
class Slot:
    """One outgoing stream of a subscriber: its identity, forwarder and wire."""

    subscriber: Subscriber
    stream: OutgoingStream
    purpose: SlotPurpose
    forwarder: SlotForwarder
    header: SlotHeader | None = None  # known once the subscriber's answer came
    wire: Wire | None = None  # writes, protects, queues and keeps its packets (for NACKs)
    rtx_payload_type: int | None = None
    rtx_seq: int = 0
    shown: str | None = None  # the source the page was last told this slot carries
    rtx_sent: int = 0
    decision: LayerDecision | None = None  # the allocator's latest word on this slot
    applied_to: str | None = None  # the layer key `decision` was last applied with
    indexed: set[str] = field(default_factory=set)  # layer keys whose packets reach this slot

    @property
    def kind(self) -> Kind:
        return self.stream.kind

    @property
    def packets_sent(self) -> int:
        return self.wire.packets if self.wire is not None else 0

    @property
    def bytes_sent(self) -> int:
        """Bytes of the media packets sent (before SRTP), retransmissions not included."""
        return self.wire.packet_bytes if self.wire is not None else 0

    def resend(self, seq: int, now_ms: int) -> bytes | None:
        """Packet `seq` again, if the history still has it: as the slot's next RTX packet (with
        a fresh send time), or byte for byte as it was when no RTX was negotiated (the same
        sequence number protected again must be the same packet: AES-GCM's IV is the number)."""
        sent = self.wire.sent(seq) if self.wire is not None else None
        if sent is None or self.header is None:
            return None
        marker, timestamp, payload, send_time = sent
        original = self.header.packet(marker, seq, timestamp, send_time, payload)
        if self.rtx_payload_type is None:
            return original
        self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
        return self.header.rtx(
            original,
            rtx_ssrc=self.stream.rtx_ssrc,
            rtx_payload_type=self.rtx_payload_type,
            rtx_seq=self.rtx_seq,
            now_ms=now_ms,
        )


FanOut = tuple[tuple[Slot, SlotForwarder, Wire], ...]  # what `fan_out` walks for one layer


@dataclass(slots=True, eq=False)
class Subscriber:
    participant_id: str
    pc: RawPeerConnection
    estimator: BandwidthEstimator
    allocator: SubscriberAllocator
    slots: list[Slot] = field(default_factory=list)
    by_ssrc: dict[int, Slot] = field(default_factory=dict)
    ready: bool = False
    grid_page: int = 0
    loss_fraction: float | None = None  # from the subscriber's receiver reports
    ready_ms: int = 0  # when its answer came
    probe: ProbeController = field(default_factory=ProbeController)
    wanted_bps: int = 0  # what its tiles could use, audio included
    sent_bytes: int = 0  # media bytes sent up to the last report tick
    padding_bytes: int = 0  # probe padding sent so far


@dataclass(slots=True, eq=False)
class Publisher:
    participant_id: str
    purpose: Purpose
    pc: RawPeerConnection
    rtcp_ssrc: int
    intake: Intake  # takes its RTP from the socket to the slots (confsfu._wire, C)
    router: IngressRouter | None = None
    ext: ExtensionIds = field(default_factory=ExtensionIds)
    incoming: dict[int, Track] = field(default_factory=dict)
    meters: dict[str, LayerBitrateMeter] = field(default_factory=dict)  # per video source
    gates: dict[str, LayerGate] = field(default_factory=dict)  # per simulcast source


class RoomMedia:
    """Forwards every publisher's packets to the subscriber slots that carry it, never decoding."""

    def __init__(
        self,
        meeting: Meeting,
        *,
        media: MediaSettings,
        slots: SlotSettings,
        bandwidth: BandwidthSettings | None = None,
        clock_ms: Callable[[], int],
        make_pc: Callable[..., RawPeerConnection],
        on_slots_changed: Callable[[str], None],
        on_layers_changed: Callable[[str, Purpose, list[str]], None] = lambda *_: None,
        rng: random.Random | None = None,
    ) -> None:
        self.meeting = meeting
        self._media = media
        self._slot_counts = slots
        self._clock_ms = clock_ms
        self._make_pc = make_pc
        self._on_slots_changed = on_slots_changed
        self._on_layers_changed = on_layers_changed
        self._bw = bandwidth or BandwidthSettings()
        self._rng = rng or random.Random()
        self.publishers: dict[tuple[str, Purpose], Publisher] = {}
        self._held: set[str] = set()  # away participants whose camera stays in the slots
        self.subscribers: dict[str, Subscriber] = {}
        self._slots_by_key: dict[str, list[Slot]] = {}  # layer key -> slots carrying or awaiting it
        # ... and those of them that can send, as `fan_out` walks them (rebuilt when they change)
        self._fan_out_by_key: dict[str, FanOut] = {}
        self.keyframes = KeyframeRequester(media.keyframe_request_interval_ms)
        self._counters: Counter[str] = Counter()
        self._drops: Counter[str] = Counter()
        self._last_report_ms = clock_ms()
        self._flush_due = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the room runs on
        self._send_time_ms, self._send_time = -1, b""  # abs-send-time of the last arrival's ms
        self._gradual: Iterator[None] | None = None  # the reassign pass under way, if any
        self._last_keyframe_scan_ms = 0

    # ---- joining and leaving ----------------------------------------------------------------

    async def publish(self, pid: str, offer_sdp: str, purpose: Purpose = "camera") -> str:
        """Accept a participant's publish offer; returns the answer. Replaces an earlier one."""
        await self.unpublish(pid, purpose)
        pc = self._make_pc()
        intake = Intake(
            pid,
            self._fan_out_by_key,
            slow=lambda data, arrival_ms: self._on_publisher_rtp(pub, data, arrival_ms),
            on_level=self.meeting.on_audio_level,
            on_keyframe=self.keyframes.keyframe_arrived,
            after_fan_out=self._after_fan_out,
            schedule_flush=self._schedule_flush,
            max_packet=MAX_PACKET_BYTES,
        )
        pub = Publisher(pid, purpose, pc, rtcp_ssrc=self._rng.getrandbits(32), intake=intake)
        self._gate(pub)
        pub.pc.set_callbacks(
            on_rtp=intake.receive,  # RTP opened by libsrtp (the profiles the intake cannot open)
            on_rtcp=partial(self._on_publisher_rtcp, pub),
            intake=intake,
        )
        self.publishers[pid, purpose] = pub
        try:
            answer = await pub.pc.answer(offer_sdp)
            plan = publish_plan(
                pid, offer_sdp, answer, self._media.start_bitrate_kbps, purpose=purpose
            )
        except Exception:
            self.publishers.pop((pid, purpose), None)
            await pub.pc.close()
            raise
        pub.router = IngressRouter(plan.sections, plan.ext)
        if purpose == "camera":
            self._held.discard(pid)
        self._restart_slots(pid, purpose)
        pub.ext = plan.ext
        pub.intake.level_id = plan.ext.audio_level or 0
        pub.intake.level_floor = self.meeting.speakers.quiet_from
        for section in plan.sections:
            if section.kind == "video":
                # Several seconds, so a keyframe (often 10x a delta frame) is averaged out.
                pub.meters[section.source] = LayerBitrateMeter(
                    window_ms=self._bw.meter_window_ms, bucket_ms=250
                )
                if len(section.rids) > 1:
                    pub.gates[section.source] = LayerGate(
                        len(section.rids), self._bw.layer_off_delay_ms
                    )
        return plan.answer_sdp

    async def subscribe(self, pid: str) -> str:
        """A subscribe offer with the configured fixed slots; the answer goes to `answer`."""
        await self._close_subscriber(pid)
        bw = self._bw
        estimator = make_estimator(
            bw.estimator,
            EstimatorConfig(initial_bps=bw.initial_bps, min_bps=bw.min_bps, max_bps=bw.max_bps),
        )
        allocator = SubscriberAllocator(
            AllocatorConfig(
                threshold=bw.threshold,
                upgrade_hold_ms=bw.upgrade_hold_ms,
                rise_ms=bw.rise_ms,
                reserved_bps=0,  # audio is taken off per carried stream in _allocate
            )
        )
        sub = Subscriber(pid, self._make_pc(), estimator, allocator)
        sub.probe = ProbeController(
            ProbeConfig(
                duration_ms=bw.probe_duration_ms,
                gain=bw.probe_gain,
                max_interval_ms=max(bw.probe_max_interval_ms, 4000),
            )
        )
        sub.pc.set_callbacks(
            on_rtp=lambda data, at: None, on_rtcp=lambda data: self._on_subscriber_rtcp(sub, data)
        )
        self.subscribers[pid] = sub
        audio: list[Kind] = ["audio"]
        video: list[Kind] = ["video"]
        kinds = audio * self._slot_counts.audio + video * (1 + self._slot_counts.video)
        offer, streams = await sub.pc.offer(kinds)
        audio_slot: list[SlotPurpose] = ["audio"]
        stage_slot: list[SlotPurpose] = ["stage"]
        grid_slot: list[SlotPurpose] = ["grid"]
        purposes = audio_slot * self._slot_counts.audio + stage_slot
        purposes += grid_slot * self._slot_counts.video
        for stream, purpose in zip(streams, purposes, strict=True):
            forwarder = SlotForwarder(
                is_video=stream.kind == "video",
                clock_rate=CLOCK_RATE[stream.kind],
                initial_seq=self._rng.getrandbits(16),
                initial_ts=self._rng.getrandbits(32),
            )
            slot = Slot(sub, stream, purpose, forwarder, rtx_seq=self._rng.getrandbits(16))
            sub.slots.append(slot)
            sub.by_ssrc[stream.ssrc] = slot
            sub.by_ssrc[stream.rtx_ssrc] = slot
        return offer

    async def answer(self, pid: str, answer_sdp: str) -> None:
        sub = self.subscribers.get(pid)
        if sub is None:
            raise LookupError("there is no subscribe offer to answer")
        local = sub.pc.local_sdp
        plan = subscribe_plan(local, answer_sdp)
        await sub.pc.accept_answer(answer_sdp)
        for slot in sub.slots:
            negotiated = plan.by_mid[slot.stream.mid]
            slot.header = SlotHeader(
                ssrc=slot.stream.ssrc,
                payload_type=negotiated.payload_type,
                mid=slot.stream.mid,
                mid_id=negotiated.ext.mid,
                abs_send_time_id=negotiated.ext.abs_send_time if slot.kind == "video" else None,
            )
            slot.wire = Wire(
                sub.pc.route,
                slot.header.template(),
                slot.header.abs_send_time_at,
                history=self._media.rtx_history_packets,
            )
            slot.rtx_payload_type = negotiated.rtx_payload_type
            for key in slot.indexed:
                self._refresh_fan_out(key)
        sub.ready = True
        sub.ready_ms = self._clock_ms()
        gc_policy.settle()  # this participant's objects are here to stay
        self.reassign_gradually()

    async def remove(self, pid: str, *, hold: bool = False) -> None:
        """Close `pid`'s PeerConnections. With `hold` (its connection dropped, it may come
        back) the slots showing its camera keep it there until it publishes again."""
        self._held.discard(pid)
        camera = self.publishers.get((pid, "camera"))
        router = camera.router if camera is not None else None
        if hold and router is not None and any(s.kind == "video" for s in router.sections):
            self._held.add(pid)
        await self._close_subscriber(pid)
        for purpose in ("camera", "screen"):
            await self.unpublish(pid, purpose)
        self.reassign_gradually()

    async def close(self) -> None:
        for pid in {*self.subscribers, *(pid for pid, _ in self.publishers)}:
            await self.remove(pid)

    async def unpublish(self, pid: str, purpose: Purpose) -> None:
        pub = self.publishers.pop((pid, purpose), None)
        if pub is not None:
            self._take_intake_counts(pub)
            if pub.router is not None:
                for stream in pub.router.streams.values():
                    self.keyframes.forget(stream.key)
            await pub.pc.close()
            self._take_intake_counts(pub)  # what arrived while it closed
            gc_policy.release()  # the connection's objects may be cycles

    async def _close_subscriber(self, pid: str) -> None:
        sub = self.subscribers.pop(pid, None)
        if sub is None:
            return
        for slot in sub.slots:
            self._index_remove(slot)
        await sub.pc.close()
        gc_policy.release()

    def _restart_slots(self, pid: str, purpose: Purpose) -> None:
        """Slots already carrying `pid`'s `purpose` take its new streams up like a switch."""
        now_ms = self._clock_ms()
        for layer, slots in list(self._slots_by_key.items()):
            owner, _, what = layer.partition("/")
            if owner != pid or what.startswith("screen") != (purpose == "screen"):
                continue
            for slot in list(slots):
                key = slot.forwarder.pending or slot.forwarder.source
                if slot.forwarder.restart(now_ms) and key is not None:
                    self._request_keyframe(now_ms, key)

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
        now_ms = self._clock_ms()
        meeting = self.meeting
        stage = meeting.stage(now_ms)
        audio = self._publishing("audio")
        video = self._publishing("video")
        stage_source = None
        if stage.pid is not None:
            stage_source = f"{stage.pid}/screen" if stage.kind == "screen" else f"{stage.pid}/video"
        # The grid shows the others; whoever is on the stage is already large there.
        lineup = meeting.lineup(
            now_ms, audio, video - {stage.pid} if stage.kind != "screen" else video
        )
        demands: dict[tuple[str, str], Demand] = {}  # built once per pass: see _allocate
        for done, sub in enumerate(list(self.subscribers.values()), 1):
            me = sub.participant_id
            if not sub.ready or self.subscribers.get(me) is not sub:
                continue
            slots: dict[SlotPurpose, list[Slot]] = {"audio": [], "stage": [], "grid": []}
            for slot in sub.slots:
                slots[slot.purpose].append(slot)
            heard = lineup.audio_for(me, self._slot_counts.audio, _heard_in(slots["audio"]))
            grid = lineup.grid_for(me, sub.grid_page, self._slot_counts.video)
            on_stage = [stage_source] if stage_source and stage.pid != me else []
            self._assign(now_ms, slots["audio"], [f"{p}/audio" for p in heard])
            self._assign(now_ms, slots["stage"], on_stage)
            self._assign(now_ms, slots["grid"], [f"{p}/video" for p in grid])
            self._allocate(now_ms, sub, demands)
            self.pump()
            if done % REASSIGN_CHUNK == 0:
                yield
        self._dynacast(now_ms)

    # ---- layers: what each subscriber's bandwidth buys ----------------------------------------

    def _allocate(self, now_ms: int, sub: Subscriber, known: dict[tuple[str, str], Demand]) -> None:
        """Pick each video slot's simulcast and temporal layer to fit the subscriber's estimate.

        `known` holds this pass's demands by (source, slot purpose): every subscriber showing
        a source in the same kind of slot wants it the same way, so each is measured and built
        once per pass; and by (track, slot purpose), renamed for a slot (subscribers' pages
        number their slots alike, so most share those too)."""
        demands: list[Demand] = []
        slots: dict[str, Slot] = {}
        for slot in sub.slots:
            source = _source(slot.forwarder.pending or slot.forwarder.source)
            if slot.kind != "video" or source is None:
                slot.decision = None
                continue
            track = f"{slot.stream.mid}:{source}"
            demand = known.get((track, slot.purpose))
            if demand is None:
                kind_of_slot = (source, slot.purpose)
                built = known.get(kind_of_slot)
                if built is None:
                    built = known[kind_of_slot] = self._demand(now_ms, track, *kind_of_slot)
                demand = built if built.track_id == track else built.renamed(track)
                known[(track, slot.purpose)] = demand
            slots[track] = slot
            demands.append(demand)
        bw = self._bw
        estimate = sub.estimator.estimate_bps(now_ms)
        if now_ms - sub.ready_ms < bw.warmup_ms:
            estimate = max(estimate, bw.initial_bps)
        audio = sum(1 for s in sub.slots if s.kind == "audio" and s.forwarder.source is not None)
        budget = max(0, estimate - audio * bw.audio_reserve_bps)
        sub.wanted_bps = wanted_bps(demands) + audio * bw.audio_reserve_bps
        changed = sub.allocator.update(now_ms, budget, demands)
        if changed is not None:
            log.info(
                "subscriber %s at %d kbit/s: %s",
                sub.participant_id,
                estimate // 1000,
                ", ".join(f"{d.track_id}={d.spatial}/{d.temporal} ({d.reason})" for d in changed),
            )
        for decision in sub.allocator.decisions:
            slot_or_none = slots.get(decision.track_id)
            if slot_or_none is not None:
                if slot_or_none.purpose == "stage" and decision.reason == Reason.PAUSED_BANDWIDTH:
                    # The speaker is never paused: the lowest layer at the lowest frame rate
                    # goes out even over budget, which also lets the estimate find its way up.
                    decision = replace(decision, spatial=0, temporal=0, reason=Reason.BANDWIDTH)
                self._apply(now_ms, slot_or_none, decision)

    def _demand(self, now_ms: int, track: str, source: str, purpose: SlotPurpose) -> Demand:
        bw = self._bw
        pub = self._publisher_of(source)
        meter = pub.meters.get(source) if pub is not None else None
        measured = meter.bitrates_bps(now_ms) if meter is not None else _NO_LAYERS
        if source.endswith("/screen"):
            priority, caps = Priority.SCREEN, (2, 2)
        elif purpose == "stage":
            priority, caps = Priority.STAGE, (bw.stage_max_spatial, bw.stage_max_temporal)
        else:
            priority, caps = Priority.THUMBNAIL, (bw.grid_max_spatial, bw.grid_max_temporal)
        return Demand(track, priority, caps[0], caps[1], measured)

    def _apply(self, now_ms: int, slot: Slot, decision: LayerDecision) -> None:
        forwarder = slot.forwarder
        if decision is slot.decision and slot.applied_to == (forwarder.pending or forwarder.source):
            return  # applied already, to the layer the slot carries
        previous, slot.decision = slot.decision, decision
        if decision.reason == Reason.NOT_PUBLISHED:
            pass  # nothing measured yet (a new source): keep forwarding what arrives
        elif decision.spatial is None or decision.temporal is None:
            forwarder.max_temporal = -1  # paused: nothing passes, the slot keeps its source
        else:
            resuming = forwarder.max_temporal < 0
            forwarder.max_temporal = decision.temporal
            key = forwarder.pending or forwarder.source
            if resuming and key is not None:
                self._request_keyframe(now_ms, key)
            wanted = layer_key(source_of(key), decision.spatial) if key is not None else None
            if wanted is not None and wanted != key:
                self._index_remove(slot)
                needs_keyframe = forwarder.assign(now_ms, wanted)
                self._index_add(slot)
                if needs_keyframe:
                    self._request_keyframe(now_ms, wanted)
        slot.applied_to = forwarder.pending or forwarder.source
        if previous is None or (previous.spatial, previous.temporal, previous.reason) != (
            decision.spatial,
            decision.temporal,
            decision.reason,
        ):
            self._on_slots_changed(slot.subscriber.participant_id)

    def _dynacast(self, now_ms: int) -> None:
        """Tell publishers which simulcast layers anyone could use; the rest may stop."""
        needed: dict[str, int] = {}
        for sub in self.subscribers.values():
            for slot in sub.slots:
                d = slot.decision
                source = _source(slot.forwarder.pending or slot.forwarder.source)
                if d is None or source is None:
                    continue
                want = d.preferred_spatial if d.preferred_spatial is not None else d.spatial
                if want is not None:
                    needed[source] = max(needed.get(source, 0), want)
        for (pid, purpose), pub in self.publishers.items():
            if pub.router is None:
                continue
            for section in pub.router.sections:
                gate = pub.gates.get(section.source)
                if gate is None:
                    continue
                layers_on = gate.update(now_ms, needed.get(section.source))
                if layers_on is not None:
                    self._on_layers_changed(pid, purpose, list(section.rids[:layers_on]))

    def _publishing(self, kind: Kind) -> set[str]:
        """Participants whose camera publisher sends `kind`."""
        suffix = f"/{kind}"
        held = self._held if kind == "video" else set()
        return held | {
            pid
            for (pid, purpose), pub in self.publishers.items()
            if purpose == "camera"
            and pub.router is not None
            and any(s.source.endswith(suffix) for s in pub.router.sections)
        }

    def _assign(self, now_ms: int, slots: list[Slot], wanted: list[str]) -> None:
        """Give `slots` the wanted sources, keeping anyone already shown where they are."""
        current = [_source(s.forwarder.pending or s.forwarder.source) for s in slots]
        chosen = stable_assign(current, wanted)
        for slot, source, before in zip(slots, chosen, current, strict=True):
            if source is not None and source == before:
                continue  # the allocator picks its layer; a new source starts on the highest
            key = self._layer_to_send(now_ms, source) if source is not None else None
            self._index_remove(slot)
            needs_keyframe = slot.forwarder.assign(now_ms, key)
            self._index_add(slot)
            if needs_keyframe and key is not None:
                self._request_keyframe(now_ms, key)
            emptied = slot.forwarder.source is None and slot.forwarder.pending is None
            if emptied and slot.shown is not None:
                self._slot_changed(slot)

    def _layer_to_send(self, now_ms: int, source: str) -> str:
        """The highest simulcast layer of `source` that arrived in the last second."""
        pub = self._publisher_of(source)
        best = 0
        if pub is not None and pub.router is not None:
            for stream in pub.router.streams.values():
                incoming = pub.incoming.get(stream.ssrc)
                if (
                    stream.section.source == source
                    and stream.repairs is None
                    and incoming is not None
                    and now_ms - incoming.last_packet_ms < 1000
                ):
                    best = max(best, stream.layer)
        return layer_key(source, best)

    def _publisher_of(self, source_or_key: str) -> Publisher | None:
        pid, _, rest = source_or_key.partition("/")
        purpose: Purpose = "screen" if rest.startswith("screen") else "camera"
        return self.publishers.get((pid, purpose))

    def _index_add(self, slot: Slot) -> None:
        for key in (slot.forwarder.source, slot.forwarder.pending):
            if key is not None and key not in slot.indexed:
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

    def _refresh_fan_out(self, key: str) -> None:
        entries = tuple(
            (slot, slot.forwarder, slot.wire)
            for slot in self._slots_by_key.get(key, ())
            if slot.wire is not None  # None: its subscriber has not answered yet
        )
        if entries:
            self._fan_out_by_key[key] = entries
        else:
            self._fan_out_by_key.pop(key, None)

    def _slot_changed(self, slot: Slot) -> None:
        slot.shown = _source(slot.forwarder.source)
        self._on_slots_changed(slot.subscriber.participant_id)

    # ---- publishers' packets: the hot path --------------------------------------------------

    @property
    def counters(self) -> Counter[str]:
        """Packets and bytes in and out, and events worth counting, since the room opened."""
        self._take_intake_counts()
        return self._counters

    @property
    def drops(self) -> Counter[str]:
        """Packets not forwarded, by reason."""
        self._take_intake_counts()
        return self._drops

    def _take_intake_counts(self, *pubs: Publisher) -> None:
        for pub in pubs or self.publishers.values():
            counters, drops = pub.intake.take_counts()
            self._counters.update(counters)
            self._drops.update(drops)

    def refresh_gates(self) -> None:
        """Tell every publisher's intake whether a chair lets its audio and video through;
        called whenever the meeting may have changed that."""
        for pub in self.publishers.values():
            self._gate(pub)

    def _gate(self, pub: Publisher) -> None:
        camera = pub.purpose == "camera"  # a chair's mute is of the camera and microphone
        pid = pub.participant_id
        pub.intake.gate_audio = not camera or self.meeting.may_forward(pid, "audio")
        pub.intake.gate_video = not camera or self.meeting.may_forward(pid, "video")

    def _on_publisher_rtp(self, pub: Publisher, data: bytes, arrival_ms: int) -> None:
        """The packets the intake (C) does not take: the first of each SSRC, RTX, malformed
        ones; also the specification of what it does with the others."""
        counters = self._counters
        counters["packets_in"] += 1
        counters["bytes_in"] += len(data)
        drops = self._drops
        if len(data) > MAX_PACKET_BYTES:
            drops["oversized"] += 1
            return
        try:
            pkt = parse_rtp(data)
        except ParseError:
            drops["bad_rtp"] += 1
            return
        router = pub.router
        stream = router.route(pkt) if router is not None else None
        if stream is None:
            drops["unknown_ssrc"] += 1
            return
        if stream.repairs is not None:
            unwrapped = self._unwrap_rtx(stream, pkt)
            if unwrapped is None:
                return
            media = pub.incoming.get(stream.repairs)
            intake = pub.intake
            if media is not None and intake.holds(media.ssrc) and not intake.holds(pkt.ssrc):
                intake.add_repair(pkt.ssrc, pkt.payload_type, media)  # unwrapped in C next
            pkt = unwrapped
        incoming = pub.incoming.get(pkt.ssrc)
        if incoming is None:
            incoming = pub.incoming[pkt.ssrc] = Track(
                pkt.ssrc,
                nack_delay_ms=self._media.upstream_nack_delay_ms,
                nack_retries=self._media.upstream_nack_retries,
            )
        kind = stream.section.kind
        meter = pub.meters.get(stream.section.source)
        if stream.repairs is None and not pub.intake.holds(pkt.ssrc):
            counts = meter.counts if meter is not None else None
            incoming.route(stream.key, kind == "video", stream.layer, counts)
            pub.intake.add(incoming)  # its next packets go the fast way
        if not incoming.on_packet(arrival_ms, pkt.sequence_number, len(data)):
            drops["duplicate"] += 1
            return
        if pkt.padding_only:
            return
        if not (pub.intake.gate_video if kind == "video" else pub.intake.gate_audio):
            drops["chair_muted"] += 1  # the intake's gates, set by refresh_gates
            return
        if kind == "video":
            try:
                vp8 = parse_vp8(pkt.payload)
            except ParseError:
                drops["bad_vp8"] += 1
                return
            if vp8.is_keyframe:
                self.keyframes.keyframe_arrived(stream.key)
            temporal = vp8.temporal_id or 0
            if meter is not None and temporal < TEMPORAL_LAYERS:  # a fourth is not measured
                meter.on_packet(arrival_ms, stream.layer, temporal, len(data))
            picture = (
                incoming.unwrap_picture(vp8.picture_id) if vp8.picture_id is not None else None
            )
            entries = self._fan_out_by_key.get(stream.key)
            if entries is None:  # a layer no slot carries (or awaits)
                return
            inbound = Inbound(stream.key, pkt, incoming.last_ext, vp8, picture)
            if arrival_ms != self._send_time_ms:  # many packets arrive within one millisecond
                self._send_time_ms, self._send_time = arrival_ms, abs_send_time(arrival_ms)
            self._forward(entries, inbound, arrival_ms, self._send_time)
        else:
            if pub.ext.audio_level is not None:
                self._note_audio_level(pub, pkt, arrival_ms)
            entries = self._fan_out_by_key.get(stream.key)
            if entries is not None:  # None: not among the voices anyone hears now
                self._forward(entries, Inbound(stream.key, pkt, incoming.last_ext), arrival_ms, b"")

    def _forward(self, entries: FanOut, p: Inbound, now_ms: int, send_time: bytes) -> None:
        """Send one incoming packet on every slot that carries its layer: the hot path.

        `fan_out` (C) decides per slot (its forwarder's numbers), writes the slot's header in
        front of the shared payload, SRTP-protects it and queues it; the queue goes out back to
        back once the loop has run this iteration's callbacks (or when it is full), so the
        copies of every packet read in one iteration leave together. Python only hears of slots
        whose source changed or whose route is down.
        """
        try:
            sent, sent_bytes, switched, unrouted = fan_out(entries, p, now_ms, send_time)
        finally:
            self._schedule_flush()
        if sent:
            self._counters["packets_out"] += sent
            self._counters["bytes_out"] += sent_bytes
        if switched or unrouted:
            self._after_fan_out(switched, unrouted)

    def _after_fan_out(self, switched: list[Slot] | None, unrouted: list[Slot] | None) -> None:
        for slot in unrouted or ():  # no route yet (or SRTP refused it)
            slot.subscriber.pc.refresh_route()
        for slot in switched or ():
            self._index_remove(slot)
            self._index_add(slot)
            self._slot_changed(slot)

    def _schedule_flush(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self._running_loop().call_soon(self._flush)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:  # asking asyncio costs a system call (getpid) each time
            self._loop = asyncio.get_running_loop()
        return self._loop

    def pump(self) -> None:
        """Read the publishers' sockets (every room's) now and send what they forward: called
        between the steps of long Python work, so that media does not wait in the sockets for
        the whole of it. What is not the intakes' (STUN, DTLS, RTCP) waits for the loop."""
        try:
            if pump(self._defer):
                self._flush()
        except Exception:  # as from a socket callback: logged, and the work goes on
            log.exception("reading the publishers' sockets failed")

    def _defer(self, fallback: Callable[[bytes, Any], object], data: bytes, addr: Any) -> None:
        """A datagram the pump read that is not the intakes' (STUN, DTLS, RTCP): the loop
        hands it to the socket's Python callback next."""
        self._running_loop().call_soon(fallback, data, addr)

    def _flush(self) -> None:
        self._flush_due = False
        failed = flush()
        if failed:  # sockets refused them (a full send buffer); still counted as forwarded
            self._drops["send_failed"] += failed

    def _unwrap_rtx(self, stream: IngressStream, pkt: RtpPacket) -> RtpPacket | None:
        payload = pkt.payload
        if len(payload) < 2:
            self._drops["rtx_padding"] += 1
            return None
        apt = stream.section.rtx_payload_types.get(pkt.payload_type)
        if apt is None or stream.repairs is None:
            self._drops["rtx_unknown"] += 1
            return None
        self._counters["rtx_in"] += 1
        original = build_rtp(
            payload_type=apt,
            sequence_number=int.from_bytes(payload[:2], "big"),
            timestamp=pkt.timestamp,
            ssrc=stream.repairs,
            payload=payload[2:],
            marker=pkt.marker,
            extensions=pkt.extensions,
        )
        return parse_rtp(original)

    def _note_audio_level(self, pub: Publisher, pkt: RtpPacket, now_ms: int) -> None:
        value = pkt.extensions.get(pub.ext.audio_level or 0)
        if value is None:
            return
        try:
            voice, level = parse_audio_level(value)
        except ParseError:
            return
        if voice or level < self.meeting.speakers.quiet_from:  # as the intake reports them
            self.meeting.on_audio_level(now_ms, pub.participant_id, level, voice)

    # ---- RTCP ------------------------------------------------------------------------------

    def _on_publisher_rtcp(self, pub: Publisher, data: bytes) -> None:
        packets, errors = rtcp.parse_rtcp_lenient(data)
        self._drops["bad_rtcp"] += len(errors)
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport):
                self._translate_sender_report(pub, packet)

    def _translate_sender_report(self, pub: Publisher, sr: rtcp.SenderReport) -> None:
        stream = pub.router.streams.get(sr.ssrc) if pub.router is not None else None
        if stream is None or stream.repairs is not None:
            return
        for slot in self._slots_by_key.get(stream.key, ()):
            forwarder = slot.forwarder
            if forwarder.source != stream.key or slot.header is None:
                continue
            report = rtcp.SenderReport(
                ssrc=slot.stream.ssrc,
                ntp_timestamp=sr.ntp_timestamp,
                rtp_timestamp=forwarder.translate_timestamp(sr.rtp_timestamp),
                packet_count=slot.packets_sent,
                octet_count=slot.bytes_sent,
                reports=(),
            )
            slot.subscriber.pc.send_rtcp(rtcp.serialize_rtcp([report]))

    def _on_subscriber_rtcp(self, sub: Subscriber, data: bytes) -> None:
        sub.pc.refresh_route()  # the nominated pair, checked about once a second
        packets, errors = rtcp.parse_rtcp_lenient(data)
        self._drops["bad_rtcp"] += len(errors)
        now_ms = self._clock_ms()
        for packet in packets:
            if isinstance(packet, rtcp.PictureLossIndication):
                self._on_keyframe_wanted(now_ms, sub.by_ssrc.get(packet.media_ssrc))
            elif isinstance(packet, rtcp.FullIntraRequest):
                for ssrc, _seq in packet.entries:
                    self._on_keyframe_wanted(now_ms, sub.by_ssrc.get(ssrc))
            elif isinstance(packet, rtcp.ReceiverReport) and packet.reports:
                sub.loss_fraction = max(r.fraction_lost for r in packet.reports) / 256
                sub.estimator.on_receiver_report(now_ms, sub.loss_fraction)
            elif isinstance(packet, rtcp.Remb):
                sub.estimator.on_remb(now_ms, packet.bitrate_bps)
            elif isinstance(packet, rtcp.Nack):
                self._retransmit(sub.by_ssrc.get(packet.media_ssrc), packet.lost)

    def _on_keyframe_wanted(self, now_ms: int, slot: Slot | None) -> None:
        if slot is None or slot.kind != "video":
            return
        key = slot.forwarder.pending or slot.forwarder.source
        if key is not None:
            self._request_keyframe(now_ms, key)

    def _request_keyframe(self, now_ms: int, key: str) -> None:
        """Ask the publisher of one layer (`key`) for a keyframe, at most once per interval."""
        if not self.keyframes.should_request(now_ms, key):
            return
        pub = self._publisher_of(key)
        if pub is None or pub.router is None:
            return
        packets = [
            rtcp.PictureLossIndication(sender_ssrc=pub.rtcp_ssrc, media_ssrc=ssrc)
            for ssrc in pub.router.media_ssrcs(key)
        ]
        if packets:
            self._counters["keyframe_requests"] += 1
            pub.pc.send_rtcp(rtcp.serialize_rtcp(packets))

    def _retransmit(self, slot: Slot | None, lost: tuple[int, ...]) -> None:
        if slot is None or slot.header is None:
            return
        now_ms = self._clock_ms()
        for seq in lost:
            packet = slot.resend(seq, now_ms)
            if packet is None:
                self._drops["nack_not_in_history"] += 1
                continue
            if slot.subscriber.pc.send_rtp(packet):
                slot.rtx_sent += 1
                self._counters["rtx_out"] += 1

    # ---- timers ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        """Upstream NACKs and keyframe re-requests; run every few tens of milliseconds."""
        for pub in self.publishers.values():
            for stream in pub.incoming.values():
                lost = stream.nacks_due(now_ms)
                if lost:
                    nack = rtcp.Nack(
                        sender_ssrc=pub.rtcp_ssrc, media_ssrc=stream.ssrc, lost=tuple(lost)
                    )
                    self._counters["nacks_sent"] += 1
                    pub.pc.send_rtcp(rtcp.serialize_rtcp([nack]))
        if now_ms - self._last_keyframe_scan_ms >= KEYFRAME_SCAN_EVERY_MS:
            # Re-ask for keyframes still awaited (the first request went out at the switch).
            self._last_keyframe_scan_ms = now_ms
            pending = {
                s.forwarder.waiting_for_keyframe
                for slots in self._slots_by_key.values()
                for s in slots
            }
            for key in pending:
                if key is not None:
                    self._request_keyframe(now_ms, key)
        for sub in self.subscribers.values():
            if sub.probe.padding_bps:
                self._pad(now_ms, sub)

    def _update_probe(self, now_ms: int, sub: Subscriber, elapsed_ms: int) -> None:
        """Start, go on with or stop probing this subscriber's downlink (about once a second)."""
        sent = sum(slot.bytes_sent for slot in sub.slots)
        media_bps = (sent - sub.sent_bytes) * 8000 // max(elapsed_ms, 1)
        sub.sent_bytes = sent
        if not self._bw.probe or now_ms - sub.ready_ms < self._bw.warmup_ms:
            return
        was = sub.probe.probing
        sub.probe.update(
            now_ms,
            estimate_bps=sub.estimator.estimate_bps(now_ms),
            media_bps=media_bps,
            wanted_bps=sub.wanted_bps,
            loss=sub.loss_fraction or 0.0,
        )
        if sub.probe.probing != was:
            self._counters["probes_started" if sub.probe.probing else "probes_ended"] += 1

    def _pad(self, now_ms: int, sub: Subscriber) -> None:
        """Probe padding: RTX copies of the latest video packets, which a receiver discards."""
        due = sub.probe.take_bytes(now_ms)
        if due <= 0:
            return
        slot = next(
            (
                s
                for s in sub.slots
                if s.kind == "video"
                and s.header is not None
                and s.rtx_payload_type is not None
                and s.packets_sent
            ),
            None,
        )
        if slot is None:
            return
        sent, seq = 0, slot.forwarder.last_seq
        for back in range(32):
            if sent >= due:
                break
            packet = slot.resend((seq - back) & 0xFFFF, now_ms)
            if packet is None:
                continue
            if sub.pc.send_rtp(packet):
                sent += len(packet)
                self._counters["padding_packets_out"] += 1
        sub.padding_bytes += sent
        sub.probe.spend(sent)

    def on_report_tick(self, now_ms: int) -> None:
        """Receiver reports and a bitrate cap (REMB) to every publisher, and subscribers' probes;
        run about once a second."""
        elapsed_ms, self._last_report_ms = now_ms - self._last_report_ms, now_ms
        for sub in self.subscribers.values():
            if sub.ready:
                self._update_probe(now_ms, sub, elapsed_ms)
        for pub in list(self.publishers.values()):  # pump() runs Python's packet callbacks
            if not pub.incoming:
                continue
            blocks = []
            for stream in pub.incoming.values():
                r = stream.report()
                blocks.append(
                    rtcp.ReportBlock(
                        ssrc=r.ssrc,
                        fraction_lost=r.fraction_lost,
                        packets_lost=r.packets_lost,
                        highest_sequence=r.highest_sequence,
                        jitter=r.jitter,
                        lsr=0,
                        dlsr=0,
                    )
                )
            packets: list[rtcp.RtcpPacket] = [
                rtcp.ReceiverReport(ssrc=pub.rtcp_ssrc, reports=tuple(blocks[:31]))
            ]
            video_ssrcs = (
                tuple(
                    s.ssrc
                    for s in pub.router.streams.values()
                    if s.section.kind == "video" and s.repairs is None
                )
                if pub.router is not None
                else ()
            )
            if video_ssrcs:
                packets.append(
                    rtcp.Remb(
                        sender_ssrc=pub.rtcp_ssrc,
                        bitrate_bps=self._media.publisher_remb_bps,
                        ssrcs=video_ssrcs,
                    )
                )
            pub.pc.send_rtcp(rtcp.serialize_rtcp(packets))
            self.pump()

    def quality(self, pid: str) -> Literal["good", "fair", "poor", "unknown"]:
        """The participant's downlink as its receiver reports show it."""
        sub = self.subscribers.get(pid)
        if sub is None or sub.loss_fraction is None:
            return "unknown"
        if sub.loss_fraction < 0.02:
            return "good"
        return "fair" if sub.loss_fraction < 0.1 else "poor"

    def set_grid_page(self, pid: str, page: int) -> None:
        sub = self.subscribers.get(pid)
        if sub is not None and sub.grid_page != page:
            sub.grid_page = page
            self.reassign_gradually()

    def slots_of(self, pid: str) -> list[Slot]:
        sub = self.subscribers.get(pid)
        return list(sub.slots) if sub is not None else []


_NO_LAYERS = np.zeros((3, 3))


def _source(key: str | None) -> str | None:
    return source_of(key) if key is not None else None


def _heard_in(audio_slots: list[Slot]) -> set[str]:
    """Whose audio these slots carry (or are switching to)."""
    owners = (_owner(_source(s.forwarder.pending or s.forwarder.source)) for s in audio_slots)
    return {o for o in owners if o is not None}


def _owner(source: str | None) -> str | None:
    return source.split("/", 1)[0] if source is not None else None
