"""Transport-wide congestion control feedback: chunk parsing, encoding choices, round trips."""

import struct
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp.errors import ParseError
from confsfu.rtp.rtcp import TransportFeedback, parse_rtcp
from confsfu.rtp.rtcp_build import serialize_rtcp

# Chrome-shaped feedback (P bit padding, as libwebrtc writes it).
ONE_PACKET = bytes(
    [0xAF, 0xCD, 0x00, 0x05, 0xFA, 0x17, 0xFA, 0x17, 0x43, 0x03, 0x2F, 0xA0,
     0x00, 0x99, 0x00, 0x01, 0x3D, 0xE8, 0x02, 0x17, 0x20, 0x01, 0x94, 0x01]
)  # fmt: skip
SEVEN_PACKETS = bytes(
    [0xAF, 0xCD, 0x00, 0x07, 0xFA, 0x17, 0xFA, 0x17, 0x19, 0x3D, 0xD8, 0xBB,
     0x00, 0x04, 0x00, 0x07, 0x10, 0x63, 0x6E, 0x01, 0x20, 0x07, 0x4C, 0x24,
     0x24, 0x10, 0x0C, 0x0C, 0x10, 0x00, 0x00, 0x03]
)  # fmt: skip


def twcc(base: int, count: int, chunks: list[int], deltas: bytes, ref: int = 5) -> bytes:
    """A TWCC packet from raw chunks and delta bytes, padded with zeros (no P bit)."""
    body = struct.pack("!IIHHI", 1, 2, base, count, (ref << 8) | 9)
    body += b"".join(struct.pack("!H", c) for c in chunks) + deltas
    body += bytes(-len(body) % 4)
    return struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body


def only(data: bytes) -> TransportFeedback:
    (fb,) = parse_rtcp(data)
    assert isinstance(fb, TransportFeedback)
    return fb


def test_chrome_single_packet_feedback() -> None:
    fb = only(ONE_PACKET)
    assert fb == TransportFeedback(
        sender_ssrc=4195875351, media_ssrc=1124282272, base_sequence=153,
        reference_time_64ms=4057090, feedback_count=23, packets=((153, 37000),),
    )  # fmt: skip
    assert serialize_rtcp([fb]) == ONE_PACKET


def test_chrome_run_length_feedback() -> None:
    fb = only(SEVEN_PACKETS)
    assert fb.base_sequence == 4 and fb.reference_time_64ms == 1074030
    assert fb.feedback_count == 1
    assert fb.packets == (
        (4, 19000), (5, 28000), (6, 37000), (7, 41000), (8, 44000), (9, 47000), (10, 51000),
    )  # fmt: skip
    assert serialize_rtcp([fb]) == SEVEN_PACKETS


def test_draft_run_length_of_221_not_received() -> None:
    fb = only(twcc(base=65530, count=221, chunks=[0x00DD], deltas=b""))
    assert len(fb.packets) == 221
    assert fb.packets[0] == (65530, None)
    assert fb.packets[6] == (0, None)  # sequence numbers wrap
    assert all(arrival is None for _, arrival in fb.packets)
    assert serialize_rtcp([fb])[20:22] == b"\x00\xdd"


def test_draft_one_bit_status_vector() -> None:
    # 0x9F1C: 1|0|0 1 1 1 1 1 0 0 0 1 1 1 0 0 -> 8 packets received with small deltas.
    deltas = bytes([1, 2, 3, 4, 5, 6, 7, 8])
    fb = only(twcc(base=100, count=14, chunks=[0x9F1C], deltas=deltas))
    received = [seq for seq, arrival in fb.packets if arrival is not None]
    assert received == [101, 102, 103, 104, 105, 109, 110, 111]
    assert [a for _, a in fb.packets if a is not None] == [
        250,
        750,
        1500,
        2500,
        3750,
        5250,
        7000,
        9000,
    ]
    assert serialize_rtcp([fb])[20:22] == b"\x9f\x1c"


def test_two_bit_vector_with_large_and_negative_deltas() -> None:
    # 0xD600: 1|1| 01 01 10 00 00 00 00 -> small, small, large; count 3 ignores the rest.
    deltas = bytes([4, 0]) + struct.pack("!h", -8)
    fb = only(twcc(base=7, count=3, chunks=[0xD600], deltas=deltas))
    assert fb.packets == ((7, 1000), (8, 1000), (9, -1000))
    out = serialize_rtcp([fb])
    assert out[20:22] == b"\xd6\x00"
    assert only(out) == fb


def test_status_count_ends_inside_a_run() -> None:
    fb = only(twcc(base=0, count=2, chunks=[0x2005], deltas=bytes([1, 1])))
    assert fb.packets == ((0, 250), (1, 500))


def test_large_run_and_mixed_chunks() -> None:
    deltas = struct.pack("!hh", 1000, -1000) + bytes([10] * 20)
    chunks = [0x4002, 0x2014]  # run of 2 large, run of 20 small
    fb = only(twcc(base=1, count=22, chunks=chunks, deltas=deltas))
    assert fb.packets[0] == (1, 250_000)
    assert fb.packets[1] == (2, 0)
    assert fb.packets[-1] == (22, 50_000)
    assert only(serialize_rtcp([fb])) == fb


def test_encoding_choices_match_libwebrtc() -> None:
    def chunks_of(packets: Sequence[int | None]) -> list[int]:
        ticks = 0
        entries: list[tuple[int, int | None]] = []
        for index, delta in enumerate(packets):
            if delta is None:
                entries.append((index, None))
            else:
                ticks += delta
                entries.append((index, ticks * 250))
        data = serialize_rtcp([TransportFeedback(1, 2, 0, 0, 0, tuple(entries))])
        count = 0
        out = []
        pos = 20
        while count < len(packets):
            (chunk,) = struct.unpack_from("!H", data, pos)
            out.append(chunk)
            pos += 2
            if not chunk & 0x8000:
                count += chunk & 0x1FFF
            else:
                count += 7 if chunk & 0x4000 else 14
        return out

    assert chunks_of([1] * 7) == [0x2007]  # all same: run length
    assert chunks_of([1, None] * 7) == [0xAAAA]  # 14 mixed 0/1: one-bit vector
    assert chunks_of([1, 300, None]) == [0xD800]  # short with a large delta: two-bit vector
    assert chunks_of([None] * 8191 + [None]) == [0x1FFF, 0x0001]
    assert chunks_of([1] * 10 + [300]) == [0x200A, 0x4001]  # run ends, new run
    assert chunks_of([1, None] * 4 + [300]) == [0xD111, 0xC800]  # two-bit, remainder carried


def test_reserved_symbol_is_rejected() -> None:
    with pytest.raises(ParseError, match="reserved"):
        parse_rtcp(twcc(base=0, count=24, chunks=[0x6018], deltas=b""))


@pytest.mark.parametrize(
    "data",
    [
        twcc(base=0, count=3, chunks=[], deltas=b""),  # no chunks
        twcc(base=0, count=3, chunks=[0x2003], deltas=b"\x01"),  # deltas missing
        twcc(base=0, count=2, chunks=[0x4002], deltas=b"\x00\x01"),  # 2nd large delta missing
        bytes.fromhex("8fcd0003000000010000000200010001"),  # truncated header
    ],
)
def test_truncated_feedback_raises(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_rtcp(data)


def test_build_validation() -> None:
    with pytest.raises(ValueError, match="sequence number"):
        serialize_rtcp([TransportFeedback(1, 2, 10, 0, 0, ((10, 0), (12, 250)))])
    with pytest.raises(ValueError, match="new feedback packet"):
        serialize_rtcp([TransportFeedback(1, 2, 0, 0, 0, ((0, 0), (1, 250 * 40000)))])
    with pytest.raises(ValueError, match="reference time"):
        serialize_rtcp([TransportFeedback(1, 2, 0, 1 << 24, 0, ())])
    with pytest.raises(ValueError, match="feedback count"):
        serialize_rtcp([TransportFeedback(1, 2, 0, 0, 256, ())])


def test_arrival_times_are_floored_to_ticks() -> None:
    fb = TransportFeedback(1, 2, 0, 0, 0, ((0, 260), (1, 740), (2, None), (3, 1000)))
    assert only(serialize_rtcp([fb])).packets == ((0, 250), (1, 500), (2, None), (3, 1000))


def test_empty_feedback_round_trips() -> None:
    fb = TransportFeedback(1, 2, 5, 0, 0, ())
    assert only(serialize_rtcp([fb])) == fb


# ------------------------------------------------------------------------------------ hypothesis

delta_ticks = st.one_of(
    st.none(),
    st.integers(0, 255),
    st.integers(-32768, 32767),
)


@given(
    base=st.integers(0, 0xFFFF),
    reference=st.integers(0, 0xFFFFFF),
    feedback_count=st.integers(0, 255),
    deltas=st.lists(delta_ticks, max_size=300),
    runs=st.lists(st.tuples(delta_ticks, st.integers(1, 40)), max_size=5),
)
def test_feedback_round_trip(
    base: int,
    reference: int,
    feedback_count: int,
    deltas: list[int | None],
    runs: list[tuple[int | None, int]],
) -> None:
    for value, length in runs:  # long runs exercise run-length chunks
        deltas = deltas + [value] * length
    ticks = 0
    packets: list[tuple[int, int | None]] = []
    for index, delta in enumerate(deltas):
        seq = (base + index) & 0xFFFF
        if delta is None:
            packets.append((seq, None))
        else:
            ticks += delta
            packets.append((seq, ticks * 250))
    fb = TransportFeedback(0xAA, 0xBB, base, reference, feedback_count, tuple(packets))
    data = serialize_rtcp([fb])
    assert len(data) % 4 == 0
    assert only(data) == fb


@given(count=st.integers(0, 200), tail=st.binary(max_size=120))
def test_arbitrary_feedback_bodies_parse_or_raise_parse_error(count: int, tail: bytes) -> None:
    body = struct.pack("!IIHHI", 1, 2, 0, count, 0) + tail
    body += bytes(-len(body) % 4)
    data = struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body
    try:
        fb = only(data)
    except ParseError:
        return
    assert len(fb.packets) == count
