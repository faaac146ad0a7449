"""publish_plan / subscribe_plan on Chromium offers and answers aiortc produces (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from confsfu.forwarding.published import StreamRouter
from confsfu.ids import SourceId
from confsfu.rtp.extensions import (
    ABS_SEND_TIME,
    MID,
    REPAIRED_RID,
    RID,
    TRANSPORT_CC,
    build_sdes_string,
)
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.sdp import SdpError, parse_fmtp, parse_sdp
from confsfu.server.sdp_plan import (
    PADDING_EXTENSIONS,
    PublishPlan,
    publish_plan,
    subscribe_plan,
    with_transport_cc,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OFFER = (FIXTURES / "chromium_offer.sdp").read_text()
SIMULCAST_OFFER = (FIXTURES / "chromium_offer_simulcast.sdp").read_text()
KBPS = 2500


async def aiortc_answer(offer_sdp: str) -> str:
    """What an unconfigured aiortc answers to `offer_sdp` (createAnswer gathers nothing)."""
    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        answer = await pc.createAnswer()
        assert answer is not None
        return answer.sdp
    finally:
        await pc.close()


async def plan_for(offer_sdp: str, pid: str = "p1") -> PublishPlan:
    return publish_plan(pid, offer_sdp, await aiortc_answer(offer_sdp), KBPS)


# ---- publish_plan -------------------------------------------------------------------------


async def test_plain_offer_sections_sources_and_payload_types() -> None:
    plan = await plan_for(OFFER)
    assert [(s.mid, s.kind, str(s.source)) for s in plan.sections] == [
        ("0", "audio", "p1/audio"),
        ("1", "video", "p1/video"),
    ]
    audio, video = plan.sections
    assert audio.media_ssrcs == (2861479035,)
    assert audio.rtx_ssrcs == {} and audio.rtx_payload_types == {} and audio.rids == ()
    assert 111 in audio.media_payload_types
    assert audio.media_payload_types == _answered_pts(plan, "0")  # opus, G722, PCMU, PCMA
    assert 63 not in audio.media_payload_types  # red is not a media codec
    assert video.media_ssrcs == (437702582,)
    assert video.rtx_ssrcs == {1967553810: 437702582}
    assert video.rids == ()
    assert 96 in video.media_payload_types
    assert video.rtx_payload_types[97] == 96
    assert all(apt in video.media_payload_types for apt in video.rtx_payload_types.values())
    assert not set(video.rtx_payload_types) & video.media_payload_types


async def test_plain_offer_answer_has_no_simulcast_but_keeps_opus_fec() -> None:
    plan = await plan_for(OFFER)
    answer = parse_sdp(plan.answer_sdp)
    video = answer.by_mid("1")
    audio = answer.by_mid("0")
    assert video is not None and audio is not None
    assert video.rids == () and video.simulcast is None
    assert parse_fmtp(audio.fmtp[111]).get("useinbandfec") == "1"
    assert parse_fmtp(video.fmtp[96])["x-google-start-bitrate"] == str(KBPS)
    assert plan.answer_sdp.endswith("\r\n") and "\r\n" in plan.answer_sdp


async def test_extension_ids_come_from_the_answer() -> None:
    plan = await plan_for(SIMULCAST_OFFER)
    assert plan.ext.mid == 4
    assert plan.ext.audio_level == 1
    assert (plan.ext.rid, plan.ext.repaired_rid) == (10, 11)  # added with a=simulcast
    answer = parse_sdp(plan.answer_sdp)
    camera = answer.by_mid("1")
    assert camera is not None
    assert camera.extmap[MID] == 4
    assert (camera.extmap[RID], camera.extmap[REPAIRED_RID]) == (10, 11)


async def test_a_publish_answer_negotiates_nothing_a_sender_pads_for() -> None:
    """Chromium's offer has abs-send-time and transport-cc (aiortc answers the first): the
    answer keeps neither, so the browser sends no padding (the server estimates no uplink)."""
    offer = parse_sdp(SIMULCAST_OFFER).by_mid("1")
    assert offer is not None and ABS_SEND_TIME in offer.extmap and TRANSPORT_CC in offer.extmap
    for purpose in ("camera", "screen"):
        answer_sdp = await aiortc_answer(SIMULCAST_OFFER)
        assert ABS_SEND_TIME in answer_sdp  # aiortc's own answer has it
        plan = publish_plan("p1", SIMULCAST_OFFER, answer_sdp, KBPS, purpose=purpose)
        assert (plan.ext.abs_send_time, plan.ext.transport_cc) == (None, None)
        for section in parse_sdp(plan.answer_sdp).media:
            assert not set(section.extmap) & set(PADDING_EXTENSIONS), section.mid


async def test_simulcast_offer_sections() -> None:
    plan = await plan_for(SIMULCAST_OFFER)
    assert [(s.mid, s.kind) for s in plan.sections] == [
        ("0", "audio"),
        ("1", "video"),
        ("2", "video"),
    ]
    audio, camera, second = plan.sections
    assert (str(audio.source), str(camera.source)) == ("p1/audio", "p1/video")
    assert second.source.participant == "p1" and second.source is not camera.source
    # Simulcast layers are learned from rids, not from a=ssrc lines.
    assert camera.rids == ("q", "h", "f")
    assert camera.media_ssrcs == () and camera.rtx_ssrcs == {}
    assert 96 in camera.media_payload_types and camera.rtx_payload_types[97] == 96
    # The second video section is a plain stream with its own SSRCs.
    assert second.rids == ()
    assert second.media_ssrcs == (1393810417,)
    assert second.rtx_ssrcs == {3104729854: 1393810417}


async def test_simulcast_answer_gains_simulcast_recv_and_rid_lines() -> None:
    answer_sdp = await aiortc_answer(SIMULCAST_OFFER)
    assert "a=simulcast" not in answer_sdp and "a=rid:" not in answer_sdp  # aiortc drops them
    plan = publish_plan("p1", SIMULCAST_OFFER, answer_sdp, KBPS)
    assert "a=simulcast:recv q;h;f" in plan.answer_sdp
    for rid in ("q", "h", "f"):
        assert f"a=rid:{rid} recv" in plan.answer_sdp
    answer = parse_sdp(plan.answer_sdp)
    camera, second = answer.by_mid("1"), answer.by_mid("2")
    assert camera is not None and second is not None
    assert camera.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
    assert camera.simulcast == "recv q;h;f"
    assert second.rids == () and second.simulcast is None
    for section in (camera, second):
        assert parse_fmtp(section.fmtp[96])["x-google-start-bitrate"] == str(KBPS)
    # Applying the plan to its own answer changes nothing.
    again = publish_plan("p1", SIMULCAST_OFFER, plan.answer_sdp, KBPS)
    assert again.answer_sdp == plan.answer_sdp
    assert again.sections == plan.sections


async def test_screen_purpose_names_the_sources() -> None:
    answer_sdp = await aiortc_answer(OFFER)
    plan = publish_plan("p9", OFFER, answer_sdp, KBPS, purpose="screen")
    sources = [s.source for s in plan.sections]
    assert SourceId.screen("p9") in sources
    assert len(set(sources)) == len(sources)
    assert all(s.participant == "p9" and s.purpose == "screen" for s in sources)


async def test_the_plan_routes_simulcast_packets() -> None:
    plan = await plan_for(SIMULCAST_OFFER)
    router = StreamRouter(plan.sections, plan.ext)
    assert plan.ext.mid is not None and plan.ext.rid is not None
    data = build_rtp(
        payload_type=96,
        sequence_number=1,
        timestamp=0,
        ssrc=0xABC,
        payload=b"\x10\x00",
        extensions={plan.ext.mid: build_sdes_string("1"), plan.ext.rid: build_sdes_string("h")},
    )
    stream = router.route(parse_rtp(data))
    assert stream is not None
    assert (stream.section.mid, stream.layer) == ("1", 1)
    plain = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=1393810417, payload=b"")
    screen = router.route(parse_rtp(plain))
    assert screen is not None and screen.section.mid == "2"


async def test_an_offer_that_sends_nothing_is_refused() -> None:
    recv_only = OFFER.replace("a=sendonly", "a=recvonly")
    with pytest.raises(SdpError, match="publishes no audio or video"):
        publish_plan("p1", recv_only, await aiortc_answer(recv_only), KBPS)


async def test_rejected_sections_are_left_out() -> None:
    answer_sdp = await aiortc_answer(OFFER)
    head, sep, tail = answer_sdp.partition("m=video 9 ")
    plan = publish_plan("p1", OFFER, head + sep.replace(" 9 ", " 0 ") + tail, KBPS)
    assert [s.mid for s in plan.sections] == ["0"]


def test_garbage_sdp_is_an_sdp_error() -> None:
    with pytest.raises(SdpError):
        publish_plan("p1", "not sdp", "v=0\r\n", KBPS)


def _answered_pts(plan: PublishPlan, mid: str) -> set[int]:
    section = parse_sdp(plan.answer_sdp).by_mid(mid)
    assert section is not None
    return set(section.payload_types)


# ---- subscribe_plan -----------------------------------------------------------------------


async def subscribe_offer(audio: int, video: int) -> tuple[RTCPeerConnection, str]:
    """A server-side offer with fixed sendonly slots, as the subscribe PC makes it."""
    pc = RTCPeerConnection()
    for kind in ["audio"] * audio + ["video"] * video:
        pc.addTransceiver(kind, direction="sendonly")
    offer = await pc.createOffer()
    assert offer is not None
    return pc, offer.sdp


@pytest.fixture
async def slots_offer() -> AsyncIterator[str]:
    pc, sdp = await subscribe_offer(audio=2, video=3)
    yield sdp
    await pc.close()


async def test_subscribe_plan_per_slot(slots_offer: str) -> None:
    answer_sdp = await aiortc_answer(slots_offer)
    plan = subscribe_plan(slots_offer, answer_sdp)
    offer = parse_sdp(slots_offer)
    answer = parse_sdp(answer_sdp)
    assert list(plan.by_mid) == [m.mid for m in offer.media]
    assert len(plan.by_mid) == 5
    for section in answer.media:
        assert section.mid is not None
        slot = plan.by_mid[section.mid]
        name = section.rtpmap[slot.payload_type][0].lower()
        assert name == ("opus" if section.kind == "audio" else "vp8")
        assert slot.payload_type == section.payload_types[0]
        assert slot.ext.mid == section.extmap[MID]
        if section.kind == "video":
            assert slot.rtx_payload_type is not None
            apt = parse_fmtp(section.fmtp[slot.rtx_payload_type])["apt"]
            assert int(apt) == slot.payload_type
            assert slot.ext.abs_send_time == section.extmap[ABS_SEND_TIME]
        else:
            assert slot.rtx_payload_type is None


async def test_subscribe_plan_refuses_a_rejected_slot(slots_offer: str) -> None:
    answer_sdp = await aiortc_answer(slots_offer)
    head, sep, tail = answer_sdp.rpartition("m=video 9 ")
    with pytest.raises(SdpError, match="rejects or lacks slot"):
        subscribe_plan(slots_offer, head + sep.replace(" 9 ", " 0 ") + tail)


async def test_subscribe_plan_refuses_an_answer_missing_a_slot(slots_offer: str) -> None:
    answer_sdp = await aiortc_answer(slots_offer)
    last = answer_sdp.rindex("m=video ")
    truncated = answer_sdp[:last]
    bundle = next(line for line in truncated.splitlines() if line.startswith("a=group:BUNDLE"))
    truncated = truncated.replace(bundle, " ".join(bundle.split()[:-1]))
    with pytest.raises(SdpError, match="rejects or lacks slot"):
        subscribe_plan(slots_offer, truncated)


async def test_subscribe_plan_refuses_a_slot_without_codec(slots_offer: str) -> None:
    answer_sdp = await aiortc_answer(slots_offer)
    offer = parse_sdp(slots_offer)
    first_video = next(m for m in offer.media if m.kind == "video")
    lines = answer_sdp.split("\r\n")
    start = lines.index(f"a=mid:{first_video.mid}")
    # Rename every codec of that section to ones the SFU does not send (red, ulpfec).
    for i in range(start, len(lines)):
        if lines[i].startswith("m="):
            break
        if lines[i].startswith("a=rtpmap:"):
            pt = lines[i].split()[0]
            lines[i] = f"{pt} {'ulpfec' if 'rtx/' in lines[i] else 'red'}/90000"
    with pytest.raises(SdpError, match="no codec"):
        subscribe_plan(slots_offer, "\r\n".join(lines))


def test_transport_cc_goes_on_every_section_under_one_free_id() -> None:
    offer = "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0 1",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=mid:0",
            "a=rtpmap:96 opus/48000/2",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=mid:1",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack",
            "a=rtpmap:98 rtx/90000",
            "a=fmtp:98 apt=97",
            "",
        ]
    )
    out, ext_id = with_transport_cc(offer)
    assert ext_id == 3  # 1, 2 and 4 are taken somewhere
    sections = [parse_sdp(out).media[i] for i in range(2)]
    for m in sections:
        assert m.extmap[TRANSPORT_CC] == 3
    assert sections[0].rtcp_fb[96] == ("transport-cc",)
    assert "transport-cc" in sections[1].rtcp_fb[97] and 98 not in sections[1].rtcp_fb
    assert out.endswith("\r\n")
    again, same = with_transport_cc(out.replace(f"a=extmap:3 {TRANSPORT_CC}\r\n", ""), 3)
    assert same == 3 and parse_sdp(again).media[1].extmap[TRANSPORT_CC] == 3


# ---- legacy simulcast: a=ssrc-group:SIM ---------------------------------------------------

LEGACY_SIM_OFFER = (FIXTURES / "chromium_offer_legacy_sim.sdp").read_text()
SIM_MEDIA = (437702582, 1523004117, 2904471663)  # the SIM group's order: lowest layer first
SIM_RTX = {1967553810: 437702582, 3180664521: 1523004117, 860120934: 2904471663}


async def test_sim_group_ssrcs_take_layers_in_group_order_and_rtx_follows_its_primary() -> None:
    plan = await plan_for(LEGACY_SIM_OFFER)
    video = next(s for s in plan.sections if s.kind == "video")
    assert video.media_ssrcs == SIM_MEDIA and video.layered_ssrcs
    assert video.rtx_ssrcs == SIM_RTX
    router = StreamRouter(plan.sections, plan.ext)
    for layer, ssrc in enumerate(SIM_MEDIA):
        data = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=ssrc, payload=b"")
        stream = router.route(parse_rtp(data))
        assert stream is not None and stream.layer == layer and stream.repairs is None
        assert stream.key == video.source.layer(layer)
    for rtx, media in SIM_RTX.items():
        data = build_rtp(payload_type=97, sequence_number=1, timestamp=0, ssrc=rtx, payload=b"")
        stream = router.route(parse_rtp(data))
        assert stream is not None and stream.repairs == media
        assert stream.layer == SIM_MEDIA.index(media)
    audio = next(s for s in plan.sections if s.kind == "audio")
    assert not audio.layered_ssrcs and router.streams[audio.media_ssrcs[0]].layer == 0


async def test_without_sim_group_every_ssrc_stays_on_layer_0() -> None:
    plan = await plan_for(OFFER)
    video = next(s for s in plan.sections if s.kind == "video")
    assert not video.layered_ssrcs
    router = StreamRouter(plan.sections, plan.ext)
    assert {s.layer for s in router.streams.values()} == {0}


@pytest.mark.parametrize(
    ("group", "why"),
    [
        ("a=ssrc-group:SIM 437702582 1523004117 2904471663 77", "at most 3"),
        ("a=ssrc-group:SIM 437702582 1967553810", "also an RTX SSRC"),
    ],
)
def test_a_bad_sim_group_is_an_sdp_error(group: str, why: str) -> None:
    offer = LEGACY_SIM_OFFER.replace("a=ssrc-group:SIM 437702582 1523004117 2904471663", group)
    with pytest.raises(SdpError, match=why):
        publish_plan("p1", offer, offer, KBPS)


def test_two_sim_groups_are_an_sdp_error() -> None:
    sim = "a=ssrc-group:SIM 437702582 1523004117 2904471663"
    offer = LEGACY_SIM_OFFER.replace(sim, sim + "\r\n" + sim)
    with pytest.raises(SdpError, match="more than one"):
        publish_plan("p1", offer, offer, KBPS)
