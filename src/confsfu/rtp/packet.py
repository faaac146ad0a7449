"""RTP packet parse and build (RFC 3550) with RFC 8285 header extensions."""

from collections.abc import Mapping, Sequence
from struct import Struct
from struct import error as StructError

from confsfu.rtp import _fast
from confsfu.rtp.errors import ParseError

__all__ = [
    "RtpPacket",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
    "parse_rtp_reference",
    "rewrite_rtp",
]

_FIXED = Struct("!BBHII")
_EXT_HEADER = Struct("!HH")
_WORD = Struct("!I")
_CSRCS = tuple(Struct(f"!{n}I") for n in range(16))
_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE = 0x1000


class RtpPacket:
    """A parsed view over one decrypted RTP packet; the payload is not copied."""

    __slots__ = (
        "csrcs",
        "data",
        "extensions",
        "marker",
        "payload_end",
        "payload_start",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        data: bytes,
        marker: bool,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        csrcs: tuple[int, ...],
        extensions: dict[int, bytes],
        payload_start: int,
        payload_end: int,
    ) -> None:
        self.data = data
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.extensions = extensions
        self.payload_start = payload_start
        self.payload_end = payload_end

    @property
    def payload(self) -> bytes:
        return self.data[self.payload_start : self.payload_end]

    @property
    def padding_only(self) -> bool:
        return self.payload_end == self.payload_start

    @property
    def padding_bytes(self) -> int:
        """Number of RTP padding bytes, the count byte included."""
        return len(self.data) - self.payload_end

    def __repr__(self) -> str:
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence_number}, "
            f"ts={self.timestamp}, ssrc={self.ssrc:#010x}, marker={self.marker}, "
            f"ext={sorted(self.extensions)}, payload={self.payload_end - self.payload_start}B)"
        )


def _parse_one_byte(data: bytes, pos: int, end: int) -> dict[int, bytes]:
    extensions: dict[int, bytes] = {}
    while pos < end:
        byte = data[pos]
        if byte == 0:  # padding between elements
            pos += 1
            continue
        ext_id = byte >> 4
        if ext_id == 15:  # reserved: stop parsing (RFC 8285 section 4.2)
            break
        length = (byte & 0x0F) + 1
        pos += 1
        if pos + length > end:
            raise ParseError(
                f"RTP one-byte extension id {ext_id} at offset {pos - 1} needs {length} bytes, "
                f"only {end - pos} left in the extension block"
            )
        extensions[ext_id] = data[pos : pos + length]
        pos += length
    return extensions


def _parse_two_byte(data: bytes, pos: int, end: int) -> dict[int, bytes]:
    extensions: dict[int, bytes] = {}
    while pos < end:
        ext_id = data[pos]
        if ext_id == 0:  # padding
            pos += 1
            continue
        if pos + 1 >= end:
            raise ParseError(f"RTP two-byte extension id {ext_id} at offset {pos} has no length")
        length = data[pos + 1]
        pos += 2
        if pos + length > end:
            raise ParseError(
                f"RTP two-byte extension id {ext_id} at offset {pos - 2} needs {length} bytes, "
                f"only {end - pos} left in the extension block"
            )
        extensions[ext_id] = data[pos : pos + length]
        pos += length
    return extensions


def parse_rtp_reference(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raise :class:`ParseError` on anything malformed.

    The specification of `parse_rtp`, which does the same in C and calls this for anything it
    does not take (malformed packets, inputs other than `bytes`)."""
    size = len(data)
    if size < 12:
        raise ParseError(f"RTP packet truncated: {size} bytes, the fixed header needs 12")
    b0, b1, sequence_number, timestamp, ssrc = _FIXED.unpack_from(data, 0)
    if b0 >> 6 != 2:
        raise ParseError(f"RTP version is {b0 >> 6}, expected 2")
    pos = 12
    csrc_count = b0 & 0x0F
    if csrc_count:
        pos += 4 * csrc_count
        if pos > size:
            raise ParseError(
                f"RTP packet truncated: {csrc_count} CSRCs need {pos} bytes, got {size}"
            )
        csrcs: tuple[int, ...] = _CSRCS[csrc_count].unpack_from(data, 12)
    else:
        csrcs = ()
    extensions: dict[int, bytes]
    if b0 & 0x10:
        if pos + 4 > size:
            raise ParseError(f"RTP extension header at offset {pos} truncated ({size} bytes)")
        profile, words = _EXT_HEADER.unpack_from(data, pos)
        pos += 4
        ext_end = pos + 4 * words
        if ext_end > size:
            raise ParseError(
                f"RTP extension block of {words} words at offset {pos} runs past the end "
                f"({size} bytes)"
            )
        if profile == _ONE_BYTE_PROFILE:
            extensions = _parse_one_byte(data, pos, ext_end)
        elif profile & 0xFFF0 == _TWO_BYTE_PROFILE:
            extensions = _parse_two_byte(data, pos, ext_end)
        else:  # a non-RFC 8285 extension: skip it
            extensions = {}
        pos = ext_end
    else:
        extensions = {}
    payload_end = size
    if b0 & 0x20:
        padding = data[size - 1]
        if padding == 0 or padding > size - pos:
            raise ParseError(
                f"RTP padding count {padding} invalid: {size - pos} bytes follow the header"
            )
        payload_end = size - padding
    return RtpPacket(
        data,
        bool(b1 & 0x80),
        b1 & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        csrcs,
        extensions,
        pos,
        payload_end,
    )


_fast.configure_rtp(RtpPacket, parse_rtp_reference)
parse_rtp = _fast.parse_rtp


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP when the second byte (packet type) is in 192..223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def _extension_block(extensions: Mapping[int, bytes]) -> bytes:
    """Encode header extensions as a block (profile, length, elements, zero padding)."""
    one_byte = all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in extensions.items())
    parts: list[bytes] = []
    if one_byte:
        profile = _ONE_BYTE_PROFILE
        for ext_id, value in extensions.items():
            parts.append(bytes(((ext_id << 4) | (len(value) - 1),)))
            parts.append(value)
    else:
        profile = _TWO_BYTE_PROFILE
        for ext_id, value in extensions.items():
            if not 1 <= ext_id <= 255:
                raise ValueError(f"header extension id {ext_id} outside 1..255")
            if len(value) > 255:
                raise ValueError(f"header extension {ext_id} value of {len(value)} bytes > 255")
            parts.append(bytes((ext_id, len(value))))
            parts.append(value)
    body = b"".join(parts)
    body += b"\x00" * (-len(body) % 4)
    return _EXT_HEADER.pack(profile, len(body) // 4) + body


def _header(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
    extensions: Mapping[int, bytes] | None,
    padding: bool,
    csrcs: Sequence[int],
) -> bytes:
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload type {payload_type} outside 0..127")
    if len(csrcs) > 15:
        raise ValueError(f"{len(csrcs)} CSRCs, at most 15 allowed")
    b0 = 0x80 | len(csrcs)
    if padding:
        b0 |= 0x20
    ext = _extension_block(extensions) if extensions else b""
    if ext:
        b0 |= 0x10
    b1 = payload_type | (0x80 if marker else 0)
    try:
        fixed = _FIXED.pack(b0, b1, sequence_number, timestamp, ssrc)
        csrc_bytes = b"".join(_WORD.pack(c) for c in csrcs)
    except StructError as exc:
        raise ValueError(f"RTP header field out of range: {exc}") from None
    return fixed + csrc_bytes + ext


def build_rtp(
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    extensions: Mapping[int, bytes] | None = None,
    padding_bytes: int = 0,
    csrcs: Sequence[int] = (),
) -> bytes:
    """Serialize an RTP packet.

    Extensions use the one-byte form when every id is 1..14 and every value 1..16 bytes, else
    the two-byte form. ``padding_bytes`` (0..255) counts the padding count byte itself.
    """
    if not 0 <= padding_bytes <= 255:
        raise ValueError(f"padding_bytes {padding_bytes} outside 0..255")
    header = _header(
        payload_type,
        sequence_number,
        timestamp,
        ssrc,
        marker,
        extensions,
        padding_bytes > 0,
        csrcs,
    )
    if padding_bytes:
        return b"".join((header, payload, bytes(padding_bytes - 1), bytes((padding_bytes,))))
    return header + payload


def rewrite_rtp(
    packet: RtpPacket,
    *,
    payload_type: int | None = None,
    sequence_number: int | None = None,
    timestamp: int | None = None,
    ssrc: int | None = None,
    marker: bool | None = None,
    extensions: Mapping[int, bytes] | None = None,
    payload_head: bytes = b"",
) -> bytes:
    """A copy of ``packet`` with a new header; payload bytes and padding are kept.

    Fields left as None keep their parsed values (``extensions`` likewise; pass ``{}`` to drop
    them). ``payload_head`` replaces the first ``len(payload_head)`` payload bytes, e.g. a
    rewritten VP8 descriptor, so the payload is copied exactly once.
    """
    padding = packet.payload_end < len(packet.data)
    header = _header(
        packet.payload_type if payload_type is None else payload_type,
        packet.sequence_number if sequence_number is None else sequence_number,
        packet.timestamp if timestamp is None else timestamp,
        packet.ssrc if ssrc is None else ssrc,
        packet.marker if marker is None else marker,
        packet.extensions if extensions is None else extensions,
        padding,
        packet.csrcs,
    )
    start = packet.payload_start + len(payload_head)
    if start > packet.payload_end:
        raise ValueError(
            f"payload_head of {len(payload_head)} bytes is longer than the payload "
            f"({packet.payload_end - packet.payload_start} bytes)"
        )
    return b"".join((header, payload_head, memoryview(packet.data)[start:]))
