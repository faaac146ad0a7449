"""Voice activity of an audio source that sends no audio levels, judged from Opus packet sizes.

Without decoding, an Opus packet's size tells sound from silence: an encoder sends 1-3 byte
frames for digital silence and while DTX is on (one every 400 ms), and ten to hundreds of bytes
per frame for anything it hears. It does not tell speech from steady background noise (both
cost the encoder about the same), nor how loud either is: a source judged by size speaks at a
fixed `assumed_dbov` whenever it sends sound. That is the rule for senders that never set
levels (GStreamer's webrtcbin, SIP gateways); a source that does send levels is judged by them.
"""

from __future__ import annotations

from dataclasses import dataclass

from confsfu.codecs.opus import opus_frames

HISTORY_PACKETS = 64  # how far back "lacks levels" looks
LACKING_BELOW = 32  # a source lacks levels while fewer of its last 64 packets carried one


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """`frame_bytes`: a packet averaging this many bytes per frame or more holds sound (0 turns
    judging by size off); `assumed_dbov`: the level reported for it (0 loudest .. 127)."""

    frame_bytes: int = 10
    assumed_dbov: int = 40

    def __post_init__(self) -> None:
        if not 0 <= self.frame_bytes <= 1500:
            raise ValueError("VoiceConfig.frame_bytes must be in 0..1500")
        if not 0 <= self.assumed_dbov <= 126:
            raise ValueError("VoiceConfig.assumed_dbov must be in 0..126")


@dataclass(frozen=True, slots=True)
class VoiceJudged:
    """A packet without a level, judged to hold sound: feed the speakers as this level, voiced."""

    level_dbov: int


class VoiceActivity:
    """One audio source's packets in (whether each carried a level, and its payload); for a
    packet without a level from a source that lacks them, the judgement out. O(1), two ints.

    "Lacks levels" is precise: fewer than `LACKING_BELOW` of the source's last
    `HISTORY_PACKETS` packets carried the audio-level extension (a new source lacks them, so a
    sender that never sets them is judged from its first packet; Chromium sets one on every
    packet and is never judged by size; webrtcbin sets one on about 1 in 600 and always is).
    No clock is needed: the judgement depends on the packet and the count alone, and the
    caller passes its arrival time on to the speakers with the level.
    """

    __slots__ = ("_carried", "_config")

    def __init__(self, config: VoiceConfig | None = None) -> None:
        self._config = config or VoiceConfig()
        self._carried = 0  # bit k: the k-th latest packet carried a level

    def lacks_levels(self) -> bool:
        return self._carried.bit_count() < LACKING_BELOW

    def on_packet(self, has_level: bool, payload: bytes) -> VoiceJudged | None:
        """One packet that reached the speakers' intake; a judgement only for a packet without
        a level, from a source that lacks them, whose frames hold sound."""
        self._carried = ((self._carried << 1) | has_level) & ((1 << HISTORY_PACKETS) - 1)
        c = self._config
        if has_level or not c.frame_bytes or self._carried.bit_count() >= LACKING_BELOW:
            return None
        frames = opus_frames(payload)
        if frames is None or len(payload) < c.frame_bytes * frames[0]:
            return None
        return VoiceJudged(c.assumed_dbov)
