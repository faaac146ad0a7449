"""Offers from stacks other than the browsers: what the pinned aiortc cannot read is normalised
at the seam (rtc_adapter.aiortc_readable), and the tests fail if aiortc's behaviour changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiortc.sdp import SessionDescription

from confsfu.forwarding.published import StreamRouter
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.sdp import parse_sdp
from confsfu.server.rtc_adapter import RawPeerConnection, aiortc_readable
from confsfu.server.sdp_plan import publish_plan

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


# A publish offer captured from GStreamer 1.22's webrtcbin (Debian) as
# tests/fixtures/webrtcbin_publisher.py makes it: VP8 then Opus, the audio bundle-only on port 0,
# `vad=on` after the audio-level URI, no mid or rid extension (streams are named by a=ssrc).
WEBRTCBIN = (FIXTURES / "webrtcbin_offer.sdp").read_bytes().decode()


def test_the_captured_webrtcbin_offer_is_readable_only_through_the_seam() -> None:
    assert "vad=on" in WEBRTCBIN and "a=bundle-only" in WEBRTCBIN
    with pytest.raises(ValueError, match="too many values"):
        SessionDescription.parse(WEBRTCBIN)
    SessionDescription.parse(aiortc_readable(WEBRTCBIN))


async def test_the_captured_webrtcbin_offer_is_answered_and_routed_by_ssrc() -> None:
    pc = RawPeerConnection()
    try:
        answer = await pc.answer(WEBRTCBIN)
    finally:
        await pc.close()
    plan = publish_plan("gst", WEBRTCBIN, answer, 2500)
    video, audio = plan.sections
    assert (video.mid, video.kind, video.media_payload_types) == ("video0", "video", {96})
    assert (audio.mid, audio.kind, audio.media_payload_types) == ("audio1", "audio", {111})
    assert plan.ext.audio_level == 1
    ssrcs = [int(s) for s in re.findall(r"^a=ssrc:(\d+) cname", WEBRTCBIN, flags=re.M)]
    assert (video.media_ssrcs, audio.media_ssrcs) == ((ssrcs[0],), (ssrcs[1],))
    router = StreamRouter(plan.sections, plan.ext)
    for ssrc, pt, kind in ((ssrcs[0], 96, "video"), (ssrcs[1], 111, "audio")):
        first = build_rtp(payload_type=pt, sequence_number=1, timestamp=0, ssrc=ssrc, payload=b"x")
        stream = router.route(parse_rtp(first))
        assert stream is not None and stream.section.kind == kind
