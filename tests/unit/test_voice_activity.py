"""Voice activity of a source without audio levels, from Opus packet sizes (issue 21)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.codecs.opus import MAX_QUANTA, opus_frames
from confsfu.conference.meeting import Meeting
from confsfu.conference.room import Room
from confsfu.conference.voice_activity import (
    HISTORY_PACKETS,
    LACKING_BELOW,
    VoiceActivity,
    VoiceConfig,
    VoiceJudged,
)
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.rtp.extensions import ExtensionIds, build_audio_level
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server.publishing import PublisherPath
from confsfu.settings import MediaSettings

CELT_FB_20 = 31 << 3  # TOC: CELT fullband 20 ms, code 0
SILK_WB_60 = 11 << 3  # SILK wideband 60 ms
CELT_NB_2_5 = 16 << 3  # CELT narrowband 2.5 ms
HYBRID_FB_10 = 14 << 3


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", None),  # no TOC
        (bytes([CELT_FB_20]), (1, 8)),  # a DTX frame: TOC alone, 20 ms
        (bytes([CELT_FB_20 | 1]) + bytes(10), (2, 16)),  # code 1: two equal frames
        (bytes([CELT_FB_20 | 2, 5]) + bytes(10), (2, 16)),  # code 2: two frames
        (bytes([CELT_FB_20 | 3]), None),  # code 3 without its count byte
        (bytes([CELT_FB_20 | 3, 0]), None),  # ... counting no frames
        (bytes([CELT_FB_20 | 3, 6]), (6, 48)),  # 6 x 20 ms = 120 ms, the most allowed
        (bytes([CELT_FB_20 | 3, 7]), None),  # 140 ms
        (bytes([CELT_FB_20 | 3, 0xC3]), (3, 24)),  # VBR and padding flags are not the count
        (bytes([SILK_WB_60 | 1]), (2, 48)),  # 2 x 60 ms
        (bytes([SILK_WB_60 | 3, 3]), None),  # 3 x 60 ms
        (bytes([CELT_NB_2_5 | 3, 48]), (48, 48)),  # 48 x 2.5 ms
        (bytes([HYBRID_FB_10]) + bytes(40), (1, 4)),
    ],
)
def test_opus_frames_reads_the_toc(payload: bytes, expected: tuple[int, int] | None) -> None:
    assert opus_frames(payload) == expected


@given(st.binary(max_size=64))
def test_opus_frames_of_any_bytes_is_none_or_a_valid_count(payload: bytes) -> None:
    frames = opus_frames(payload)
    if frames is not None:
        count, quanta = frames
        assert 1 <= count <= 48 and 1 <= quanta <= MAX_QUANTA and payload


SOUND = bytes([CELT_FB_20]) + bytes(159)  # GStreamer's opusenc on a tone: 160 bytes
SILENCE = bytes([CELT_FB_20, 0xFF, 0xFE])  # digital silence: 3 bytes
DTX = bytes([CELT_FB_20])


@pytest.mark.parametrize(
    ("packets", "judged"),
    [
        # (has_level, payload) in order -> the judgement of the last packet
        ([(False, SOUND)], VoiceJudged(40)),  # a new source lacks levels: judged at once
        ([(False, SILENCE)], None),
        ([(False, DTX)], None),
        ([(False, b"")], None),
        ([(False, bytes([CELT_FB_20 | 3]) + bytes(30))], None),  # no valid Opus
        ([(False, bytes([CELT_FB_20 | 1]) + bytes(18))], None),  # two frames, 19 bytes
        ([(False, bytes([CELT_FB_20 | 1]) + bytes(19))], VoiceJudged(40)),  # 20 bytes
        ([(True, SOUND)], None),  # it carries a level: judged by that
        ([(True, SOUND)] * 31 + [(False, SOUND)], VoiceJudged(40)),  # 31 of 64 carried one
        ([(True, SOUND)] * 32 + [(False, SOUND)], None),  # 32 of 64: it has levels
        ([(True, SOUND)] * 32 + [(False, SOUND)] * 33, VoiceJudged(40)),  # 31 of the last 64
        ([(True, SOUND)] + [(False, SOUND)] * 599, VoiceJudged(40)),  # webrtcbin: 1 in 600
    ],
)
def test_judged_by_size_only_without_levels(
    packets: list[tuple[bool, bytes]], judged: VoiceJudged | None
) -> None:
    voice = VoiceActivity()
    results = [voice.on_packet(has, payload) for has, payload in packets]
    assert results[-1] == judged


def test_ten_bytes_per_frame_hold_sound() -> None:
    voice = VoiceActivity()
    assert voice.on_packet(False, bytes([CELT_FB_20]) + bytes(8)) is None  # 9 bytes
    assert voice.on_packet(False, bytes([CELT_FB_20]) + bytes(9)) == VoiceJudged(40)


def test_judging_by_size_can_be_turned_off_and_tuned() -> None:
    assert VoiceActivity(VoiceConfig(frame_bytes=0)).on_packet(False, SOUND) is None
    tuned = VoiceActivity(VoiceConfig(frame_bytes=200, assumed_dbov=20))
    assert tuned.on_packet(False, SOUND) is None
    assert tuned.on_packet(False, SOUND + bytes(40)) == VoiceJudged(20)
    for bad in ({"frame_bytes": -1}, {"frame_bytes": 1501}, {"assumed_dbov": 127}):
        with pytest.raises(ValueError):
            VoiceConfig(**bad)  # type: ignore[arg-type]


def test_lacking_levels_follows_the_last_64_packets() -> None:
    voice = VoiceActivity()
    assert voice.lacks_levels()
    for _ in range(LACKING_BELOW):
        voice.on_packet(True, SOUND)
    assert not voice.lacks_levels()
    for _ in range(HISTORY_PACKETS - LACKING_BELOW):
        voice.on_packet(False, SOUND)
    assert not voice.lacks_levels()  # 32 of the last 64 still carried one
    voice.on_packet(False, SOUND)
    assert voice.lacks_levels()


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=200))
def test_any_packets_give_a_judgement_or_none_and_bounded_state(
    packets: list[tuple[bool, bytes]],
) -> None:
    voice = VoiceActivity()
    for has_level, payload in packets:
        judged = voice.on_packet(has_level, payload)
        if judged is not None:
            assert not has_level and judged.level_dbov == 40
            assert opus_frames(payload) is not None
        assert voice._carried < 1 << HISTORY_PACKETS  # state: one 64-bit mask


def path_hears(packets: list[tuple[int | None, bytes]]) -> list[tuple[int, str, int, bool]]:
    """What the slow path (server/publishing.py) reports to the speakers for these packets:
    (audio level or None, Opus payload) each, with the level extension negotiated as id 1."""
    meeting = Meeting(Room("council"), now_ms=0, unix_ms=1_700_000_000_000)
    path = PublisherPath({}, Counter(), Counter(), MediaSettings(), meeting, KeyframeRequester(500))
    heard: list[tuple[int, str, int, bool]] = []
    path.on_level = lambda *a: heard.append(a)
    pub = SimpleNamespace(
        participant_id="p", ext=ExtensionIds(audio_level=1), voice=VoiceActivity()
    )
    for now_ms, (level, payload) in enumerate(packets):
        ext = {1: build_audio_level(level < 127, level)} if level is not None else {}
        raw = build_rtp(payload_type=111, sequence_number=now_ms, timestamp=0, ssrc=1,
                        payload=payload, extensions=ext)  # fmt: skip
        path._note_audio_level(pub, parse_rtp(raw), now_ms)  # type: ignore[arg-type]
    return heard


def test_the_slow_path_reports_levels_and_judgements_alike() -> None:
    assert path_hears([(30, SOUND)]) == [(0, "p", 30, True)]  # a level: as it says
    assert path_hears([(127, SOUND)]) == []  # a silent level: not reported
    assert path_hears([(None, SOUND), (None, SILENCE)]) == [(0, "p", 40, True)]
    chromium = [(127, SOUND)] * 32 + [(None, SOUND)]  # has levels: one without is not judged
    assert path_hears(chromium) == []
