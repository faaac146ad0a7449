"""The publishers' packets that the C intake does not take (the first of each SSRC, RTX until
its repair stream is known, anything malformed): classified, counted, routed and forwarded in
Python. It is also the specification of what the intake does with the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from confsfu.bandwidth.layer_meter import TEMPORAL_LAYERS
from confsfu.codecs.vp8 import parse_vp8
from confsfu.conference.meeting import Meeting
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.classify import MAX_PACKET_BYTES, Dropped, classify
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.ids import LayerKey
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import abs_send_time, parse_audio_level
from confsfu.rtp.packet import RtpPacket
from confsfu.server._wire import fan_out
from confsfu.server.media_handles import Publisher
from confsfu.settings import MediaSettings


class PublisherPath:
    """The slow path of every publisher of one room."""

    max_packet = MAX_PACKET_BYTES

    def __init__(
        self,
        fan_outs: dict[Any, Any],
        counters: Counter[str],
        drops: Counter[str],
        media: MediaSettings,
        meeting: Meeting,
        keyframes: KeyframeRequester,
    ) -> None:
        self._fan_outs = fan_outs  # layer key -> what fan_out walks (the room's, kept current)
        self._counters = counters
        self._drops = drops
        self._media = media
        self._meeting = meeting
        self._keyframes = keyframes
        self._send_time_ms, self._send_time = -1, b""  # abs-send-time of the last arrival's ms
        self.after_fan_out: Callable[[Any, Any], None] = lambda *_: None
        self.schedule_flush: Callable[[], None] = lambda: None
        self.on_restart: Callable[[LayerKey], None] = lambda _: None  # a layer's new SSRC
        self.on_gap: Callable[[int], None] = lambda _: None  # upstream NACKs will be due
        self.on_level: Callable[[int, str, int, bool], None] = meeting.on_audio_level

    def on_rtp(self, pub: Publisher, data: bytes, arrival_ms: int) -> None:
        counters, drops = self._counters, self._drops
        counters["packets_in"] += 1
        counters["bytes_in"] += len(data)
        verdict = classify(data, pub.router, arrival_ms)
        intake = pub.intake
        if pub.router is not None:
            for ssrc in pub.router.take_replaced():  # a restarted stream: its old SSRC goes
                intake.remove(ssrc)
                gone = pub.receptions.pop(ssrc, None)
                if gone is not None and gone.key is not None:
                    self.on_restart(gone.key)
        if isinstance(verdict, Dropped):
            drops[verdict.reason] += 1
            return
        stream, pkt = verdict.stream, verdict.pkt
        if verdict.repaired:
            counters["rtx_in"] += 1
            media = pub.receptions.get(pkt.ssrc)
            if media is not None and intake.holds(media.ssrc) and not intake.holds(stream.ssrc):
                intake.add_repair(stream.ssrc, verdict.repair_payload_type, media)  # C next
        incoming = pub.receptions.get(pkt.ssrc)
        if incoming is None:
            incoming = pub.receptions[pkt.ssrc] = Reception(
                pkt.ssrc,
                nack_delay_ms=self._media.upstream_nack_delay_ms,
                nack_retries=self._media.upstream_nack_retries,
            )
        kind = stream.section.kind
        source = stream.section.source
        meter = pub.meters.get(source)
        key = source.layer(stream.layer)
        if not verdict.repaired and not intake.holds(pkt.ssrc):
            incoming.route(key, kind == "video", stream.layer, meter.counts if meter else None)
            intake.add(incoming)  # its next packets go the fast way
        if not incoming.on_packet(arrival_ms, pkt.sequence_number, len(data)):
            drops["duplicate"] += 1
            return
        if incoming.next_nack_ms() is not None:
            self.on_gap(arrival_ms)
        relay = intake.relay  # other workers that need this layer (server/relay.py)
        to = relay.get(key) if relay else None
        if pkt.padding_only:
            if to is not None:  # bare, as the intake relays it
                to(bytes((pkt.data[0] & 0xDF,)) + pkt.data[1 : pkt.payload_start])
            return
        if not (intake.gate_video if kind == "video" else intake.gate_audio):
            drops["chair_muted"] += 1  # the intake's gates, set by RoomMedia.refresh_gates
            return
        if to is not None:
            to(pkt.data)  # as the intake relays it: a repair unwrapped
        if kind != "video":
            self._note_audio_level(pub, pkt, arrival_ms)
            entries = self._fan_outs.get(key)
            if entries is not None:  # None: not among the voices anyone hears now
                self._forward(entries, SourcePacket(key, pkt, incoming.last_ext), arrival_ms, b"")
            return
        try:
            vp8 = parse_vp8(pkt.payload)
        except ParseError:
            drops["bad_vp8"] += 1
            return
        if vp8.is_keyframe:
            self._keyframes.keyframe_arrived(key)
        temporal = vp8.temporal_id or 0
        if meter is not None and temporal < TEMPORAL_LAYERS:  # a fourth is not measured
            meter.on_packet(arrival_ms, stream.layer, temporal, len(data))
        picture = incoming.unwrap_picture(vp8.picture_id) if vp8.picture_id is not None else None
        entries = self._fan_outs.get(key)
        if entries is None:  # a layer no slot carries (or awaits)
            return
        inbound = SourcePacket(key, pkt, incoming.last_ext, vp8, picture)
        if arrival_ms != self._send_time_ms:  # many packets arrive within one millisecond
            self._send_time_ms, self._send_time = arrival_ms, abs_send_time(arrival_ms)
        self._forward(entries, inbound, arrival_ms, self._send_time)

    def _forward(self, entries: Any, p: SourcePacket, now_ms: int, send_time: bytes) -> None:
        """Send one incoming packet on every slot that carries its layer, as the intake does.

        `fan_out` (C) decides per slot (its forwarder's numbers), writes the slot's header in
        front of the shared payload, SRTP-protects it and queues it; the queue goes out back to
        back once the loop has run this iteration's callbacks (or when it is full). Python only
        hears of slots whose source changed or whose route is down.
        """
        try:
            sent, sent_bytes, switched, unrouted = fan_out(entries, p, now_ms, send_time)
        finally:
            self.schedule_flush()
        if sent:
            self._counters["packets_out"] += sent
            self._counters["bytes_out"] += sent_bytes
        if switched or unrouted:
            self.after_fan_out(switched, unrouted)

    def _note_audio_level(self, pub: Publisher, pkt: RtpPacket, now_ms: int) -> None:
        """Its level if it carries one, else its judgement by size (as the intake does both)."""
        value = pkt.extensions.get(pub.ext.audio_level) if pub.ext.audio_level else None
        judged = pub.voice.on_packet(bool(value), pkt.payload)
        if judged is not None:
            self.on_level(now_ms, pub.participant_id, judged.level_dbov, True)
            return
        if not value:
            return
        voice, level = parse_audio_level(value)
        if voice or level < self._meeting.speakers.quiet_from:  # as the intake reports them
            self.on_level(now_ms, pub.participant_id, level, voice)
