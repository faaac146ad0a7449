"""CPU per packet of one slot's share of the hot path: decision, rewrite, header write (no IO).

.venv/bin/python benchmarks/bench_forwarder.py

The incoming packet is parsed and unwrapped once per packet by the server (`Inbound`), outside
the per-slot work measured here.
"""

from __future__ import annotations

import time

from confsfu.codecs.vp8 import packetize_vp8, parse_vp8, rewrite_vp8
from confsfu.forwarding.history import PacketHistory, SentPacket
from confsfu.forwarding.inbound import Inbound
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp, parse_rtp

PATTERN = (0, 2, 1, 2)
N = 20_000


def packets() -> list[Inbound]:
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
        out.append(Inbound("a#0", pkt, i, parse_vp8(pkt.payload), i))
    return out


def measure(data: list[Inbound], max_temporal: int, rewrite: bool) -> float:
    fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=7, initial_ts=9)
    fwd.max_temporal = max_temporal
    fwd.assign(0, "a#0")
    header = SlotHeader(ssrc=5, payload_type=97, mid="3", mid_id=1, abs_send_time_id=3)
    history: PacketHistory[SentPacket] = PacketHistory(1024)
    buf = bytearray(2048)
    send_time = abs_send_time(1000)
    start = time.process_time()
    for p in data:
        decision = fwd.forward(1000, p)
        if decision is None:
            continue
        seq, ts, pic, tl0 = decision
        body = p.payload
        if rewrite and p.vp8 is not None:
            body = rewrite_vp8(body, p.vp8, pic, tl0)
        header.write(buf, p.marker, seq, ts, send_time, body)
        history.put(seq, (p.marker, ts, body))
    return (time.process_time() - start) / len(data) * 1e6


def main() -> None:
    data = packets()
    print("per incoming packet, one slot (CPU microseconds, best of 5)")
    for label, max_t, rewrite in (
        ("all layers, descriptor untouched", 2, False),
        ("all layers, descriptor rewritten", 2, True),
        ("base layer only (3 of 4 dropped)", 0, True),
    ):
        print(f"  {label:36s} {min(measure(data, max_t, rewrite) for _ in range(5)):.2f}")


if __name__ == "__main__":
    main()
