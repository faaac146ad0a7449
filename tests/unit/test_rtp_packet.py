"""RTP packet parse/build: hand-built packets, malformed input, hypothesis round trips."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import build_rtp, is_rtcp, parse_rtp, rewrite_rtp


def test_parse_hand_built_packet_with_one_byte_extensions() -> None:
    data = (
        bytes.fromhex(
            "90e0"  # V=2, X=1; M=1, PT=96
            "1234"  # seq
            "0000abcd"  # ts
            "deadbeef"  # ssrc
            "bede0002"  # one-byte profile, 2 words
            "10"  # id 1, len 1
            "71"  # 'q'
            "22"  # id 2, len 3
            "010203"
            "00"  # padding byte
            "00"
        )
        + b"payload"
    )
    pkt = parse_rtp(data)
    assert pkt.marker is True
    assert pkt.payload_type == 96
    assert pkt.sequence_number == 0x1234
    assert pkt.timestamp == 0xABCD
    assert pkt.ssrc == 0xDEADBEEF
    assert pkt.csrcs == ()
    assert pkt.extensions == {1: b"q", 2: b"\x01\x02\x03"}
    assert pkt.payload == b"payload"
    assert pkt.payload_start == 24
    assert pkt.payload_end == len(data)
    assert not pkt.padding_only


def test_parse_two_byte_extensions_csrcs_and_padding() -> None:
    header = bytes.fromhex("b30f00010000000200000003")  # P, X, CC=3, PT 15
    csrcs = struct.pack("!3I", 10, 11, 12)
    ext = bytes.fromhex("1000000201000203aabbcc00")  # id1 empty, id2 3 bytes, pad
    payload = b"\x01\x02"
    data = header + csrcs + ext + payload + b"\x00\x00\x03"
    pkt = parse_rtp(data)
    assert pkt.csrcs == (10, 11, 12)
    assert pkt.extensions == {1: b"", 2: b"\xaa\xbb\xcc"}
    assert pkt.payload == payload
    assert pkt.padding_bytes == 3
    assert pkt.marker is False and pkt.payload_type == 15


def test_padding_only_packet() -> None:
    data = build_rtp(
        payload_type=96, sequence_number=5, timestamp=0, ssrc=1, payload=b"", padding_bytes=200
    )
    pkt = parse_rtp(data)
    assert pkt.padding_only
    assert pkt.payload == b""
    assert len(data) == 12 + 200


def test_one_byte_reserved_id_15_stops_parsing() -> None:
    # id 1 = "a", then id 15: the rest of the block is ignored, not an error.
    pkt = parse_rtp(bytes.fromhex("906000010000000100000002bede00011061f0ff") + b"p")
    assert pkt.extensions == {1: b"a"}
    assert pkt.payload == b"p"


def test_unknown_extension_profile_is_skipped() -> None:
    data = bytes.fromhex("906000010000000100000002abcd000101020304") + b"x"
    pkt = parse_rtp(data)
    assert pkt.extensions == {}
    assert pkt.payload == b"x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (bytes(11), "truncated"),
        (bytes.fromhex("406000010000000100000002"), "version"),
        (bytes.fromhex("826000010000000100000002") + bytes(4), "CSRC"),
        (bytes.fromhex("906000010000000100000002bede"), "extension header"),
        (bytes.fromhex("906000010000000100000002bede0002") + bytes(4), "runs past"),
        (bytes.fromhex("906000010000000100000002bede000130aabbcc"), "one-byte"),
        (bytes.fromhex("906000010000000100000002100000010105aabb"), "two-byte"),
        (bytes.fromhex("9060000100000001000000021000000100000007"), "two-byte"),
        (bytes.fromhex("a06000010000000100000002aa00"), "padding"),
        (bytes.fromhex("a06000010000000100000002aa05"), "padding"),
    ],
)
def test_malformed_packets_raise_parse_error(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_rtp(data)


def test_build_chooses_extension_form() -> None:
    one = build_rtp(
        payload_type=96,
        sequence_number=1,
        timestamp=1,
        ssrc=1,
        payload=b"x",
        extensions={14: bytes(16)},
    )
    assert one[12:14] == b"\xbe\xde"
    for extensions in ({15: b"a"}, {1: bytes(17)}, {1: b""}, {200: b"a"}):
        two = build_rtp(
            payload_type=96,
            sequence_number=1,
            timestamp=1,
            ssrc=1,
            payload=b"x",
            extensions=extensions,
        )
        assert two[12:14] == b"\x10\x00"
        assert parse_rtp(two).extensions == extensions


def test_build_rejects_out_of_range_fields() -> None:
    base = {"payload_type": 96, "sequence_number": 1, "timestamp": 1, "ssrc": 1, "payload": b""}
    for bad in (
        {"payload_type": 128},
        {"sequence_number": 65536},
        {"timestamp": -1},
        {"ssrc": 1 << 32},
        {"padding_bytes": 256},
        {"csrcs": list(range(16))},
        {"extensions": {256: b"x"}},
        {"extensions": {1: bytes(256)}},
    ):
        with pytest.raises(ValueError):
            build_rtp(**{**base, **bad})  # type: ignore[arg-type]


def test_is_rtcp_demux() -> None:
    assert is_rtcp(bytes((0x80, 200)))
    assert is_rtcp(bytes((0x81, 223)))
    assert not is_rtcp(bytes((0x80, 96)))
    assert not is_rtcp(bytes((0x80, 0xE0)))  # marker + PT 96
    assert not is_rtcp(bytes((0x80, 224)))
    assert not is_rtcp(b"\x80")


def test_rewrite_rtp_changes_header_and_keeps_payload_and_padding() -> None:
    original = build_rtp(
        payload_type=96,
        sequence_number=100,
        timestamp=5000,
        ssrc=7,
        payload=b"abcdef",
        extensions={3: b"h", 4: b"\x00\x00\x01"},
        padding_bytes=3,
        marker=True,
    )
    pkt = parse_rtp(original)
    rewritten = parse_rtp(
        rewrite_rtp(
            pkt,
            payload_type=97,
            sequence_number=9,
            timestamp=1,
            ssrc=99,
            extensions={1: b"m1"},
            payload_head=b"XY",
        )
    )
    assert (rewritten.payload_type, rewritten.sequence_number) == (97, 9)
    assert (rewritten.timestamp, rewritten.ssrc, rewritten.marker) == (1, 99, True)
    assert rewritten.extensions == {1: b"m1"}
    assert rewritten.payload == b"XYcdef"
    assert rewritten.padding_bytes == 3
    unchanged = parse_rtp(rewrite_rtp(pkt))
    assert unchanged.data == original
    with pytest.raises(ValueError):
        rewrite_rtp(pkt, payload_head=bytes(7))


# ------------------------------------------------------------------------------------ hypothesis

one_byte_extensions = st.dictionaries(
    st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=14
)
two_byte_extensions = st.dictionaries(
    st.integers(1, 255), st.binary(min_size=0, max_size=255), max_size=8
)


@given(
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=1500),
    marker=st.booleans(),
    extensions=st.one_of(one_byte_extensions, two_byte_extensions),
    padding_bytes=st.integers(0, 255),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
)
def test_build_parse_round_trip(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    extensions: dict[int, bytes],
    padding_bytes: int,
    csrcs: list[int],
) -> None:
    data = build_rtp(
        payload_type=payload_type,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=payload,
        marker=marker,
        extensions=extensions,
        padding_bytes=padding_bytes,
        csrcs=csrcs,
    )
    pkt = parse_rtp(data)
    assert pkt.payload_type == payload_type
    assert pkt.sequence_number == sequence_number
    assert pkt.timestamp == timestamp
    assert pkt.ssrc == ssrc
    assert pkt.marker == marker
    assert pkt.payload == payload
    assert pkt.extensions == extensions
    assert pkt.csrcs == tuple(csrcs)
    assert pkt.padding_bytes == padding_bytes
    assert rewrite_rtp(pkt) == data


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        pkt = parse_rtp(data)
    except ParseError:
        return
    assert pkt.payload_start <= pkt.payload_end <= len(data)


@given(st.binary(min_size=12, max_size=120))
def test_mutated_headers_parse_or_raise_parse_error(tail: bytes) -> None:
    # Force version 2 and the extension bit so the extension parser sees arbitrary bytes.
    data = bytes((0x90 | (tail[0] & 0x2F), tail[1])) + tail[2:]
    try:
        pkt = parse_rtp(data)
    except ParseError:
        return
    assert pkt.payload_start <= pkt.payload_end <= len(data)
