"""Which published source (and simulcast layer) an incoming RTP packet belongs to.

Browsers announce plain streams with a=ssrc lines (a legacy a=ssrc-group:SIM lists its layers'
SSRCs, lowest first), but rid simulcast layers only by rid: the mid, rid and repaired-rid header
extensions ride on the first packets of each SSRC, so the mapping is learned from those and kept.

A layer belongs to one SSRC at a time (two would interleave two numberings on one slot): another
SSRC for it is taken only once the one it has fell silent (a publisher restarting its encoder),
and replaces it. A publisher cannot make the router grow: it keeps at most a few SSRCs a layer.
"""

from __future__ import annotations

from collections.abc import Callable
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
    layered_ssrcs: bool = False  # media_ssrcs are simulcast layers, lowest first (ssrc-group SIM)


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


RESTART_SILENCE_MS = 1000  # a layer's SSRC silent this long may be replaced by another
STREAMS_PER_SECTION = 4 * MAX_SPATIAL_LAYERS  # media and RTX per layer, and their replacements


def never_heard(ssrc: int) -> int | None:
    return None


class StreamRouter:
    """Resolves packets of one publish PeerConnection to streams, learning SSRCs as they come.

    `heard(ssrc)` tells when a stream's last packet arrived (None: never), for the rule that
    lets a new SSRC replace a silent one; the SSRCs replaced since the last `take_replaced`
    are the caller's to forget."""

    __slots__ = (
        "_by_mid",
        "_ext",
        "_media_by_rid",
        "_replaced",
        "heard",
        "max_streams",
        "refused",
        "sections",
        "streams",
        "unroutable",
    )

    def __init__(
        self,
        sections: list[PublishedTrack],
        ext: ExtensionIds,
        heard: Callable[[int], int | None] = never_heard,
    ) -> None:
        self._ext = ext
        self.heard = heard
        self.sections = tuple(sections)
        self._by_mid = {s.mid: s for s in sections}
        self._media_by_rid: dict[tuple[str, str], int] = {}
        self._replaced: list[int] = []
        self.streams: dict[int, PublishedStream] = {}
        self.max_streams = STREAMS_PER_SECTION * len(sections)
        self.unroutable = 0
        self.refused = 0  # new SSRCs refused: their layer's SSRC is live, or too many
        for s in sections:
            layered = bool(s.rids) or s.layered_ssrcs
            ssrcs = s.media_ssrcs[:MAX_SPATIAL_LAYERS] if layered else s.media_ssrcs
            for i, ssrc in enumerate(ssrcs):
                self.streams[ssrc] = PublishedStream(ssrc, s, layer=i if layered else 0)
            for rtx, media in s.rtx_ssrcs.items():
                layer = self.streams[media].layer if media in self.streams else 0
                self.streams[rtx] = PublishedStream(rtx, s, layer=layer, repairs=media)

    def route(self, pkt: RtpPacket, now_ms: int = 0) -> PublishedStream | None:
        stream = self.streams.get(pkt.ssrc)
        if stream is None:
            stream = self._learn(pkt, now_ms)
            if stream is None:
                self.unroutable += 1
        return stream

    def take_replaced(self) -> list[int]:
        """The SSRCs forgotten since the last call (replaced by another of their layer)."""
        replaced, self._replaced = self._replaced, []
        return replaced

    def _learn(self, pkt: RtpPacket, now_ms: int) -> PublishedStream | None:
        if len(self.streams) >= self.max_streams:
            self.refused += 1
            return None
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
        if section.rids and rid not in section.rids:
            # A simulcast layer must name its rid before it can be placed, and one the offer
            # announced: an unannounced rid is no layer (it would have taken the lowest's).
            return None
        layer = section.rids.index(rid) if section.rids and rid is not None else 0
        if layer >= MAX_SPATIAL_LAYERS:
            return None  # a fourth simulcast layer is not forwarded
        if is_rtx:
            media = self._media_by_rid.get((section.mid, rid or ""))
            if media is None:
                return None
            for old in [s.ssrc for s in self.streams.values() if s.repairs == media]:
                self._forget(old)  # one RTX stream a layer: the newest
            stream = PublishedStream(pkt.ssrc, section, layer=layer, repairs=media)
        else:
            key = section.source.layer(layer)
            holder = next((s.ssrc for s in self.streams.values() if s.key is key), None)
            if holder is not None:
                last = self.heard(holder)
                if last is not None and now_ms - last < RESTART_SILENCE_MS:
                    self.refused += 1
                    return None  # the layer's SSRC is live: a second one is refused
                self._forget(holder)
            stream = PublishedStream(pkt.ssrc, section, layer=layer)
            self._media_by_rid[(section.mid, rid or "")] = pkt.ssrc
        self.streams[pkt.ssrc] = stream
        return stream

    def _forget(self, ssrc: int) -> None:
        """Forget a stream and the RTX streams repairing it."""
        for s in [s for s in self.streams.values() if s.ssrc == ssrc or s.repairs == ssrc]:
            del self.streams[s.ssrc]
            self._replaced.append(s.ssrc)

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
