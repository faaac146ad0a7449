"""Publish offers written as a browser would: aiortc's offer rewritten to announce simulcast (rids,
or a legacy SIM group), and offers of a chosen size, the largest the SDP limits let through (for
measuring what one offer costs the server) and far larger ones (for hostile tests)."""

from __future__ import annotations

from confsfu.loadgen.packets import SIMULCAST_RIDS
from confsfu.signalling.sdp_limits import SdpLimits

_EXTENSIONS = (
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "urn:ietf:params:rtp-hdrext:toffset",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
)
_FINGERPRINT = ":".join(f"{b:02X}" for b in range(32))
_FEEDBACK = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")


def publish_offer(sections: int, limits: SdpLimits | None = None, *, bundle: bool = False) -> str:
    """A sendonly video offer of `sections` m-lines, each filled up to `limits` (codecs, header
    extensions, candidates, SSRC lines, rids, lines: cut to the lines allowed in all, fewer codecs
    and candidates first); without limits, each section is small
    (under 330 characters; bundled only when asked: the BUNDLE line names every m-line)."""
    mids = " ".join(str(i) for i in range(sections))
    out = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=msid-semantic: WMS s",
    ]
    if limits is not None or bundle:
        out.insert(4, f"a=group:BUNDLE {mids}")
    if limits is None:
        # transport once, at session level, so that hundreds of sections fit in a message
        out += _transport(-1)[2:6]
    per_section = 0
    if limits is not None:
        per_section = min(limits.lines_per_section, (limits.lines - len(out) - 1) // sections)
    for i in range(sections):
        out += _full_section(i, limits, per_section) if limits else _small_section(i)
    return "\r\n".join(out) + "\r\n"


def _transport(mid: int) -> list[str]:
    return [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Ab3d",
        "a=ice-pwd:0123456789abcdefghijklmn",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        "a=setup:actpass",
        f"a=mid:{mid}",
        "a=sendonly",
        "a=rtcp-mux",
    ]


def _small_section(mid: int) -> list[str]:
    return [
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        f"a=mid:{mid}",
        "a=sendonly",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 goog-remb",
        f"a=extmap:1 {_EXTENSIONS[0]}",
        f"a=extmap:4 {_EXTENSIONS[3]}",
        f"a=msid:s t{mid}",
        f"a=ssrc:{mid + 1} cname:c",
    ]


def _full_section(mid: int, limits: SdpLimits, line_count: int) -> list[str]:
    ext_count = min(limits.extensions_per_section, len(_EXTENSIONS))
    fixed = 1 + 9 + ext_count + 1 + limits.rids_per_section + 1
    # VP8 and its RTX (dynamic types), three lines a pair, half the lines left at most
    pairs = min(limits.codecs_per_section // 2, 31, max(1, (line_count - fixed) // 6))
    pts = [(96 + 2 * k) % 128 for k in range(pairs)]
    pts = [pt if pt >= 96 else 35 + pt for pt in pts]
    rtx = [pt + 1 for pt in pts]
    fmt = " ".join(f"{p} {r}" for p, r in zip(pts, rtx, strict=True))
    lines = [f"m=video 9 UDP/TLS/RTP/SAVPF {fmt}", *_transport(mid)]
    lines += [f"a=extmap:{k + 1} {uri}" for k, uri in enumerate(_EXTENSIONS[:ext_count])]
    lines.append(f"a=msid:s t{mid}")
    rids = "qhf"[: limits.rids_per_section]
    lines += [f"a=rid:{r} send" for r in rids]
    lines.append("a=simulcast:send " + ";".join(rids))
    for p, r in zip(pts, rtx, strict=True):
        lines += [f"a=rtpmap:{p} VP8/90000", f"a=rtpmap:{r} rtx/90000", f"a=fmtp:{r} apt={p}"]
    ssrcs = limits.ssrc_lines_per_section
    lines += [f"a=ssrc:{1000 * mid + k} cname:c{mid}" for k in range(ssrcs)]
    cands = limits.candidates_per_section
    lines += [
        f"a=candidate:{k} 1 udp {2122260223 - k} 127.0.0.1 {40000 + k} typ host"
        for k in range(cands)
    ]
    fb = (f"a=rtcp-fb:{pts[k % len(pts)]} {_FEEDBACK[k % 5]}" for k in range(10_000))
    while len(lines) < line_count:
        lines.append(next(fb))
    return lines[:line_count]


def _reannounce_video(offer: str, lines: list[str]) -> str:
    """The offer with the video m-line's SSRC lines replaced by `lines` (after its a=mid)."""
    out: list[str] = []
    in_video = False
    for line in offer.split("\r\n"):
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        if in_video and (line.startswith("a=ssrc:") or line.startswith("a=ssrc-group:")):
            continue
        out.append(line)
        if in_video and line.startswith("a=mid:"):
            out += lines
    return "\r\n".join(out)


def simulcast_offer(offer: str) -> str:
    """Announce three rid layers on the video m-line instead of SSRCs, like Chromium does."""
    rids = [f"a=rid:{rid} send" for rid in SIMULCAST_RIDS]
    return _reannounce_video(offer, [*rids, "a=simulcast:send " + ";".join(SIMULCAST_RIDS)])


def sim_group_offer(offer: str, ssrcs: list[int]) -> str:
    """Announce simulcast layers as legacy Chrome did: their SSRCs in an a=ssrc-group:SIM on the
    video m-line, lowest layer first, and no rids."""
    group = "a=ssrc-group:SIM " + " ".join(map(str, ssrcs))
    return _reannounce_video(offer, [group, *(f"a=ssrc:{s} cname:loopback" for s in ssrcs)])
