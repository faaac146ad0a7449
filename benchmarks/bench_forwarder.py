"""CPU per packet out of the per-slot hot path: `fan_out` over 45 slots (each slot's forwarder
decision, descriptor rewrite, history, header write and SRTP protect, all C); then, apart, the
send.

.venv/bin/python benchmarks/bench_forwarder.py

The incoming packet is parsed and unwrapped once per packet by the server (`SourcePacket`), outside
what is measured here. Packets go to a UDP socket on 127.0.0.1 that nobody reads.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from pylibsrtp import Policy, Session

from confsfu.codecs.vp8 import packetize_vp8, parse_vp8
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

PATTERN = (0, 2, 1, 2)
N = 20_000


def packets() -> list[SourcePacket]:
    out = []
    for i in range(N):
        body = (b"\x10\x02\x00\x9d\x01\x2a" if i == 0 else b"\x11\x02\x00") + bytes(1100)
        (payload,) = packetize_vp8(
            body, picture_id=i % 32768, tl0picidx=(i // 4) % 256,
            temporal_id=PATTERN[i % 4], layer_sync=False,
        )  # fmt: skip
        raw = build_rtp(
            payload_type=96, sequence_number=i % 65536, timestamp=3000 * i, ssrc=1,
            payload=payload, marker=True, extensions={1: b"0", 3: b"\x00\x00\x00"},
        )  # fmt: skip
        pkt = parse_rtp(raw)
        out.append(SourcePacket("a#0", pkt, i, parse_vp8(pkt.payload), i))
    return out


@dataclass
class Slot:
    forwarder: SlotForwarder
    wire: _wire.Wire


def slots_for(wires: list[_wire.Wire]) -> list[Slot]:
    slots = []
    for wire in wires:
        fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=7, initial_ts=9)
        fwd.assign(0, "a#0")
        slots.append(Slot(fwd, wire))
    return slots


def measure(data: list[SourcePacket], slots: list[Slot]) -> float:
    """CPU microseconds per slot and incoming packet."""
    send_time = abs_send_time(1000)
    flush = _wire.flush
    entries = tuple((slot, slot.forwarder, slot.wire) for slot in slots)
    spent = 0
    for p in data:  # the arena is sent outside the clock
        begin = time.process_time_ns()
        _wire.fan_out(entries, p, 1000, send_time)
        spent += time.process_time_ns() - begin
        flush()
    return spent / len(data) / len(slots) / 1000


def measure_send(data: list[SourcePacket], wire: _wire.Wire, first_seq: int) -> float:
    """CPU per packet of `flush` alone: sendto on loopback, back to back, to a socket not read."""
    spent = 0
    for start in range(0, len(data), 64):
        for seq, p in enumerate(data[start : start + 64], first_seq + start):
            assert wire.queue(p.marker, seq, p.timestamp, b"\x00\x00\x00", p.payload)
        begin = time.process_time_ns()
        _wire.flush()
        spent += time.process_time_ns() - begin
    return spent / len(data) / 1000


def fresh_wire(out: socket.socket, sink: socket.socket) -> _wire.Wire:
    """A new SRTP session each time: libsrtp refuses to protect numbers it has already seen.
    AES-128-GCM, as browsers and aiortc negotiate it."""
    policy = Policy(
        key=bytes(28),
        ssrc_type=Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    tx = Session(policy=policy)
    route = _wire.Route()
    route.over_socket(srtp_context(tx), tx, out.fileno(), *sink.getsockname())
    header = SlotHeader(ssrc=5, payload_type=97, mid="3", mid_id=1, abs_send_time_id=3)
    return _wire.Wire(route, header.template(), header.abs_send_time_at)


def main() -> None:
    data = packets()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
    ):
        sink.bind(("127.0.0.1", 0))
        print("per slot and incoming packet, 45 slots (CPU microseconds, best of 5)")
        for label, max_t, warmup_at_base in (
            ("all layers, descriptor untouched", 2, False),
            ("all layers, descriptor rewritten", 2, True),
            ("base layer only (3 of 4 dropped)", 0, True),
        ):
            runs = []
            for _ in range(5):
                # The first 8 packets (a keyframe first) start the slots; dropped frames shift
                # picture ids, so slots started on the base layer rewrite descriptors.
                slots = slots_for([fresh_wire(out, sink) for _ in range(45)])
                for slot in slots:
                    slot.forwarder.max_temporal = 0 if warmup_at_base else max_t
                measure(data[:9], slots)
                for slot in slots:
                    slot.forwarder.max_temporal = max_t
                    assert slot.forwarder.rewrites_descriptor == warmup_at_base
                runs.append(measure(data[9:2009], slots))
            print(f"  {label:36s} {min(runs):.2f}")
        send = min(measure_send(data, fresh_wire(out, sink), 0) for _ in range(5))
        print(f"  {'send (flush), loopback':36s} {send:.2f}")


if __name__ == "__main__":
    main()
