"""A small, strict SDP reader and the answer edits an SFU needs (simulcast, fmtp repair)."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MediaSection",
    "SdpError",
    "SessionDescription",
    "add_simulcast_recv",
    "drop_extmaps",
    "parse_fmtp",
    "parse_sdp",
    "restore_fmtp_params",
]

_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
_REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
_DIRECTIONS = frozenset(("sendrecv", "sendonly", "recvonly", "inactive"))


class SdpError(ValueError):
    """Malformed session description; the message names the line."""


@dataclass(frozen=True, slots=True)
class MediaSection:
    kind: str
    mid: str | None
    direction: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, tuple[str, int, int | None]]  # pt -> (name, clock rate, channels)
    fmtp: dict[int, str]
    rtcp_fb: dict[int, tuple[str, ...]]  # pt -> ("nack", "nack pli", "transport-cc", ...)
    extmap: dict[str, int]  # uri -> id
    rids: tuple[tuple[str, str], ...]  # (rid, "send" | "recv")
    simulcast: str | None  # raw a=simulcast value
    ssrcs: tuple[int, ...]
    ssrc_groups: tuple[tuple[str, tuple[int, ...]], ...]  # ("FID", (media, rtx))
    msid: str | None
    protocol: str = ""
    cnames: dict[int, str] = field(default_factory=dict)  # ssrc -> cname

    def payload_type_for(self, codec: str) -> int | None:
        """The first payload type whose rtpmap names ``codec`` (case-insensitive)."""
        wanted = codec.lower()
        for pt in self.payload_types:
            entry = self.rtpmap.get(pt)
            if entry is not None and entry[0].lower() == wanted:
                return pt
        return None

    @property
    def send_rids(self) -> tuple[str, ...]:
        return tuple(rid for rid, direction in self.rids if direction == "send")


@dataclass(frozen=True, slots=True)
class SessionDescription:
    media: tuple[MediaSection, ...]
    bundle: tuple[str, ...]

    def by_mid(self, mid: str) -> MediaSection | None:
        for section in self.media:
            if section.mid == mid:
                return section
        return None


def parse_fmtp(value: str) -> dict[str, str]:
    """``"a=1;b=2"`` -> ``{"a": "1", "b": "2"}``; items without ``=`` map to ``""``."""
    params: dict[str, str] = {}
    for item in value.split(";"):
        item = item.strip()
        if item:
            name, _, param = item.partition("=")
            params[name.strip()] = param.strip()
    return params


# ---------------------------------------------------------------------------------------- parse


def _int(text: str, low: int, high: int, what: str, lineno: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise SdpError(f"line {lineno}: {what} {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"line {lineno}: {what} {value} outside {low}..{high}")
    return value


class _Builder:
    """Mutable state for one m= section while its attribute lines are read."""

    def __init__(self, kind: str, port: int, protocol: str, pts: tuple[int, ...]) -> None:
        self.kind = kind
        self.port = port
        self.protocol = protocol
        self.payload_types = pts
        self.rtp = "RTP" in protocol
        self.mid: str | None = None
        self.direction: str | None = None
        self.rtpmap: dict[int, tuple[str, int, int | None]] = {}
        self.fmtp: dict[int, str] = {}
        self.rtcp_fb: dict[int, list[str]] = {}
        self.rtcp_fb_all: list[str] = []
        self.extmap: dict[str, int] = {}
        self.rids: list[tuple[str, str]] = []
        self.simulcast: str | None = None
        self.ssrcs: dict[int, None] = {}
        self.cnames: dict[int, str] = {}
        self.ssrc_groups: list[tuple[str, tuple[int, ...]]] = []
        self.msid: str | None = None

    def attribute(self, name: str, value: str, lineno: int) -> None:
        if name == "mid":
            if not value:
                raise SdpError(f"line {lineno}: empty a=mid")
            self.mid = value
        elif name in _DIRECTIONS:
            self.direction = name
        elif name == "rtpmap":
            self._rtpmap(value, lineno)
        elif name == "fmtp":
            pt_text, _, params = value.partition(" ")
            if self.rtp:
                self.fmtp[_int(pt_text, 0, 127, "fmtp payload type", lineno)] = params.strip()
        elif name == "rtcp-fb":
            pt_text, _, feedback = value.partition(" ")
            feedback = " ".join(feedback.split())
            if not feedback:
                raise SdpError(f"line {lineno}: a=rtcp-fb without a feedback type")
            if pt_text == "*":
                self.rtcp_fb_all.append(feedback)
            elif self.rtp:
                pt = _int(pt_text, 0, 127, "rtcp-fb payload type", lineno)
                self.rtcp_fb.setdefault(pt, []).append(feedback)
        elif name == "extmap":
            self.extmap.update((_extmap(value, lineno),))
        elif name == "rid":
            parts = value.split()
            if len(parts) < 2 or parts[1] not in ("send", "recv"):
                raise SdpError(f"line {lineno}: a=rid needs '<id> send|recv', got {value!r}")
            self.rids.append((parts[0], parts[1]))
        elif name == "simulcast":
            if not value.strip():
                raise SdpError(f"line {lineno}: empty a=simulcast")
            self.simulcast = value.strip()
        elif name == "ssrc":
            ssrc_text, _, attribute = value.partition(" ")
            ssrc = _int(ssrc_text, 0, 0xFFFFFFFF, "ssrc", lineno)
            self.ssrcs[ssrc] = None
            attr_name, _, attr_value = attribute.partition(":")
            if attr_name == "cname":
                self.cnames[ssrc] = attr_value
        elif name == "ssrc-group":
            parts = value.split()
            if not parts:
                raise SdpError(f"line {lineno}: empty a=ssrc-group")
            ssrcs = tuple(_int(s, 0, 0xFFFFFFFF, "ssrc", lineno) for s in parts[1:])
            self.ssrc_groups.append((parts[0], ssrcs))
        elif name == "msid":
            self.msid = value

    def _rtpmap(self, value: str, lineno: int) -> None:
        pt_text, _, encoding = value.partition(" ")
        pt = _int(pt_text, 0, 127, "rtpmap payload type", lineno)
        parts = encoding.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpError(f"line {lineno}: a=rtpmap needs '<pt> <name>/<clock>[/<channels>]'")
        clock = _int(parts[1], 1, 0xFFFFFFFF, "clock rate", lineno)
        channels = _int(parts[2], 1, 255, "channels", lineno) if len(parts) == 3 else None
        self.rtpmap[pt] = (parts[0], clock, channels)

    def build(self, default_direction: str, session_extmap: dict[str, int]) -> MediaSection:
        rtcp_fb = {pt: tuple(fbs) for pt, fbs in self.rtcp_fb.items()}
        for pt in self.payload_types if self.rtcp_fb_all else ():
            rtcp_fb[pt] = tuple(self.rtcp_fb_all) + rtcp_fb.get(pt, ())
        return MediaSection(
            kind=self.kind,
            mid=self.mid,
            direction=self.direction or default_direction,
            port=self.port,
            payload_types=self.payload_types,
            rtpmap=self.rtpmap,
            fmtp=self.fmtp,
            rtcp_fb=rtcp_fb,
            extmap={**session_extmap, **self.extmap},
            rids=tuple(self.rids),
            simulcast=self.simulcast,
            ssrcs=tuple(self.ssrcs),
            ssrc_groups=tuple(self.ssrc_groups),
            msid=self.msid,
            protocol=self.protocol,
            cnames=self.cnames,
        )


def _extmap(value: str, lineno: int) -> tuple[str, int]:
    parts = value.split()
    if len(parts) < 2:
        raise SdpError(f"line {lineno}: a=extmap needs '<id> <uri>', got {value!r}")
    ext_id = _int(parts[0].partition("/")[0], 1, 255, "extmap id", lineno)
    return parts[1], ext_id


def _media_line(value: str, lineno: int) -> _Builder:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"line {lineno}: m= line needs '<media> <port> <proto> <fmt>...'")
    kind, port_text, protocol = parts[0], parts[1], parts[2]
    port = _int(port_text.partition("/")[0], 0, 65535, "port", lineno)
    pts: tuple[int, ...] = ()
    if "RTP" in protocol:
        pts = tuple(_int(pt, 0, 127, "payload type", lineno) for pt in parts[3:])
    return _Builder(kind, port, protocol, pts)


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP document; :class:`SdpError` on anything malformed."""
    if not isinstance(text, str):
        raise SdpError(f"SDP must be text, got {type(text).__name__}")
    sections: list[_Builder] = []
    bundle: tuple[str, ...] = ()
    session_direction = "sendrecv"
    session_extmap: dict[str, int] = {}
    seen_version = False
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            raise SdpError(f"line {lineno}: expected '<letter>=<value>', got {line[:60]!r}")
        kind, value = line[0], line[2:]
        if not seen_version:
            if line != "v=0":
                raise SdpError(f"line {lineno}: SDP must start with v=0, got {line[:60]!r}")
            seen_version = True
            continue
        if kind == "m":
            sections.append(_media_line(value, lineno))
            continue
        if kind != "a":
            continue
        name, _, attr_value = value.partition(":")
        if sections:
            sections[-1].attribute(name, attr_value, lineno)
        elif name == "group":
            parts = attr_value.split()
            if parts and parts[0] == "BUNDLE":
                bundle = tuple(parts[1:])
        elif name in _DIRECTIONS:
            session_direction = name
        elif name == "extmap":
            session_extmap.update((_extmap(attr_value, lineno),))
    if not seen_version:
        raise SdpError("SDP is empty")
    media = tuple(s.build(session_direction, session_extmap) for s in sections)
    mids = [m.mid for m in media if m.mid is not None]
    if len(set(mids)) != len(mids):
        raise SdpError(f"duplicate a=mid values in {mids}")
    missing = [mid for mid in bundle if mid not in mids]
    if missing:
        raise SdpError(f"BUNDLE group names mids {missing} that no m= section has")
    return SessionDescription(media, bundle)


# ---------------------------------------------------------------------------------------- edit


def _lines(text: str) -> tuple[list[str], str]:
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines, eol


def _section_ranges(lines: list[str]) -> list[tuple[int, int]]:
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    return list(zip(starts, [*starts[1:], len(lines)][: len(starts)], strict=True))


def _attr_value(section: list[str], name: str) -> str | None:
    prefix = f"a={name}:"
    for line in section:
        if line.startswith(prefix):
            return line[len(prefix) :]
    return None


def _fmtp_value(section: list[str], pt: int) -> str:
    prefix = f"a=fmtp:{pt}"
    for line in section:
        if line == prefix or line.startswith(prefix + " "):
            return line[len(prefix) :].strip()
    return ""


def _rtpmaps(section: list[str]) -> dict[int, tuple[str, int, int]]:
    """pt -> (lower-case name, clock, channels or 1), skipping lines that do not parse."""
    result: dict[int, tuple[str, int, int]] = {}
    for line in section:
        if line.startswith("a=rtpmap:"):
            pt_text, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            parts = encoding.strip().split("/")
            if pt_text.isdigit() and len(parts) >= 2 and parts[1].isdigit():
                channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
                result[int(pt_text)] = (parts[0].lower(), int(parts[1]), channels)
    return result


def _rejected(section: list[str]) -> bool:
    parts = section[0].split()
    return len(parts) < 2 or parts[1] == "0"


def _add_fmtp_params(section: list[str], pt: int, params: Sequence[tuple[str, str]]) -> None:
    """Add ``name=value`` params to ``pt``'s fmtp line (replacing same-named ones), creating the
    line after the rtpmap when missing."""
    prefix = f"a=fmtp:{pt} "
    for index, line in enumerate(section):
        if line.startswith(prefix) or line == prefix.rstrip():
            current = parse_fmtp(line[len(prefix) :] if line.startswith(prefix) else "")
            lowered = {name.lower(): name for name in current}
            for name, value in params:
                current.pop(lowered.get(name.lower(), name), None)
                current[name] = value
            body = ";".join(f"{k}={v}" if v else k for k, v in current.items())
            section[index] = prefix + body
            return
    body = ";".join(f"{k}={v}" if v else k for k, v in params)
    rtpmap = f"a=rtpmap:{pt} "
    at = next((i + 1 for i, line in enumerate(section) if line.startswith(rtpmap)), len(section))
    section.insert(at, prefix + body)


def _add_simulcast(section: list[str], offer: MediaSection) -> None:
    rids = offer.send_rids
    if not rids or any(line.startswith("a=simulcast:") for line in section):
        return
    used: dict[int, str] = {}
    for line in section:
        if line.startswith("a=extmap:"):
            parts = line[len("a=extmap:") :].split()
            if len(parts) >= 2 and parts[0].partition("/")[0].isdigit():
                used[int(parts[0].partition("/")[0])] = parts[1]
    extmaps = [
        f"a=extmap:{offer.extmap[uri]} {uri}"
        for uri in (_RID_URI, _REPAIRED_RID_URI)
        if uri in offer.extmap and uri not in used.values() and offer.extmap[uri] not in used
    ]
    extmap_lines = [i for i, line in enumerate(section) if line.startswith("a=extmap:")]
    at = extmap_lines[-1] + 1 if extmap_lines else len(section)
    section[at:at] = extmaps
    section.extend(f"a=rid:{rid} recv" for rid in rids)
    section.append(f"a=simulcast:recv {';'.join(rids)}")


def add_simulcast_recv(
    answer: str, offer: SessionDescription, start_bitrate_kbps: int | None
) -> str:
    """Accept the offer's simulcast in an answer's video sections.

    For each video section whose offer section (matched by mid) has send rids: add the rid and
    repaired-rid extmaps if missing (Chromium rejects simulcast without them), ``a=rid:<r> recv``
    per rid and ``a=simulcast:recv r1;r2;r3`` in the offer's order. When ``start_bitrate_kbps``
    is given, every non-rejected video section's VP8 fmtp gets ``x-google-start-bitrate``.
    Idempotent; keeps the answer's line endings.
    """
    lines, eol = _lines(answer)
    for start, end in reversed(_section_ranges(lines)):
        section = lines[start:end]
        if not section[0].startswith("m=video ") or _rejected(section):
            continue
        mid = _attr_value(section, "mid")
        offered = offer.by_mid(mid) if mid is not None else None
        if offered is not None:
            _add_simulcast(section, offered)
        if start_bitrate_kbps is not None:
            for pt, (name, _, _) in _rtpmaps(section).items():
                if name == "vp8":
                    param = ("x-google-start-bitrate", str(start_bitrate_kbps))
                    _add_fmtp_params(section, pt, [param])
        lines[start:end] = section
    return eol.join(lines) + eol


def drop_extmaps(text: str, uris: Collection[str]) -> str:
    """The SDP without the ``a=extmap`` lines (session or media level) of ``uris``: those
    extensions are not negotiated. Keeps the line endings."""
    lines, eol = _lines(text)
    kept = [line for line in lines if not _extmap_of(line, uris)]
    return eol.join(kept) + eol


def _extmap_of(line: str, uris: Collection[str]) -> bool:
    if not line.startswith("a=extmap:"):
        return False
    parts = line[len("a=extmap:") :].split()
    return len(parts) >= 2 and parts[1] in uris


def restore_fmtp_params(answer: str, offer: SessionDescription, names: Sequence[str]) -> str:
    """Put back fmtp params (e.g. Opus ``useinbandfec``) that the offer had and the answer
    dropped, matching codecs by name, clock rate and channels; keeps the line endings."""
    lines, eol = _lines(answer)
    wanted_names = {name.lower() for name in names}
    for start, end in reversed(_section_ranges(lines)):
        section = lines[start:end]
        mid = _attr_value(section, "mid")
        offered = offer.by_mid(mid) if mid is not None else None
        if offered is None or _rejected(section):
            continue
        offer_codecs = {
            pt: (name.lower(), clock, channels or 1)
            for pt, (name, clock, channels) in offered.rtpmap.items()
        }
        for pt, codec in _rtpmaps(section).items():
            matches = [opt for opt, c in offer_codecs.items() if c == codec]
            if not matches:
                continue
            offer_pt = pt if pt in matches else matches[0]
            offer_params = parse_fmtp(offered.fmtp.get(offer_pt, ""))
            present = {name.lower() for name in parse_fmtp(_fmtp_value(section, pt))}
            missing = [
                (name, value)
                for name, value in offer_params.items()
                if name.lower() in wanted_names and name.lower() not in present
            ]
            if missing:
                _add_fmtp_params(section, pt, missing)
        lines[start:end] = section
    return eol.join(lines) + eol


def announce_address(text: str, address: str) -> str:
    """Each host candidate also announced at `address` (a 1:1 NAT's public side), same port, as a
    server-reflexive candidate of lower priority."""
    lines, newline = _lines(text)
    out: list[str] = []
    for line in lines:
        out.append(line)
        fields = line.split()
        if not line.startswith("a=candidate:") or len(fields) < 8 or fields[7] != "host":
            continue
        foundation, component, transport, priority, host, port = fields[:6]
        try:
            lowered = int(priority) // 2
        except ValueError:
            continue
        out.append(
            f"{foundation}n {component} {transport} {lowered} {address} {port} "
            f"typ srflx raddr {host} rport {port}"
        )
    return newline.join(out) + newline
