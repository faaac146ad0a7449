"""Relay frames (confsfu.scale.relay_frame): the header, each kind's payload, and bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.scale import relay_frame as rf
from confsfu.scale.relay_frame import RelayFrame, RelayFrameError, SourceInfo

RTP_PACKET = bytes([0x80, 96, 0, 1]) + bytes(8) + b"payload"
HEAD = rf.MAGIC + bytes([rf.VERSION])


def head(kind: int, room: int = 7, source: int = 9, layer: int = 1, flags: int = 0) -> bytes:
    return (
        HEAD
        + bytes([kind])
        + room.to_bytes(4, "big")
        + source.to_bytes(4, "big")
        + bytes([layer, flags])
    )


GOOD = [
    ("rtp", head(rf.RTP) + RTP_PACKET, RelayFrame(rf.RTP, 7, 9, 1, 0, RTP_PACKET)),
    ("keyframe request", head(rf.KEYFRAME_REQUEST), RelayFrame(rf.KEYFRAME_REQUEST, 7, 9, 1)),
    ("nack", head(rf.NACK) + b"\x00\x05\xff\xff", RelayFrame(rf.NACK, 7, 9, 1, 0, b"\0\5\xff\xff")),
    ("layer needed", head(rf.LAYER_NEED, flags=1), RelayFrame(rf.LAYER_NEED, 7, 9, 1, 1)),
    ("layer not needed", head(rf.LAYER_NEED), RelayFrame(rf.LAYER_NEED, 7, 9, 1, 0)),
    ("room", head(rf.ROOM) + b'{"a":1}', RelayFrame(rf.ROOM, 7, 9, 1, 0, b'{"a":1}')),
    ("source", head(rf.SOURCE) + b"\x01\x00\x00\x01aAlice", RelayFrame(rf.SOURCE, 7, 9, 1, 0,
                                                                  b"\x01\x00\x00\x01aAlice")),
    ("largest ids", HEAD + bytes([rf.RTP]) + b"\xff" * 8 + b"\x02\xff" + RTP_PACKET,
     RelayFrame(rf.RTP, 0xFFFFFFFF, 0xFFFFFFFF, 2, 0xFF, RTP_PACKET)),
]  # fmt: skip


@pytest.mark.parametrize(("data", "frame"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_frames(data: bytes, frame: RelayFrame) -> None:
    assert rf.decode(data) == frame
    assert rf.encode(frame) == data


BAD = [
    ("empty", b"", "shorter"),
    ("header cut", head(rf.RTP)[:13], "shorter"),
    ("magic", b"\x00\x00" + head(rf.RTP)[2:] + RTP_PACKET, "magic"),
    ("version", rf.MAGIC + b"\x02" + head(rf.RTP)[3:] + RTP_PACKET, "version"),
    ("kind 0", head(0), "kind"),
    ("kind 99", head(99), "kind"),
    ("layer 3", head(rf.KEYFRAME_REQUEST, layer=3), "layer"),
    ("rtp too short", head(rf.RTP) + RTP_PACKET[:11], "RTP"),
    ("rtp version 0", head(rf.RTP) + b"\x00" + RTP_PACKET[1:], "RTP"),
    ("rtp too long", head(rf.RTP) + RTP_PACKET + bytes(2048), "RTP"),
    ("frame too long", head(rf.ROOM) + b"{" + bytes(rf.MAX_ROOM_BYTES), "longer"),
    ("room not an object", head(rf.ROOM) + b"[]", "JSON"),
    ("room empty", head(rf.ROOM), "JSON"),
    ("nack empty", head(rf.NACK), "NACK"),
    ("nack odd", head(rf.NACK) + b"\x00\x01\x02", "NACK"),
    ("nack 65", head(rf.NACK) + bytes(130), "NACK"),
    ("keyframe with payload", head(rf.KEYFRAME_REQUEST) + b"x", "payload"),
    ("need with payload", head(rf.LAYER_NEED) + b"x", "payload"),
    ("source too short", head(rf.SOURCE) + b"\x00\x00\x00\x01", "short"),
    ("source purpose 2", head(rf.SOURCE) + b"\x00\x02\x00\x01a", "not a source"),
    ("source level 15", head(rf.SOURCE) + b"\x0f\x00\x00\x01a", "not a source"),
    ("source id empty", head(rf.SOURCE) + b"\x00\x00\x00\x00a", "not a source"),
    ("source id past the end", head(rf.SOURCE) + b"\x00\x00\x00\x02a", "not a source"),
    ("source not utf-8", head(rf.SOURCE) + b"\x00\x00\x00\x01\xff", "UTF-8"),
    ("source too long", head(rf.SOURCE) + b"\x00\x00\x00\x01" + b"a" * 300, "too long"),
]


@pytest.mark.parametrize(("data", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_frames(data: bytes, reason: str) -> None:
    with pytest.raises(RelayFrameError, match=reason):
        rf.decode(data)


@pytest.mark.parametrize(
    "frame",
    [
        RelayFrame(rf.RTP, -1, 0, 0, 0, RTP_PACKET),
        RelayFrame(rf.RTP, 0, 1 << 32, 0, 0, RTP_PACKET),
        RelayFrame(rf.RTP, 0, 0, 3, 0, RTP_PACKET),
        RelayFrame(rf.RTP, 0, 0, 0, 256, RTP_PACKET),
        RelayFrame(rf.NACK, 0, 0, 0, 0, b""),
        RelayFrame(42, 0, 0),
    ],
)
def test_encode_refuses_what_decode_would(frame: RelayFrame) -> None:
    with pytest.raises(RelayFrameError):
        rf.encode(frame)


def test_payload_helpers() -> None:
    assert rf.nack_seqs(rf.nack_payload([1, 0xFFFF, 0x10005])) == [1, 0xFFFF, 5]
    assert len(rf.nack_seqs(rf.nack_payload(list(range(100))))) == rf.MAX_NACKS
    info = SourceInfo("élodie", "screen", "video", 0, "Élodie B.")
    assert rf.source_info(rf.source_payload(info)) == info
    for bad in (SourceInfo("", "camera", "audio"), SourceInfo("a", "mic", "audio"),
                SourceInfo("a", "camera", "audio", 15)):  # fmt: skip
        with pytest.raises(RelayFrameError):
            rf.source_payload(bad)
    assert rf.rtp(1, 2, 0, RTP_PACKET) == head(rf.RTP, 1, 2, 0) + RTP_PACKET


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_raise_only_the_documented_error(data: bytes) -> None:
    try:
        frame = rf.decode(data)
    except RelayFrameError:
        return
    assert rf.encode(frame) == data


@given(st.binary(min_size=1, max_size=40))
def test_arbitrary_bytes_after_a_good_header(tail: bytes) -> None:
    for kind in range(8):
        try:
            frame = rf.decode(head(kind) + tail)
        except RelayFrameError:
            continue
        assert rf.encode(frame) == head(kind) + tail


frames = st.one_of(
    st.builds(
        RelayFrame,
        st.just(rf.RTP),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 2),
        st.integers(0, 255),
        st.binary(min_size=11, max_size=2047).map(lambda b: b"\x80" + b),
    ),
    st.builds(
        RelayFrame,
        st.sampled_from([rf.KEYFRAME_REQUEST, rf.LAYER_NEED]),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 2),
        st.integers(0, 255),
        st.just(b""),
    ),
    st.builds(
        lambda room, source, seqs: RelayFrame(rf.NACK, room, source, 0, 0, rf.nack_payload(seqs)),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=64),
    ),
    st.builds(
        lambda room, info: RelayFrame(rf.SOURCE, room, 1, 0, 0, rf.source_payload(info)),
        st.integers(0, 0xFFFFFFFF),
        st.builds(
            SourceInfo,
            st.text(min_size=1, max_size=30),
            st.sampled_from(["camera", "screen"]),
            st.sampled_from(["audio", "video"]),
            st.integers(0, 14),
            st.text(max_size=30),
        ),
    ),
)


@given(frames)
def test_round_trip(frame: RelayFrame) -> None:
    assert rf.decode(rf.encode(frame)) == frame


# ---- bundles: a turn's frames for one worker in one datagram -------------------------------

_A = rf.rtp(1, 2, 0, bytes([0x80]) + bytes(40))
_B = rf.encode(rf.RelayFrame(rf.KEYFRAME_REQUEST, 1, 2, 1))


@pytest.mark.parametrize(
    ("frames"),
    [[_A], [_A, _B], [_B, _A, _B], [_A] * 1000],
)
def test_a_bundle_gives_its_frames_back_in_order(frames: list[bytes]) -> None:
    data = rf.bundle(frames)
    assert len(data) == 2 + sum(rf.bundled_size(f) for f in frames)
    assert rf.unbundle(data) == frames


def test_a_datagram_that_is_no_bundle_is_one_frame() -> None:
    assert rf.unbundle(_A) == [_A]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (rf.BUNDLE_MAGIC, "empty"),
        (rf.BUNDLE_MAGIC + b"\x00", "cut short"),
        (rf.BUNDLE_MAGIC + b"\x00\x00", "cut short"),  # a zero-length frame
        (rf.bundle([_A])[:-1], "cut short"),
        (rf.bundle([_A, _B]) + b"\x00\x05ab", "cut short"),
        (rf.BUNDLE_MAGIC + b"\x00\x01x" * 30_000, "longer"),
    ],
)
def test_a_bad_bundle_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(rf.RelayFrameError, match=why):
        rf.unbundle(data)


@given(st.binary(max_size=300).map(lambda tail: rf.BUNDLE_MAGIC + tail))
def test_unbundling_anything_raises_only_relay_frame_error(data: bytes) -> None:
    try:
        frames = rf.unbundle(data)
    except rf.RelayFrameError:
        return
    assert b"".join(len(f).to_bytes(2, "big") + f for f in frames) == data[2:]
