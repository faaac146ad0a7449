"""Temporal-layer dropping in a slot: continuous sequence numbers and picture ids, safe switches."""

from __future__ import annotations

import itertools

from confsfu.codecs.vp8 import Vp8Descriptor, packetize_vp8, parse_vp8
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp

from .arrivals import Arrivals

arrive = Arrivals()

PATTERN = (0, 2, 1, 2)  # L1T3: TID of frames 0, 1, 2, 3, then again
SRC = "a/video#0"


def frame(i: int, *, keyframe: bool = False, sync: bool = False) -> tuple[RtpPacket, Vp8Descriptor]:
    tid = PATTERN[i % 4]
    body = (b"\x10\x02\x00\x9d\x01\x2a" if keyframe else b"\x11\x02\x00") + bytes(20)
    (payload,) = packetize_vp8(
        body,
        picture_id=(1000 + i) % 32768,
        tl0picidx=(i // 4) % 256,
        temporal_id=tid,
        layer_sync=sync,
    )
    raw = build_rtp(
        payload_type=96,
        sequence_number=(65530 + i) % 65536,
        timestamp=3000 * i,
        ssrc=1,
        payload=payload,
        marker=True,
    )
    pkt = parse_rtp(raw)
    return pkt, parse_vp8(pkt.payload)


def run(
    fwd: SlotForwarder, frames: range
) -> list[tuple[int, tuple[int, int, int | None, int | None]]]:
    out = []
    for i in frames:
        pkt, vp8 = frame(i, keyframe=i == 0)
        result = fwd.forward(i * 33, arrive(SRC, pkt, vp8))
        if result is not None:
            out.append((i, result))
    return out


def new_slot(max_temporal: int) -> SlotForwarder:
    fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=100, initial_ts=0)
    fwd.max_temporal = max_temporal
    fwd.assign(0, SRC)
    return fwd


def assert_continuous(out: list[tuple[int, tuple[int, int, int | None, int | None]]]) -> None:
    for (_, a), (_, b) in itertools.pairwise(out):
        assert b[0] == (a[0] + 1) % 65536, (a, b)
        assert b[2] == ((a[2] or 0) + 1) % 32768, (a, b)


def test_base_layer_only_quarter_frame_rate_continuous_numbers() -> None:
    out = run(new_slot(0), range(40))
    assert [i for i, _ in out] == list(range(0, 40, 4))
    assert_continuous(out)
    assert [r[3] for _, r in out] == [i // 4 for i, _ in out]  # TL0PICIDX steps by one


def test_two_layers_half_frame_rate() -> None:
    out = run(new_slot(1), range(40))
    assert [i for i, _ in out] == [i for i in range(40) if PATTERN[i % 4] <= 1]
    assert_continuous(out)


def test_all_layers_pass_untouched_numbers_step_by_one() -> None:
    out = run(new_slot(2), range(20))
    assert [i for i, _ in out] == list(range(20))
    assert_continuous(out)


def test_going_down_at_any_frame_and_up_only_at_a_tl0_frame() -> None:
    fwd = new_slot(2)
    out = run(fwd, range(0, 6))
    fwd.max_temporal = 0
    out += run(fwd, range(6, 14))  # down at frame 6 (a TID 1 frame start): dropped at once
    fwd.max_temporal = 2
    out += run(fwd, range(14, 24))  # frame 14 is TID 1: not before frame 16 (TID 0)
    kept = [i for i, _ in out]
    assert kept == [0, 1, 2, 3, 4, 5, 8, 12, 16, 17, 18, 19, 20, 21, 22, 23]
    assert_continuous(out)


def test_up_switch_at_a_layer_sync_frame() -> None:
    fwd = new_slot(0)
    out = run(fwd, range(0, 5))
    fwd.max_temporal = 1
    pkt, vp8 = frame(6, sync=True)  # TID 1 with the layer-sync bit
    assert fwd.forward(200, arrive(SRC, pkt, vp8)) is not None
    assert [i for i, _ in out] == [0, 4]


def test_a_late_retransmission_keeps_its_original_numbers() -> None:
    fwd = new_slot(0)
    out = dict(run(fwd, range(0, 20)))
    pkt, vp8 = frame(8)  # TID 0, sent before; arrives again (e.g. RTX)
    assert fwd.forward(999, arrive(SRC, pkt, vp8)) == out[8]


def test_a_paused_slot_resumes_only_on_a_keyframe() -> None:
    fwd = new_slot(2)
    run(fwd, range(0, 3))
    fwd.max_temporal = -1  # paused for bandwidth
    assert run(fwd, range(3, 9)) == []
    fwd.max_temporal = 2
    assert run(fwd, range(9, 13)) == []  # TL0 frame 12 is no keyframe: still waiting
    pkt, vp8 = frame(16, keyframe=True)
    assert fwd.forward(600, arrive(SRC, pkt, vp8)) is not None
