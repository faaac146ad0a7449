"""Outgoing packets of a slot: SlotHeader, RFC 4588 RTX, the packet history, keyframe throttling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.forwarding.history import PacketHistory
from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.forwarding.outgoing import MAX_PADDING, SlotHeader, build_padding, build_rtx
from confsfu.rtp.extensions import abs_send_time, parse_abs_send_time, parse_sdes_string
from confsfu.rtp.packet import parse_rtp

PAYLOAD = bytes(range(256)) * 4

# ---- SlotHeader ---------------------------------------------------------------------------


def test_header_with_mid_and_abs_send_time() -> None:
    header = SlotHeader(ssrc=0xDEADBEEF, payload_type=97, mid="3", mid_id=4, abs_send_time_id=2)
    data = header.build(True, 65_535, 2**32 - 1, 12_345, PAYLOAD)
    pkt = parse_rtp(data)
    assert (pkt.ssrc, pkt.payload_type, pkt.marker) == (0xDEADBEEF, 97, True)
    assert (pkt.sequence_number, pkt.timestamp) == (65_535, 2**32 - 1)
    assert parse_sdes_string(pkt.extensions[4]) == "3"
    assert pkt.extensions[2] == abs_send_time(12_345)
    assert parse_abs_send_time(pkt.extensions[2]) == (12_345 << 18) // 1000 & 0xFFFFFF
    assert pkt.payload == PAYLOAD
    assert pkt.payload_start == header.header_bytes
    assert pkt.csrcs == () and pkt.padding_bytes == 0


def test_header_is_reused_without_leaking_between_packets() -> None:
    header = SlotHeader(ssrc=5, payload_type=96, mid="10", mid_id=9, abs_send_time_id=3)
    first = header.build(True, 1, 100, 1000, b"first")
    second = header.build(False, 2, 200, 64_000 + 1000, b"second-payload")
    a, b = parse_rtp(first), parse_rtp(second)
    assert (a.marker, a.sequence_number, a.timestamp, a.payload) == (True, 1, 100, b"first")
    assert (b.marker, b.sequence_number, b.timestamp) == (False, 2, 200)
    assert b.payload == b"second-payload"
    assert a.extensions[3] == abs_send_time(1000) and b.extensions[3] == abs_send_time(65_000)
    assert parse_sdes_string(b.extensions[9]) == "10"


@pytest.mark.parametrize(
    ("mid", "mid_id", "abs_id", "expected_exts"),
    [
        (None, None, None, set()),
        ("0", None, None, set()),  # no negotiated id: no mid extension
        ("0", 1, None, {1}),
        (None, None, 14, {14}),
        ("abcdefghijklmnop", 14, 1, {14, 1}),  # a 16-byte mid, the one-byte form's maximum
    ],
)
def test_header_extension_combinations(
    mid: str | None, mid_id: int | None, abs_id: int | None, expected_exts: set[int]
) -> None:
    header = SlotHeader(ssrc=1, payload_type=111, mid=mid, mid_id=mid_id, abs_send_time_id=abs_id)
    assert header.header_bytes % 4 == 0
    data = header.build(False, 7, 8, 9, b"opus")
    pkt = parse_rtp(data)
    assert set(pkt.extensions) == expected_exts
    assert pkt.payload == b"opus"
    assert (pkt.ssrc, pkt.payload_type, pkt.sequence_number, pkt.timestamp) == (1, 111, 7, 8)
    if not expected_exts:
        assert header.header_bytes == 12 and data[0] == 0x80
    if mid_id is not None and mid:
        assert parse_sdes_string(pkt.extensions[mid_id]) == mid
    if abs_id is not None:
        assert pkt.extensions[abs_id] == abs_send_time(9)


@given(
    marker=st.booleans(),
    seq=st.integers(0, 65_535),
    ts=st.integers(0, 2**32 - 1),
    now_ms=st.integers(0, 2**40),
    payload=st.binary(max_size=1500),
    ssrc=st.integers(0, 2**32 - 1),
    pt=st.integers(0, 127),
)
def test_header_round_trip(
    marker: bool, seq: int, ts: int, now_ms: int, payload: bytes, ssrc: int, pt: int
) -> None:
    header = SlotHeader(ssrc=ssrc, payload_type=pt, mid="1", mid_id=3, abs_send_time_id=2)
    pkt = parse_rtp(header.build(marker, seq, ts, now_ms, payload))
    assert (pkt.marker, pkt.sequence_number, pkt.timestamp) == (marker, seq, ts)
    assert (pkt.ssrc, pkt.payload_type, pkt.payload) == (ssrc, pt, payload)
    assert pkt.extensions[2] == abs_send_time(now_ms)


# ---- RTX ----------------------------------------------------------------------------------


def test_rtx_carries_the_original_sequence_number_first() -> None:
    header = SlotHeader(ssrc=1000, payload_type=97, mid="2", mid_id=4, abs_send_time_id=2)
    original = header.build(True, 0xABCD, 90_000, 500, PAYLOAD)
    rtx = build_rtx(
        original,
        header_bytes=header.header_bytes,
        rtx_ssrc=2000,
        rtx_payload_type=98,
        rtx_seq=17,
    )
    pkt = parse_rtp(rtx)
    assert (pkt.ssrc, pkt.payload_type, pkt.sequence_number) == (2000, 98, 17)
    assert (pkt.timestamp, pkt.marker) == (90_000, True)
    assert pkt.payload[:2] == b"\xab\xcd"
    assert pkt.payload[2:] == PAYLOAD
    assert pkt.extensions == parse_rtp(original).extensions
    assert len(rtx) == len(original) + 2
    assert parse_rtp(original).sequence_number == 0xABCD  # the original is untouched


@pytest.mark.parametrize("size", [1, 100, MAX_PADDING])
def test_a_padding_packet_rides_the_rtx_stream_with_a_send_time_and_nothing_else(
    size: int,
) -> None:
    header = SlotHeader(ssrc=1000, payload_type=97, mid="2", mid_id=4, abs_send_time_id=2)
    data = build_padding(
        header, rtx_ssrc=2000, rtx_payload_type=98, rtx_seq=65_535, timestamp=90_000,
        now_ms=900, size=size,
    )  # fmt: skip
    pkt = parse_rtp(data)
    assert (pkt.ssrc, pkt.payload_type, pkt.sequence_number, pkt.timestamp) == (
        2000, 98, 65_535, 90_000,
    )  # fmt: skip
    assert pkt.padding_only and pkt.padding_bytes == size and pkt.payload == b""
    assert pkt.extensions[2] == abs_send_time(900) and pkt.extensions[4] == b"2"
    assert len(data) == header.header_bytes + size
    with pytest.raises(ValueError, match="padding"):
        build_padding(header, rtx_ssrc=1, rtx_payload_type=98, rtx_seq=1, timestamp=0,
                      now_ms=0, size=256)  # fmt: skip


def test_rtx_from_the_header_gets_a_fresh_send_time_and_keeps_the_rest() -> None:
    header = SlotHeader(ssrc=1000, payload_type=97, mid="2", mid_id=4, abs_send_time_id=2)
    original = header.build(True, 0xABCD, 90_000, 500, PAYLOAD)
    rtx = parse_rtp(
        header.rtx(original, rtx_ssrc=2000, rtx_payload_type=98, rtx_seq=17, now_ms=900)
    )
    assert rtx.extensions[2] == abs_send_time(900) != abs_send_time(500)
    assert rtx.extensions[4] == b"2"
    assert (rtx.ssrc, rtx.sequence_number, rtx.payload[:2]) == (2000, 17, b"\xab\xcd")
    assert rtx.payload[2:] == PAYLOAD


def test_rtx_of_a_packet_without_marker_or_extensions() -> None:
    header = SlotHeader(ssrc=1, payload_type=96)
    original = header.build(False, 1, 2, 3, b"abc")
    pkt = parse_rtp(
        build_rtx(original, header_bytes=12, rtx_ssrc=9, rtx_payload_type=127, rtx_seq=0)
    )
    assert (pkt.marker, pkt.payload_type, pkt.payload) == (False, 127, b"\x00\x01abc")


@given(
    seq=st.integers(0, 65_535),
    rtx_seq=st.integers(0, 65_535),
    rtx_ssrc=st.integers(0, 2**32 - 1),
    rtx_pt=st.integers(0, 127),
    marker=st.booleans(),
    payload=st.binary(max_size=300),
)
def test_rtx_unwraps_to_the_original(
    seq: int, rtx_seq: int, rtx_ssrc: int, rtx_pt: int, marker: bool, payload: bytes
) -> None:
    header = SlotHeader(ssrc=77, payload_type=96, mid="0", mid_id=1, abs_send_time_id=2)
    original = header.build(marker, seq, 1234, 99, payload)
    rtx = parse_rtp(
        build_rtx(
            original,
            header_bytes=header.header_bytes,
            rtx_ssrc=rtx_ssrc,
            rtx_payload_type=rtx_pt,
            rtx_seq=rtx_seq,
        )
    )
    assert (rtx.ssrc, rtx.payload_type, rtx.sequence_number, rtx.marker) == (
        rtx_ssrc,
        rtx_pt,
        rtx_seq,
        marker,
    )
    osn = int.from_bytes(rtx.payload[:2], "big")
    assert osn == seq and rtx.payload[2:] == payload


# ---- PacketHistory --------------------------------------------------------------------------


def sent(payload: bytes) -> tuple[bool, int, bytes]:
    return (False, 0, payload)


def test_history_returns_what_was_put() -> None:
    history = PacketHistory(8)
    history.put(100, sent(b"a"))
    history.put(101, sent(b"b"))
    assert history.get(100) == sent(b"a") and history.get(101) == sent(b"b")
    assert history.get(102) is None


def test_history_forgets_overwritten_slots() -> None:
    history = PacketHistory(8)
    history.put(1, sent(b"old"))
    history.put(9, sent(b"new"))  # same ring index
    assert history.get(1) is None
    assert history.get(9) == sent(b"new")


def test_history_across_wraparound() -> None:
    history = PacketHistory(1024)
    for seq in range(64_000, 65_536 + 300):  # 1836 packets through a ring of 1024
        history.put(seq % 65_536, sent(seq.to_bytes(4, "big")))
    assert history.get(65_535) == sent((65_535).to_bytes(4, "big"))
    assert history.get(0) == sent((65_536).to_bytes(4, "big"))
    assert history.get(299) == sent((65_835).to_bytes(4, "big"))
    assert history.get(64_812) == sent((64_812).to_bytes(4, "big"))  # the oldest one kept
    assert history.get(64_811) is None  # fell out of the ring
    assert history.get(64_000) is None


def test_history_clear() -> None:
    history = PacketHistory(4)
    history.put(0, sent(b"x"))
    history.clear()
    assert history.get(0) is None


@pytest.mark.parametrize("size", [3, 1000, 6])
def test_history_size_must_be_a_power_of_two(size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        PacketHistory(size)


@given(seqs=st.lists(st.integers(0, 65_535), max_size=300))
def test_history_keeps_the_newest_per_ring_index(seqs: list[int]) -> None:
    history = PacketHistory(64)
    newest: dict[int, int] = {}
    for seq in seqs:
        history.put(seq, sent(seq.to_bytes(2, "big")))
        newest[seq % 64] = seq
    for seq in set(seqs):
        expected = sent(seq.to_bytes(2, "big")) if newest[seq % 64] == seq else None
        assert history.get(seq) == expected


# ---- KeyframeRequester ----------------------------------------------------------------------


def test_many_wishes_inside_the_interval_make_one_request() -> None:
    requester = KeyframeRequester(500)
    answers = [requester.should_request(1000 + i * 10, "presenter/video") for i in range(45)]
    assert answers.count(True) == 1 and answers[0]
    assert (requester.requests_sent, requester.requests_suppressed) == (1, 44)


def test_the_next_request_comes_after_the_interval() -> None:
    requester = KeyframeRequester(500)
    assert requester.should_request(0, "s")
    assert not requester.should_request(499, "s")
    assert requester.should_request(500, "s")
    assert not requester.should_request(999, "s")
    assert requester.should_request(1000, "s")


def test_sources_are_throttled_separately() -> None:
    requester = KeyframeRequester(500)
    assert requester.should_request(0, "a")
    assert requester.should_request(0, "b")
    assert not requester.should_request(1, "a")
    assert requester.requests_sent == 2


def test_a_keyframe_or_forget_lets_the_next_wish_through() -> None:
    requester = KeyframeRequester(500)
    requester.should_request(0, "a")
    requester.keyframe_arrived("a")
    assert requester.should_request(10, "a")
    requester.forget("a")
    assert requester.should_request(20, "a")
    requester.forget("never-seen")
    requester.keyframe_arrived("never-seen")
    assert requester.requests_sent == 3 and requester.requests_suppressed == 0
