"""Header-extension value codecs and the negotiated id map."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp import extensions as ext
from confsfu.rtp.errors import ParseError


def test_extension_ids_from_uris() -> None:
    mapping = {
        ext.MID: 4,
        ext.RID: 10,
        ext.REPAIRED_RID: 11,
        ext.AUDIO_LEVEL: 1,
        ext.ABS_SEND_TIME: 2,
        ext.TRANSPORT_CC: 3,
        "urn:3gpp:video-orientation": 13,
    }
    ids = ext.ExtensionIds.from_uris(mapping)
    assert ids == ext.ExtensionIds(
        mid=4, rid=10, repaired_rid=11, audio_level=1, abs_send_time=2, transport_cc=3
    )
    assert ids.to_uris() == {k: v for k, v in mapping.items() if k != "urn:3gpp:video-orientation"}
    assert ext.ExtensionIds.from_uris({}) == ext.ExtensionIds()


def test_audio_level() -> None:
    assert ext.parse_audio_level(b"\x80") == (True, 0)
    assert ext.parse_audio_level(b"\x7f") == (False, 127)
    assert ext.parse_audio_level(b"\x9e") == (True, 30)
    assert ext.build_audio_level(True, 30) == b"\x9e"
    with pytest.raises(ParseError):
        ext.parse_audio_level(b"")
    with pytest.raises(ValueError):
        ext.build_audio_level(False, 128)


def test_abs_send_time_is_6_18_fixed_point() -> None:
    assert ext.abs_send_time(0) == b"\x00\x00\x00"
    assert ext.abs_send_time(1000) == (1 << 18).to_bytes(3, "big")
    assert ext.abs_send_time(500) == (1 << 17).to_bytes(3, "big")
    assert ext.abs_send_time(64_000) == b"\x00\x00\x00"  # wraps every 64 s
    assert ext.parse_abs_send_time(ext.abs_send_time(1500)) == 3 << 17
    with pytest.raises(ParseError):
        ext.parse_abs_send_time(b"\x00\x01")


def test_transport_cc() -> None:
    assert ext.build_transport_cc(0x1234) == b"\x12\x34"
    assert ext.parse_transport_cc(b"\xff\xfe") == 0xFFFE
    with pytest.raises(ParseError):
        ext.parse_transport_cc(b"\x01")
    with pytest.raises(ValueError):
        ext.build_transport_cc(65536)


def test_sdes_strings() -> None:
    assert ext.parse_sdes_string(b"q") == "q"
    assert ext.parse_sdes_string(b"0\x00") == "0"
    assert ext.build_sdes_string("f") == b"f"
    for bad in (b"", b"\x00", b"a b", b"\xff", b"h\x01"):
        with pytest.raises(ParseError):
            ext.parse_sdes_string(bad)
    for text in ("", "é", "a b"):
        with pytest.raises(ValueError):
            ext.build_sdes_string(text)


@given(st.binary(max_size=20))
def test_value_parsers_accept_or_raise_parse_error(value: bytes) -> None:
    for parser in (
        ext.parse_sdes_string,
        ext.parse_audio_level,
        ext.parse_transport_cc,
        ext.parse_abs_send_time,
    ):
        with contextlib.suppress(ParseError):
            parser(value)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_sdes_round_trip(text: str) -> None:
    assert ext.parse_sdes_string(ext.build_sdes_string(text[:255])) == text[:255]


@given(st.booleans(), st.integers(0, 127))
def test_audio_level_round_trip(voice: bool, level: int) -> None:
    assert ext.parse_audio_level(ext.build_audio_level(voice, level)) == (voice, level)
