"""SourcePacket packets for forwarder tests, unwrapped per stream as Reception does it."""

from __future__ import annotations

from confsfu.codecs.vp8 import Vp8Descriptor
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.rtp.packet import RtpPacket
from confsfu.rtp.seq import Unwrapper


class Arrivals:
    """One sequence and picture-id unwrapper per (key, SSRC): what the server keeps per stream."""

    def __init__(self) -> None:
        self._seqs: dict[tuple[str, int], Unwrapper] = {}
        self._pictures: dict[tuple[str, int], Unwrapper] = {}

    def __call__(self, key: str, pkt: RtpPacket, vp8: Vp8Descriptor | None = None) -> SourcePacket:
        stream = (key, pkt.ssrc)
        ext_seq = self._seqs.setdefault(stream, Unwrapper(16)).unwrap(pkt.sequence_number)
        picture = None
        if vp8 is not None and vp8.picture_id is not None:
            picture = self._pictures.setdefault(stream, Unwrapper(15)).unwrap(vp8.picture_id)
        return SourcePacket(key, pkt, ext_seq, vp8, picture)
