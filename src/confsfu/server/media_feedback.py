"""The media shell's RTCP and timers: subscribers' feedback performed (keyframe requests,
retransmissions, estimates), publishers' reports and upstream NACKs, probe padding."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from confsfu.bandwidth.allocator import Demand
from confsfu.bandwidth.twcc import TwccEstimator
from confsfu.forwarding import feedback
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.ids import LayerKey, Purpose, SlotPurpose, SourceId
from confsfu.rtp import rtcp
from confsfu.server._wire import TRANSPORT_LOG
from confsfu.server.media_handles import Publisher, Slot, Subscriber
from confsfu.settings import BandwidthSettings, MediaSettings

log = logging.getLogger(__name__)

KEYFRAME_SCAN_EVERY_MS = 100  # re-requests are throttled to one per 500 ms per layer anyway
PAD_EVERY_MS = 20  # probe padding goes out in bursts this far apart
MAX_PADDING_PACKETS = 32  # in one burst


class MediaFeedback:
    """RTCP and timers of a room's media (a part of `RoomMedia`, which holds the state)."""

    publishers: dict[tuple[str, Purpose], Publisher]
    subscribers: dict[str, Subscriber]
    keyframes: KeyframeRequester
    _slots_by_key: dict[LayerKey, list[Slot]]
    _counters: Counter[str]
    _drops: Counter[str]
    _media: MediaSettings
    _bw: BandwidthSettings
    _clock_ms: Callable[[], int]
    _last_report_ms: int
    _last_keyframe_scan_ms: int
    _keyframes_awaited: bool  # some slot waits for a keyframe (as of the last scan or request)
    wake: Callable[[int], None]  # the room's timer runs by then (set by the room)
    _on_quality_changed: Callable[[str], None]

    def pump(self) -> None:
        """Read the publishers' sockets now (RoomMedia's)."""

    def _allocate(
        self, now_ms: int, sub: Subscriber, known: dict[tuple[object, SlotPurpose, int], Demand]
    ) -> None:
        """Pick the subscriber's layers now (RoomMedia's)."""

    def _publisher_of(self, source: SourceId) -> Publisher | None:
        return self.publishers.get((source.participant, source.purpose))

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
            if forwarder.source is not stream.key or slot.header is None:
                continue
            report = feedback.translated_sender_report(
                sr,
                slot.stream.ssrc,
                forwarder.translate_timestamp(sr.rtp_timestamp),
                slot.packets_sent,
                slot.bytes_sent,
            )
            slot.subscriber.pc.send_rtcp(report)

    def _on_subscriber_rtcp(self, sub: Subscriber, data: bytes) -> None:
        sub.pc.refresh_route()  # the nominated pair, checked about once a second
        packets, errors = rtcp.parse_rtcp_lenient(data)
        self._drops["bad_rtcp"] += len(errors)
        now_ms = self._clock_ms()
        for packet in packets:
            if isinstance(packet, rtcp.TransportFeedback) and sub.transport_fed is not None:
                self._on_transport_feedback(sub, now_ms, packet)
        for ask in feedback.subscriber_asks(packets):
            if isinstance(ask, feedback.KeyframeWanted):
                slot = sub.by_ssrc.get(ask.ssrc)
                key = slot.subscription.wanted if slot is not None else None
                if slot is not None and log.isEnabledFor(logging.DEBUG):
                    fwd = slot.forwarder
                    log.debug(
                        "keyframe wanted by %s on %s slot %s: sending %s/%s, waiting %s, "
                        "last seq %d picture %d",
                        sub.participant_id, slot.kind, ask.ssrc, fwd.source, fwd.temporal,
                        fwd.waiting_for_keyframe, fwd.last_seq, fwd.last_picture_id,
                    )  # fmt: skip
                if sub.budget.drain.holding:  # its end asks for the keyframe it needs
                    self._drops["pli_draining"] += 1
                elif key is not None and slot is not None and slot.kind == "video":
                    self._request_keyframe(now_ms, key)
            elif isinstance(ask, feedback.LossReported):
                fraction = sub.report_loss.on_report(ask.blocks)
                if fraction is None:
                    continue
                sub.loss_fraction = fraction
                sub.estimator.on_receiver_report(now_ms, fraction)
                if sub.quality.update(fraction) is not None:
                    self._on_quality_changed(sub.participant_id)
            elif isinstance(ask, feedback.EstimateReported):
                sub.estimator.on_remb(now_ms, ask.bitrate_bps)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "remb %s: %d kbit/s, estimate %d", sub.participant_id,
                        ask.bitrate_bps // 1000, sub.estimator.estimate_bps(now_ms) // 1000,
                    )  # fmt: skip
            else:
                self._retransmit(sub, sub.by_ssrc.get(ask.ssrc), ask.lost)

    def _on_transport_feedback(
        self, sub: Subscriber, now_ms: int, report: rtcp.TransportFeedback
    ) -> None:
        """Tell the subscriber's estimator what went out up to the newest packet the feedback
        names (from the route's log), then what arrived when."""
        fed = sub.transport_fed
        assert fed is not None
        newest = max(
            (seq for seq, _ in report.packets), key=lambda s: (s - fed) & 0xFFFF, default=None
        )
        if newest is None:
            return
        ahead = (newest - fed) & 0xFFFF
        if ahead < 0x8000:  # else it names only packets told of already
            count = min(ahead + 1, TRANSPORT_LOG)
            seqs = [(newest - i) & 0xFFFF for i in range(count - 1, -1, -1)]
            estimator = sub.estimator
            for seq, sent in zip(seqs, sub.pc.route.transport_sent(seqs), strict=True):
                if sent is not None:
                    estimator.on_packet_sent(sent[0] // 1000, seq, sent[1])
            sub.transport_fed = (newest + 1) & 0xFFFF
        self._counters["transport_feedback"] += 1
        # Arrival times come after the report's reference time (a 64 ms count, 24 bits).
        base_us = report.reference_time_64ms * 64_000
        arrivals = [(seq, None if at is None else base_us + at) for seq, at in report.packets]
        estimator = sub.estimator
        estimator.on_transport_feedback(now_ms, arrivals)
        if log.isEnabledFor(logging.DEBUG):
            self._log_feedback(sub, now_ms, arrivals)
        padding_bps = sub.probe.padding_bps  # sent until now, whether the probe stops or not
        twcc = estimator if isinstance(estimator, TwccEstimator) else None
        queue_ms = twcc.queue.value_ms if twcc is not None else 0.0
        if twcc is not None:  # send-side probes: a stop, a chained one or one come due
            started, chained = sub.probe.probes_started, sub.probe.probes_chained
            sub.probe.on_estimate(
                now_ms, twcc.estimate_bps(now_ms), queue_ms, twcc.full_ms(),
                twcc.probe_ceiling_bps(now_ms),
            )  # fmt: skip
            if sub.probe.probes_started != started:
                self.wake(now_ms + PAD_EVERY_MS)  # its padding is due
                how = "chained" if sub.probe.probes_chained != chained else "started"
                self._counters["probes_chained" if how == "chained" else "probes_started"] += 1
                log.info(
                    "probe %s for %s: estimate %d, padding %d kbit/s", how,
                    sub.participant_id, twcc.estimate_bps(now_ms) // 1000,
                    sub.probe.padding_bps // 1000,
                )  # fmt: skip
        elif sub.probe.probing:
            sub.probe.on_estimate(now_ms, estimator.estimate_bps(now_ms))
        acked = twcc.acked_sent_ms if twcc is not None else None
        forwarding = _forwarding(sub)
        link_bps = twcc.queue_rate_bps() if twcc is not None else None
        rising = twcc is not None and twcc.queue.rising
        changed = sub.budget.on_feedback(
            now_ms, acked, padding_bps, forwarding, queue_ms, link_bps, rising
        )
        if changed and not sub.budget.drain.holding:
            sub.probe.on_drained(now_ms)
        if changed and sub.ready:
            self._counters["drain_holds"] += sub.budget.drain.holding  # one began
            log.debug(
                "subscriber %s: drain hold %s at %d kbit/s",
                sub.participant_id,
                "began" if sub.budget.drain.holding else "ended",
                estimator.estimate_bps(now_ms) // 1000,
            )
            self._allocate(now_ms, sub, {})  # a hold while the queue drains began or ended

    def _log_feedback(
        self, sub: Subscriber, now_ms: int, arrivals: list[tuple[int, int | None]]
    ) -> None:
        """One line per transport-cc feedback (debug): how many packets it names and lost,
        the one-way delay of its packets (send to arrival, a constant offset aside), how old
        its newest packet is, and the estimate after it."""
        sent = sub.pc.route.transport_sent([seq for seq, _ in arrivals])
        delays = [
            (at - s[0]) / 1000.0
            for (_, at), s in zip(arrivals, sent, strict=True)
            if at is not None and s is not None
        ]
        newest = max((s[0] for s in sent if s is not None), default=None)
        lost = sum(at is None for _, at in arrivals)
        log.debug(
            "feedback %s: %d packets, %d lost, delay %s ms, newest sent %s ms ago, estimate %d",
            sub.participant_id, len(arrivals), lost,
            f"{min(delays):.0f}-{max(delays):.0f}" if delays else "-",
            "-" if newest is None else f"{now_ms - newest // 1000}",
            sub.estimator.estimate_bps(now_ms) // 1000,
        )  # fmt: skip

    def _request_keyframe(self, now_ms: int, key: LayerKey) -> None:
        """Ask the publisher of one layer for a keyframe, at most once per interval."""
        if not self._keyframes_awaited:
            self._keyframes_awaited = True  # asked again on the scans until it comes
            self.wake(now_ms + KEYFRAME_SCAN_EVERY_MS)
        pub = self._publisher_of(key.source)
        ssrcs = pub.router.media_ssrcs(key) if pub is not None and pub.router is not None else []
        if pub is None or not ssrcs:
            # Nobody to ask: the publisher sends no such layer (yet). Not a request held back
            # by the interval: a slot waiting on one was re-asked on every scan, counted as
            # ~8 suppressed requests a second (Chromium's ~800 per weak-link run).
            self._drops["keyframe_no_layer"] += 1
            if self._drops["keyframe_no_layer"] % 100 == 1:
                log.debug("keyframe wanted of %s layer %d: not sent", key.source, key.spatial)
            return
        if not self.keyframes.should_request(now_ms, key):
            return
        request = feedback.keyframe_request(pub.rtcp_ssrc, ssrcs)
        if request is not None:
            self._counters["keyframe_requests"] += 1
            log.debug("keyframe asked of %s layer %d", key.source, key.spatial)
            pub.pc.send_rtcp(request)

    def _retransmit(self, sub: Subscriber, slot: Slot | None, lost: tuple[int, ...]) -> None:
        """Resend what a NACK names, within the subscriber's retransmission limit (a share of
        its estimate, each packet at most once per interval)."""
        if slot is None or slot.header is None:
            return
        debug = log.isEnabledFor(logging.DEBUG)
        if sub.budget.drain.holding:  # the queue the NACKed packets were lost in is to drain
            self._drops["nack_draining"] += len(lost)
            if debug:
                log.debug("nack %s %s: draining %s", sub.participant_id, slot.kind, list(lost))
            return
        now_ms = self._clock_ms()
        estimate = sub.budget.estimate_bps(now_ms)
        limiter = sub.retransmits
        answers: list[str] = []
        for seq in lost:
            original = slot.kept(seq)
            if original is None:
                self._drops["nack_not_in_history"] += 1
                answers.append(f"{seq}:gone")
                continue
            size = slot.again_bytes(original)
            refusal = limiter.refusal(now_ms, slot.stream.ssrc, seq, size, estimate)
            if refusal is not None:  # before `again` takes an RTX number
                self._drops[f"nack_{refusal}"] += 1
                answers.append(f"{seq}:{refusal}")
                continue
            limiter.sent(now_ms, slot.stream.ssrc, seq, size)
            packet = slot.again(original, now_ms)
            if slot.subscriber.pc.send_rtp(packet, stamp=slot.rtx_payload_type is not None):
                slot.rtx_sent += 1
                self._counters["rtx_out"] += 1
                answers.append(f"{seq}:{'rtx' if slot.rtx_payload_type is not None else 'same'}")
            else:
                answers.append(f"{seq}:unsent")
        if debug:
            log.debug(
                "nack %s %s at %d kbit/s: %s",
                sub.participant_id, slot.kind, estimate // 1000, " ".join(answers),
            )  # fmt: skip

    # ---- timers ----------------------------------------------------------------------------

    def next_deadline_ms(self, now_ms: int) -> int | None:
        """When `on_tick` has something to do next: an upstream NACK falls due, a keyframe is
        asked for again, probe padding goes out; None while there is nothing."""
        due = [
            at
            for pub in self.publishers.values()
            for stream in pub.receptions.values()
            if (at := stream.next_nack_ms()) is not None
        ]
        if self._keyframes_awaited:
            due.append(self._last_keyframe_scan_ms + KEYFRAME_SCAN_EVERY_MS)
        if any(sub.probe.padding_bps for sub in self.subscribers.values()):
            due.append(now_ms + PAD_EVERY_MS)
        return min(due, default=None)

    def on_tick(self, now_ms: int) -> None:
        """Upstream NACKs, keyframe re-requests and probe padding that are due."""
        for pub in self.publishers.values():
            for stream in pub.receptions.values():
                lost = stream.nacks_due(now_ms)
                if lost:
                    self._counters["nacks_sent"] += 1
                    pub.pc.send_rtcp(feedback.upstream_nack(pub.rtcp_ssrc, stream.ssrc, lost))
        if now_ms - self._last_keyframe_scan_ms >= KEYFRAME_SCAN_EVERY_MS:
            # Re-ask for keyframes still awaited (the first request went out at the switch).
            self._last_keyframe_scan_ms = now_ms
            pending = {
                s.forwarder.waiting_for_keyframe
                for slots in self._slots_by_key.values()
                for s in slots
                if not s.subscription.held  # its page has yet to hear of the switch
            }
            self._keyframes_awaited = any(isinstance(key, LayerKey) for key in pending)
            for key in pending:
                if isinstance(key, LayerKey):
                    self._request_keyframe(now_ms, key)
        for sub in self.subscribers.values():
            if sub.probe.padding_bps:
                self._pad(now_ms, sub)

    def _update_probe(self, now_ms: int, sub: Subscriber, elapsed_ms: int) -> None:
        """Start, go on with or stop probing this subscriber's downlink (about once a second)."""
        sent = sum(slot.bytes_sent for slot in sub.slots)
        media_bps = (sent - sub.sent_bytes) * 8000 // max(elapsed_ms, 1)
        sub.sent_bytes = sent
        audio = sum(slot.bytes_sent for slot in sub.slots if slot.kind == "audio")
        sub.audio_bps = (audio - sub.audio_sent_bytes) * 8000 // max(elapsed_ms, 1)
        sub.audio_sent_bytes = audio
        if not self._bw.probe or now_ms - sub.budget.ready_ms < self._bw.warmup_ms:
            return
        was = sub.probe.probing
        estimator = sub.estimator
        sub.probe.update(
            now_ms,
            estimate_bps=sub.estimator.estimate_bps(now_ms),
            media_bps=media_bps,
            wanted_bps=sub.budget.wanted_bps,
            loss=sub.loss_fraction or 0.0,
            step_bps=sub.budget.step_bps,
            unseen_bps=0 if sub.estimate_counts_audio else sub.audio_bps,
            queue_ms=estimator.queue.value_ms if isinstance(estimator, TwccEstimator) else 0.0,
            ceiling_bps=(
                estimator.probe_ceiling_bps(now_ms) if isinstance(estimator, TwccEstimator) else 0
            ),
        )
        if sub.probe.probing != was:
            self._counters["probes_started" if sub.probe.probing else "probes_ended"] += 1
            log.info(
                "probe %s for %s: estimate %d, media %d, wanted %d, step %d kbit/s, padding %d",
                "started" if sub.probe.probing else "ended", sub.participant_id,
                sub.estimator.estimate_bps(now_ms) // 1000, media_bps // 1000,
                sub.budget.wanted_bps // 1000, sub.budget.step_bps // 1000,
                sub.probe.padding_bps // 1000,
            )  # fmt: skip

    def _pad(self, now_ms: int, sub: Subscriber) -> None:
        """Probe padding: RTX copies of the latest video packets, or padding-only RTX packets
        when no video went out (every tile paused); a receiver discards both."""
        counts_audio = sub.estimate_counts_audio
        media = sum(s.bytes_sent for s in sub.slots if counts_audio or s.kind == "video")
        due = sub.probe.take_bytes(now_ms, max(media - sub.pad_media_bytes, 0))
        sub.pad_media_bytes = media
        if due <= 0:
            return
        video = [
            s
            for s in sub.slots
            if s.kind == "video" and s.header is not None and s.rtx_payload_type is not None
        ]
        if not video:
            return
        repeat = next((s for s in video if s.packets_sent), None)
        sent, seq = 0, repeat.forwarder.last_seq if repeat is not None else 0
        for back in range(MAX_PADDING_PACKETS):
            if sent >= due:
                break
            slot = repeat if repeat is not None else video[0]
            if repeat is not None:
                packet = repeat.resend((seq - back) & 0xFFFF, now_ms)
            else:
                packet = video[0].padding(now_ms)
            if packet is None:
                continue
            if sub.pc.send_rtp(packet, stamp=slot.rtx_payload_type is not None):
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
            if pub.relayed:  # its worker reports to its publisher; here they were dropped
                continue
            blocks = [_report_block(stream) for stream in pub.receptions.values()]
            video_ssrcs = (
                tuple(
                    s.ssrc
                    for s in pub.router.streams.values()
                    if s.section.kind == "video" and s.repairs is None
                )
                if pub.router is not None
                else ()
            )
            report = feedback.publisher_report(
                pub.rtcp_ssrc, blocks, video_ssrcs, self._media.publisher_remb_bps
            )
            if report is not None:
                pub.pc.send_rtcp(report)
                self.pump()


def _forwarding(sub: Subscriber) -> dict[str, tuple[int, int]]:
    """The layer each video slot's forwarder sends now (spatial, temporal), by the track names
    its allocation uses; none while paused."""
    out: dict[str, tuple[int, int]] = {}
    for slot in sub.slots:
        forwarder = slot.forwarder
        key = forwarder.source
        if slot.kind == "video" and key is not None and forwarder.temporal >= 0:
            out[f"{slot.stream.mid}:{key.source}"] = (key.spatial, forwarder.temporal)
    return out


def _report_block(stream: Reception) -> rtcp.ReportBlock:
    r = stream.report()
    return rtcp.ReportBlock(
        ssrc=r.ssrc,
        fraction_lost=r.fraction_lost,
        packets_lost=r.packets_lost,
        highest_sequence=r.highest_sequence,
        jitter=r.jitter,
        lsr=0,
        dlsr=0,
    )
