"""A room's media plane, the IO shell: its PeerConnections, wires and intakes as participants
join and leave, and the hot path's reads and flushes. Its parts: the slot assignment and the
effects of what the cores decide (the slot plan, each subscriber's budget, each slot's
subscription, dynacast) in media_slots; RTCP and timers in media_feedback."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from functools import partial
from typing import Any

from confsfu.bandwidth.budget import (
    SEND_SIDE_FRAME_RATE_HEADROOM,
    SEND_SIDE_HEADROOM,
    BudgetRules,
    SubscriberBudget,
    fit_spatial,
)
from confsfu.bandwidth.dynacast import Dynacast
from confsfu.bandwidth.estimation import EstimatorConfig
from confsfu.bandwidth.estimators import make_estimator
from confsfu.bandwidth.hysteresis import AllocatorConfig
from confsfu.bandwidth.layer_meter import LayerBitrateMeter
from confsfu.bandwidth.probe import SEND_SIDE_PROBES, ProbeConfig, ProbeController
from confsfu.bandwidth.quality import Quality
from confsfu.conference.meeting import Meeting
from confsfu.conference.pins import Pins
from confsfu.conference.slot_plan import StageMemory
from confsfu.conference.voice_activity import VoiceActivity, VoiceConfig
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.published import StreamRouter
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.subscription import Subscription
from confsfu.ids import Kind, LayerKey, Purpose, SlotPurpose
from confsfu.server import gc_policy
from confsfu.server._wire import Intake, Wire, flush, pump
from confsfu.server.media_feedback import MediaFeedback
from confsfu.server.media_handles import FanOut, Publisher, Slot, Subscriber
from confsfu.server.media_slots import MediaSlots
from confsfu.server.publishing import PublisherPath
from confsfu.server.rtc_adapter import RawPeerConnection
from confsfu.server.sdp_plan import publish_plan, subscribe_plan, with_transport_cc
from confsfu.settings import BandwidthSettings, MediaSettings, SlotSettings

log = logging.getLogger(__name__)
CLOCK_RATE = {"audio": 48000, "video": 90000}


class RoomMedia(MediaSlots, MediaFeedback):
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
        on_quality_changed: Callable[[str], None] = lambda _: None,
        rng: random.Random | None = None,
    ) -> None:
        self.meeting = meeting
        self._media = media
        self._slot_counts = slots
        self._clock_ms = clock_ms
        self._make_pc = make_pc
        self._on_slots_changed = on_slots_changed
        self._on_layers_changed = on_layers_changed
        self._on_quality_changed = on_quality_changed
        bw = self._bw = bandwidth or BandwidthSettings()
        self._estimator_config = EstimatorConfig(
            initial_bps=bw.initial_bps, min_bps=bw.min_bps, max_bps=bw.max_bps
        )
        self._rules = BudgetRules(
            warmup_ms=bw.warmup_ms,
            initial_bps=bw.initial_bps,
            grid_caps=(bw.grid_max_spatial, bw.grid_max_temporal),
            stage_caps=(bw.stage_max_spatial, bw.stage_max_temporal),
        )
        self._rng = rng or random.Random()
        self.publishers: dict[tuple[str, Purpose], Publisher] = {}
        self._held: set[str] = set()  # away participants whose camera stays in the slots
        self.pins = Pins()  # whom each participant pinned on their own stage
        self._stage_memory = StageMemory()  # who was on the stage before
        self.subscribers: dict[str, Subscriber] = {}
        self._slots_by_key: dict[LayerKey, list[Slot]] = {}  # carrying or awaiting the layer
        # ... and those of them that can send, as `fan_out` walks them (rebuilt when they change)
        self._fan_out_by_key: dict[LayerKey, FanOut] = {}
        self.keyframes = KeyframeRequester(media.keyframe_request_interval_ms)
        self.dynacast = Dynacast(bw.layer_off_delay_ms)
        self._counters: Counter[str] = Counter()
        self._drops: Counter[str] = Counter()
        self._path = PublisherPath(
            self._fan_out_by_key, self._counters, self._drops, media, meeting, self.keyframes
        )
        self._path.after_fan_out = self._after_fan_out
        self._path.on_restart = self._restart_layer
        self._path.on_gap = self._on_gap
        self._path.on_level = self._on_level
        self._path.schedule_flush = self._schedule_flush
        self._last_report_ms = clock_ms()
        self._flush_due = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the room runs on
        self._gradual: Iterator[None] | None = None  # the reassign pass under way, if any
        self._last_keyframe_scan_ms = 0
        self._keyframes_awaited = False
        self.wake: Callable[[int], None] = lambda at_ms: None  # the room's timer, by then

    # ---- joining and leaving ----------------------------------------------------------------

    def make_intake(self, pid: str, slow: Callable[[bytes, int], None], max_packet: int) -> Intake:
        """A publisher's intake into this room's fan-out (a local publisher's or a relayed
        one's); `slow` takes what the C path hands back."""
        intake = Intake(
            pid,
            self._fan_out_by_key,
            slow=slow,
            on_level=self._on_level,
            on_keyframe=self.keyframes.keyframe_arrived,
            after_fan_out=self._after_fan_out,
            schedule_flush=self._schedule_flush,
            max_packet=max_packet,
        )
        intake.on_gap = self._on_gap
        return intake

    async def publish(self, pid: str, offer_sdp: str, purpose: Purpose = "camera") -> str:
        """Accept a participant's publish offer; returns the answer. Replaces an earlier one."""
        await self.unpublish(pid, purpose)
        pc = self._make_pc()
        path = self._path
        intake = self.make_intake(
            pid, lambda data, arrival_ms: path.on_rtp(pub, data, arrival_ms), path.max_packet
        )
        voice = VoiceConfig(self._media.voice_frame_bytes, self._media.voice_assumed_dbov)
        intake.voice_frame_bytes, intake.voice_dbov = voice.frame_bytes, voice.assumed_dbov
        pub = Publisher(
            pid,
            purpose,
            pc,
            rtcp_ssrc=self._rng.getrandbits(32),
            intake=intake,
            voice=VoiceActivity(voice),
        )
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
        pub.router = StreamRouter(plan.sections, plan.ext, heard=pub.heard)
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
                self.dynacast.add(section.source, section.rids)
        return plan.answer_sdp

    async def subscribe(self, pid: str, *, confirms: bool = False, listener: bool = False) -> str:
        """A subscribe offer with the configured fixed slots; the answer goes to `answer`.
        `confirms`: its page confirms the slot maps it shows (switches wait for it).
        A `listener` gets the audio slots and the stage, no grid."""
        await self._close_subscriber(pid)
        bw = self._bw
        # Until the answer says whether it takes up transport-cc: REMB.
        estimator = make_estimator(
            "loss" if bw.estimator == "loss" else "remb", self._estimator_config
        )
        allocator = AllocatorConfig(
            threshold=bw.threshold, upgrade_hold_ms=bw.upgrade_hold_ms, rise_ms=bw.rise_ms
        )
        sub = Subscriber(pid, self._make_pc(), SubscriberBudget(self._rules, estimator, allocator))
        sub.listener = listener
        sub.probe = ProbeController(
            ProbeConfig(
                duration_ms=bw.probe_duration_ms,
                gain=bw.probe_gain,
                max_interval_ms=max(bw.probe_max_interval_ms, 4000),
            )
        )
        sub.pc.set_callbacks(on_rtp=None, on_rtcp=lambda data: self._on_subscriber_rtcp(sub, data))
        self.subscribers[pid] = sub
        counts = self._slot_counts
        audio: list[Kind] = ["audio"]
        video: list[Kind] = ["video"]
        grid_count = 0 if listener else counts.video
        kinds = audio * counts.audio + video * (1 + grid_count)
        offer, streams = await sub.pc.offer(kinds)
        if bw.estimator in ("auto", "twcc"):
            offer, _ = with_transport_cc(offer)
        audio_slot: list[SlotPurpose] = ["audio"]
        stage_slot: list[SlotPurpose] = ["stage"]
        grid_slot: list[SlotPurpose] = ["grid"]
        purposes = audio_slot * counts.audio + stage_slot + grid_slot * grid_count
        for stream, purpose in zip(streams, purposes, strict=True):
            forwarder = SlotForwarder(
                is_video=stream.kind == "video",
                clock_rate=CLOCK_RATE[stream.kind],
                initial_seq=self._rng.getrandbits(16),
                initial_ts=self._rng.getrandbits(32),
            )
            slot = Slot(
                sub,
                stream,
                purpose,
                Subscription(forwarder, confirms=confirms),
                rtx_seq=self._rng.getrandbits(16),
            )
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
        sub.pc.on_state = partial(self._on_subscriber_state, sub)
        await sub.pc.accept_answer(answer_sdp)
        # transport-cc: one id for the whole (bundled) connection, from the answer.
        transport_cc = next(
            (n.ext.transport_cc for n in plan.by_mid.values() if n.ext.transport_cc), None
        )
        if transport_cc is not None:
            sub.pc.route.transport_cc_id = transport_cc
            sub.transport_fed = 0
            sub.budget.estimator = make_estimator("twcc", self._estimator_config)
            sub.budget.rules = replace(
                self._rules,
                headroom=SEND_SIDE_HEADROOM,
                frame_rate_headroom=SEND_SIDE_FRAME_RATE_HEADROOM,
            )
            sub.probe = ProbeController(SEND_SIDE_PROBES)
        for slot in sub.slots:
            negotiated = plan.by_mid[slot.stream.mid]
            slot.header = SlotHeader(
                ssrc=slot.stream.ssrc,
                payload_type=negotiated.payload_type,
                mid=slot.stream.mid,
                mid_id=negotiated.ext.mid,
                abs_send_time_id=negotiated.ext.abs_send_time if slot.kind == "video" else None,
                transport_cc_id=transport_cc,
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
        sub.budget.ready_ms = self._clock_ms()
        gc_policy.settle(id(self))  # this participant's objects are here to stay
        self.reassign_gradually()

    def _on_subscriber_state(self, sub: Subscriber, state: str) -> None:
        """A subscriber's slots are planned once its connection can carry packets (the reassign
        pass skips it before, asking for its route each time): a keyframe sent before went
        nowhere, and its slot would tell the page a picture was live that never arrived. Once
        connected, it is planned at once rather than at the next periodic pass."""
        if state == "connected" and self.subscribers.get(sub.participant_id) is sub:
            self.reassign_gradually()

    async def remove(self, pid: str, *, hold: bool = False) -> None:
        """Close `pid`'s PeerConnections. With `hold` (its connection dropped, it may come
        back) the slots showing its camera keep it there until it publishes again."""
        self._held.discard(pid)
        if not hold:  # gone for good: their pins, and pins of them, end
            self.pins.left(pid)
            self._stage_memory.forget(pid)
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
                for section in pub.router.sections:
                    self.dynacast.remove(section.source)
            await pub.pc.close()
            self._take_intake_counts(pub)  # what arrived while it closed
            gc_policy.release(id(self), idle=self._idle)  # its objects may be cycles

    async def _close_subscriber(self, pid: str) -> None:
        sub = self.subscribers.pop(pid, None)
        if sub is None:
            return
        self._drops.update(sub.refused())
        for slot in sub.slots:
            self._index_remove(slot)
        await sub.pc.close()
        gc_policy.release(id(self), idle=self._idle)

    @property
    def _idle(self) -> bool:
        """No connection of this room is open."""
        return not self.subscribers and not self.publishers

    def _restart_slots(self, pid: str, purpose: Purpose) -> None:
        """Slots already carrying `pid`'s `purpose` take its new streams up like a switch."""
        now_ms = self._clock_ms()
        for key, slots in list(self._slots_by_key.items()):
            if key.source.participant == pid and key.source.purpose == purpose:
                for slot in list(slots):
                    self._execute(now_ms, slot, slot.subscription.restart(now_ms))

    def _on_level(self, now_ms: int, pid: str, level_dbov: int, voice: bool) -> None:
        """A publisher's audio level (as the intake reports them): the speaker detector's."""
        speakers = self.meeting.speakers
        idle = speakers.next_deadline_ms() is None
        self.meeting.on_audio_level(now_ms, pid, level_dbov, voice)
        if idle and (at := speakers.next_deadline_ms()) is not None:
            self.wake(at)  # it has something to decide now

    def _on_gap(self, now_ms: int) -> None:
        """A publisher's packet left a gap: upstream NACKs fall due."""
        self.wake(now_ms + self._media.upstream_nack_delay_ms)

    def _restart_layer(self, key: LayerKey) -> None:
        """A layer's SSRC was replaced (a restarted encoder): its slots take the new one up like
        a switch, their numbering going on from where it was."""
        now_ms = self._clock_ms()
        for slot in list(self._slots_by_key.get(key, ())):
            self._execute(now_ms, slot, slot.subscription.restart(now_ms))

    # ---- publishers' packets: the hot path --------------------------------------------------

    @property
    def counters(self) -> Counter[str]:
        """Packets and bytes in and out, and events worth counting, since the room opened."""
        self._take_intake_counts()
        return self._counters

    @property
    def drops(self) -> Counter[str]:
        """Packets not forwarded, by reason (with those the subscribers' downlinks refused)."""
        self._take_intake_counts()
        drops = self._drops.copy()
        for sub in self.subscribers.values():
            drops.update(sub.refused())
        return +drops

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

    def quality(self, pid: str) -> Quality:
        """The participant's downlink as its receiver reports show it."""
        sub = self.subscribers.get(pid)
        return sub.quality.quality if sub is not None else "unknown"

    def set_pin(self, pid: str, target: str | None, present: Collection[str]) -> None:
        """`pid` pins `target` on its own stage (None: unpins); raises PinError."""
        if self.pins.pin(pid, target, present):
            self.reassign_gradually()

    def set_grid_page(self, pid: str, page: int) -> None:
        sub = self.subscribers.get(pid)
        if sub is not None and sub.grid_page != page:
            sub.grid_page = page
            for slot in sub.slots:
                slot.given_ms = None  # a page asked for is shown at once
            self.reassign_gradually()

    def set_stage_size(self, pid: str, height_px: int) -> None:
        """`pid`'s page shows its stage `height_px` device pixels high: its layers are chosen
        again when that changes which one fits (`fit_spatial`)."""
        sub = self.subscribers.get(pid)
        if sub is None:
            return
        heights = self._rules.layer_heights
        fits = fit_spatial(sub.stage_height, heights) != fit_spatial(height_px, heights)
        sub.stage_height = height_px
        if fits:
            self.reassign_gradually()

    def slots_of(self, pid: str) -> list[Slot]:
        sub = self.subscribers.get(pid)
        return list(sub.slots) if sub is not None else []
