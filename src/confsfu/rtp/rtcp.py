"""RTCP compound packets: the types (reports, SDES, BYE, NACK, PLI, FIR, REMB, TWCC) and their
parser; building them is `rtcp_build`."""

from dataclasses import dataclass
from struct import Struct
from typing import TypeAlias

from confsfu.rtp.errors import ParseError

__all__ = [
    "FullIntraRequest",
    "Goodbye",
    "Nack",
    "PictureLossIndication",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "SenderReport",
    "SourceDescription",
    "TransportFeedback",
    "UnknownRtcp",
    "middle_32",
    "ms_from_ntp",
    "ntp_from_ms",
    "parse_rtcp",
    "parse_rtcp_lenient",
    "round_trip_ms",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_RTPFB = 205
PT_PSFB = 206
FMT_NACK = 1
FMT_TWCC = 15
FMT_PLI = 1
FMT_FIR = 4
FMT_AFB = 15

HEADER = Struct("!BBH")
U8 = Struct("!B")
U16 = Struct("!H")
I16 = Struct("!h")
U32 = Struct("!I")
U32X2 = Struct("!II")
SR_INFO = Struct("!IQIII")
REPORT_BLOCK = Struct("!IIIIII")
TWCC_FIXED = Struct("!HHI")
TWCC_TICK_US = 250
_NTP_UNIX_OFFSET_S = 2_208_988_800


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, loss fraction * 256
    packets_lost: int  # cumulative, signed 24-bit
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # in RTP timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP time
    dlsr: int  # delay since that SR, in 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[tuple[int, str], ...]  # (ssrc, cname); "" when a chunk carries no CNAME


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PictureLossIndication:
    sender_ssrc: int
    media_ssrc: int


@dataclass(frozen=True, slots=True)
class FullIntraRequest:
    sender_ssrc: int
    entries: tuple[tuple[int, int], ...]  # (media ssrc, command sequence number 0..255)


@dataclass(frozen=True, slots=True)
class Nack:
    """Generic NACK; ``lost`` is the expanded list (serialized in wrap-aware sorted order)."""

    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver estimated max bitrate; ``bitrate_bps`` is sent as an 18-bit mantissa, 6-bit exp."""

    sender_ssrc: int
    bitrate_bps: int
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TransportFeedback:
    """Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-01).

    ``packets`` lists every packet from ``base_sequence`` on: (sequence number, arrival time in
    microseconds after ``reference_time_64ms * 64 ms``, or None when not received). Arrival
    times travel in 250 us ticks; ``reference_time_64ms`` is read as an unsigned 24-bit value.
    """

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    reference_time_64ms: int
    feedback_count: int
    packets: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other packet type or format; ``body`` follows the 4-byte header, padding removed."""

    packet_type: int
    fmt: int
    body: bytes


RtcpPacket: TypeAlias = (
    SenderReport
    | ReceiverReport
    | SourceDescription
    | Goodbye
    | PictureLossIndication
    | FullIntraRequest
    | Nack
    | Remb
    | TransportFeedback
    | UnknownRtcp
)


# ---------------------------------------------------------------------------------------- parse


def _need(end: int, pos: int, count: int, what: str) -> None:
    if pos + count > end:
        raise ParseError(f"RTCP {what} at offset {pos} needs {count} bytes, {end - pos} left")


def _report_blocks(data: bytes, pos: int, end: int, count: int) -> tuple[ReportBlock, ...]:
    _need(end, pos, 24 * count, f"{count} report blocks")
    blocks = []
    for _ in range(count):
        ssrc, loss, highest, jitter, lsr, dlsr = REPORT_BLOCK.unpack_from(data, pos)
        lost = loss & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, loss >> 24, lost, highest, jitter, lsr, dlsr))
        pos += 24
    return tuple(blocks)


def _parse_sr(count: int, data: bytes, pos: int, end: int) -> SenderReport:
    _need(end, pos, 24, "sender info")
    ssrc, ntp, rtp_ts, packets, octets = SR_INFO.unpack_from(data, pos)
    reports = _report_blocks(data, pos + 24, end, count)
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)


def _parse_rr(count: int, data: bytes, pos: int, end: int) -> ReceiverReport:
    _need(end, pos, 4, "receiver report ssrc")
    (ssrc,) = U32.unpack_from(data, pos)
    return ReceiverReport(ssrc, _report_blocks(data, pos + 4, end, count))


def _parse_sdes(count: int, data: bytes, pos: int, end: int) -> SourceDescription:
    start = pos
    chunks = []
    for _ in range(count):
        _need(end, pos, 4, "SDES chunk ssrc")
        (ssrc,) = U32.unpack_from(data, pos)
        pos += 4
        cname = ""
        while True:
            if pos >= end:
                raise ParseError(f"RTCP SDES chunk for ssrc {ssrc:#x} is not terminated")
            item_type = data[pos]
            if item_type == 0:
                pos = min(end, start + ((pos + 1 - start + 3) & ~3))
                break
            _need(end, pos, 2, "SDES item header")
            length = data[pos + 1]
            _need(end, pos + 2, length, "SDES item value")
            if item_type == 1:
                try:
                    cname = data[pos + 2 : pos + 2 + length].decode("utf-8")
                except UnicodeDecodeError:
                    raise ParseError(f"RTCP SDES CNAME at offset {pos} is not UTF-8") from None
            pos += 2 + length
        chunks.append((ssrc, cname))
    return SourceDescription(tuple(chunks))


def _parse_bye(count: int, data: bytes, pos: int, end: int) -> Goodbye:
    _need(end, pos, 4 * count, f"BYE with {count} ssrcs")
    ssrcs = Struct(f"!{count}I").unpack_from(data, pos)
    pos += 4 * count
    reason = ""
    if pos < end:
        length = data[pos]
        _need(end, pos + 1, length, "BYE reason")
        reason = data[pos + 1 : pos + 1 + length].decode("utf-8", errors="replace")
    return Goodbye(tuple(ssrcs), reason)


def _parse_nack(sender: int, media: int, data: bytes, pos: int, end: int) -> Nack:
    if (end - pos) % 4:
        raise ParseError(f"RTCP NACK FCI of {end - pos} bytes is not a multiple of 4")
    lost: list[int] = []
    for offset in range(pos, end, 4):
        pid, blp = U32.unpack_from(data, offset)[0] >> 16, U16.unpack_from(data, offset + 2)[0]
        lost.append(pid)
        bit = 0
        while blp:
            if blp & 1:
                lost.append((pid + bit + 1) & 0xFFFF)
            blp >>= 1
            bit += 1
    return Nack(sender, media, tuple(lost))


def _twcc_symbols(data: bytes, pos: int, end: int, count: int) -> tuple[list[int], int]:
    symbols: list[int] = []
    while len(symbols) < count:
        _need(end, pos, 2, "TWCC packet chunk")
        (chunk,) = U16.unpack_from(data, pos)
        pos += 2
        if not chunk & 0x8000:  # run length: 0 | symbol(2) | length(13)
            symbols.extend([(chunk >> 13) & 3] * min(chunk & 0x1FFF, count - len(symbols)))
        elif not chunk & 0x4000:  # status vector of 14 one-bit symbols
            symbols.extend((chunk >> shift) & 1 for shift in range(13, -1, -1))
        else:  # status vector of 7 two-bit symbols
            symbols.extend((chunk >> shift) & 3 for shift in range(12, -1, -2))
    del symbols[count:]
    return symbols, pos


def _parse_twcc(sender: int, media: int, data: bytes, pos: int, end: int) -> TransportFeedback:
    _need(end, pos, 8, "TWCC header")
    base, count, ref_and_count = TWCC_FIXED.unpack_from(data, pos)
    symbols, pos = _twcc_symbols(data, pos + 8, end, count)
    packets: list[tuple[int, int | None]] = []
    ticks = 0
    for index, symbol in enumerate(symbols):
        seq = (base + index) & 0xFFFF
        if symbol == 0:
            packets.append((seq, None))
            continue
        if symbol == 1:
            _need(end, pos, 1, "TWCC small delta")
            ticks += data[pos]
            pos += 1
        elif symbol == 2:
            _need(end, pos, 2, "TWCC large delta")
            ticks += I16.unpack_from(data, pos)[0]
            pos += 2
        else:
            raise ParseError(f"RTCP TWCC reserved status symbol 3 for sequence number {seq}")
        packets.append((seq, ticks * TWCC_TICK_US))
    return TransportFeedback(
        sender, media, base, ref_and_count >> 8, ref_and_count & 0xFF, tuple(packets)
    )


def _parse_rtpfb(fmt: int, data: bytes, pos: int, end: int) -> RtcpPacket:
    _need(end, pos, 8, "RTPFB ssrcs")
    sender, media = U32X2.unpack_from(data, pos)
    if fmt == FMT_NACK:
        return _parse_nack(sender, media, data, pos + 8, end)
    if fmt == FMT_TWCC:
        return _parse_twcc(sender, media, data, pos + 8, end)
    return UnknownRtcp(PT_RTPFB, fmt, data[pos:end])


def _parse_psfb(fmt: int, data: bytes, pos: int, end: int) -> RtcpPacket:
    _need(end, pos, 8, "PSFB ssrcs")
    sender, media = U32X2.unpack_from(data, pos)
    fci = pos + 8
    if fmt == FMT_PLI:
        return PictureLossIndication(sender, media)
    if fmt == FMT_FIR:
        if (end - fci) % 8:
            raise ParseError(f"RTCP FIR FCI of {end - fci} bytes is not a multiple of 8")
        entries = []
        for offset in range(fci, end, 8):
            ssrc, word = U32X2.unpack_from(data, offset)
            entries.append((ssrc, word >> 24))
        return FullIntraRequest(sender, tuple(entries))
    if fmt == FMT_AFB and data[fci : fci + 4] == b"REMB":
        _need(end, fci + 4, 4, "REMB bitrate")
        (word,) = U32.unpack_from(data, fci + 4)
        count = word >> 24
        bitrate = (word & 0x3FFFF) << ((word >> 18) & 0x3F)
        _need(end, fci + 8, 4 * count, f"REMB with {count} ssrcs")
        ssrcs = Struct(f"!{count}I").unpack_from(data, fci + 8)
        return Remb(sender, bitrate, tuple(ssrcs))
    return UnknownRtcp(PT_PSFB, fmt, data[pos:end])


def _parse_one(packet_type: int, count: int, data: bytes, pos: int, end: int) -> RtcpPacket:
    if packet_type == PT_SR:
        return _parse_sr(count, data, pos, end)
    if packet_type == PT_RR:
        return _parse_rr(count, data, pos, end)
    if packet_type == PT_RTPFB:
        return _parse_rtpfb(count, data, pos, end)
    if packet_type == PT_PSFB:
        return _parse_psfb(count, data, pos, end)
    if packet_type == PT_SDES:
        return _parse_sdes(count, data, pos, end)
    if packet_type == PT_BYE:
        return _parse_bye(count, data, pos, end)
    return UnknownRtcp(packet_type, count, data[pos:end])


def _parse_compound(data: bytes, errors: list[ParseError] | None) -> list[RtcpPacket]:
    packets: list[RtcpPacket] = []
    size = len(data)
    if size == 0:
        error = ParseError("RTCP packet is empty")
        if errors is None:
            raise error
        errors.append(error)
        return packets
    pos = 0
    while pos < size:
        # Framing: a bad header means the rest cannot be located; stop here.
        if size - pos < 4:
            framing = f"RTCP header at offset {pos} truncated: {size - pos} bytes left"
        else:
            b0, packet_type, words = HEADER.unpack_from(data, pos)
            end = pos + 4 * (words + 1)
            if b0 >> 6 != 2:
                framing = f"RTCP version is {b0 >> 6} at offset {pos}, expected 2"
            elif not 192 <= packet_type <= 223:
                framing = f"RTCP packet type {packet_type} at offset {pos} outside 192..223"
            elif end > size:
                framing = (
                    f"RTCP packet type {packet_type} at offset {pos} declares {end - pos} "
                    f"bytes, only {size - pos} left"
                )
            else:
                framing = ""
        if framing:
            if errors is None:
                raise ParseError(framing)
            errors.append(ParseError(framing))
            break
        # Body: a bad body loses only this sub-packet.
        try:
            body_end = end
            if b0 & 0x20:
                padding = data[end - 1]
                if padding == 0 or padding > end - pos - 4:
                    raise ParseError(
                        f"RTCP padding count {padding} invalid for packet type {packet_type} "
                        f"at offset {pos}"
                    )
                body_end = end - padding
            packets.append(_parse_one(packet_type, b0 & 0x1F, data, pos + 4, body_end))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append(exc)
        pos = end
    return packets


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a decrypted compound RTCP packet; :class:`ParseError` on any malformed part."""
    return _parse_compound(data, None)


def parse_rtcp_lenient(data: bytes) -> tuple[list[RtcpPacket], list[ParseError]]:
    """Parse what can be parsed: a malformed sub-packet is skipped when its length is sound,
    and parsing stops at the first header that cannot be framed."""
    errors: list[ParseError] = []
    packets = _parse_compound(data, errors)
    return packets, errors


# ---------------------------------------------------------------------------------------- time


def ntp_from_ms(unix_ms: int) -> int:
    """64-bit NTP timestamp for a Unix time in milliseconds."""
    seconds, ms = divmod(unix_ms, 1000)
    return (((seconds + _NTP_UNIX_OFFSET_S) << 32) | ((ms << 32) // 1000)) & 0xFFFFFFFFFFFFFFFF


def ms_from_ntp(ntp: int) -> int:
    """Unix time in milliseconds (rounded) for a 64-bit NTP timestamp.

    Seconds below 2**31 are read as NTP era 1 (from February 2036), as RFC 4330 suggests.
    """
    seconds = ntp >> 32
    if seconds < 0x80000000:
        seconds += 1 << 32
    return (seconds - _NTP_UNIX_OFFSET_S) * 1000 + (((ntp & 0xFFFFFFFF) * 1000 + 0x80000000) >> 32)


def middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as carried in LSR."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_ms(now_ms: int, block: ReportBlock) -> int | None:
    """RTT from a report block received at Unix time ``now_ms`` (RFC 3550 6.4.1); None without
    an LSR."""
    if block.lsr == 0:
        return None
    rtt = (middle_32(ntp_from_ms(now_ms)) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 0x80000000:  # clock skew made it negative
        return 0
    return (rtt * 1000) >> 16
