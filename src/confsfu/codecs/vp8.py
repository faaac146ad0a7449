"""The VP8 RTP payload descriptor (RFC 7741): parse, patch picture id/TL0PICIDX, packetize."""

from confsfu.rtp import _fast
from confsfu.rtp.errors import ParseError

__all__ = [
    "Vp8Descriptor",
    "packetize_vp8",
    "parse_vp8",
    "parse_vp8_reference",
    "rewrite_vp8",
    "rewrite_vp8_descriptor",
]


class Vp8Descriptor:
    """A parsed VP8 payload descriptor plus what the payload header says about keyframes.

    Offsets are byte positions inside the RTP payload; 0 means the field is absent.
    """

    __slots__ = (
        "height",
        "is_keyframe",
        "key_index",
        "layer_sync",
        "non_reference",
        "partition_id",
        "picture_id",
        "picture_id_bits",
        "picture_id_offset",
        "size",
        "start_of_partition",
        "temporal_id",
        "tid_offset",
        "tl0picidx",
        "tl0picidx_offset",
        "width",
    )

    def __init__(
        self,
        size: int,
        start_of_partition: bool,
        partition_id: int,
        non_reference: bool,
        picture_id: int | None,
        picture_id_bits: int,
        picture_id_offset: int,
        tl0picidx: int | None,
        tl0picidx_offset: int,
        temporal_id: int | None,
        layer_sync: bool,
        key_index: int | None,
        tid_offset: int,
        is_keyframe: bool,
        width: int | None,
        height: int | None,
    ) -> None:
        self.size = size
        self.start_of_partition = start_of_partition
        self.partition_id = partition_id
        self.non_reference = non_reference
        self.picture_id = picture_id
        self.picture_id_bits = picture_id_bits
        self.picture_id_offset = picture_id_offset
        self.tl0picidx = tl0picidx
        self.tl0picidx_offset = tl0picidx_offset
        self.temporal_id = temporal_id
        self.layer_sync = layer_sync
        self.key_index = key_index
        self.tid_offset = tid_offset
        self.is_keyframe = is_keyframe
        self.width = width
        self.height = height

    @property
    def starts_frame(self) -> bool:
        """This packet carries the first bytes of a frame (S bit set, partition 0)."""
        return self.start_of_partition and self.partition_id == 0

    def __repr__(self) -> str:
        return (
            f"Vp8Descriptor(size={self.size}, S={self.start_of_partition}, "
            f"pid={self.partition_id}, picture_id={self.picture_id}/{self.picture_id_bits}b, "
            f"tl0picidx={self.tl0picidx}, tid={self.temporal_id}, sync={self.layer_sync}, "
            f"key={self.is_keyframe}, {self.width}x{self.height})"
        )


def parse_vp8_reference(payload: bytes | memoryview) -> Vp8Descriptor:
    """Parse the descriptor at the start of a VP8 RTP payload; :class:`ParseError` on bad input.

    The specification of `parse_vp8`, which does the same in C and calls this for anything it
    does not take (malformed descriptors, inputs other than `bytes`)."""
    size = len(payload)
    if size == 0:
        raise ParseError("VP8 payload is empty")
    b0 = payload[0]
    pos = 1
    picture_id: int | None = None
    picture_id_bits = 0
    picture_id_offset = 0
    tl0picidx: int | None = None
    tl0picidx_offset = 0
    temporal_id: int | None = None
    layer_sync = False
    key_index: int | None = None
    tid_offset = 0
    if b0 & 0x80:  # X: extension byte present
        if size < 2:
            raise ParseError("VP8 descriptor truncated: X bit set but no extension byte")
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if pos >= size:
                raise ParseError("VP8 descriptor truncated: I bit set but no picture id")
            picture_id_offset = pos
            first = payload[pos]
            if first & 0x80:  # M: 15-bit picture id
                if pos + 1 >= size:
                    raise ParseError("VP8 descriptor truncated: 15-bit picture id lacks byte 2")
                picture_id = ((first & 0x7F) << 8) | payload[pos + 1]
                picture_id_bits = 15
                pos += 2
            else:
                picture_id = first
                picture_id_bits = 7
                pos += 1
        if x & 0x40:  # L: TL0PICIDX
            if pos >= size:
                raise ParseError("VP8 descriptor truncated: L bit set but no TL0PICIDX")
            tl0picidx_offset = pos
            tl0picidx = payload[pos]
            pos += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX byte
            if pos >= size:
                raise ParseError("VP8 descriptor truncated: T/K bit set but no TID/KEYIDX byte")
            tid_offset = pos
            byte = payload[pos]
            if x & 0x20:
                temporal_id = byte >> 6
                layer_sync = bool(byte & 0x20)
            if x & 0x10:
                key_index = byte & 0x1F
            pos += 1
    if pos >= size:
        raise ParseError(f"VP8 payload has no data after its {pos}-byte descriptor")
    start_of_partition = bool(b0 & 0x10)
    partition_id = b0 & 0x07
    is_keyframe = False
    width: int | None = None
    height: int | None = None
    if start_of_partition and partition_id == 0 and not payload[pos] & 0x01:
        is_keyframe = True
        if size >= pos + 10 and payload[pos + 3 : pos + 6] == b"\x9d\x01\x2a":
            width = (payload[pos + 6] | (payload[pos + 7] << 8)) & 0x3FFF
            height = (payload[pos + 8] | (payload[pos + 9] << 8)) & 0x3FFF
    return Vp8Descriptor(
        pos,
        start_of_partition,
        partition_id,
        bool(b0 & 0x20),
        picture_id,
        picture_id_bits,
        picture_id_offset,
        tl0picidx,
        tl0picidx_offset,
        temporal_id,
        layer_sync,
        key_index,
        tid_offset,
        is_keyframe,
        width,
        height,
    )


_fast.configure_vp8(Vp8Descriptor, parse_vp8_reference)
parse_vp8 = _fast.parse_vp8


def rewrite_vp8_descriptor(
    payload: bytes, d: Vp8Descriptor, picture_id: int | None, tl0picidx: int | None
) -> bytes:
    """The descriptor bytes (``d.size`` long) with picture id / TL0PICIDX replaced.

    A value of None, or a field the descriptor does not carry, is left unchanged; the picture id
    is masked to the descriptor's width (7 or 15 bits).
    """
    head = bytearray(payload[: d.size])
    if picture_id is not None and d.picture_id_offset:
        offset = d.picture_id_offset
        if d.picture_id_bits == 15:
            head[offset] = 0x80 | ((picture_id >> 8) & 0x7F)
            head[offset + 1] = picture_id & 0xFF
        else:
            head[offset] = picture_id & 0x7F
    if tl0picidx is not None and d.tl0picidx_offset:
        head[d.tl0picidx_offset] = tl0picidx & 0xFF
    return bytes(head)


def rewrite_vp8(
    payload: bytes, d: Vp8Descriptor, picture_id: int | None, tl0picidx: int | None
) -> bytes:
    """A same-length copy of ``payload`` with picture id / TL0PICIDX patched (see
    :func:`rewrite_vp8_descriptor`)."""
    head = rewrite_vp8_descriptor(payload, d, picture_id, tl0picidx)
    return b"".join((head, memoryview(payload)[d.size :]))


def packetize_vp8(
    frame: bytes,
    *,
    picture_id: int,
    tl0picidx: int | None,
    temporal_id: int | None,
    layer_sync: bool,
    key_index: int | None = None,
    max_payload_bytes: int = 1200,
) -> list[bytes]:
    """Split one encoded VP8 frame into RTP payloads, each with a 15-bit picture id descriptor.

    The caller sets the RTP marker bit on the last payload.
    """
    if not frame:
        raise ValueError("cannot packetize an empty VP8 frame")
    if temporal_id is not None and not 0 <= temporal_id <= 3:
        raise ValueError(f"temporal_id {temporal_id} outside 0..3")
    if key_index is not None and not 0 <= key_index <= 31:
        raise ValueError(f"key_index {key_index} outside 0..31")
    x = 0x80
    tail = bytearray((0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF))
    if tl0picidx is not None:
        x |= 0x40
        tail.append(tl0picidx & 0xFF)
    if temporal_id is not None or key_index is not None:
        byte = 0
        if temporal_id is not None:
            x |= 0x20
            byte |= (temporal_id << 6) | (0x20 if layer_sync else 0)
        if key_index is not None:
            x |= 0x10
            byte |= key_index
        tail.append(byte)
    rest = bytes((x,)) + bytes(tail)
    chunk_bytes = max_payload_bytes - 1 - len(rest)
    if chunk_bytes < 1:
        raise ValueError(f"max_payload_bytes {max_payload_bytes} leaves no room for VP8 data")
    first = bytes((0x90,)) + rest  # X and S set, partition 0
    others = bytes((0x80,)) + rest
    return [
        (first if offset == 0 else others) + frame[offset : offset + chunk_bytes]
        for offset in range(0, len(frame), chunk_bytes)
    ]
