"""StreamRouter: SDP ssrcs, learning from mid/rid/repaired-rid, rtx mapping, pt fallback."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from confsfu.forwarding.published import PublishedTrack, StreamRouter
from confsfu.ids import SourceId
from confsfu.rtp.extensions import ExtensionIds, build_sdes_string
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp

EXT = ExtensionIds(mid=4, rid=10, repaired_rid=11, audio_level=1, abs_send_time=2)

AUDIO = PublishedTrack(
    mid="0",
    kind="audio",
    source=SourceId.camera("p1", "audio"),
    media_ssrcs=(1111,),
    media_payload_types=frozenset({111}),
)
CAMERA = PublishedTrack(
    mid="1",
    kind="video",
    source=SourceId.camera("p1", "video"),
    media_payload_types=frozenset({96}),
    rtx_payload_types={97: 96},
    rids=("q", "h", "f"),
)
SCREEN = PublishedTrack(
    mid="2",
    kind="video",
    source=SourceId.screen("p1"),
    media_ssrcs=(3333,),
    rtx_ssrcs={3334: 3333},
    media_payload_types=frozenset({96}),
    rtx_payload_types={97: 96},
)


def packet(
    ssrc: int,
    pt: int,
    *,
    mid: str | None = None,
    rid: str | None = None,
    repaired_rid: str | None = None,
    raw: dict[int, bytes] | None = None,
) -> RtpPacket:
    extensions: dict[int, bytes] = dict(raw or {})
    if mid is not None:
        extensions[4] = build_sdes_string(mid)
    if rid is not None:
        extensions[10] = build_sdes_string(rid)
    if repaired_rid is not None:
        extensions[11] = build_sdes_string(repaired_rid)
    data = build_rtp(
        payload_type=pt,
        sequence_number=1,
        timestamp=0,
        ssrc=ssrc,
        payload=b"x",
        extensions=extensions or None,
    )
    return parse_rtp(data)


def router(*sections: PublishedTrack, ext: ExtensionIds = EXT) -> StreamRouter:
    return StreamRouter(list(sections), ext)


def test_routes_by_the_ssrcs_the_offer_announced() -> None:
    r = router(AUDIO, CAMERA, SCREEN)
    audio = r.route(packet(1111, 111))
    assert audio is not None
    assert (audio.section, audio.layer, audio.repairs) == (AUDIO, 0, None)
    screen = r.route(packet(3333, 96))
    assert screen is not None and screen.section is SCREEN and screen.repairs is None
    rtx = r.route(packet(3334, 97))
    assert rtx is not None and rtx.section is SCREEN and rtx.repairs == 3333
    assert r.unroutable == 0


def test_announced_simulcast_ssrcs_take_their_layer_in_order() -> None:
    section = PublishedTrack(
        mid="1",
        kind="video",
        source=SourceId.camera("p", "video"),
        media_ssrcs=(10, 20, 30),
        rtx_ssrcs={21: 20},
        media_payload_types=frozenset({96}),
        rtx_payload_types={97: 96},
        rids=("q", "h", "f"),
    )
    r = router(section)
    assert [r.streams[s].layer for s in (10, 20, 30)] == [0, 1, 2]
    assert (r.streams[21].layer, r.streams[21].repairs) == (1, 20)


def test_learns_simulcast_layers_from_mid_and_rid() -> None:
    r = router(AUDIO, CAMERA, SCREEN)
    layers = {}
    for ssrc, rid in ((501, "q"), (502, "h"), (503, "f")):
        stream = r.route(packet(ssrc, 96, mid="1", rid=rid))
        assert stream is not None and stream.section is CAMERA and stream.repairs is None
        layers[ssrc] = stream.layer
    assert layers == {501: 0, 502: 1, 503: 2}
    # Learned for good: later packets carry no extensions at all.
    later = r.route(packet(502, 96))
    assert later is not None and later.layer == 1
    assert sorted(s for s, stream in r.streams.items() if stream.section is CAMERA) == [
        501,
        502,
        503,
    ]
    assert r.unroutable == 0


def test_rtx_of_a_simulcast_layer_is_mapped_by_repaired_rid() -> None:
    r = router(AUDIO, CAMERA)
    r.route(packet(502, 96, mid="1", rid="h"))
    rtx = r.route(packet(602, 97, mid="1", repaired_rid="h"))
    assert rtx is not None
    assert (rtx.repairs, rtx.layer, rtx.section) == (502, 1, CAMERA)
    video = SourceId.camera("p1", "video")
    assert rtx.key is r.streams[502].key is video.layer(1)
    assert r.media_ssrcs(video.layer(1)) == [502]  # rtx streams are not media
    assert r.media_ssrcs(video.layer(0)) == []
    assert rtx.key.source is video


def test_rtx_before_its_media_stream_is_unroutable_until_the_media_is_known() -> None:
    r = router(CAMERA)
    assert r.route(packet(601, 97, mid="1", repaired_rid="q")) is None
    assert r.unroutable == 1
    r.route(packet(501, 96, mid="1", rid="q"))
    rtx = r.route(packet(601, 97, mid="1", repaired_rid="q"))
    assert rtx is not None and rtx.repairs == 501


def test_a_simulcast_packet_without_rid_waits() -> None:
    r = router(CAMERA)
    assert r.route(packet(501, 96, mid="1")) is None
    assert r.unroutable == 1
    assert 501 not in r.streams
    stream = r.route(packet(501, 96, mid="1", rid="f"))
    assert stream is not None and stream.layer == 2


def test_plain_stream_learned_by_mid_and_its_rtx_without_rid() -> None:
    plain = PublishedTrack(
        mid="v",
        kind="video",
        source=SourceId.camera("p", "video"),
        media_payload_types=frozenset({96}),
        rtx_payload_types={97: 96},
    )
    other = PublishedTrack(
        mid="s",
        kind="video",
        source=SourceId.screen("p"),
        media_payload_types=frozenset({96}),
        rtx_payload_types={97: 96},
    )
    r = router(plain, other)
    media = r.route(packet(70, 96, mid="s"))
    assert media is not None and media.section is other and media.layer == 0
    rtx = r.route(packet(71, 97, mid="s"))
    assert rtx is not None and rtx.repairs == 70


def test_payload_type_fallback_only_when_unambiguous() -> None:
    r = router(AUDIO, CAMERA, SCREEN)
    # Opus is only in the audio section: a new audio SSRC is routed without any extension.
    audio = r.route(packet(9999, 111))
    assert audio is not None and audio.section is AUDIO
    # VP8 is in two sections: no guess.
    assert r.route(packet(8888, 96)) is None
    # A payload type nobody negotiated.
    assert r.route(packet(7777, 100)) is None
    assert r.unroutable == 2


def test_unknown_mid_falls_back_to_payload_type() -> None:
    r = router(AUDIO, SCREEN)
    stream = r.route(packet(4444, 96, mid="nope"))
    assert stream is not None and stream.section is SCREEN


def test_without_negotiated_extensions_only_ssrcs_and_payload_types_route() -> None:
    r = router(AUDIO, CAMERA, ext=ExtensionIds())
    assert r.route(packet(1111, 111)) is not None
    assert r.route(packet(501, 96, mid="1", rid="q")) is None  # rid unreadable: cannot place
    assert r.unroutable == 1


def test_malformed_mid_or_rid_values_are_unroutable_not_errors() -> None:
    r = router(AUDIO, CAMERA, SCREEN)
    assert r.route(packet(1, 96, raw={4: b"\x01\x02"})) is None
    assert r.route(packet(2, 96, mid="1", raw={10: b" "})) is None
    assert r.route(packet(3, 97, mid="1", raw={11: b"\x00"})) is None
    assert r.unroutable == 3
    assert {1, 2, 3}.isdisjoint(r.streams)


@given(
    ssrc=st.integers(0, 2**32 - 1),
    pt=st.integers(0, 127),
    values=st.dictionaries(st.sampled_from([4, 10, 11]), st.binary(min_size=1, max_size=16)),
)
def test_route_never_raises(ssrc: int, pt: int, values: dict[int, bytes]) -> None:
    r = router(AUDIO, CAMERA, SCREEN)
    before = r.unroutable
    stream = r.route(packet(ssrc, pt, raw=values))
    if stream is None:
        assert r.unroutable == before + 1
    else:
        assert r.streams[ssrc] is stream


def test_a_fourth_simulcast_layer_is_not_routed() -> None:
    """Three layers are forwarded; a fourth rid (a hostile or odd offer) is no stream at all,
    so nothing downstream ever sees a layer 3."""
    four = dataclasses.replace(CAMERA, rids=("q", "h", "f", "x"))
    r = router(four)
    assert r.route(packet(601, 96, mid="1", rid="f")) is not None
    assert r.route(packet(604, 96, mid="1", rid="x")) is None
    assert r.unroutable == 1
    listed = dataclasses.replace(four, media_ssrcs=(1, 2, 3, 4))  # announced by a=ssrc lines
    assert sorted(router(listed).streams) == [1, 2, 3]


def test_an_unannounced_rid_is_no_layer() -> None:
    """Issue 19: a rid the offer did not announce is not taken for the lowest layer's, neither
    while that layer is silent nor when its SSRC is live; nor is RTX naming it."""
    heard: dict[int, int] = {}
    r = StreamRouter([CAMERA], EXT, heard=heard.get)
    assert r.route(packet(604, 96, mid="1", rid="x"), now_ms=0) is None  # q never heard
    assert r.route(packet(501, 96, mid="1", rid="q"), now_ms=0) is not None
    heard[501] = 0
    assert r.route(packet(604, 96, mid="1", rid="x"), now_ms=5000) is None  # q silent since
    assert r.route(packet(605, 97, mid="1", repaired_rid="x"), now_ms=5000) is None
    assert sorted(r.streams) == [501] and r.unroutable == 3 and r.refused == 0


def test_a_layer_takes_a_second_ssrc_only_after_its_first_fell_silent() -> None:
    heard: dict[int, int] = {}
    router = StreamRouter([AUDIO, CAMERA], EXT, heard=heard.get)
    first = router.route(packet(500, 96, mid="1", rid="h"), now_ms=0)
    assert first is not None and first.layer == 1
    assert router.route(packet(501, 97, mid="1", repaired_rid="h"), now_ms=0) is not None
    heard[500] = 100
    # Another SSRC claiming layer "h" while 500 is live: refused (two numberings on one slot).
    assert router.route(packet(600, 96, mid="1", rid="h"), now_ms=500) is None
    assert router.refused == 1 and router.take_replaced() == []
    # Silent for RESTART_SILENCE_MS: a restarted encoder takes the layer over.
    restarted = router.route(packet(600, 96, mid="1", rid="h"), now_ms=1100)
    assert restarted is not None and restarted.key is first.key
    assert sorted(router.take_replaced()) == [500, 501]  # and the RTX repairing it
    assert 500 not in router.streams and 501 not in router.streams
    assert router.media_ssrcs(first.key) == [600]
    # An announced SSRC never heard from is replaced at once.
    assert router.route(packet(700, 111, mid="0"), now_ms=1200) is not None
    assert router.take_replaced() == [1111]


def test_a_publisher_cannot_make_the_router_grow() -> None:
    # Thousands of SSRCs, each naming a layer whose SSRC went silent long ago.
    router = StreamRouter([CAMERA], EXT, heard=lambda ssrc: 0)
    for i in range(5000):
        router.route(packet(10_000 + i, 96, mid="1", rid="qhf"[i % 3]), now_ms=10_000 + i)
        router.route(packet(50_000 + i, 97, mid="1", repaired_rid="qhf"[i % 3]), now_ms=10_000 + i)
        router.take_replaced()
        assert len(router.streams) <= router.max_streams
    assert len(router.streams) == 6  # one media and one RTX stream a layer
