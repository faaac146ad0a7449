"""VP8 payload descriptor (RFC 7741): parse, rewrite, packetize."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.codecs.vp8 import (
    Vp8Descriptor,
    packetize_vp8,
    parse_vp8,
    rewrite_vp8,
    rewrite_vp8_descriptor,
)
from confsfu.rtp.errors import ParseError

# A VP8 keyframe header: frame tag (P=0), start code 9d 01 2a, 1280x720 (little-endian 14 bits).
KEYFRAME = bytes((0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x00, 0x05, 0xD0, 0x02)) + bytes(50)
DELTA_FRAME = bytes((0x31, 0x42, 0x00)) + bytes(50)


def test_minimal_descriptor() -> None:
    d = parse_vp8(b"\x10" + DELTA_FRAME)
    assert d.size == 1
    assert d.start_of_partition and d.partition_id == 0 and d.starts_frame
    assert d.picture_id is None and d.picture_id_bits == 0 and d.picture_id_offset == 0
    assert d.tl0picidx is None and d.temporal_id is None and d.key_index is None
    assert not d.is_keyframe and d.width is None


def test_chrome_simulcast_keyframe_descriptor() -> None:
    # X, S; I L T; M + 15-bit picture id 0x1234; TL0PICIDX 7; TID 0, Y=1.
    payload = bytes((0x90, 0xE0, 0x92, 0x34, 0x07, 0x20)) + KEYFRAME
    d = parse_vp8(payload)
    assert d.size == 6
    assert (d.picture_id, d.picture_id_bits, d.picture_id_offset) == (0x1234, 15, 2)
    assert (d.tl0picidx, d.tl0picidx_offset) == (7, 4)
    assert (d.temporal_id, d.layer_sync, d.key_index, d.tid_offset) == (0, True, None, 5)
    assert d.is_keyframe and d.starts_frame
    assert (d.width, d.height) == (1280, 720)


def test_seven_bit_picture_id_key_index_and_non_reference() -> None:
    payload = bytes((0xA0 | 0x03, 0x90, 0x55, 0x1B)) + bytes(10)  # X, N, PID 3; I K
    d = parse_vp8(payload)
    assert d.non_reference and not d.start_of_partition and d.partition_id == 3
    assert (d.picture_id, d.picture_id_bits) == (0x55, 7)
    assert d.temporal_id is None and d.key_index == 0x1B and not d.layer_sync
    assert not d.starts_frame and not d.is_keyframe


def test_temporal_layer_two() -> None:
    d = parse_vp8(bytes((0x90, 0x60, 0x09, 0x80)) + DELTA_FRAME)  # L T, TID 2, Y 0
    assert (d.tl0picidx, d.temporal_id, d.layer_sync) == (9, 2, False)
    assert d.picture_id is None


def test_keyframe_without_start_code_has_no_size() -> None:
    d = parse_vp8(b"\x10" + bytes((0x50, 0x42, 0x00, 0x00, 0x00, 0x00)))
    assert d.is_keyframe and d.width is None and d.height is None


def test_continuation_packet_is_not_keyframe() -> None:
    assert not parse_vp8(b"\x00" + KEYFRAME).is_keyframe


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"\x90", "extension byte"),
        (b"\x90\x80", "picture id"),
        (b"\x90\x80\x80", "15-bit"),
        (b"\x90\x40", "TL0PICIDX"),
        (b"\x90\x20", "TID"),
        (b"\x90\xf0\x80\x01\x02", "TID"),
        (b"\x10", "no data"),
        (b"\x90\x80\x01", "no data"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_vp8(payload)


def test_rewrite_patches_in_a_copy() -> None:
    payload = bytes((0x90, 0xE0, 0x92, 0x34, 0x07, 0x20)) + KEYFRAME
    d = parse_vp8(payload)
    out = rewrite_vp8(payload, d, picture_id=0x8001, tl0picidx=0x1FF)  # masked: 15 / 8 bits
    assert len(out) == len(payload)
    assert out[6:] == payload[6:]
    again = parse_vp8(out)
    assert (again.picture_id, again.tl0picidx) == (1, 0xFF)
    assert (again.temporal_id, again.layer_sync, again.is_keyframe) == (0, True, True)
    assert payload[2:4] == b"\x92\x34"  # the original is untouched
    assert rewrite_vp8(payload, d, None, None) == payload
    assert rewrite_vp8_descriptor(payload, d, 5, None) == bytes((0x90, 0xE0, 0x80, 5, 7, 0x20))


def test_rewrite_seven_bit_and_absent_fields() -> None:
    payload = bytes((0x90, 0x80, 0x7F)) + DELTA_FRAME
    d = parse_vp8(payload)
    out = parse_vp8(rewrite_vp8(payload, d, picture_id=0x1FF, tl0picidx=3))
    assert out.picture_id == 0x7F & 0x1FF and out.tl0picidx is None
    bare = b"\x10" + DELTA_FRAME
    assert rewrite_vp8(bare, parse_vp8(bare), 1, 2) == bare


def test_packetize_splits_and_marks_first() -> None:
    frame = KEYFRAME + bytes(range(256)) * 10
    payloads = packetize_vp8(
        frame, picture_id=300, tl0picidx=4, temporal_id=1, layer_sync=True, key_index=2,
        max_payload_bytes=500,
    )  # fmt: skip
    descriptors = [parse_vp8(p) for p in payloads]
    assert all(len(p) <= 500 for p in payloads)
    assert [d.start_of_partition for d in descriptors] == [True] + [False] * (len(payloads) - 1)
    assert descriptors[0].is_keyframe and descriptors[0].width == 1280
    assert all(
        (d.picture_id, d.tl0picidx, d.temporal_id, d.layer_sync, d.key_index)
        == (300, 4, 1, True, 2)
        for d in descriptors
    )
    assert b"".join(p[d.size :] for p, d in zip(payloads, descriptors, strict=True)) == frame


def test_packetize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        packetize_vp8(b"", picture_id=0, tl0picidx=None, temporal_id=None, layer_sync=False)
    with pytest.raises(ValueError):
        packetize_vp8(b"x", picture_id=0, tl0picidx=None, temporal_id=4, layer_sync=False)
    with pytest.raises(ValueError):
        packetize_vp8(
            b"x", picture_id=0, tl0picidx=None, temporal_id=None, layer_sync=False, key_index=32
        )
    with pytest.raises(ValueError):
        packetize_vp8(
            b"x", picture_id=0, tl0picidx=1, temporal_id=0, layer_sync=False, max_payload_bytes=5
        )


# ------------------------------------------------------------------------------------ hypothesis


@given(st.binary(max_size=40))
def test_arbitrary_bytes_parse_or_raise_parse_error(payload: bytes) -> None:
    try:
        d = parse_vp8(payload)
    except ParseError:
        return
    assert 1 <= d.size < len(payload)
    assert parse_vp8(memoryview(payload)).size == d.size


@given(
    frame=st.binary(min_size=1, max_size=4000),
    picture_id=st.integers(0, 0x7FFF),
    tl0picidx=st.none() | st.integers(0, 255),
    temporal_id=st.none() | st.integers(0, 3),
    layer_sync=st.booleans(),
    key_index=st.none() | st.integers(0, 31),
    max_payload_bytes=st.integers(7, 1400),
)
def test_packetize_parse_round_trip(
    frame: bytes,
    picture_id: int,
    tl0picidx: int | None,
    temporal_id: int | None,
    layer_sync: bool,
    key_index: int | None,
    max_payload_bytes: int,
) -> None:
    payloads = packetize_vp8(
        frame, picture_id=picture_id, tl0picidx=tl0picidx, temporal_id=temporal_id,
        layer_sync=layer_sync, key_index=key_index, max_payload_bytes=max_payload_bytes,
    )  # fmt: skip
    parsed: list[Vp8Descriptor] = [parse_vp8(p) for p in payloads]
    for d in parsed:
        assert d.picture_id == picture_id and d.picture_id_bits == 15
        assert d.tl0picidx == tl0picidx
        assert d.temporal_id == temporal_id
        assert d.layer_sync == (layer_sync and temporal_id is not None)
        assert d.key_index == key_index
    assert b"".join(p[d.size :] for p, d in zip(payloads, parsed, strict=True)) == frame


@given(
    payload=st.binary(min_size=2, max_size=40),
    picture_id=st.integers(0, 0x7FFF),
    tl0picidx=st.integers(0, 255),
)
def test_rewrite_keeps_everything_but_the_patched_fields(
    payload: bytes, picture_id: int, tl0picidx: int
) -> None:
    try:
        d = parse_vp8(payload)
    except ParseError:
        return
    out = rewrite_vp8(payload, d, picture_id, tl0picidx)
    assert len(out) == len(payload)
    again = parse_vp8(out)
    if d.picture_id is not None:
        mask = 0x7FFF if d.picture_id_bits == 15 else 0x7F
        assert again.picture_id == picture_id & mask
    if d.tl0picidx is not None:
        assert again.tl0picidx == tl0picidx
    for name in ("size", "temporal_id", "layer_sync", "key_index", "is_keyframe", "width"):
        assert getattr(again, name) == getattr(d, name)
    assert out[d.size :] == payload[d.size :]
