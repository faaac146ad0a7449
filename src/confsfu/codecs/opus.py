"""Opus packets (RFC 6716) read without decoding: how many frames and how much audio one holds."""

from __future__ import annotations

MAX_QUANTA = 48  # RFC 6716 3.2.5: a packet holds at most 120 ms, in 2.5 ms quanta

# Frame duration per TOC configuration (its top 5 bits), in 2.5 ms quanta (RFC 6716 table 2):
# SILK 10/20/40/60 ms (configs 0-11), hybrid 10/20 ms (12-15), CELT 2.5/5/10/20 ms (16-31).
FRAME_QUANTA = (4, 8, 16, 24) * 3 + (4, 8) * 2 + (1, 2, 4, 8) * 4


def opus_frames(payload: bytes) -> tuple[int, int] | None:
    """(frames, duration in 2.5 ms quanta) of one Opus packet, from its TOC byte and, for code 3,
    its frame count byte; None if it is no valid Opus packet (empty, code 3 without its count,
    no frames, more than 120 ms)."""
    if not payload:
        return None
    toc = payload[0]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code < 3:
        frames = 2
    elif len(payload) < 2:
        return None
    else:
        frames = payload[1] & 0x3F
    quanta = FRAME_QUANTA[toc >> 3] * frames
    return (frames, quanta) if 0 < quanta <= MAX_QUANTA else None
