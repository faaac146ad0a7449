"""The C parsers (confsfu.rtp._fast) agree with the Python reference parsers on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.codecs.vp8 import Vp8Descriptor, packetize_vp8, parse_vp8, parse_vp8_reference
from confsfu.rtp import _fast
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp, parse_rtp_reference


def outcome(parse: Any, data: Any) -> tuple[str, Any]:
    """What a parser made of `data`: every field with its type, or the error it raised."""
    try:
        parsed = parse(data)
    except ParseError as exc:
        return "error", str(exc)
    return "parsed", {
        n: (type(v), v) for n in type(parsed).__slots__ if (v := getattr(parsed, n), True)
    }


def same(parse: Any, reference: Any, data: Any) -> None:
    assert outcome(parse, data) == outcome(reference, data)


rtp_packets = st.builds(
    lambda pt, seq, ts, ssrc, payload, marker, ext, padding, csrcs: build_rtp(
        payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload,
        marker=marker, extensions=ext, padding_bytes=padding, csrcs=csrcs,
    ),
    st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF), st.binary(max_size=40), st.booleans(),
    st.dictionaries(st.integers(1, 255), st.binary(min_size=1, max_size=20), max_size=4),
    st.integers(0, 20), st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
)  # fmt: skip


@given(rtp_packets)
def test_well_formed_rtp_parses_the_same(data: bytes) -> None:
    same(parse_rtp, parse_rtp_reference, data)
    assert outcome(parse_rtp, data)[0] == "parsed"


@given(rtp_packets, st.data())
def test_damaged_rtp_fails_or_parses_the_same(data: bytes, draw: st.DataObject) -> None:
    damaged = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        damaged[draw.draw(st.integers(0, len(damaged) - 1))] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(damaged)))
    for candidate in (bytes(damaged), bytes(damaged[:cut])):
        same(parse_rtp, parse_rtp_reference, candidate)


@given(st.binary(max_size=64))
def test_any_bytes_as_rtp(data: bytes) -> None:
    same(parse_rtp, parse_rtp_reference, b"\x90" + data)
    same(parse_rtp, parse_rtp_reference, data)


vp8_payloads = st.builds(
    lambda frame, pic, tl0, tid, sync: packetize_vp8(
        frame, picture_id=pic, tl0picidx=tl0, temporal_id=tid, layer_sync=sync,
        max_payload_bytes=64,
    )[0],
    st.binary(min_size=1, max_size=40), st.integers(0, 0x7FFF),
    st.none() | st.integers(0, 255), st.none() | st.integers(0, 3), st.booleans(),
)  # fmt: skip


@given(vp8_payloads)
def test_well_formed_vp8_parses_the_same(payload: bytes) -> None:
    same(parse_vp8, parse_vp8_reference, payload)


@given(st.binary(max_size=24))
def test_any_bytes_as_vp8(payload: bytes) -> None:
    same(parse_vp8, parse_vp8_reference, payload)
    keyframe = payload[:4] + b"\x00\x00\x00\x9d\x01\x2a" + payload[4:]  # a frame header inside
    same(parse_vp8, parse_vp8_reference, keyframe)


def test_inputs_other_than_bytes_go_to_the_reference() -> None:
    data = build_rtp(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"\x10\x00x")
    assert parse_rtp(bytearray(data)).data == bytearray(data)
    view = memoryview(parse_rtp(data).payload)
    same(parse_vp8, parse_vp8_reference, view)


def test_only_slotted_classes_can_be_configured() -> None:
    plain = type("Plain", (), dict.fromkeys(RtpPacket.__slots__))  # same names, not slots
    with pytest.raises(TypeError, match="not a __slots__ field"):
        _fast.configure_rtp(plain, parse_rtp_reference)
    with pytest.raises(TypeError):
        _fast.configure_vp8(Vp8Descriptor, 42)  # type: ignore[arg-type]
    assert isinstance(
        parse_rtp(build_rtp(payload_type=1, sequence_number=1, timestamp=1, ssrc=1, payload=b"")),
        RtpPacket,
    )
