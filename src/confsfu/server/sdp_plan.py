"""What a negotiation settled: a publisher's streams to route, a subscriber's slot numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from confsfu.forwarding.published import PublishedTrack
from confsfu.ids import MAX_SPATIAL_LAYERS, Kind, SourceId
from confsfu.rtp.extensions import ABS_SEND_TIME, TRANSPORT_CC, ExtensionIds
from confsfu.sdp import (
    MediaSection,
    SdpError,
    add_simulcast_recv,
    drop_extmaps,
    parse_sdp,
    restore_fmtp_params,
)

_NOT_MEDIA = {"rtx", "red", "ulpfec", "flexfec-03"}
_KEPT_FMTP = ("useinbandfec",)
# A libwebrtc sender (Chromium, Firefox, Safari) pads only a stream that carries one of these
# (send-time or transport-wide sequence): padding feeds a bandwidth estimate made from them.
# The server makes none for a publisher (its REMB is a fixed cap), so a publish answer leaves
# them out. With them, Firefox topped an undershooting encoder up to its simulcast "pad up to"
# rate: 1.2 Mbit/s of RTX copies of old lowest-layer packets, all dropped as duplicates.
PADDING_EXTENSIONS = (
    ABS_SEND_TIME,
    TRANSPORT_CC,
    "http://www.webrtc.org/experiments/rtp-hdrext/transport-wide-cc-02",
    "urn:ietf:params:rtp-hdrext:toffset",
)


@dataclass(frozen=True, slots=True)
class PublishPlan:
    answer_sdp: str
    sections: list[PublishedTrack]
    ext: ExtensionIds


@dataclass(frozen=True, slots=True)
class NegotiatedSlot:
    payload_type: int
    rtx_payload_type: int | None
    ext: ExtensionIds


@dataclass(frozen=True, slots=True)
class SubscribePlan:
    by_mid: dict[str, NegotiatedSlot]


def publish_plan(
    pid: str,
    offer_sdp: str,
    answer_sdp: str,
    start_bitrate_kbps: int,
    *,
    purpose: Literal["camera", "screen"] = "camera",
) -> PublishPlan:
    """The answer as browsers need it (simulcast lines, FEC, no padding) and the streams it
    lets in."""
    offer = parse_sdp(offer_sdp)
    answer_sdp = drop_extmaps(answer_sdp, PADDING_EXTENSIONS)
    answer_sdp = add_simulcast_recv(answer_sdp, offer, start_bitrate_kbps)
    answer_sdp = restore_fmtp_params(answer_sdp, offer, _KEPT_FMTP)
    answer = parse_sdp(answer_sdp)
    offered = {m.mid: m for m in offer.media}
    sections: list[PublishedTrack] = []
    uris: dict[str, int] = {}
    seen: dict[str, int] = {}
    for m in answer.media:
        if m.kind not in ("audio", "video") or m.port == 0 or m.mid is None:
            continue
        kind: Kind = "audio" if m.kind == "audio" else "video"
        remote = offered.get(m.mid)
        if remote is None or remote.direction not in ("sendonly", "sendrecv"):
            continue
        uris.update(m.extmap)
        seen[kind] = seen.get(kind, 0) + 1
        media_pts, rtx_pts = _payload_types(m)
        media_ssrcs, rtx_ssrcs, layered = _ssrcs(remote)
        sections.append(
            PublishedTrack(
                mid=m.mid,
                kind=kind,
                source=SourceId(pid, purpose, kind, seen[kind] - 1),
                media_ssrcs=() if remote.rids else media_ssrcs,
                rtx_ssrcs={} if remote.rids else rtx_ssrcs,
                layered_ssrcs=layered and not remote.rids,
                media_payload_types=frozenset(media_pts),
                rtx_payload_types=rtx_pts,
                rids=tuple(rid for rid, direction in remote.rids if direction == "send"),
            )
        )
    if not sections:
        raise SdpError("the offer publishes no audio or video")
    return PublishPlan(answer_sdp, sections, ExtensionIds.from_uris(uris))


def subscribe_plan(offer_sdp: str, answer_sdp: str) -> SubscribePlan:
    """Per slot (mid): the payload types and header extensions the browser accepted."""
    offer = parse_sdp(offer_sdp)
    answer = parse_sdp(answer_sdp)
    answered = {m.mid: m for m in answer.media}
    by_mid: dict[str, NegotiatedSlot] = {}
    for m in offer.media:
        if m.mid is None:
            continue
        a = answered.get(m.mid)
        if a is None or a.port == 0:
            raise SdpError(f"the answer rejects or lacks slot {m.mid}")
        media_pts, rtx_pts = _payload_types(a)
        if not media_pts:
            raise SdpError(f"the answer accepts no codec for slot {m.mid}")
        pt = media_pts[0]
        rtx = next((r for r, apt in rtx_pts.items() if apt == pt), None)
        by_mid[m.mid] = NegotiatedSlot(pt, rtx, ExtensionIds.from_uris(a.extmap))
    return SubscribePlan(by_mid)


def _payload_types(m: MediaSection) -> tuple[list[int], dict[int, int]]:
    media: list[int] = []
    rtx: dict[int, int] = {}
    for pt in m.payload_types:
        name = m.rtpmap.get(pt, ("", 0, None))[0].lower()
        if name == "rtx":
            apt = _fmtp_value(m.fmtp.get(pt, ""), "apt")
            if apt is not None:
                rtx[pt] = apt
        elif name and name not in _NOT_MEDIA:
            media.append(pt)
    return media, rtx


def _fmtp_value(fmtp: str, key: str) -> int | None:
    for part in fmtp.split(";"):
        k, _, v = part.strip().partition("=")
        if k == key and v.isdigit():
            return int(v)
    return None


def _ssrcs(m: MediaSection) -> tuple[tuple[int, ...], dict[int, int], bool]:
    """Media SSRCs (a SIM group's alone, lowest layer first), RTX SSRC -> media SSRC, and
    whether the media SSRCs are simulcast layers."""
    rtx: dict[int, int] = {}
    sim: tuple[int, ...] = ()
    for semantics, group in m.ssrc_groups:
        if semantics == "FID" and len(group) == 2:
            rtx[group[1]] = group[0]
        elif semantics == "SIM":
            if sim:
                raise SdpError(f"m-line {m.mid} has more than one a=ssrc-group:SIM")
            sim = tuple(dict.fromkeys(group))
    if len(sim) > MAX_SPATIAL_LAYERS:
        raise SdpError(f"a=ssrc-group:SIM names {len(sim)} SSRCs; at most {MAX_SPATIAL_LAYERS}")
    if sim and any(s in rtx for s in sim):
        raise SdpError("an SSRC of the a=ssrc-group:SIM is also an RTX SSRC")
    if sim:
        return sim, {r: p for r, p in rtx.items() if p in sim}, True
    media = tuple(s for s in dict.fromkeys(m.ssrcs) if s not in rtx)
    return media, rtx, False


def with_transport_cc(offer_sdp: str, ext_id: int | None = None) -> tuple[str, int]:
    """The SDP with transport-cc on every m-section (the transport-wide-cc header extension
    under one id, `ext_id` or one free in every section, and `transport-cc` feedback for every
    codec but RTX), and that id. A browser offered it sends transport-wide feedback on all it
    receives; an answer names the offer's id."""
    lines = offer_sdp.split("\r\n")
    used = {
        int(line[9:].split(" ", 1)[0].split("/", 1)[0])
        for line in lines
        if line.startswith("a=extmap:") and line[9:].split(" ", 1)[0].split("/", 1)[0].isdigit()
    }
    if ext_id is None:
        ext_id = next((i for i in range(1, 15) if i not in used), None)
    if ext_id is None:
        raise SdpError("no free header extension id for transport-cc")
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        if not section or not section[0].startswith("m="):
            out.extend(section)
            return
        rtx = {
            line[9:].split(" ", 1)[0]
            for line in section
            if line.startswith("a=rtpmap:") and " rtx/" in line.lower()
        }
        pts = [pt for pt in section[0].split(" ")[3:] if pt not in rtx]
        at = max((i for i, line in enumerate(section) if line.startswith("a=extmap:")), default=0)
        extra_ext = [f"a=extmap:{ext_id} {TRANSPORT_CC}"]
        section[at + 1 : at + 1] = extra_ext
        fb_at = max(
            (i for i, line in enumerate(section) if line.startswith(("a=rtcp-fb:", "a=rtpmap:"))),
            default=len(section) - 1,
        )
        section[fb_at + 1 : fb_at + 1] = [f"a=rtcp-fb:{pt} transport-cc" for pt in pts]
        out.extend(section)

    for line in lines:
        if line.startswith("m="):
            flush()
            section = [line]
        else:
            section.append(line)
    trailing = section[-1:] if section and section[-1] == "" else []
    if trailing:
        section.pop()
    flush()
    out.extend(trailing)
    return "\r\n".join(out), ext_id
