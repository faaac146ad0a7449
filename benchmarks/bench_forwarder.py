"""CPU per packet of the per-slot forwarding decision and header rewrite (no IO).

.venv/bin/python benchmarks/bench_forwarder.py
"""

from __future__ import annotations

import time

from confsfu.codecs.vp8 import Vp8Descriptor, packetize_vp8, parse_vp8, rewrite_vp8
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.packet import RtpPacket, build_rtp, parse_rtp

PATTERN = (0, 2, 1, 2)
N = 20_000


def packets() -> list[tuple[RtpPacket, Vp8Descriptor]]:
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
        out.append((pkt, parse_vp8(pkt.payload)))
    return out


def measure(max_temporal: int, rewrite: bool) -> float:
    fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=7, initial_ts=9)
    fwd.max_temporal = max_temporal
    fwd.assign(0, "a#0")
    header = SlotHeader(ssrc=5, payload_type=97, mid="3", mid_id=1, abs_send_time_id=3)
    data = packets()
    start = time.process_time()
    for pkt, vp8 in data:
        decision = fwd.forward(1000, "a#0", pkt, vp8)
        if decision is None:
            continue
        seq, ts, pic, tl0 = decision
        body = rewrite_vp8(pkt.payload, vp8, pic, tl0) if rewrite else pkt.payload
        header.build(pkt.marker, seq, ts, 1000, body)
    return (time.process_time() - start) / N * 1e6


def main() -> None:
    print("per incoming packet, one slot (CPU microseconds, best of 5)")
    for label, max_t, rewrite in (
        ("all layers, descriptor untouched", 2, False),
        ("all layers, descriptor rewritten", 2, True),
        ("base layer only (3 of 4 dropped)", 0, True),
    ):
        print(f"  {label:36s} {min(measure(max_t, rewrite) for _ in range(5)):.2f}")


if __name__ == "__main__":
    main()
