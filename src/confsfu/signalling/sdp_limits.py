"""A cheap first look at a participant's SDP: one pass over the text that refuses an offer or
answer beyond the limits before aiortc or the SDP model parse it (500 m-lines once held the event
loop for seconds). Counts only; what the lines mean is the parsers' business."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True, slots=True)
class SdpLimits:
    """How much one SDP may hold. Section 0 is the session part, before the first m-line."""

    sections: int = 4  # m-lines: a camera offer has 2 (about 1.5 ms each in aiortc)
    rids_per_section: int = 3  # a=rid lines (simulcast layers)
    codecs_per_section: int = 48  # payload types on the m-line, a=rtpmap lines
    extensions_per_section: int = 20  # a=extmap lines
    candidates_per_section: int = 32  # a=candidate lines
    ssrc_lines_per_section: int = 32  # a=ssrc lines
    ssrc_groups_per_section: int = 8  # a=ssrc-group lines
    ssrcs_per_group: int = 3  # SSRCs named by one a=ssrc-group (SIM: one per layer)
    lines_per_section: int = 300
    lines: int = 600  # in the whole SDP: what parsing it costs grows with this (~13 us a line)
    line_chars: int = 1024


class SdpLimitError(ValueError):
    """The SDP exceeds a limit: which one (`limit`, a `SdpLimits` field), by what `value`."""

    def __init__(self, limit: str, value: int, maximum: int, where: str) -> None:
        # The scan stops at the first count over a limit: `value` is a lower bound.
        super().__init__(
            f"{where} has at least {value} {_WHAT[limit]}; at most {maximum} (sdp.{limit})"
        )
        self.limit = limit
        self.value = value
        self.maximum = maximum


_WHAT = {
    "sections": "m-lines",
    "rids_per_section": "a=rid lines",
    "codecs_per_section": "codecs",
    "extensions_per_section": "a=extmap lines",
    "candidates_per_section": "a=candidate lines",
    "ssrc_lines_per_section": "a=ssrc lines",
    "ssrc_groups_per_section": "a=ssrc-group lines",
    "ssrcs_per_group": "SSRCs in one a=ssrc-group",
    "lines_per_section": "lines",
    "lines": "lines",
    "line_chars": "characters in one line",
}

# Line prefix -> the per-section limit it counts against.
_COUNTED = (
    ("a=rid:", "rids_per_section"),
    ("a=rtpmap:", "codecs_per_section"),
    ("a=extmap:", "extensions_per_section"),
    ("a=candidate:", "candidates_per_section"),
    ("a=ssrc:", "ssrc_lines_per_section"),
    ("a=ssrc-group:", "ssrc_groups_per_section"),
)


def check_sdp(text: str, limits: SdpLimits) -> None:
    """Raise `SdpLimitError` naming the first limit `text` exceeds; return when within all.

    Lines are split as broadly as Python's `splitlines` (a superset of what any parser here
    splits on), so no separator hides an m-line from the count."""
    section = 0
    counts: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if n > limits.lines:
            raise SdpLimitError("lines", n, limits.lines, "the SDP")
        if len(line) > limits.line_chars:
            _refuse(limits, "line_chars", len(line), section)
        if line.startswith("m="):
            section += 1
            if section > limits.sections:
                raise SdpLimitError("sections", section, limits.sections, "the SDP")
            counts = {}
            formats = len(line.split()) - 3  # m=<kind> <port> <proto> <fmt>...
            if formats > limits.codecs_per_section:
                _refuse(limits, "codecs_per_section", formats, section)
        _count(counts, "lines_per_section", limits, section)
        if not line.startswith("a="):
            continue
        for prefix, limit in _COUNTED:
            if line.startswith(prefix):
                _count(counts, limit, limits, section)
                break
        if line.startswith("a=ssrc-group:"):
            named = len(line.split()) - 1  # a=ssrc-group:<semantics> <ssrc>...
            if named > limits.ssrcs_per_group:
                _refuse(limits, "ssrcs_per_group", named, section)


def _count(counts: dict[str, int], limit: str, limits: SdpLimits, section: int) -> None:
    n = counts[limit] = counts.get(limit, 0) + 1
    if n > getattr(limits, limit):
        _refuse(limits, limit, n, section)


def _refuse(limits: SdpLimits, limit: str, value: int, section: int) -> NoReturn:
    where = f"m-line {section}" if section else "the session part"
    raise SdpLimitError(limit, value, getattr(limits, limit), where)
