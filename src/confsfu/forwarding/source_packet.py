"""One incoming packet as every slot's forwarder reads it: parsed and unwrapped once."""

from __future__ import annotations

from confsfu.codecs.vp8 import Vp8Descriptor
from confsfu.ids import LayerKey
from confsfu.rtp.packet import RtpPacket


class SourcePacket:
    """The facts of one publisher packet a forwarder decides on.

    `ext_seq` and `ext_picture` are the stream's sequence number and VP8 picture id unwrapped
    onto unbounded ints by the stream (one unwrap per packet, however many slots carry it).
    """

    __slots__ = (
        "ext_picture",
        "ext_seq",
        "key",
        "keyframe",
        "layer_sync",
        "marker",
        "payload",
        "picture_id",
        "seq",
        "starts_frame",
        "temporal_id",
        "timestamp",
        "tl0picidx",
        "vp8",
    )

    def __init__(
        self,
        key: LayerKey,
        pkt: RtpPacket,
        ext_seq: int,
        vp8: Vp8Descriptor | None = None,
        ext_picture: int | None = None,
    ) -> None:
        self.key = key
        self.seq = pkt.sequence_number
        self.ext_seq = ext_seq
        self.timestamp = pkt.timestamp
        self.marker = pkt.marker
        self.payload = pkt.payload
        self.vp8 = vp8
        if vp8 is None:
            self.keyframe = self.starts_frame = self.layer_sync = False
            self.temporal_id = self.picture_id = self.tl0picidx = None
            self.ext_picture = None
        else:
            self.keyframe = vp8.is_keyframe
            self.starts_frame = vp8.starts_frame
            self.layer_sync = vp8.layer_sync
            self.temporal_id = vp8.temporal_id
            self.picture_id = vp8.picture_id
            self.tl0picidx = vp8.tl0picidx
            self.ext_picture = ext_picture if vp8.picture_id is not None else None

    def __repr__(self) -> str:
        return (
            f"SourcePacket({self.key}, seq={self.seq}/{self.ext_seq}, ts={self.timestamp}, "
            f"key={self.keyframe}, tid={self.temporal_id}, pic={self.picture_id})"
        )
