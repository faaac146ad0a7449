"""RTCP both ways, as decisions: what a subscriber's feedback asks of the room, and the reports
the room owes its publishers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confsfu.rtp import rtcp
from confsfu.rtp.rtcp_build import serialize_rtcp


@dataclass(frozen=True, slots=True)
class KeyframeWanted:
    """The subscriber lost the picture of the slot sending as `ssrc` (PLI or FIR)."""

    ssrc: int


@dataclass(frozen=True, slots=True)
class RetransmitWanted:
    """The subscriber misses these packets of the slot sending as `ssrc` (NACK)."""

    ssrc: int
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LossReported:
    """The subscriber's report blocks, one per stream it receives (`bandwidth.report_loss` sums
    them into one loss)."""

    blocks: tuple[rtcp.ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class EstimateReported:
    """The subscriber's receiver-side bandwidth estimate (REMB)."""

    bitrate_bps: int


Ask = KeyframeWanted | RetransmitWanted | LossReported | EstimateReported


def subscriber_asks(packets: Iterable[rtcp.RtcpPacket]) -> list[Ask]:
    """What a subscriber's RTCP asks for, in order."""
    asks: list[Ask] = []
    for packet in packets:
        if isinstance(packet, rtcp.PictureLossIndication):
            asks.append(KeyframeWanted(packet.media_ssrc))
        elif isinstance(packet, rtcp.FullIntraRequest):
            asks.extend(KeyframeWanted(ssrc) for ssrc, _seq in packet.entries)
        elif isinstance(packet, rtcp.ReceiverReport) and packet.reports:
            asks.append(LossReported(packet.reports))
        elif isinstance(packet, rtcp.Remb):
            asks.append(EstimateReported(packet.bitrate_bps))
        elif isinstance(packet, rtcp.Nack):
            asks.append(RetransmitWanted(packet.media_ssrc, packet.lost))
    return asks


MAX_REPORT_BLOCKS = 31  # what one receiver report holds


def publisher_report(
    rtcp_ssrc: int,
    blocks: Sequence[rtcp.ReportBlock],
    video_ssrcs: tuple[int, ...],
    remb_bps: int,
) -> bytes | None:
    """A receiver report of a publisher's streams, and a bitrate cap (REMB) on its video."""
    if not blocks:
        return None
    packets: list[rtcp.RtcpPacket] = [
        rtcp.ReceiverReport(ssrc=rtcp_ssrc, reports=tuple(blocks[:MAX_REPORT_BLOCKS]))
    ]
    if video_ssrcs:
        packets.append(rtcp.Remb(sender_ssrc=rtcp_ssrc, bitrate_bps=remb_bps, ssrcs=video_ssrcs))
    return serialize_rtcp(packets)


def keyframe_request(rtcp_ssrc: int, media_ssrcs: Iterable[int]) -> bytes | None:
    """A picture loss indication for each SSRC of one layer."""
    packets = [
        rtcp.PictureLossIndication(sender_ssrc=rtcp_ssrc, media_ssrc=ssrc) for ssrc in media_ssrcs
    ]
    return serialize_rtcp(packets) if packets else None


def upstream_nack(rtcp_ssrc: int, media_ssrc: int, lost: Sequence[int]) -> bytes:
    nack = rtcp.Nack(sender_ssrc=rtcp_ssrc, media_ssrc=media_ssrc, lost=tuple(lost))
    return serialize_rtcp([nack])


def translated_sender_report(
    sr: rtcp.SenderReport, ssrc: int, rtp_timestamp: int, packets: int, octets: int
) -> bytes:
    """A publisher's sender report as one slot's stream shows it to its subscriber."""
    report = rtcp.SenderReport(
        ssrc=ssrc,
        ntp_timestamp=sr.ntp_timestamp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packets,
        octet_count=octets,
        reports=(),
    )
    return serialize_rtcp([report])
