"""RTP header-extension URIs, negotiated id maps and the value codecs an SFU reads or writes."""

from collections.abc import Mapping
from dataclasses import dataclass

from confsfu.rtp.errors import ParseError

__all__ = [
    "ABS_SEND_TIME",
    "AUDIO_LEVEL",
    "MID",
    "REPAIRED_RID",
    "RID",
    "TRANSPORT_CC",
    "ExtensionIds",
    "abs_send_time",
    "build_audio_level",
    "build_sdes_string",
    "build_transport_cc",
    "parse_abs_send_time",
    "parse_audio_level",
    "parse_sdes_string",
    "parse_transport_cc",
]

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


@dataclass(frozen=True, slots=True)
class ExtensionIds:
    """The negotiated extension ids of one m-line (None: not negotiated)."""

    mid: int | None = None
    rid: int | None = None
    repaired_rid: int | None = None
    audio_level: int | None = None
    abs_send_time: int | None = None
    transport_cc: int | None = None

    @classmethod
    def from_uris(cls, mapping: Mapping[str, int]) -> "ExtensionIds":
        """Pick the known extensions out of an SDP ``uri -> id`` map."""
        return cls(
            mid=mapping.get(MID),
            rid=mapping.get(RID),
            repaired_rid=mapping.get(REPAIRED_RID),
            audio_level=mapping.get(AUDIO_LEVEL),
            abs_send_time=mapping.get(ABS_SEND_TIME),
            transport_cc=mapping.get(TRANSPORT_CC),
        )

    def to_uris(self) -> dict[str, int]:
        """The inverse of :meth:`from_uris`, omitting absent extensions."""
        pairs = (
            (MID, self.mid),
            (RID, self.rid),
            (REPAIRED_RID, self.repaired_rid),
            (AUDIO_LEVEL, self.audio_level),
            (ABS_SEND_TIME, self.abs_send_time),
            (TRANSPORT_CC, self.transport_cc),
        )
        return {uri: ext_id for uri, ext_id in pairs if ext_id is not None}


def parse_audio_level(value: bytes) -> tuple[bool, int]:
    """RFC 6464: (voice activity flag, level in -dBov 0..127; 127 is silence)."""
    if not value:
        raise ParseError("audio level extension is empty, expected 1 byte")
    byte = value[0]
    return bool(byte & 0x80), byte & 0x7F


def build_audio_level(voice: bool, level: int) -> bytes:
    if not 0 <= level <= 127:
        raise ValueError(f"audio level {level} outside 0..127 (-dBov)")
    return bytes(((0x80 if voice else 0) | level,))


def abs_send_time(now_ms: int) -> bytes:
    """The 3-byte abs-send-time value: seconds in 6.18 fixed point, wrapping every 64 s."""
    value = ((now_ms << 18) // 1000) & 0xFFFFFF
    return value.to_bytes(3, "big")


def parse_abs_send_time(value: bytes) -> int:
    """The 24-bit 6.18 fixed-point abs-send-time value."""
    if len(value) < 3:
        raise ParseError(f"abs-send-time extension has {len(value)} bytes, expected 3")
    return int.from_bytes(value[:3], "big")


def parse_transport_cc(value: bytes) -> int:
    """The 16-bit transport-wide sequence number."""
    if len(value) < 2:
        raise ParseError(f"transport-cc extension has {len(value)} bytes, expected 2")
    return (value[0] << 8) | value[1]


def build_transport_cc(seq: int) -> bytes:
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"transport-cc sequence number {seq} outside 0..65535")
    return seq.to_bytes(2, "big")


def parse_sdes_string(value: bytes) -> str:
    """A mid, rid or repaired-rid value: printable ASCII (trailing NUL bytes are dropped)."""
    text = bytes(value).rstrip(b"\x00")
    if not text:
        raise ParseError("SDES extension value is empty")
    for index, byte in enumerate(text):
        if not 0x21 <= byte <= 0x7E:
            raise ParseError(f"SDES extension value has byte {byte:#04x} at index {index}")
    return text.decode("ascii")


def build_sdes_string(text: str) -> bytes:
    """Encode a mid/rid value (1..255 printable ASCII characters)."""
    data = text.encode("ascii")
    if not 1 <= len(data) <= 255 or not all(0x21 <= b <= 0x7E for b in data):
        raise ValueError(f"invalid SDES extension value {text!r}")
    return data
