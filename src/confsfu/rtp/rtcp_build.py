"""RTCP compound packets built: each type of `rtcp` to its wire form, and NACK pairs."""

from collections.abc import Callable, Iterable
from struct import error as StructError

from confsfu.rtp.rtcp import (
    FMT_AFB,
    FMT_FIR,
    FMT_NACK,
    FMT_PLI,
    FMT_TWCC,
    HEADER,
    I16,
    PT_BYE,
    PT_PSFB,
    PT_RR,
    PT_RTPFB,
    PT_SDES,
    PT_SR,
    REPORT_BLOCK,
    SR_INFO,
    TWCC_FIXED,
    TWCC_TICK_US,
    U16,
    U32,
    U32X2,
    FullIntraRequest,
    Goodbye,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    TransportFeedback,
    UnknownRtcp,
)
from confsfu.rtp.seq import seq_diff

__all__ = ["build_nack_pairs", "serialize_rtcp"]


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    """Header + body, padded with RTCP padding (P bit) to a 32-bit boundary."""
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count/format {count} outside 0..31 for packet type {packet_type}")
    padding = -len(body) % 4
    b0 = 0x80 | count
    if padding:
        b0 |= 0x20
        body = body + bytes(padding - 1) + bytes((padding,))
    words = len(body) // 4
    if words > 0xFFFF:
        raise ValueError(f"RTCP packet type {packet_type} too long: {len(body)} bytes")
    return HEADER.pack(b0, packet_type, words) + body


def _report_bytes(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = []
    for b in blocks:
        if not -0x800000 <= b.packets_lost <= 0x7FFFFF:
            raise ValueError(f"packets_lost {b.packets_lost} does not fit 24 signed bits")
        if not 0 <= b.fraction_lost <= 255:
            raise ValueError(f"fraction_lost {b.fraction_lost} outside 0..255")
        loss = (b.fraction_lost << 24) | (b.packets_lost & 0xFFFFFF)
        out.append(REPORT_BLOCK.pack(b.ssrc, loss, b.highest_sequence, b.jitter, b.lsr, b.dlsr))
    return b"".join(out)


def _build_sr(p: SenderReport) -> bytes:
    info = SR_INFO.pack(p.ssrc, p.ntp_timestamp, p.rtp_timestamp, p.packet_count, p.octet_count)
    return _packet(PT_SR, len(p.reports), info + _report_bytes(p.reports))


def _build_rr(p: ReceiverReport) -> bytes:
    return _packet(PT_RR, len(p.reports), U32.pack(p.ssrc) + _report_bytes(p.reports))


def _build_sdes(p: SourceDescription) -> bytes:
    out = []
    for ssrc, cname in p.chunks:
        value = cname.encode("utf-8")
        if len(value) > 255:
            raise ValueError(f"CNAME of {len(value)} bytes is longer than 255")
        chunk = U32.pack(ssrc) + bytes((1, len(value))) + value + b"\x00"
        out.append(chunk + bytes(-len(chunk) % 4))
    return _packet(PT_SDES, len(p.chunks), b"".join(out))


def _build_bye(p: Goodbye) -> bytes:
    body = b"".join(U32.pack(s) for s in p.ssrcs)
    if p.reason:
        reason = p.reason.encode("utf-8")
        if len(reason) > 255:
            raise ValueError(f"BYE reason of {len(reason)} bytes is longer than 255")
        text = bytes((len(reason),)) + reason
        body += text + bytes(-len(text) % 4)
    return _packet(PT_BYE, len(p.ssrcs), body)


def _build_pli(p: PictureLossIndication) -> bytes:
    return _packet(PT_PSFB, FMT_PLI, U32X2.pack(p.sender_ssrc, p.media_ssrc))


def _build_fir(p: FullIntraRequest) -> bytes:
    fci = b"".join(U32X2.pack(ssrc, (seq & 0xFF) << 24) for ssrc, seq in p.entries)
    return _packet(PT_PSFB, FMT_FIR, U32X2.pack(p.sender_ssrc, 0) + fci)


def _build_nack(p: Nack) -> bytes:
    fci = b"".join(U16.pack(pid) + U16.pack(blp) for pid, blp in build_nack_pairs(p.lost))
    return _packet(PT_RTPFB, FMT_NACK, U32X2.pack(p.sender_ssrc, p.media_ssrc) + fci)


def _build_remb(p: Remb) -> bytes:
    if p.bitrate_bps < 0:
        raise ValueError(f"REMB bitrate {p.bitrate_bps} is negative")
    if len(p.ssrcs) > 255:
        raise ValueError(f"REMB lists {len(p.ssrcs)} ssrcs, at most 255")
    mantissa, exponent = p.bitrate_bps, 0
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    if exponent > 63:
        raise ValueError(f"REMB bitrate {p.bitrate_bps} too large")
    word = (len(p.ssrcs) << 24) | (exponent << 18) | mantissa
    fci = b"REMB" + U32.pack(word) + b"".join(U32.pack(s) for s in p.ssrcs)
    return _packet(PT_PSFB, FMT_AFB, U32X2.pack(p.sender_ssrc, 0) + fci)


def _twcc_chunks(symbols: list[int]) -> list[int]:
    """Encode status symbols into chunks the way libwebrtc does, so output matches Chrome's."""
    chunks: list[int] = []
    pending: list[int] = []  # the open chunk's symbols (only the first 14 matter)
    all_same = True
    has_large = False

    def vector(symbols: list[int], two_bit: bool) -> int:
        chunk = 0xC000 if two_bit else 0x8000
        for index, symbol in enumerate(symbols):
            chunk |= symbol << (12 - 2 * index) if two_bit else symbol << (13 - index)
        return chunk

    size = 0
    for symbol in symbols:
        can_add = (
            size < 7
            or (size < 14 and not has_large and symbol != 2)
            or (size < 0x1FFF and all_same and symbol == pending[0])
        )
        if not can_add:
            if all_same:
                chunks.append((pending[0] << 13) | size)
                pending, size, all_same, has_large = [], 0, True, False
            elif size == 14:
                chunks.append(vector(pending, two_bit=False))
                pending, size, all_same, has_large = [], 0, True, False
            else:
                chunks.append(vector(pending[:7], two_bit=True))
                pending = pending[7:]
                size -= 7
                all_same = all(s == pending[0] for s in pending)
                has_large = 2 in pending
        if size < 14:
            pending.append(symbol)
        size += 1
        all_same = all_same and symbol == pending[0]
        has_large = has_large or symbol == 2
    if size:
        if all_same:
            chunks.append((pending[0] << 13) | size)
        elif size <= 7:
            chunks.append(vector(pending, two_bit=True))
        else:
            chunks.append(vector(pending, two_bit=False))
    return chunks


def _build_twcc(p: TransportFeedback) -> bytes:
    if len(p.packets) > 0xFFFF:
        raise ValueError(f"TWCC feedback for {len(p.packets)} packets, at most 65535")
    if not 0 <= p.reference_time_64ms <= 0xFFFFFF:
        raise ValueError(f"TWCC reference time {p.reference_time_64ms} outside 24 bits")
    if not 0 <= p.feedback_count <= 255:
        raise ValueError(f"TWCC feedback count {p.feedback_count} outside 0..255")
    symbols: list[int] = []
    deltas: list[bytes] = []
    previous = 0
    for index, (seq, arrival_us) in enumerate(p.packets):
        if seq != (p.base_sequence + index) & 0xFFFF:
            raise ValueError(
                f"TWCC packet {index} has sequence number {seq}, expected "
                f"{(p.base_sequence + index) & 0xFFFF}"
            )
        if arrival_us is None:
            symbols.append(0)
            continue
        ticks = arrival_us // TWCC_TICK_US
        delta, previous = ticks - previous, ticks
        if 0 <= delta <= 255:
            symbols.append(1)
            deltas.append(bytes((delta,)))
        elif -0x8000 <= delta <= 0x7FFF:
            symbols.append(2)
            deltas.append(I16.pack(delta))
        else:
            raise ValueError(f"TWCC delta of {delta} ticks for {seq} needs a new feedback packet")
    head = U32X2.pack(p.sender_ssrc, p.media_ssrc) + TWCC_FIXED.pack(
        p.base_sequence,
        len(p.packets),
        (p.reference_time_64ms << 8) | p.feedback_count,
    )
    chunks = b"".join(U16.pack(c) for c in _twcc_chunks(symbols))
    return _packet(PT_RTPFB, FMT_TWCC, head + chunks + b"".join(deltas))


def _build_unknown(p: UnknownRtcp) -> bytes:
    if not 192 <= p.packet_type <= 223:
        raise ValueError(f"RTCP packet type {p.packet_type} outside 192..223")
    return _packet(p.packet_type, p.fmt, p.body)


_BUILDERS: dict[type, Callable[..., bytes]] = {
    SenderReport: _build_sr,
    ReceiverReport: _build_rr,
    SourceDescription: _build_sdes,
    Goodbye: _build_bye,
    PictureLossIndication: _build_pli,
    FullIntraRequest: _build_fir,
    Nack: _build_nack,
    Remb: _build_remb,
    TransportFeedback: _build_twcc,
    UnknownRtcp: _build_unknown,
}


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialize packets into one compound RTCP packet; ValueError on out-of-range fields."""
    out = []
    for packet in packets:
        try:
            out.append(_BUILDERS[type(packet)](packet))
        except StructError as exc:
            raise ValueError(f"{type(packet).__name__} field out of range: {exc}") from None
    return b"".join(out)


def build_nack_pairs(lost: Iterable[int]) -> list[tuple[int, int]]:
    """Pack lost sequence numbers into (PID, BLP) pairs.

    Duplicates are dropped and the numbers sorted wrap-aware around the first one given, which
    is exact when they all lie within 32768 of each other.
    """
    unique = dict.fromkeys(lost)
    if not unique:
        return []
    for seq in unique:
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"sequence number {seq} outside 0..65535")
    reference = next(iter(unique))
    pairs: list[tuple[int, int]] = []
    pid = -1
    blp = 0
    for seq in sorted(unique, key=lambda s: seq_diff(s, reference)):
        if pid >= 0:
            distance = seq_diff(seq, pid)
            if 1 <= distance <= 16:
                blp |= 1 << (distance - 1)
                continue
            pairs.append((pid, blp))
        pid, blp = seq, 0
    pairs.append((pid, blp))
    return pairs
