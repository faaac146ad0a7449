"""What a publisher's RTP packet is, before any state is touched: too large, malformed, of no
known stream, an RTX repair (unwrapped to the packet it repairs) or padding, or media of one
published stream. The Python slow path and the C intake's tests both read packets through it."""

from __future__ import annotations

from dataclasses import dataclass

from confsfu.forwarding.published import PublishedStream, StreamRouter
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp

MAX_PACKET_BYTES = 1500  # larger RTP is refused: forwarded packets are built in fixed buffers


@dataclass(frozen=True, slots=True)
class Media:
    """A packet of a published stream (a repair already unwrapped into the packet it repairs)."""

    stream: PublishedStream  # the stream of `pkt` (for a repair: the RTX stream it came on)
    pkt: RtpPacket
    repaired: bool = False
    repair_payload_type: int = 0  # of the RTX packet a repair came in


@dataclass(frozen=True, slots=True)
class Dropped:
    """Not forwarded, and why (the drop counters' names)."""

    reason: str


Classified = Media | Dropped


def classify(data: bytes, router: StreamRouter | None, now_ms: int = 0) -> Classified:
    """Read one decrypted RTP packet of a publish connection (`router` learns new SSRCs)."""
    if len(data) > MAX_PACKET_BYTES:
        return Dropped("oversized")
    try:
        pkt = parse_rtp(data)
    except ParseError:
        return Dropped("bad_rtp")
    if router is None:
        return Dropped("unknown_ssrc")
    refused = router.refused
    stream = router.route(pkt, now_ms)
    if stream is None:
        return Dropped("ssrc_refused" if router.refused > refused else "unknown_ssrc")
    if stream.repairs is None:
        return Media(stream, pkt)
    payload = pkt.payload
    if len(payload) < 2:
        return Dropped("rtx_padding")  # a bandwidth probe: nothing to repair
    apt = stream.section.rtx_payload_types.get(pkt.payload_type)
    if apt is None:
        return Dropped("rtx_unknown")
    original = build_rtp(
        payload_type=apt,
        sequence_number=int.from_bytes(payload[:2], "big"),
        timestamp=pkt.timestamp,
        ssrc=stream.repairs,
        payload=payload[2:],
        marker=pkt.marker,
        extensions=pkt.extensions,
    )
    return Media(stream, parse_rtp(original), True, pkt.payload_type)
