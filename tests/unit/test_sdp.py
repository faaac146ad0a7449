"""SDP reader and answer edits, against hand-written Chromium offers and an aiortc answer."""

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp import extensions as ext
from confsfu.sdp import (
    SdpError,
    add_simulcast_recv,
    drop_extmaps,
    parse_fmtp,
    parse_sdp,
    restore_fmtp_params,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


SIMULCAST_OFFER = fixture("chromium_offer_simulcast.sdp")
PLAIN_OFFER = fixture("chromium_offer.sdp")
AIORTC_ANSWER = fixture("aiortc_answer_simulcast.sdp")


def test_simulcast_offer() -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    assert offer.bundle == ("0", "1", "2")
    audio, camera, screen = offer.media
    assert (audio.kind, audio.mid, audio.direction, audio.port) == ("audio", "0", "sendonly", 9)
    assert audio.payload_types == (111, 63, 9, 0, 8, 13, 110, 126)
    assert audio.rtpmap[111] == ("opus", 48000, 2)
    assert audio.rtpmap[0] == ("PCMU", 8000, None)
    assert audio.fmtp[111] == "minptime=10;useinbandfec=1"
    assert audio.rtcp_fb[111] == ("transport-cc",)
    assert audio.extmap[ext.AUDIO_LEVEL] == 1
    assert audio.ssrcs == (2861479035,)
    assert audio.cnames == {2861479035: "wWpr6NEXY0GbQa1d"}
    assert audio.msid is not None and audio.msid.endswith("3b1f0d2e-mic")
    assert audio.payload_type_for("OPUS") == 111

    assert camera.kind == "video" and camera.mid == "1"
    assert camera.rids == (("q", "send"), ("h", "send"), ("f", "send"))
    assert camera.send_rids == ("q", "h", "f")
    assert camera.simulcast == "send q;h;f"
    assert camera.ssrcs == () and camera.ssrc_groups == ()  # Chromium signals no SSRCs for rids
    assert camera.rtpmap[96] == ("VP8", 90000, None)
    assert camera.rtpmap[97] == ("rtx", 90000, None)
    assert camera.fmtp[97] == "apt=96"
    assert camera.rtcp_fb[96] == ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    ids = ext.ExtensionIds.from_uris(camera.extmap)
    assert ids == ext.ExtensionIds(
        mid=4, rid=10, repaired_rid=11, audio_level=None, abs_send_time=2, transport_cc=3
    )
    assert camera.payload_type_for("vp9") == 98
    assert camera.payload_type_for("H265") is None

    assert screen.rids == () and screen.simulcast is None
    assert screen.ssrc_groups == (("FID", (1393810417, 3104729854)),)
    assert screen.ssrcs == (1393810417, 3104729854)
    assert offer.by_mid("2") is screen and offer.by_mid("9") is None


def test_plain_offer() -> None:
    offer = parse_sdp(PLAIN_OFFER)
    assert [m.kind for m in offer.media] == ["audio", "video"]
    video = offer.media[1]
    assert video.rids == () and video.simulcast is None
    assert video.ssrc_groups == (("FID", (437702582, 1967553810)),)


def test_lf_line_endings_and_session_defaults() -> None:
    text = "\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=recvonly",
            "a=extmap:7 urn:ietf:params:rtp-hdrext:sdes:mid",
            "m=audio 5004/2 RTP/AVP 0",
            "a=rtcp-fb:* nack",
            "a=rtcp-fb:0 ccm fir",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=mid:data",
            "a=fmtp:webrtc-datachannel max-message-size=262144",
            "a=sctp-port:5000",
            "",
        ]
    )
    first, data = parse_sdp(text).media
    assert first.direction == "recvonly" and first.mid is None and first.port == 5004
    assert first.extmap == {ext.MID: 7}
    assert first.rtcp_fb == {0: ("nack", "ccm fir")}
    assert data.kind == "application" and data.payload_types == () and data.fmtp == {}
    assert data.protocol == "UDP/DTLS/SCTP"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("o=- 1 1 IN IP4 0.0.0.0\r\n", "v=0"),
        ("v=1\r\n", "v=0"),
        ("v=0\r\nhello\r\n", "letter"),
        ("v=0\r\nA=b\r\n", "letter"),
        ("v=0\r\nm=audio 9\r\n", "m= line"),
        ("v=0\r\nm=audio nine RTP/AVP 0\r\n", "port"),
        ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "port"),
        ("v=0\r\nm=audio 9 RTP/AVP x\r\n", "payload type"),
        ("v=0\r\nm=audio 9 RTP/AVP 128\r\n", "payload type"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "rtpmap"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/fast\r\n", "clock"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/0\r\n", "channels"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=fmtp:x a=b\r\n", "fmtp"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtcp-fb:0\r\n", "rtcp-fb"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=extmap:0 urn:x\r\n", "extmap id"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=extmap:3\r\n", "extmap"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\na=rid:q sideways\r\n", "rid"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\na=ssrc:-1 cname:x\r\n", "ssrc"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\na=ssrc-group:FID 1 x\r\n", "ssrc"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\na=mid:\r\n", "mid"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=mid:a\r\nm=audio 9 RTP/AVP 0\r\na=mid:a\r\n", "dupl"),
        ("v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n", "BUNDLE"),
    ],
)
def test_malformed_sdp(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_sdp(text)


def test_non_text_is_rejected() -> None:
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\n")  # type: ignore[arg-type]


def test_parse_fmtp() -> None:
    assert parse_fmtp("minptime=10; useinbandfec=1") == {"minptime": "10", "useinbandfec": "1"}
    assert parse_fmtp("111/111") == {"111/111": ""}
    assert parse_fmtp("") == {}


def test_add_simulcast_recv_to_aiortc_answer() -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    answer = add_simulcast_recv(AIORTC_ANSWER, offer, start_bitrate_kbps=2500)
    assert "\n" not in answer.replace("\r\n", "")  # CRLF kept throughout
    assert answer.endswith("\r\n")
    parsed = parse_sdp(answer)
    audio, camera, screen = parsed.media
    assert camera.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
    assert camera.simulcast == "recv q;h;f"
    assert camera.extmap[ext.RID] == 10 and camera.extmap[ext.REPAIRED_RID] == 11
    assert camera.extmap[ext.MID] == 4  # existing extmaps untouched
    assert camera.fmtp[96] == "x-google-start-bitrate=2500"
    assert screen.rids == () and screen.simulcast is None and ext.RID not in screen.extmap
    assert screen.fmtp[96] == "x-google-start-bitrate=2500"
    assert audio == parse_sdp(AIORTC_ANSWER).media[0]
    # The fmtp line goes right after its rtpmap; rid lines after the section's other lines.
    lines = answer.split("\r\n")
    assert (
        lines[lines.index("a=rtpmap:96 VP8/90000") + 1] == "a=fmtp:96 x-google-start-bitrate=2500"
    )
    assert add_simulcast_recv(answer, offer, 2500) == answer  # idempotent


def test_drop_extmaps_leaves_out_the_named_extensions_only() -> None:
    sdp = (
        "v=0\r\na=extmap:7 urn:x:session\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        f"a=extmap:2 {ext.ABS_SEND_TIME}\r\na=extmap:4/sendonly {ext.ABS_SEND_TIME}\r\n"
        f"a=extmap:3 {ext.MID}\r\na=extmap:5\r\na=mid:0\r\n"
    )
    out = drop_extmaps(sdp, (ext.ABS_SEND_TIME, "urn:x:session"))
    assert out == (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        f"a=extmap:3 {ext.MID}\r\na=extmap:5\r\na=mid:0\r\n"
    )
    assert drop_extmaps(out.replace("\r\n", "\n"), ()) == out.replace("\r\n", "\n")


def test_add_simulcast_recv_updates_existing_fmtp_and_keeps_lf() -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    answer = AIORTC_ANSWER.replace("\r\n", "\n").replace(
        "a=rtpmap:96 VP8/90000\n",
        "a=rtpmap:96 VP8/90000\na=fmtp:96 max-fr=30;x-google-start-bitrate=300\n",
    )
    out = add_simulcast_recv(answer, offer, 1800)
    assert "\r" not in out
    assert parse_sdp(out).media[1].fmtp[96] == "max-fr=30;x-google-start-bitrate=1800"


def test_add_simulcast_recv_without_bitrate_or_simulcast() -> None:
    plain_answer = AIORTC_ANSWER
    out = add_simulcast_recv(plain_answer, parse_sdp(PLAIN_OFFER), None)
    assert out == plain_answer  # mid 1 in the plain offer has no rids; nothing to do


def test_add_simulcast_recv_skips_rejected_sections() -> None:
    rejected = AIORTC_ANSWER.replace("m=video 9 ", "m=video 0 ", 1)  # the mid 1 section
    assert rejected != AIORTC_ANSWER
    camera = parse_sdp(add_simulcast_recv(rejected, parse_sdp(SIMULCAST_OFFER), 2500)).media[1]
    assert camera.port == 0 and camera.simulcast is None and camera.fmtp == {97: "apt=96"}


def test_restore_fmtp_params() -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    out = restore_fmtp_params(AIORTC_ANSWER, offer, ["useinbandfec"])
    audio = parse_sdp(out).media[0]
    assert audio.fmtp == {111: "useinbandfec=1"}
    both = restore_fmtp_params(AIORTC_ANSWER, offer, ["useinbandfec", "minptime"])
    assert parse_sdp(both).media[0].fmtp == {111: "minptime=10;useinbandfec=1"}
    assert restore_fmtp_params(both, offer, ["useinbandfec", "minptime"]) == both
    # Existing fmtp lines are extended, not replaced; present params are not overridden.
    partial = AIORTC_ANSWER.replace(
        "a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=20\r\n"
    )
    fixed = parse_sdp(restore_fmtp_params(partial, offer, ["minptime", "useinbandfec"]))
    assert fixed.media[0].fmtp[111] == "minptime=20;useinbandfec=1"
    # Video sections are untouched: rtx apt is not in the list.
    assert parse_sdp(out).media[1] == parse_sdp(AIORTC_ANSWER).media[1]


def test_restore_matches_codecs_by_name_when_payload_types_differ() -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    answer = AIORTC_ANSWER.replace("111", "109")
    audio = parse_sdp(restore_fmtp_params(answer, offer, ["useinbandfec"])).media[0]
    assert audio.fmtp == {109: "useinbandfec=1"}


# ------------------------------------------------------------------------------------ hypothesis


@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp(text)


sdp_lines = st.sampled_from(
    [
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 RTP/AVP 96 97", "a=mid:0", "a=mid:1",
        "a=rtpmap:111 opus/48000/2", "a=rtpmap:96 VP8/90000", "a=fmtp:97 apt=96", "a=rid:q send",
        "a=simulcast:send q", "a=ssrc:1 cname:x", "a=ssrc-group:FID 1 2", "a=group:BUNDLE 0",
        "a=extmap:3 urn:x", "a=rtcp-fb:* nack", "a=sendonly", "a=msid:a b", "c=IN IP4 0.0.0.0",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(sdp_lines, st.text(max_size=20)), max_size=30))
def test_shuffled_sdp_lines_parse_or_raise_sdp_error(lines: list[str]) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp("\r\n".join(["v=0", *lines]))


@given(st.lists(st.one_of(sdp_lines, st.text(max_size=20)), max_size=30))
def test_answer_editors_never_crash(lines: list[str]) -> None:
    offer = parse_sdp(SIMULCAST_OFFER)
    answer = "\r\n".join(["v=0", *lines])
    add_simulcast_recv(answer, offer, 1000)
    restore_fmtp_params(answer, offer, ["useinbandfec"])
