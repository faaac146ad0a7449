"""Which published source (and simulcast layer) an incoming RTP packet belongs to.

Browsers announce plain streams with a=ssrc lines, but simulcast layers only by rid: the mid, rid
and repaired-rid header extensions ride on the first packets of each SSRC, so the mapping is
learned from those and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confsfu.ids import MAX_SPATIAL_LAYERS, Kind, LayerKey, SourceId
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import ExtensionIds, parse_sdes_string
from confsfu.rtp.packet import RtpPacket


@dataclass(frozen=True, slots=True)
class PublishedTrack:
    """One m-line of a publisher's offer, as far as routing needs it."""

    mid: str
    kind: Kind
    source: SourceId
    media_ssrcs: tuple[int, ...] = ()
    rtx_ssrcs: dict[int, int] = field(default_factory=dict)  # rtx ssrc -> media ssrc
    media_payload_types: frozenset[int] = frozenset()
    rtx_payload_types: dict[int, int] = field(default_factory=dict)  # rtx pt -> apt
    rids: tuple[str, ...] = ()  # simulcast layers, lowest first


@dataclass(slots=True)
class PublishedStream:
    """One incoming SSRC, resolved."""

    ssrc: int
    section: PublishedTrack
    layer: int  # simulcast spatial layer (0 when not simulcast)
    repairs: int | None = None  # for an RTX stream: the media SSRC it repairs

    @property
    def key(self) -> LayerKey:
        """What a slot's forwarder is told to carry."""
        return self.section.source.layer(self.layer)


class StreamRouter:
    """Resolves packets of one publish PeerConnection to streams, learning SSRCs as they come."""

    __slots__ = ("_by_mid", "_ext", "_media_by_rid", "sections", "streams", "unroutable")

    def __init__(self, sections: list[PublishedTrack], ext: ExtensionIds) -> None:
        self._ext = ext
        self.sections = tuple(sections)
        self._by_mid = {s.mid: s for s in sections}
        self._media_by_rid: dict[tuple[str, str], int] = {}
        self.streams: dict[int, PublishedStream] = {}
        self.unroutable = 0
        for s in sections:
            ssrcs = s.media_ssrcs[:MAX_SPATIAL_LAYERS] if s.rids else s.media_ssrcs
            for i, ssrc in enumerate(ssrcs):
                self.streams[ssrc] = PublishedStream(ssrc, s, layer=i if s.rids else 0)
            for rtx, media in s.rtx_ssrcs.items():
                layer = self.streams[media].layer if media in self.streams else 0
                self.streams[rtx] = PublishedStream(rtx, s, layer=layer, repairs=media)

    def route(self, pkt: RtpPacket) -> PublishedStream | None:
        stream = self.streams.get(pkt.ssrc)
        if stream is None:
            stream = self._learn(pkt)
            if stream is None:
                self.unroutable += 1
        return stream

    def _learn(self, pkt: RtpPacket) -> PublishedStream | None:
        ext = self._ext
        section: PublishedTrack | None = None
        if ext.mid is not None and ext.mid in pkt.extensions:
            section = self._by_mid.get(_sdes(pkt.extensions[ext.mid]) or "")
        if section is None:
            section = self._by_payload_type(pkt.payload_type)
        if section is None:
            return None
        is_rtx = pkt.payload_type in section.rtx_payload_types
        rid: str | None = None
        rid_id = ext.repaired_rid if is_rtx else ext.rid
        if rid_id is not None and rid_id in pkt.extensions:
            rid = _sdes(pkt.extensions[rid_id])
        if section.rids and rid is None:
            return None  # a simulcast layer must name its rid before it can be placed
        layer = section.rids.index(rid) if rid is not None and rid in section.rids else 0
        if layer >= MAX_SPATIAL_LAYERS:
            return None  # a fourth simulcast layer is not forwarded
        if is_rtx:
            media = self._media_by_rid.get((section.mid, rid or ""))
            if media is None:
                return None
            stream = PublishedStream(pkt.ssrc, section, layer=layer, repairs=media)
        else:
            stream = PublishedStream(pkt.ssrc, section, layer=layer)
            self._media_by_rid[(section.mid, rid or "")] = pkt.ssrc
        self.streams[pkt.ssrc] = stream
        return stream

    def _by_payload_type(self, payload_type: int) -> PublishedTrack | None:
        matches = [
            s
            for s in self._by_mid.values()
            if payload_type in s.media_payload_types or payload_type in s.rtx_payload_types
        ]
        return matches[0] if len(matches) == 1 else None

    def media_ssrcs(self, key: LayerKey) -> list[int]:
        """The SSRCs carrying one layer of a source."""
        return [s.ssrc for s in self.streams.values() if s.key is key and s.repairs is None]


def _sdes(value: bytes) -> str | None:
    """A mid/rid extension value, or None when the publisher sent a malformed one."""
    try:
        return parse_sdes_string(value)
    except ParseError:
        return None
