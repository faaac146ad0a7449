"""SlotForwarder: continuous seq/ts/picture id/TL0PICIDX across source switches, keyframe gating."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.codecs.vp8 import Vp8Descriptor, packetize_vp8, parse_vp8
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp

from .arrivals import Arrivals

arrive = Arrivals()

# VP8 frame headers: bit 0 of the first byte is P (0 = keyframe).
KEYFRAME = bytes((0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01)) + bytes(40)
DELTA = bytes((0x31, 0x42, 0x00)) + bytes(40)
VIDEO_HZ = 90_000
AUDIO_HZ = 48_000

Decision = tuple[int, int, int | None, int | None]


def video(
    seq: int,
    ts: int,
    picture_id: int,
    tl0: int,
    *,
    key: bool = False,
    ssrc: int = 1,
    start: bool = True,
    tid: int = 0,
) -> tuple[RtpPacket, Vp8Descriptor]:
    """One VP8 packet (the first of its frame unless start=False), parsed as the server sees it."""
    frame = KEYFRAME if key else DELTA
    payloads = packetize_vp8(
        frame, picture_id=picture_id, tl0picidx=tl0, temporal_id=tid, layer_sync=False
    )
    payload = payloads[0]
    if not start:  # a continuation packet: S bit cleared
        payload = bytes((payload[0] & ~0x10,)) + payload[1:]
    data = build_rtp(payload_type=96, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload)
    pkt = parse_rtp(data)
    return pkt, parse_vp8(pkt.payload)


def audio(seq: int, ts: int, *, ssrc: int = 2) -> RtpPacket:
    data = build_rtp(payload_type=111, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=b"op")
    return parse_rtp(data)


def video_slot(initial_seq: int = 1000, initial_ts: int = 5000) -> SlotForwarder:
    return SlotForwarder(
        is_video=True, clock_rate=VIDEO_HZ, initial_seq=initial_seq, initial_ts=initial_ts
    )


def audio_slot(initial_seq: int = 1000, initial_ts: int = 5000) -> SlotForwarder:
    return SlotForwarder(
        is_video=False, clock_rate=AUDIO_HZ, initial_seq=initial_seq, initial_ts=initial_ts
    )


def fwd(
    slot: SlotForwarder, now_ms: int, source: str, packet: tuple[RtpPacket, Vp8Descriptor]
) -> Decision | None:
    return slot.forward(now_ms, arrive(source, packet[0], packet[1]))


def must(decision: Decision | None) -> Decision:
    assert decision is not None, "the packet was dropped"
    return decision


# ---- the first source ---------------------------------------------------------------------


def test_first_source_starts_at_the_initial_values_and_keeps_its_descriptor() -> None:
    slot = video_slot(initial_seq=1000, initial_ts=5000)
    assert slot.assign(0, "a") is True
    assert slot.pending == "a" and slot.source is None
    out = must(fwd(slot, 0, "a", video(40_000, 123_456, 777, 9, key=True)))
    assert out == (1000, 5000, 777, 9)
    assert slot.source == "a" and slot.pending is None
    assert not slot.rewrites_descriptor
    # The next frame: the source's own deltas carry through.
    assert fwd(slot, 33, "a", video(40_001, 123_456 + 3000, 778, 10)) == (1001, 8000, 778, 10)
    assert not slot.rewrites_descriptor


def test_video_slot_waits_for_a_keyframe_of_its_first_source() -> None:
    slot = video_slot()
    slot.assign(0, "a")
    assert fwd(slot, 0, "a", video(10, 0, 1, 1)) is None
    assert fwd(slot, 0, "a", video(11, 0, 1, 1, key=True, start=False)) is None  # no S bit
    assert slot.source is None
    assert fwd(slot, 0, "a", video(12, 3000, 2, 2, key=True)) is not None
    assert slot.source == "a"


def test_packets_of_unassigned_sources_are_dropped() -> None:
    slot = video_slot()
    assert fwd(slot, 0, "a", video(1, 0, 1, 1, key=True)) is None  # nothing assigned yet
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(1, 0, 1, 1, key=True))
    assert fwd(slot, 0, "x", video(1, 0, 1, 1, key=True)) is None


def test_assign_returns_whether_a_keyframe_is_needed() -> None:
    slot = video_slot()
    assert slot.assign(100, "a") is True
    assert slot.pending_since_ms == 100
    assert slot.assign(150, "a") is True  # still pending: asking again is fine ...
    assert slot.pending_since_ms == 100  # ... but the wait started at the first ask
    fwd(slot, 200, "a", video(1, 0, 1, 1, key=True))
    assert slot.assign(300, "a") is False  # already carried
    assert slot.assign(400, "b") is True
    assert slot.pending_since_ms == 400
    assert slot.assign(500, "a") is False  # back to the current source: pending dropped
    assert slot.pending is None and slot.source == "a"
    assert slot.assign(600, None) is False
    assert audio_slot().assign(0, "a") is False


# ---- switching ----------------------------------------------------------------------------


def test_video_switch_waits_for_the_new_sources_keyframe_and_keeps_the_old_one() -> None:
    slot = video_slot(initial_seq=100, initial_ts=1000)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(500, 90_000, 50, 5, key=True))
    slot.assign(10, "b")
    # b's delta frames are dropped; a keeps flowing, in sequence.
    assert fwd(slot, 20, "b", video(7000, 1_000_000, 3000, 200)) is None
    assert fwd(slot, 33, "a", video(501, 93_000, 51, 6)) == (101, 4000, 51, 6)
    assert fwd(slot, 40, "b", video(7001, 1_003_000, 3001, 201)) is None
    assert fwd(slot, 66, "a", video(502, 96_000, 52, 7)) == (102, 7000, 52, 7)
    assert slot.source == "a" and slot.pending == "b"
    # b's keyframe: the switch; seq, picture id and TL0PICIDX continue by one.
    out = must(fwd(slot, 100, "b", video(7002, 1_006_000, 3002, 202, key=True)))
    elapsed_ticks = (100 - 66) * VIDEO_HZ // 1000
    assert out == (103, 7000 + elapsed_ticks, 53, 8)
    assert slot.source == "b" and slot.pending is None
    assert slot.rewrites_descriptor
    # b continues with its own deltas; a is now dropped.
    assert fwd(slot, 133, "b", video(7003, 1_009_000, 3003, 203)) == (
        104,
        7000 + elapsed_ticks + 3000,
        54,
        9,
    )
    assert fwd(slot, 133, "a", video(503, 99_000, 53, 8, key=True)) is None


def test_packets_of_the_switch_keyframe_after_its_first_are_forwarded() -> None:
    slot = video_slot(initial_seq=0)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(10, 0, 1, 1, key=True))
    slot.assign(0, "b")
    fwd(slot, 10, "b", video(90, 500, 70, 30, key=True))
    second = must(fwd(slot, 10, "b", video(91, 500, 70, 30, key=True, start=False)))
    assert second[0] == 2 and second[2] == 2  # same frame: same picture id, next seq


def test_switch_in_the_same_millisecond_still_advances_the_timestamp() -> None:
    slot = video_slot(initial_ts=0)
    slot.assign(0, "a")
    fwd(slot, 50, "a", video(1, 0, 1, 1, key=True))
    slot.assign(50, "b")
    out = must(fwd(slot, 50, "b", video(1, 777, 1, 1, key=True)))
    assert out[1] == 1


@pytest.mark.parametrize(
    ("a_start", "b_start", "initial_seq"),
    [
        # a near every wrap point, b small.
        ((65_534, 2**32 - 3000, 32_766, 254), (10, 10, 10, 10), 65_533),
        # b near every wrap point, a small.
        ((10, 10, 10, 10), (65_534, 2**32 - 3000, 32_766, 254), 100),
        # the slot's own numbers wrap at the switch.
        ((300, 0, 100, 0), (65_535, 2**32 - 1, 32_767, 255), 65_535),
    ],
)
def test_switch_continuity_across_wraparound(
    a_start: tuple[int, int, int, int], b_start: tuple[int, int, int, int], initial_seq: int
) -> None:
    slot = video_slot(initial_seq=initial_seq, initial_ts=2**32 - 1000)
    outs: list[Decision] = []
    now = 0
    for source, (seq0, ts0, pic0, tl00) in (("a", a_start), ("b", b_start), ("a", a_start)):
        slot.assign(now, source)
        # Four frames from each source, the first a keyframe (the source resumes where it would be).
        for i in range(4):
            now += 33
            pkt = video(
                (seq0 + i) % 65_536,
                (ts0 + 3000 * i) % 2**32,
                (pic0 + i) % 32_768,
                (tl00 + i) % 256,
                key=i == 0,
            )
            outs.append(must(fwd(slot, now, source, pkt)))
    for prev, cur in pairwise(outs):
        assert cur[0] == (prev[0] + 1) % 65_536
        assert cur[2] == ((prev[2] or 0) + 1) % 32_768
        assert cur[3] == ((prev[3] or 0) + 1) % 256
        assert 0 < (cur[1] - prev[1]) % 2**32 <= 3000
    assert outs[0][0] == initial_seq


def test_audio_switches_at_the_next_packet_of_the_new_source() -> None:
    slot = audio_slot(initial_seq=65_535, initial_ts=2**32 - 480)
    slot.assign(0, "a")
    assert slot.forward(0, arrive("a", audio(9, 48_000))) == (65_535, 2**32 - 480, None, None)
    assert slot.forward(20, arrive("a", audio(10, 48_960))) == (0, 480, None, None)
    slot.assign(25, "b")
    # Until b speaks, a still goes out.
    assert slot.forward(40, arrive("a", audio(11, 49_920))) == (1, 1440, None, None)
    out = slot.forward(45, arrive("b", audio(30_000, 7)))  # any packet, no keyframe needed
    assert out == (2, 1440 + 5 * AUDIO_HZ // 1000, None, None)
    assert slot.source == "b"
    assert slot.forward(60, arrive("a", audio(12, 50_880))) is None
    assert not slot.rewrites_descriptor


def test_emptied_slot_stops_at_once_and_resumes_continuously() -> None:
    slot = video_slot(initial_seq=10)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(100, 0, 5, 5, key=True))
    assert slot.assign(10, None) is False
    assert slot.source is None and slot.pending is None
    assert fwd(slot, 20, "a", video(101, 3000, 6, 6)) is None
    assert fwd(slot, 20, "a", video(102, 6000, 7, 7, key=True)) is None
    assert slot.assign(30, "a") is True  # coming back needs a keyframe
    assert fwd(slot, 40, "a", video(103, 9000, 8, 8)) is None
    out = must(fwd(slot, 50, "a", video(104, 12000, 9, 9, key=True)))
    assert (out[0], out[2], out[3]) == (11, 6, 6)


def test_audio_slot_emptied_then_refilled() -> None:
    slot = audio_slot(initial_seq=0)
    slot.assign(0, "a")
    slot.forward(0, arrive("a", audio(50, 0)))
    slot.assign(10, None)
    assert slot.forward(20, arrive("a", audio(51, 960))) is None
    slot.assign(30, "a")
    assert slot.forward(40, arrive("a", audio(52, 1920))) == (1, 5000 + 40 * 48, None, None)


# ---- reordering and retransmission ----------------------------------------------------------


def test_reordered_and_retransmitted_packets_keep_their_place() -> None:
    slot = video_slot(initial_seq=65_530)
    slot.assign(0, "a")
    first = must(fwd(slot, 0, "a", video(200, 0, 10, 1, key=True)))
    outs = {200: first}
    for seq in (201, 203, 204):  # 202 is late
        outs[seq] = must(fwd(slot, seq, "a", video(seq, 3000 * (seq - 200), seq - 190, 1)))
    late = must(fwd(slot, 210, "a", video(202, 6000, 12, 1)))
    assert late[0] == (first[0] + 2) % 65_536
    assert late[2] == 12
    assert slot.last_seq == outs[204][0]  # the late packet did not move the stream back
    assert slot.last_picture_id == 14
    # A retransmission of 201 gets the very same numbers.
    assert fwd(slot, 220, "a", video(201, 3000, 11, 1)) == outs[201]
    # In-order traffic continues after the newest, not after the late one.
    assert must(fwd(slot, 230, "a", video(205, 15000, 15, 1)))[0] == (outs[204][0] + 1) % 65_536


def test_reordered_packets_around_a_switch() -> None:
    slot = video_slot(initial_seq=0)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(10, 0, 1, 1, key=True))
    fwd(slot, 33, "a", video(12, 3000, 2, 1))  # 11 is late
    slot.assign(40, "b")
    out_b = must(fwd(slot, 50, "b", video(500, 0, 100, 50, key=True)))
    assert out_b[0] == 3  # after a's newest (out 2), leaving a's place 1 free
    # a's late packet now belongs to a stream the slot no longer carries.
    assert fwd(slot, 60, "a", video(11, 1500, 1, 1, start=False)) is None
    assert fwd(slot, 70, "b", video(501, 3000, 101, 50)) == (4, out_b[1] + 3000, 4, 2)
    # A packet b sent before its keyframe (reordered, or an RTX answer to an upstream NACK) would
    # take the place of a's packet that went out as 2: it must be dropped, not sent twice.
    assert fwd(slot, 80, "b", video(498, 2**32 - 3000, 99, 49, start=False)) is None
    assert fwd(slot, 80, "b", video(499, 2**32 - 3000, 99, 49, start=False)) is None
    assert fwd(slot, 90, "b", video(500, 0, 100, 50, key=True)) == out_b


def test_the_pre_switch_guard_ends_so_a_long_stream_keeps_flowing() -> None:
    slot = video_slot(initial_seq=0)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(5, 0, 1, 1, key=True))
    # In-order jumps of 4000 (losses) take the stream far past half the sequence space.
    for i in range(1, 21):
        out = must(fwd(slot, i, "a", video((5 + 4000 * i) % 65_536, 3000 * i, 1 + i, 1)))
        assert out[0] == 4000 * i % 65_536
    assert slot.rebased == 0
    # A late packet from just before the newest is still forwarded in its place.
    late = must(fwd(slot, 30, "a", video((5 + 80_000 - 3) % 65_536, 0, 9, 1)))
    assert late[0] == (80_000 - 3) % 65_536


@pytest.mark.parametrize("jump", [4097, 32_767, 32_768, 32_769, 40_000, -4097, -30_000])
def test_a_jump_in_the_source_numbers_never_brings_back_a_number_already_sent(jump: int) -> None:
    # A publisher's padding-only packets are counted but never reach the slot: the next media
    # packet then arrives far from the last one forwarded (or a new SSRC starts elsewhere).
    slot = audio_slot(initial_seq=100)
    slot.assign(0, "a")
    sent = [must(slot.forward(0, arrive("a", audio(1000 + i, 960 * i))))[0] for i in range(3)]
    assert sent == [100, 101, 102]
    ssrc = 2 if jump > 0 else 3  # a backward jump comes from a stream unwrapped on its own
    after = [
        must(slot.forward(20, arrive("a", audio((1003 + jump + i) % 65_536, 0, ssrc=ssrc))))[0]
        for i in range(3)
    ]
    assert after == [103, 104, 105]
    assert slot.rebased == 1
    # A packet from before the jump is far from the newest again: it too gets a new number.
    late = slot.forward(30, arrive("a", audio(1001, 960)))
    assert late is None or late[0] not in sent + after


def test_a_jump_carried_by_a_dropped_packet_is_stepped_over_too() -> None:
    slot = video_slot(initial_seq=0)
    slot.assign(0, "a")
    slot.max_temporal = 0
    assert must(fwd(slot, 0, "a", video(10, 0, 1, 1, key=True)))[0] == 0
    # A TL1 packet half the sequence space ahead is dropped at max_temporal 0...
    assert fwd(slot, 1, "a", video(10 + 30_000, 3000, 2, 1, tid=1)) is None
    # ...and the TL0 packet after it goes out next to the keyframe, not 30,000 further on.
    assert must(fwd(slot, 2, "a", video(10 + 30_001, 6000, 3, 2)))[0] == 1
    assert slot.rebased == 1


def test_a_slot_forwarder_is_initialised_once() -> None:
    slot = video_slot(initial_seq=7)
    with pytest.raises(RuntimeError, match="once"):
        slot.__init__(is_video=True, clock_rate=VIDEO_HZ, initial_seq=7, initial_ts=0)  # type: ignore[misc]


def test_first_source_far_from_zero_still_continues_after_a_switch() -> None:
    # Picture ids >= 16384 and TL0PICIDX >= 128 are "older" than the initial 0 in wrap arithmetic.
    slot = video_slot(initial_seq=0)
    slot.assign(0, "a")
    fwd(slot, 0, "a", video(1, 0, 20_000, 200, key=True))
    fwd(slot, 33, "a", video(2, 3000, 20_001, 201))
    slot.assign(40, "b")
    out = must(fwd(slot, 50, "b", video(9, 0, 5, 5, key=True)))
    assert (out[2], out[3]) == (20_002, 202)


# ---- timestamps ---------------------------------------------------------------------------


def test_translate_timestamp_matches_forwarded_timestamps() -> None:
    slot = video_slot(initial_ts=123)
    assert slot.translate_timestamp(999) == 999  # no source yet: no offset
    slot.assign(0, "a")
    out = must(fwd(slot, 0, "a", video(1, 2**32 - 10, 1, 1, key=True)))
    assert slot.translate_timestamp(2**32 - 10) == out[1] == 123
    assert slot.translate_timestamp(2**32 - 10 + 90_000) == (123 + 90_000) % 2**32
    slot.assign(100, "b")
    out_b = must(fwd(slot, 200, "b", video(1, 55, 1, 1, key=True)))
    assert slot.translate_timestamp(55) == out_b[1]
    assert slot.translate_timestamp(55 + 3000) == (out_b[1] + 3000) % 2**32


# ---- property: any switch schedule gives a continuous stream --------------------------------


@dataclass
class Source:
    seq: int
    ts: int
    pic: int
    tl0: int
    frames: int = 0


Step = tuple[str, str | None, bool, int]  # ("assign"|"frame", source, keyframe, packets)

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("assign"),
            st.sampled_from(["a", "b", "c", None]),
            st.just(False),
            st.just(0),
        ),
        st.tuples(
            st.just("frame"),
            st.sampled_from(["a", "b", "c"]),
            st.booleans(),
            st.integers(1, 3),
        ),
    ),
    max_size=80,
)
starts = st.tuples(
    st.integers(0, 65_535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32_767),
    st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(
    is_video=st.booleans(),
    initial_seq=st.integers(0, 65_535),
    initial_ts=st.integers(0, 2**32 - 1),
    source_starts=st.lists(starts, min_size=3, max_size=3),
    schedule=steps,
)
def test_any_switch_schedule_gives_a_continuous_stream(
    is_video: bool,
    initial_seq: int,
    initial_ts: int,
    source_starts: list[tuple[int, int, int, int]],
    schedule: list[Step],
) -> None:
    slot = SlotForwarder(
        is_video=is_video,
        clock_rate=VIDEO_HZ if is_video else AUDIO_HZ,
        initial_seq=initial_seq,
        initial_ts=initial_ts,
    )
    sources = {name: Source(*start) for name, start in zip("abc", source_starts, strict=True)}
    # A model of which packets should go out: the slot's current and pending source.
    current: str | None = None
    pending: str | None = None
    outs: list[Decision] = []
    now = 0
    for action, name, key, count in schedule:
        now += 7
        if action == "assign":
            slot.assign(now, name)
            if name == current:
                pending = None
            else:
                pending = name
                if name is None:
                    current = None
            continue
        assert name is not None
        src = sources[name]
        for i in range(count):
            pkt: RtpPacket
            vp8: Vp8Descriptor | None
            if is_video:
                pkt, vp8 = video(src.seq, src.ts, src.pic, src.tl0, key=key, start=i == 0)
            else:
                pkt, vp8 = audio(src.seq, src.ts), None
            starts_switch = (
                name == pending and name != current and (not is_video or (key and i == 0))
            )
            expected = name == current or starts_switch
            if starts_switch:
                current, pending = name, None
            out = slot.forward(now, arrive(name, pkt, vp8))
            assert (out is not None) == expected
            if out is not None:
                outs.append(out)
            src.seq = (src.seq + 1) % 65_536
        src.ts = (src.ts + 3000) % 2**32
        src.pic = (src.pic + 1) % 32_768
        src.tl0 = (src.tl0 + 1) % 256
    assert slot.source == current and slot.pending == pending
    if outs:
        assert outs[0][0] == initial_seq
    for prev, cur in pairwise(outs):
        assert cur[0] == (prev[0] + 1) % 65_536, "out sequence numbers must step by one"
        assert (cur[1] - prev[1]) % 2**32 < 2**31, "timestamps must not go back"
        if is_video:
            assert (cur[2] or 0) - (prev[2] or 0) in (0, 1, 1 - 32_768)
            assert (cur[3] or 0) - (prev[3] or 0) in (0, 1, 1 - 256)


# ---- a paused slot: never shows a picture of whoever it switches to ----------------------------


def test_a_paused_slot_switches_only_on_a_keyframe_it_forwards() -> None:
    slot = video_slot()
    slot.assign(0, "a")
    must(fwd(slot, 0, "a", video(1, 0, 1, 1, key=True)))
    slot.max_temporal = -1  # paused (bandwidth): the slot is then given to "b"
    assert slot.assign(10, "b") is True
    assert fwd(slot, 20, "a", video(2, 3000, 2, 2)) is None
    assert fwd(slot, 30, "b", video(50, 9000, 70, 7, key=True)) is None
    assert (slot.source, slot.pending) == ("a", "b")  # still whoever it last showed
    slot.max_temporal = 2  # resumed: "b"'s next keyframe is the switch, and it goes out
    assert fwd(slot, 40, "b", video(51, 12_000, 71, 8)) is None
    _, ts, _, _ = must(fwd(slot, 50, "b", video(52, 15_000, 72, 9, key=True)))
    assert (slot.source, slot.pending) == ("b", None)
    assert slot.switched_ts == ts


def test_a_paused_slot_forwards_nothing_of_a_source_without_temporal_layers() -> None:
    slot = video_slot()
    slot.assign(0, "a")
    # A screen share sent without VP8's extensions: S bit, then a keyframe (P = 0) or delta.
    data = build_rtp(
        payload_type=96, sequence_number=2, timestamp=3000, ssrc=1, payload=b"\x10\x50" + bytes(9)
    )
    keyframe = parse_rtp(data)
    assert parse_vp8(keyframe.payload).temporal_id is None
    must(slot.forward(0, arrive("a", keyframe, parse_vp8(keyframe.payload))))
    slot.max_temporal = -1
    later = parse_rtp(
        build_rtp(payload_type=96, sequence_number=3, timestamp=6000, ssrc=1, payload=b"\x10\x51")
    )
    assert slot.forward(10, arrive("a", later, parse_vp8(later.payload))) is None
    slot.max_temporal = 0  # resumes on a keyframe only
    delta = parse_rtp(
        build_rtp(payload_type=96, sequence_number=4, timestamp=9000, ssrc=1, payload=b"\x10\x51")
    )
    assert slot.forward(20, arrive("a", delta, parse_vp8(delta.payload))) is None
    again = parse_rtp(
        build_rtp(payload_type=96, sequence_number=5, timestamp=12_000, ssrc=1, payload=b"\x10\x50")
    )
    assert slot.forward(30, arrive("a", again, parse_vp8(again.payload))) is not None
