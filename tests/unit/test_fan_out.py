"""confsfu.server._wire.fan_out (C): one incoming packet onto many slots, checked against each
slot's own forwarder decision, `rewrite_vp8` and `SlotHeader.build`, by unprotecting what
arrives."""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.codecs.vp8 import packetize_vp8, parse_vp8, rewrite_vp8
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire

from .arrivals import Arrivals
from .test_wire import route_to, sessions, video_header

KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01"  # a VP8 keyframe header, 640x480


@dataclass
class FakeSlot:
    forwarder: SlotForwarder
    wire: _wire.Wire | None


def entries(slots: list[FakeSlot]) -> tuple[tuple[FakeSlot, SlotForwarder, _wire.Wire], ...]:
    """What RoomMedia hands fan_out for a layer: its slots that have a wire."""
    return tuple((s, s.forwarder, s.wire) for s in slots if s.wire is not None)


def vp8_packets(tids: list[int], first_picture: int, first_tl0: int) -> Iterator[SourcePacket]:
    """One packet per frame, the first a keyframe, with picture ids and TL0PICIDX wrapping."""
    arrive = Arrivals()
    tl0 = first_tl0
    for i, tid in enumerate(tids):
        if tid == 0 and i:
            tl0 += 1
        body = (KEYFRAME if i == 0 else b"\x11\x02\x00") + bytes([i % 256]) * 40
        (payload,) = packetize_vp8(
            body,
            picture_id=(first_picture + i) % 32768,
            tl0picidx=tl0 % 256,
            temporal_id=tid,
            layer_sync=tid == 1,
        )
        raw = build_rtp(
            payload_type=96,
            sequence_number=(65_530 + i) % 65536,
            timestamp=(2**32 - 3000 + 3000 * i) % 2**32,
            ssrc=7,
            payload=payload,
            marker=True,
        )
        pkt = parse_rtp(raw)
        yield arrive("a#0", pkt, parse_vp8(pkt.payload))


def started(max_temporal: int, initial_seq: int) -> SlotForwarder:
    forwarder = SlotForwarder(
        is_video=True, clock_rate=90000, initial_seq=initial_seq, initial_ts=initial_seq * 7
    )
    forwarder.max_temporal = max_temporal
    forwarder.assign(0, "a#0")
    return forwarder


@settings(max_examples=30, deadline=None)
@given(
    tids=st.lists(st.sampled_from([0, 1, 2]), min_size=2, max_size=24),
    targets=st.lists(st.integers(-1, 2), min_size=1, max_size=5),
    first_picture=st.integers(0, 32767),
    first_tl0=st.integers(0, 255),
    retarget_at=st.integers(0, 24),
)
def test_each_slot_gets_what_its_forwarder_decides_with_its_own_numbers(
    tids: list[int],
    targets: list[int],
    first_picture: int,
    first_tl0: int,
    retarget_at: int,
) -> None:
    tx, rx = sessions()
    headers = [video_header(ssrc=i + 1) for i in range(len(targets))]  # libsrtp: one per SSRC
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2.0)
        route = route_to(receiver, sender, tx)
        # Every slot has a twin forwarder, driven by hand through forward() and rewrite_vp8.
        slots = [
            FakeSlot(started(t, 100 * i), _wire.Wire(route, h.template(), 0, history=64))
            for i, (t, h) in enumerate(zip(targets, headers, strict=True))
        ]
        twins = [started(t, 100 * i) for i, t in enumerate(targets)]
        for n, p in enumerate(vp8_packets(tids, first_picture, first_tl0)):
            if n == retarget_at:  # targets change mid-stream: drops shift picture ids
                for slot, twin in zip(slots, twins, strict=True):
                    slot.forwarder.max_temporal = twin.max_temporal = 2 - twin.max_temporal
            sent, sent_bytes, switched, unrouted = _wire.fan_out(entries(slots), p, 1000 + n, b"")
            assert _wire.flush() == 0 and unrouted is None
            expected, moved = [], []
            for slot, twin, header in zip(slots, twins, headers, strict=True):
                before = twin.source
                decision = twin.forward(1000 + n, p)
                if twin.source is not before:
                    moved.append(slot)
                if decision is None:
                    continue
                seq, ts, pic, tl0 = decision
                body = rewrite_vp8(p.payload, p.vp8, pic, tl0) if p.vp8 else p.payload
                expected.append(header.build(p.marker, seq, ts, 0, body))
                kept = (p.marker, ts, body, bytes(3))
                assert slot.wire is not None and slot.wire.sent(seq) == kept
                assert slot.forwarder.last_seq == twin.last_seq
            arrived = [rx.unprotect(receiver.recv(2048)) for _ in expected]
            assert arrived == expected
            assert sent == len(expected) and sent_bytes == sum(len(x) for x in expected)
            # All start on the keyframe but the paused, which switch only when they forward one.
            assert switched == (moved or None)


def test_a_slot_without_a_route(receiver: socket.socket, sender: socket.socket) -> None:
    p = next(vp8_packets([0], 0, 0))
    down = FakeSlot(started(2, 1), _wire.Wire(_wire.Route(), video_header().template()))
    sent, _, switched, unrouted = _wire.fan_out(entries([down]), p, 0, abs_send_time(0))
    assert (sent, switched, unrouted) == (0, [down], [down])
    assert _wire.pending() == 0


def test_what_is_not_an_entry_is_refused() -> None:
    p = next(vp8_packets([0], 0, 0))
    wire = _wire.Wire(_wire.Route(), video_header().template())
    forwarder = started(2, 1)
    for bad in (
        [(None, forwarder, wire)],  # a list
        ((None, forwarder),),
        ((None, forwarder, wire, None),),
        (object(),),
        ((None, "not a forwarder", wire),),
        ((None, forwarder, None),),  # a slot with no wire has no entry
    ):
        with pytest.raises(TypeError):
            _wire.fan_out(bad, p, 0, b"")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        _wire.fan_out(((None, forwarder, wire),), object(), 0, b"")  # type: ignore[arg-type]
    assert forwarder.last_seq == started(2, 1).last_seq  # nothing was forwarded


def test_the_wire_keeps_what_it_sent_until_the_ring_comes_round(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, _ = sessions()
    header = SlotHeader(ssrc=9, payload_type=111, mid="0", mid_id=4)
    wire = _wire.Wire(route_to(receiver, sender, tx), header.template(), history=4)
    for seq in range(65_534, 65_536 + 3):
        assert wire.queue(seq % 2 == 0, seq % 65536, seq * 10, b"", bytes([seq % 256]))
    _wire.flush()
    assert wire.sent(65_534) is None  # overwritten by seq 2 (the ring holds 4)
    assert wire.sent(1) == (False, (65_537 * 10) % 2**32, bytes([65_537 % 256]), bytes(3))
    assert wire.sent(70_000) is None and wire.sent(-1) is None
    with pytest.raises(ValueError):
        _wire.Wire(_wire.Route(), header.template(), history=3)


def test_objects_never_initialised_fail_cleanly() -> None:
    wire = _wire.Wire.__new__(_wire.Wire)
    with pytest.raises(RuntimeError, match="never initialised"):
        wire.queue(True, 1, 2, b"", b"x")
    assert wire.sent(1) is None and wire.route is None
    p = next(vp8_packets([0], 0, 0))
    bare = SlotForwarder.__new__(SlotForwarder)  # behaves as video at 90 kHz from seq 0
    assert bare.assign(0, "a#0") and bare.forward(0, p) is not None
    with pytest.raises(RuntimeError, match="never initialised"):
        _wire.fan_out(entries([FakeSlot(started(2, 1), wire)]), p, 0, b"")


def test_rewritten_packets_keep_one_shared_payload_in_history(
    receiver: socket.socket, sender: socket.socket
) -> None:
    # Slots that drop temporal layer 1 send later packets with their own picture ids; what they
    # keep for NACKs must be the one incoming payload, not a patched copy per slot.
    route = route_to(receiver, sender, sessions()[0])
    slots = [
        FakeSlot(started(0, 100 * i), _wire.Wire(route, video_header(ssrc=i + 1).template(), 0))
        for i in range(4)
    ]
    padded = list(vp8_packets([0, 1] * 40, 100, 5))
    for p in padded:
        p.payload = p.payload + bytes(1000)
        p.vp8 = parse_vp8(p.payload)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, p in enumerate(padded):
            _wire.fan_out(entries(slots), p, 1000 + n, b"")
            _wire.flush()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes kept for 40 packets on 4 slots"
    last = padded[-2]  # a TL0 packet every slot sent, with its picture id moved
    seq = slots[0].forwarder.last_seq
    _marker, _ts, payload, _ = slots[0].wire.sent(seq)  # type: ignore[union-attr, misc]
    assert payload != last.payload and len(payload) == len(last.payload)
    assert parse_vp8(payload).picture_id != last.picture_id
