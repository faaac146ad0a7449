"""What the media shell holds per participant: each subscriber's connection and slots (with
their subscriptions and wires), each publisher's connection, intake and receptions."""

from __future__ import annotations

from dataclasses import dataclass, field

from confsfu.bandwidth.budget import SubscriberBudget
from confsfu.bandwidth.estimation import BandwidthEstimator
from confsfu.bandwidth.layer_meter import LayerBitrateMeter
from confsfu.bandwidth.probe import ProbeController
from confsfu.bandwidth.quality import QualityWatch
from confsfu.bandwidth.report_loss import ReportLoss
from confsfu.bandwidth.retransmit import RetransmitLimiter
from confsfu.conference.voice_activity import VoiceActivity
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.outgoing import SlotHeader, build_padding
from confsfu.forwarding.published import StreamRouter
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.subscription import Subscription
from confsfu.ids import Kind, LayerKey, Purpose, SlotPurpose, SourceId
from confsfu.rtp.extensions import ExtensionIds
from confsfu.server._wire import Intake, Wire
from confsfu.server.rtc_adapter import OutgoingStream, RawPeerConnection


@dataclass(slots=True, eq=False)  # identity: compared and hashed as objects
class Slot:
    """One outgoing stream of a subscriber: its identity, subscription and wire."""

    subscriber: Subscriber
    stream: OutgoingStream
    purpose: SlotPurpose
    subscription: Subscription
    header: SlotHeader | None = None  # known once the subscriber's answer came
    wire: Wire | None = None  # writes, protects, queues and keeps its packets (for NACKs)
    rtx_payload_type: int | None = None
    rtx_seq: int = 0
    rtx_sent: int = 0
    indexed: set[LayerKey] = field(default_factory=set)  # layers whose packets reach this slot
    given_ms: int | None = None  # when a grid slot was given its source (None: no dwell)

    @property
    def forwarder(self) -> SlotForwarder:
        return self.subscription.forwarder

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
        """Packet `seq` again, if the history still has it (`kept`, then `again`)."""
        original = self.kept(seq)
        return self.again(original, now_ms) if original is not None else None

    def kept(self, seq: int) -> bytes | None:
        """Packet `seq` as it was sent, if the history still has it."""
        sent = self.wire.sent(seq) if self.wire is not None else None
        if sent is None or self.header is None:
            return None
        marker, timestamp, payload, send_time = sent
        return self.header.packet(marker, seq, timestamp, send_time, payload)

    def again_bytes(self, original: bytes) -> int:
        """How long `again(original)` is: a limit is asked before the RTX number is taken."""
        return len(original) + (2 if self.rtx_payload_type is not None else 0)

    def again(self, original: bytes, now_ms: int) -> bytes:
        """A kept packet to send again: as the slot's next RTX packet (with a fresh send time),
        or byte for byte as it was when no RTX was negotiated (the same sequence number
        protected again must be the same packet: AES-GCM's IV is the number)."""
        assert self.header is not None  # `kept` built it
        if self.rtx_payload_type is None:
            seq = int.from_bytes(original[2:4], "big")
            number = self.wire.transport_seq(seq) if self.wire is not None else None
            at = self.header.transport_cc_at
            if number is None or not at:
                return original
            return original[:at] + number.to_bytes(2, "big") + original[at + 2 :]
        self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
        return self.header.rtx(
            original,
            rtx_ssrc=self.stream.rtx_ssrc,
            rtx_payload_type=self.rtx_payload_type,
            rtx_seq=self.rtx_seq,
            now_ms=now_ms,
        )

    def padding(self, now_ms: int) -> bytes | None:
        """A padding-only packet on the slot's RTX stream (None without RTX)."""
        if self.header is None or self.rtx_payload_type is None:
            return None
        self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
        return build_padding(
            self.header,
            rtx_ssrc=self.stream.rtx_ssrc,
            rtx_payload_type=self.rtx_payload_type,
            rtx_seq=self.rtx_seq,
            timestamp=self.forwarder.last_ts,
            now_ms=now_ms,
        )


FanOut = tuple[tuple[Slot, SlotForwarder, Wire], ...]  # what `fan_out` walks for one layer


ESTIMATOR_KINDS = {"TwccEstimator": "twcc", "RembEstimator": "remb", "LossBasedEstimator": "loss"}


@dataclass(slots=True, eq=False)
class Subscriber:
    participant_id: str
    pc: RawPeerConnection
    budget: SubscriberBudget
    slots: list[Slot] = field(default_factory=list)
    by_ssrc: dict[int, Slot] = field(default_factory=dict)
    ready: bool = False
    listener: bool = False  # the audience: audio slots and the stage, planned as a listener's
    grid_page: int = 0
    stage_height: int = 0  # the page's stage tile, device pixels high (0: not said)
    loss_fraction: float | None = None  # from the subscriber's receiver reports
    report_loss: ReportLoss = field(default_factory=ReportLoss)  # ... summed over its streams
    quality: QualityWatch = field(default_factory=QualityWatch)  # ... in words
    probe: ProbeController = field(default_factory=ProbeController)
    sent_bytes: int = 0  # media bytes sent up to the last report tick
    padding_bytes: int = 0  # probe padding sent so far
    pad_media_bytes: int = 0  # media bytes sent up to the last padding tick
    planned: object = None  # (room plan, grid page, pin, sources) of its last slot plan
    audio_sent_bytes: int = 0  # audio bytes sent up to the last report tick
    audio_bps: int = 0  # what its audio cost over the last report interval
    transport_fed: int | None = None  # transport-cc: the next number to tell the estimator of
    retransmits: RetransmitLimiter = field(default_factory=RetransmitLimiter)

    @property
    def estimator(self) -> BandwidthEstimator:
        return self.budget.estimator

    @property
    def estimate_counts_audio(self) -> bool:
        """Whether its estimate counts the audio sent to it: a REMB counts only what carries
        abs-send-time, which audio sections are not offered."""
        return self.estimator_kind != "remb"

    @property
    def estimator_kind(self) -> str:
        """`twcc` (transport-cc feedback, on the sending side), `remb` or `loss`."""
        return ESTIMATOR_KINDS.get(type(self.budget.estimator).__name__, "other")

    def refused(self) -> dict[str, int]:
        """Packets its downlink refused to send, by reason (drop counters' names)."""
        route = self.pc.route
        return {
            "oversized_out": route.oversized + sum(s.wire.oversized for s in self.slots if s.wire),
            "srtp_repeat": route.repeats,
        }


@dataclass(slots=True, eq=False)
class Publisher:
    participant_id: str
    purpose: Purpose
    pc: RawPeerConnection
    rtcp_ssrc: int
    intake: Intake  # takes its RTP from the socket to the slots (confsfu.server._wire, C)
    router: StreamRouter | None = None
    ext: ExtensionIds = field(default_factory=ExtensionIds)
    receptions: dict[int, Reception] = field(default_factory=dict)  # by SSRC
    meters: dict[SourceId, LayerBitrateMeter] = field(default_factory=dict)  # per video source
    voice: VoiceActivity = field(default_factory=VoiceActivity)  # the slow path's; the intake's own
    relayed: bool = False  # another worker's (server/relay.py), which reports to its publisher

    def heard(self, ssrc: int) -> int | None:
        """When a packet of `ssrc` last arrived (None: never)."""
        reception = self.receptions.get(ssrc)
        return reception.last_packet_ms if reception is not None else None
