"""Offers from stacks other than the browsers: what the pinned aiortc cannot read is normalised
at the seam (rtc_adapter.aiortc_readable), and the tests fail if aiortc's behaviour changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiortc.sdp import SessionDescription

from confsfu.sdp import parse_sdp
from confsfu.server.rtc_adapter import RawPeerConnection, aiortc_readable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIREFOX = (FIXTURES / "firefox_offer_simulcast.sdp").read_bytes().decode()
# GStreamer's webrtcbin writes RFC 8285 extension attributes after the URI.
WITH_ATTRIBUTES = re.sub(r"^(a=extmap:\S+ [^\s]+)(\r?)$", r"\1 vad=on\2", FIREFOX, flags=re.M)


def test_the_pinned_aiortc_cannot_read_extmap_attributes() -> None:
    # If this starts to pass, aiortc reads them itself and aiortc_readable can go.
    with pytest.raises(ValueError, match="too many values"):
        SessionDescription.parse(WITH_ATTRIBUTES)


def test_extmap_attributes_are_taken_out_and_nothing_else() -> None:
    assert WITH_ATTRIBUTES != FIREFOX and " vad=on" in WITH_ATTRIBUTES
    assert aiortc_readable(WITH_ATTRIBUTES) == FIREFOX
    assert aiortc_readable(FIREFOX) == FIREFOX  # directions (extmap:2/recvonly) stay
    lf = "v=0\na=extmap:1/sendonly urn:x vad=on\na=mid:0\n"
    assert aiortc_readable(lf) == "v=0\na=extmap:1/sendonly urn:x\na=mid:0\n"
    # confsfu's own parser reads the attributes as they are.
    assert parse_sdp(WITH_ATTRIBUTES).media[0].extmap == parse_sdp(FIREFOX).media[0].extmap


async def test_an_offer_with_extmap_attributes_is_answered() -> None:
    pc = RawPeerConnection()
    try:
        answer = await pc.answer(WITH_ATTRIBUTES)
        assert "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level" in answer
    finally:
        await pc.close()
