"""The server's SDP handling reads what Firefox sends: its simulcast publish offer and its answer
to a subscribe offer, captured from Debian's firefox-esr 153 by
tests/browser/capture_firefox_sdp.py."""

from __future__ import annotations

from pathlib import Path

from confsfu.forwarding.published import StreamRouter
from confsfu.rtp import extensions as ext
from confsfu.rtp.extensions import build_sdes_string
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.sdp import parse_fmtp, parse_sdp
from confsfu.server.sdp_plan import PADDING_EXTENSIONS, publish_plan, subscribe_plan
from tests.unit.test_sdp_plan import KBPS, aiortc_answer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OFFER = (FIXTURES / "firefox_offer_simulcast.sdp").read_bytes().decode()
SUBSCRIBE_OFFER = (FIXTURES / "aiortc_subscribe_offer.sdp").read_bytes().decode()
SUBSCRIBE_ANSWER = (FIXTURES / "firefox_subscribe_answer.sdp").read_bytes().decode()

# Firefox's camera: three layers, each a media SSRC and its RTX (a=ssrc-group:FID), in rid order.
LAYER_SSRCS = ((4099514165, 2876985819), (2326174089, 1838637130), (3930680424, 3296764669))


def test_the_publish_offer_parses() -> None:
    offer = parse_sdp(OFFER)
    assert offer.bundle == ("0", "1")
    audio, camera = offer.media
    assert (audio.kind, audio.mid, audio.direction) == ("audio", "0", "sendonly")
    assert audio.rtpmap[109] == ("opus", 48000, 2)  # Firefox's Opus is 109 (Chromium: 111)
    assert parse_fmtp(audio.fmtp[109])["useinbandfec"] == "1"
    assert audio.extmap[ext.AUDIO_LEVEL] == 1
    assert audio.ssrcs == (14567869,)

    # The camera is bundle-only (port 0) and lists an SSRC and an RTX SSRC per layer.
    assert (camera.kind, camera.mid, camera.port, camera.direction) == ("video", "1", 0, "sendonly")
    assert camera.send_rids == ("q", "h", "f") and camera.simulcast == "send q;h;f"
    assert camera.payload_types == (120, 124)
    assert camera.rtpmap[120] == ("VP8", 90000, None)
    assert parse_fmtp(camera.fmtp[124])["apt"] == "120"
    assert camera.ssrc_groups == tuple(("FID", pair) for pair in LAYER_SSRCS)
    ids = ext.ExtensionIds.from_uris(camera.extmap)
    assert ids == ext.ExtensionIds(
        mid=3, rid=9, repaired_rid=10, audio_level=None, abs_send_time=4, transport_cc=7
    )


async def test_the_publish_plan_answers_simulcast_and_routes_each_layer() -> None:
    answer_sdp = await aiortc_answer(OFFER)
    plan = publish_plan("ff", OFFER, answer_sdp, KBPS)
    audio, camera = plan.sections
    assert (audio.mid, audio.kind, audio.media_ssrcs) == ("0", "audio", (14567869,))
    assert 109 in audio.media_payload_types
    assert (camera.mid, camera.kind, camera.rids) == ("1", "video", ("q", "h", "f"))
    assert camera.media_payload_types == frozenset({120}) and camera.rtx_payload_types == {124: 120}
    # Layers are learned from the rid extension, not from the order of Firefox's a=ssrc lines.
    assert camera.media_ssrcs == () and camera.rtx_ssrcs == {}

    answer = parse_sdp(plan.answer_sdp).by_mid("1")
    assert answer is not None and answer.simulcast == "recv q;h;f"
    assert answer.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
    assert answer.extmap[ext.RID] == 9 and answer.extmap[ext.REPAIRED_RID] == 10
    assert parse_fmtp(answer.fmtp[120])["x-google-start-bitrate"] == str(KBPS)
    # Nothing Firefox pads for (it padded its lowest layer with 1.2 Mbit/s of RTX copies).
    assert not set(answer.extmap) & set(PADDING_EXTENSIONS)
    assert plan.ext.abs_send_time is None
    opus = parse_sdp(plan.answer_sdp).by_mid("0")
    assert opus is not None and parse_fmtp(opus.fmtp[109])["useinbandfec"] == "1"

    router = StreamRouter(plan.sections, plan.ext)
    assert plan.ext.mid is not None and plan.ext.rid is not None
    assert plan.ext.repaired_rid is not None
    for layer, (media, rtx) in enumerate(LAYER_SSRCS):
        rid = build_sdes_string(camera.rids[layer])
        first = build_rtp(
            payload_type=120, sequence_number=1, timestamp=0, ssrc=media, payload=b"\x10\x00",
            extensions={plan.ext.mid: build_sdes_string("1"), plan.ext.rid: rid},
        )  # fmt: skip
        stream = router.route(parse_rtp(first))
        assert stream is not None and (stream.layer, stream.repairs) == (layer, None)
        repair = build_rtp(
            payload_type=124, sequence_number=1, timestamp=0, ssrc=rtx, payload=b"\x00\x01",
            extensions={plan.ext.mid: build_sdes_string("1"), plan.ext.repaired_rid: rid},
        )  # fmt: skip
        stream = router.route(parse_rtp(repair))
        assert stream is not None and (stream.layer, stream.repairs) == (layer, media)


def test_the_subscribe_answer_accepts_every_slot() -> None:
    plan = subscribe_plan(SUBSCRIBE_OFFER, SUBSCRIBE_ANSWER)
    offer = parse_sdp(SUBSCRIBE_OFFER)
    assert list(plan.by_mid) == [m.mid for m in offer.media]
    kinds = {m.mid: m.kind for m in offer.media}
    assert sorted(kinds.values()).count("audio") == 3
    for mid, slot in plan.by_mid.items():
        assert slot.ext.mid == 1
        if kinds[mid] == "audio":
            assert (slot.payload_type, slot.rtx_payload_type) == (96, None)
            assert slot.ext.audio_level == 2
        else:
            assert (slot.payload_type, slot.rtx_payload_type) == (97, 98)
            assert slot.ext.abs_send_time == 3
