"""RTCP compound parse/build for every packet type, strict and lenient parsing."""

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp.errors import ParseError
from confsfu.rtp.rtcp import (
    FullIntraRequest,
    Goodbye,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    middle_32,
    ms_from_ntp,
    ntp_from_ms,
    parse_rtcp,
    parse_rtcp_lenient,
    round_trip_ms,
)
from confsfu.rtp.rtcp_build import build_nack_pairs, serialize_rtcp
from confsfu.rtp.seq import seq_diff

BLOCK = ReportBlock(
    ssrc=0x1111,
    fraction_lost=64,
    packets_lost=-3,
    highest_sequence=70000,
    jitter=12,
    lsr=0xABCD0000,
    dlsr=65536,
)


def test_sender_report_bytes() -> None:
    sr = SenderReport(
        ssrc=0x01020304,
        ntp_timestamp=0x0102030405060708,
        rtp_timestamp=9,
        packet_count=10,
        octet_count=11,
        reports=(BLOCK,),
    )
    data = serialize_rtcp([sr])
    assert data[:4] == bytes.fromhex("81c8000c")  # RC=1, PT=200, 12 words
    assert data[4:28] == bytes.fromhex("010203040102030405060708000000090000000a0000000b")
    assert data[28:36] == bytes.fromhex("0000111140fffffd")  # fraction 64, lost -3
    assert parse_rtcp(data) == [sr]


def test_chrome_like_compound_rr_sdes() -> None:
    rr = bytes.fromhex("80c9000100000001")  # RR, no blocks
    sdes = bytes.fromhex("81ca0006000000010110") + b"wWpr6NEXY0GbQa1d" + b"\x00\x00"
    packets = parse_rtcp(rr + sdes)
    assert packets == [
        ReceiverReport(ssrc=1, reports=()),
        SourceDescription(chunks=((1, "wWpr6NEXY0GbQa1d"),)),
    ]
    assert serialize_rtcp(packets) == rr + sdes


def test_sdes_skips_other_items_and_multiple_chunks() -> None:
    body = (
        bytes.fromhex("0000000a0203")
        + b"bob"
        + bytes.fromhex("0102")
        + b"cn"
        + b"\x00"
        + b"\x00\x00"  # pad chunk to 16 bytes
        + bytes.fromhex("0000000b00000000")  # chunk without items
    )
    data = bytes.fromhex("82ca0006") + body
    assert parse_rtcp(data) == [SourceDescription(chunks=((10, "cn"), (11, "")))]


def test_goodbye_with_reason() -> None:
    bye = Goodbye(ssrcs=(1, 2), reason="left")
    data = serialize_rtcp([bye])
    assert data == bytes.fromhex("82cb0004000000010000000204") + b"left" + bytes(3)
    assert parse_rtcp(data) == [bye]


def test_pli_fir_bytes() -> None:
    pli = bytes.fromhex("81ce00020000000100000002")
    assert parse_rtcp(pli) == [PictureLossIndication(sender_ssrc=1, media_ssrc=2)]
    fir = bytes.fromhex("84ce000400000001000000000000000507000000")
    assert parse_rtcp(fir) == [FullIntraRequest(sender_ssrc=1, entries=((5, 7),))]
    assert serialize_rtcp(parse_rtcp(pli + fir)) == pli + fir


def test_nack_bytes() -> None:
    # PID 100, BLP bits 0 and 15 -> 100, 101, 116; then PID 200 alone.
    data = bytes.fromhex("81cd000400000001000000020064800100c80000")
    (nack,) = parse_rtcp(data)
    assert nack == Nack(sender_ssrc=1, media_ssrc=2, lost=(100, 101, 116, 200))
    assert serialize_rtcp([nack]) == data


def test_remb_chrome_bytes() -> None:
    data = bytes(
        [143, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 82, 69, 77, 66, 1, 26, 32, 223, 72, 116, 237, 22]
    )
    assert parse_rtcp(data) == [Remb(sender_ssrc=1, bitrate_bps=8927168, ssrcs=(1215622422,))]
    assert serialize_rtcp(parse_rtcp(data)) == data


def test_remb_rounds_down_to_representable() -> None:
    (remb,) = parse_rtcp(serialize_rtcp([Remb(1, 2_500_001, (7,))]))
    assert isinstance(remb, Remb)
    assert 2_500_001 - 16 <= remb.bitrate_bps <= 2_500_001


def test_unknown_types_are_kept() -> None:
    app = bytes.fromhex("80cc000200000001") + b"name"
    xr = bytes.fromhex("80cf000100000009")
    afb = bytes.fromhex("8fce0003000000010000000041424344")  # AFB, not REMB
    rtpfb = bytes.fromhex("83cd00020000000100000002")  # TMMBR
    packets = parse_rtcp(app + xr + afb + rtpfb)
    assert packets == [
        UnknownRtcp(204, 0, bytes.fromhex("00000001") + b"name"),
        UnknownRtcp(207, 0, bytes.fromhex("00000009")),
        UnknownRtcp(206, 15, bytes.fromhex("000000010000000041424344")),
        UnknownRtcp(205, 3, bytes.fromhex("0000000100000002")),
    ]
    assert serialize_rtcp(packets) == app + xr + afb + rtpfb


def test_padding_is_stripped() -> None:
    data = bytes.fromhex("a0cc00020000000100000004")  # APP, P bit, 4 bytes of padding
    assert parse_rtcp(data) == [UnknownRtcp(204, 0, bytes.fromhex("00000001"))]
    odd = UnknownRtcp(204, 1, b"abcde")
    assert parse_rtcp(serialize_rtcp([odd])) == [odd]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x80\xc9\x00", "truncated"),
        (bytes.fromhex("40c9000100000001"), "version"),
        (bytes.fromhex("8060000100000001"), "outside 192..223"),
        (bytes.fromhex("80c9000200000001"), "declares"),
        (bytes.fromhex("81c9000100000001"), "report blocks"),
        (bytes.fromhex("80c8000100000001"), "sender info"),
        (bytes.fromhex("a0cc000100000000"), "padding"),
        (bytes.fromhex("a0cc000100000009"), "padding"),
        (bytes.fromhex("81ca000100000001"), "not terminated"),
        (bytes.fromhex("81ca00020000000101ff0000"), "SDES item value"),
        (bytes.fromhex("81ca0002000000010102ff00"), "not UTF-8"),
        (bytes.fromhex("82cb000100000001"), "BYE"),
        (bytes.fromhex("81cd000100000001"), "RTPFB"),
        (bytes.fromhex("81ce000100000001"), "PSFB"),
        (bytes.fromhex("84ce0003000000010000000000000005"), "FIR"),
        (bytes.fromhex("8fce0004000000010000000052454d4202000001"), "REMB with 2"),
    ],
)
def test_malformed_raises_parse_error(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_rtcp(data)


def test_lenient_keeps_good_sub_packets() -> None:
    good = serialize_rtcp([PictureLossIndication(1, 2)])
    bad_body = bytes.fromhex("81c9000100000001")  # RR claims a block it lacks
    remb = serialize_rtcp([Remb(1, 300_000, (2,))])
    packets, errors = parse_rtcp_lenient(good + bad_body + remb)
    assert packets == [PictureLossIndication(1, 2), Remb(1, 300_000, (2,))]
    assert len(errors) == 1 and "report blocks" in str(errors[0])
    with pytest.raises(ParseError):
        parse_rtcp(good + bad_body + remb)
    # A framing error stops: what follows cannot be located.
    packets, errors = parse_rtcp_lenient(good + bytes.fromhex("80c9ff00") + remb)
    assert packets == [PictureLossIndication(1, 2)]
    assert len(errors) == 1 and "declares" in str(errors[0])
    packets, errors = parse_rtcp_lenient(b"")
    assert packets == [] and "empty" in str(errors[0])


def test_serialize_rejects_out_of_range() -> None:
    for packet in (
        ReceiverReport(1, (BLOCK,) * 32),
        ReceiverReport(1 << 32, ()),
        ReceiverReport(1, (ReportBlock(1, 256, 0, 0, 0, 0, 0),)),
        ReceiverReport(1, (ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0),)),
        Remb(1, -1, ()),
        Remb(1, 1, tuple(range(256))),
        SourceDescription(((1, "x" * 256),)),
        Goodbye((1,), "x" * 256),
        UnknownRtcp(100, 0, b""),
        Nack(1, 2, (70000,)),
    ):
        with pytest.raises(ValueError):
            serialize_rtcp([packet])


def test_ntp_helpers() -> None:
    unix_ms = 1_700_000_000_123
    ntp = ntp_from_ms(unix_ms)
    assert ntp >> 32 == 1_700_000_000 + 2_208_988_800
    assert ms_from_ntp(ntp) == unix_ms
    after_2036 = 2_100_000_000_000  # NTP seconds wrapped into era 1
    assert ntp_from_ms(after_2036) >> 63 == 0
    assert ms_from_ntp(ntp_from_ms(after_2036)) == after_2036
    assert middle_32(0x0102030405060708) == 0x03040506
    block = ReportBlock(1, 0, 0, 0, 0, lsr=middle_32(ntp_from_ms(unix_ms)), dlsr=65536 // 10)
    assert round_trip_ms(unix_ms + 150, block) == 50  # 150 ms elapsed, 100 ms held
    assert round_trip_ms(unix_ms, ReportBlock(1, 0, 0, 0, 0, 0, 0)) is None
    assert round_trip_ms(unix_ms, block) == 0  # negative through clock skew


def test_build_nack_pairs_wraps() -> None:
    assert build_nack_pairs([]) == []
    assert build_nack_pairs([65535, 0, 1]) == [(65535, 0b11)]
    assert build_nack_pairs([5, 22, 23, 5]) == [(5, 0), (22, 1)]
    assert build_nack_pairs([1, 17, 18]) == [(1, 1 << 15), (18, 0)]


# ------------------------------------------------------------------------------------ hypothesis

u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
cname = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
remb_bitrates = st.builds(lambda m, e: m << e, st.integers(0, 0x3FFFF), st.integers(0, 40))


@st.composite
def nack_lost(draw: st.DrawFn) -> tuple[int, ...]:
    base = draw(st.integers(0, 0xFFFF))
    offsets = draw(st.sets(st.integers(0, 32767), min_size=1, max_size=200))
    lost = [(base + o) & 0xFFFF for o in offsets]
    return tuple(sorted(lost, key=lambda s: seq_diff(s, base)))


packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=31).map(tuple),
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=31).map(tuple)),
    st.builds(SourceDescription, chunks=st.lists(st.tuples(u32, cname), max_size=31).map(tuple)),
    st.builds(Goodbye, ssrcs=st.lists(u32, max_size=31).map(tuple), reason=cname),
    st.builds(PictureLossIndication, sender_ssrc=u32, media_ssrc=u32),
    st.builds(
        FullIntraRequest,
        sender_ssrc=u32,
        entries=st.lists(st.tuples(u32, st.integers(0, 255)), max_size=10).map(tuple),
    ),
    st.builds(Nack, sender_ssrc=u32, media_ssrc=u32, lost=nack_lost()),
    st.builds(
        Remb,
        sender_ssrc=u32,
        bitrate_bps=remb_bitrates,
        ssrcs=st.lists(u32, max_size=20).map(tuple),
    ),
    st.builds(
        UnknownRtcp,
        packet_type=st.sampled_from([192, 195, 204, 207, 223]),
        fmt=st.integers(0, 31),
        body=st.binary(max_size=64),
    ),
)


@given(st.lists(packets, min_size=1, max_size=5))
def test_compound_round_trip(compound: list[RtcpPacket]) -> None:
    data = serialize_rtcp(compound)
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == compound
    assert parse_rtcp_lenient(data) == (compound, [])


@given(nack_lost())
def test_nack_pairs_round_trip(lost: tuple[int, ...]) -> None:
    pairs = build_nack_pairs(reversed(lost))
    assert all(0 <= pid <= 0xFFFF and 0 <= blp <= 0xFFFF for pid, blp in pairs)
    assert len(pairs) <= len(lost)
    (nack,) = parse_rtcp(serialize_rtcp([Nack(1, 2, lost)]))
    assert nack == Nack(1, 2, lost)


@given(st.integers(0, 4_000_000_000_000))
def test_ntp_round_trip(unix_ms: int) -> None:
    assert ms_from_ntp(ntp_from_ms(unix_ms)) == unix_ms


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_rtcp(data)
    parse_rtcp_lenient(data)


@given(
    pt=st.sampled_from([200, 201, 202, 203, 205, 206]),
    count=st.integers(0, 31),
    body=st.binary(max_size=120),
    padding=st.booleans(),
)
def test_well_framed_garbage_bodies_parse_or_raise_parse_error(
    pt: int, count: int, body: bytes, padding: bool
) -> None:
    body += bytes(-len(body) % 4)
    header = struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, len(body) // 4)
    data = header + body
    try:
        parsed = parse_rtcp(data)
    except ParseError:
        packets, errors = parse_rtcp_lenient(data)
        assert packets == [] and len(errors) == 1
        return
    assert len(parsed) == 1
