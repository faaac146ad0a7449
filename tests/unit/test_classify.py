"""classify: what a publisher's packet is, for any bytes; one row per verdict."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from confsfu.forwarding.classify import Dropped, Media, classify
from confsfu.forwarding.published import PublishedTrack, StreamRouter
from confsfu.ids import SourceId
from confsfu.rtp.extensions import ExtensionIds
from confsfu.rtp.packet import build_rtp

VIDEO, RTX = 0x1111, 0x3333


def router() -> StreamRouter:
    track = PublishedTrack("0", "video", SourceId.camera("p", "video"), (VIDEO,), {RTX: VIDEO},
                           frozenset({96}), {97: 96})  # fmt: skip
    return StreamRouter([track], ExtensionIds())


def rtp(ssrc: int, pt: int, payload: bytes, size: int = 0) -> bytes:
    return build_rtp(payload_type=pt, sequence_number=5, timestamp=9, ssrc=ssrc,
                     payload=payload + bytes(size))  # fmt: skip


def test_one_row_per_verdict() -> None:
    r = router()
    assert classify(rtp(VIDEO, 96, b"x", 1600), r) == Dropped("oversized")
    assert classify(b"\x80", r) == Dropped("bad_rtp")
    assert classify(rtp(5, 111, b"x"), r) == Dropped("unknown_ssrc")
    assert classify(rtp(RTX, 97, b"\x00"), r) == Dropped("rtx_padding")
    assert classify(rtp(RTX, 98, b"\x00\x07abc"), r) == Dropped("rtx_unknown")
    media = classify(rtp(VIDEO, 96, b"frame"), r)
    assert isinstance(media, Media) and not media.repaired and media.pkt.payload == b"frame"
    repair = classify(rtp(RTX, 97, b"\x00\x07frame"), r)
    assert isinstance(repair, Media) and repair.repaired and repair.repair_payload_type == 97
    assert (repair.pkt.ssrc, repair.pkt.sequence_number, repair.pkt.payload) == (VIDEO, 7, b"frame")
    assert classify(rtp(VIDEO, 96, b"x"), None) == Dropped("unknown_ssrc")


@given(st.binary(max_size=1600))
def test_any_bytes_get_a_verdict(data: bytes) -> None:
    assert isinstance(classify(data, router()), Media | Dropped)
