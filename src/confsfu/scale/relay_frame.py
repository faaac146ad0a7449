"""Relay frames: what one worker sends another about a room's media, as bytes (sans-IO).

A frame is a 14-byte header, `magic(2) version(1) kind(1) room(4) source(4) layer(1) flags(1)`
(big-endian), then a payload whose shape the kind fixes:

| kind | from | payload |
| --- | --- | --- |
| `RTP` | the publisher's worker | one clear RTP packet as its intake took it (12 to 2048 bytes) |
| `SOURCE` | the publisher's worker | what a source index names (`SourceInfo`) |
| `KEYFRAME_REQUEST` | a subscribing worker | nothing: a keyframe of (source, layer), please |
| `NACK` | a subscribing worker | 1 to 64 sequence numbers (2 bytes each) of (source, layer) lost |
| `LAYER_NEED` | a subscribing worker | nothing; `flags` bit 0 (`NEEDED`): it is needed |
| `ROOM` | either | a JSON object (up to 16 KB): the authority's plan, or a member's events |

`room` is an index the front assigns; `source` an index the publisher's worker assigns. Bad
input raises `RelayFrameError` (a ValueError) and nothing else.

Between workers (Unix datagram sockets) the frames one worker has for another in one turn of its
event loop go as one **bundle**: `BUNDLE_MAGIC(2)`, then each frame as `length(2)` and its bytes
(up to `MAX_BUNDLE_BYTES` in all): one send and one wake-up for all of them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

MAGIC: Final = b"\xc5\xf7"
VERSION: Final = 1
HEADER: Final = struct.Struct(">2sBBIIBB")
HEADER_BYTES: Final = HEADER.size  # 14

RTP: Final = 1
SOURCE: Final = 2
KEYFRAME_REQUEST: Final = 3
NACK: Final = 4
LAYER_NEED: Final = 5
ROOM: Final = 6
KINDS: Final = frozenset({RTP, SOURCE, KEYFRAME_REQUEST, NACK, LAYER_NEED, ROOM})

MIN_RTP_BYTES: Final = 12
MAX_RTP_BYTES: Final = 2048  # the intake's max_packet
MAX_NACKS: Final = 64
MAX_SOURCE_BYTES: Final = 300
NEEDED: Final = 0x01  # LAYER_NEED's flag
MAX_ROOM_BYTES: Final = 16384
MAX_FRAME_BYTES: Final = HEADER_BYTES + MAX_ROOM_BYTES
MAX_LAYER: Final = 2  # simulcast layers 0..2 (ids.MAX_SPATIAL_LAYERS)
_PURPOSES: Final = ("camera", "screen")
_KINDS_OF_MEDIA: Final = ("audio", "video")


BUNDLE_MAGIC: Final = b"\xc5\xf8"
MAX_BUNDLE_BYTES: Final = 65_536


class RelayFrameError(ValueError):
    """Bytes that are not a relay frame (the reason says why)."""


class RelayFrame(NamedTuple):  # a tuple: made once per relayed packet, cheaply
    kind: int
    room: int
    source: int
    layer: int = 0
    flags: int = 0
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source index names: a participant's (purpose, kind) source, the RTP header
    extension id its audio level comes in (0: none), and the participant's display name."""

    participant: str
    purpose: str
    kind: str
    level_id: int = 0
    name: str = ""


def encode(frame: RelayFrame) -> bytes:
    """The frame's bytes; RelayFrameError when a field is out of range or the payload does not
    fit the kind (`decode` would refuse it)."""
    if not (0 <= frame.room <= 0xFFFFFFFF and 0 <= frame.source <= 0xFFFFFFFF):
        raise RelayFrameError("room or source out of range")
    if not (0 <= frame.layer <= MAX_LAYER and 0 <= frame.flags <= 0xFF):
        raise RelayFrameError("layer or flags out of range")
    _check_payload(frame.kind, frame.payload)
    head = HEADER.pack(
        MAGIC, VERSION, frame.kind, frame.room, frame.source, frame.layer, frame.flags
    )
    return head + frame.payload


def decode(data: bytes) -> RelayFrame:
    """One frame from a datagram; RelayFrameError for anything else."""
    n = len(data)
    if (  # the common case, an RTP frame, checked as below
        HEADER_BYTES + MIN_RTP_BYTES <= n <= HEADER_BYTES + MAX_RTP_BYTES
        and data[:4] == _RTP_HEAD
        and data[14] >> 6 == 2
        and data[12] <= MAX_LAYER
    ):
        room, source, layer, flags = _IDS.unpack_from(data, 4)
        return RelayFrame(RTP, room, source, layer, flags, bytes(data[HEADER_BYTES:]))
    if len(data) < HEADER_BYTES:
        raise RelayFrameError("shorter than a header")
    if len(data) > MAX_FRAME_BYTES:
        raise RelayFrameError("longer than a frame")
    magic, version, kind, room, source, layer, flags = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RelayFrameError("not a relay frame (magic)")
    if version != VERSION:
        raise RelayFrameError(f"version {version}")
    if layer > MAX_LAYER:
        raise RelayFrameError(f"layer {layer}")
    payload = bytes(data[HEADER_BYTES:])
    _check_payload(kind, payload)
    return RelayFrame(kind, room, source, layer, flags, payload)


_RTP_HEAD: Final = MAGIC + bytes((VERSION, RTP))
_IDS: Final = struct.Struct(">IIBB")


def rtp_header(room: int, source: int, layer: int) -> bytes:
    """The header of every RTP frame of (room, source, layer): a packet's frame is this and
    the packet (`rtp` checks the packet; a caller that knows it is RTP need not)."""
    return HEADER.pack(MAGIC, VERSION, RTP, room, source, layer, 0)


def _check_payload(kind: int, payload: bytes) -> None:
    n = len(payload)
    if kind == RTP:
        if not MIN_RTP_BYTES <= n <= MAX_RTP_BYTES or payload[0] >> 6 != 2:
            raise RelayFrameError("not an RTP packet")
    elif kind == NACK:
        if n == 0 or n % 2 or n > 2 * MAX_NACKS:
            raise RelayFrameError("a NACK carries 1 to 64 sequence numbers")
    elif kind in (KEYFRAME_REQUEST, LAYER_NEED):
        if n:
            raise RelayFrameError("no payload expected")
    elif kind == ROOM:
        if not 2 <= n <= MAX_ROOM_BYTES or payload[:1] != b"{":
            raise RelayFrameError("a room message is a JSON object of up to 16 KB")
    elif kind == SOURCE:
        if n > MAX_SOURCE_BYTES:
            raise RelayFrameError("source description too long")
        source_info(payload)
    else:
        raise RelayFrameError(f"kind {kind}")


def bundle(frames: Sequence[bytes]) -> bytes:
    """Frames as one datagram (a caller keeps it within MAX_BUNDLE_BYTES: `bundled_size`)."""
    parts = [BUNDLE_MAGIC]
    for frame in frames:
        parts += (len(frame).to_bytes(2, "big"), frame)
    return b"".join(parts)


def bundled_size(frame: bytes) -> int:
    """What `frame` adds to a bundle."""
    return 2 + len(frame)


def unbundle(data: bytes) -> list[bytes]:
    """A datagram's frames: a bundle's, or the datagram itself if it is not one (each still to
    `decode`); RelayFrameError for a bundle that is too long, empty or cut short."""
    if data[:2] != BUNDLE_MAGIC:
        return [data]
    n = len(data)
    if n > MAX_BUNDLE_BYTES:
        raise RelayFrameError("a bundle longer than allowed")
    frames, i = [], 2
    while i < n:
        size = int.from_bytes(data[i : i + 2], "big")
        i += 2
        if not 0 < size <= n - i:
            raise RelayFrameError("a bundle cut short")
        frames.append(data[i : i + size])
        i += size
    if not frames:
        raise RelayFrameError("an empty bundle")
    return frames


# ---- payloads ---------------------------------------------------------------------------------


def rtp(room: int, source: int, layer: int, packet: bytes) -> bytes:
    return encode(RelayFrame(RTP, room, source, layer, 0, packet))


def nack_payload(seqs: list[int]) -> bytes:
    """At most MAX_NACKS numbers (the first ones kept), each as 16 bits."""
    return b"".join((s & 0xFFFF).to_bytes(2, "big") for s in seqs[:MAX_NACKS])


def nack_seqs(payload: bytes) -> list[int]:
    return [int.from_bytes(payload[i : i + 2], "big") for i in range(0, len(payload), 2)]


def source_payload(info: SourceInfo) -> bytes:
    """`level_id(1) purpose(1: 0 camera, 1 screen) kind(1: 0 audio, 1 video) id_bytes(1)`
    then the participant id and the display name, in UTF-8."""
    if info.purpose not in _PURPOSES or info.kind not in _KINDS_OF_MEDIA:
        raise RelayFrameError("not a source")
    if not 0 <= info.level_id <= 14:
        raise RelayFrameError("level id out of range")
    pid, name = info.participant.encode(), info.name.encode()
    if not 0 < len(pid) < 256 or len(pid) + len(name) + 4 > MAX_SOURCE_BYTES:
        raise RelayFrameError("participant id empty or too long")
    head = (info.level_id, _PURPOSES.index(info.purpose), _KINDS_OF_MEDIA.index(info.kind))
    return bytes((*head, len(pid))) + pid + name


def source_info(payload: bytes) -> SourceInfo:
    if len(payload) < 5:
        raise RelayFrameError("source description too short")
    level_id, purpose, kind, pid_bytes = payload[0], payload[1], payload[2], payload[3]
    if level_id > 14 or purpose > 1 or kind > 1 or not 0 < pid_bytes <= len(payload) - 4:
        raise RelayFrameError("not a source")
    try:
        pid = payload[4 : 4 + pid_bytes].decode()
        name = payload[4 + pid_bytes :].decode()
    except UnicodeDecodeError:
        raise RelayFrameError("participant id or name not UTF-8") from None
    return SourceInfo(pid, _PURPOSES[purpose], _KINDS_OF_MEDIA[kind], level_id, name)
