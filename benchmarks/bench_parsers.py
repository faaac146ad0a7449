"""Micro-benchmark of the per-packet wire-format work: parse_rtp + parse_vp8 (C, and the Python
reference parsers they fall back on), and rewrites.

Run: python benchmarks/bench_parsers.py [--packets N]
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confsfu.codecs.vp8 import (
    packetize_vp8,
    parse_vp8,
    parse_vp8_reference,
    rewrite_vp8,
    rewrite_vp8_descriptor,
)
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp, parse_rtp, parse_rtp_reference, rewrite_rtp
from confsfu.rtp.rtcp import Nack, TransportFeedback, parse_rtcp
from confsfu.rtp.rtcp_build import serialize_rtcp


def make_packet() -> bytes:
    """A 1200-byte VP8 keyframe packet as Chromium sends it: mid, rid, abs-send-time, TWCC."""
    frame = bytes((0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x00, 0x05, 0xD0, 0x02)) + bytes(5000)
    extensions = {4: b"1", 10: b"f", 2: abs_send_time(1234), 3: b"\x01\x02"}

    def build(payload: bytes) -> bytes:
        return build_rtp(
            payload_type=96, sequence_number=1000, timestamp=90000, ssrc=0x1234,
            payload=payload, extensions=extensions,
        )  # fmt: skip

    header_bytes = len(build(b""))
    payload = packetize_vp8(
        frame, picture_id=12345, tl0picidx=17, temporal_id=0, layer_sync=True,
        max_payload_bytes=1200 - header_bytes,
    )[0]  # fmt: skip
    packet = build(payload)
    assert len(packet) == 1200, len(packet)
    return packet


def per_call_us(fn: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(5):  # best of five runs
        start = time.perf_counter()
        for _ in range(count):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=100_000)
    count = parser.parse_args().packets

    data = make_packet()
    pkt = parse_rtp(data)
    payload = pkt.payload
    d = parse_vp8(payload)
    twcc = serialize_rtcp(
        [
            TransportFeedback(
                1, 2, 100, 5000, 7,
                tuple((100 + i, None if i % 10 == 3 else i * 1000) for i in range(60)),
            )
        ]
    )  # fmt: skip
    nack = serialize_rtcp([Nack(1, 2, (10, 11, 15, 40, 41))])

    def parse_both() -> object:
        p = parse_rtp(data)
        return parse_vp8(p.payload)

    def parse_both_reference() -> object:
        p = parse_rtp_reference(data)
        return parse_vp8_reference(p.payload)

    def rewrite_payload() -> bytes:
        return rewrite_vp8(payload, d, 777, 33)

    def forward() -> bytes:  # what a subscriber costs: new header + descriptor, one payload copy
        head = rewrite_vp8_descriptor(payload, d, 777, 33)
        return rewrite_rtp(
            pkt, payload_type=97, sequence_number=5, timestamp=1, ssrc=0xBEEF,
            extensions={1: b"3", 2: abs_send_time(5678)}, payload_head=head,
        )  # fmt: skip

    rows = [
        ("parse_rtp + parse_vp8 (1200 B packet)", parse_both),
        ("the same in Python (the reference parsers)", parse_both_reference),
        ("parse_rtp alone", lambda: parse_rtp(data)),
        ("parse_vp8 alone", lambda: parse_vp8(payload)),
        ("rewrite_vp8 (same-length copy)", rewrite_payload),
        ("rewrite_vp8_descriptor + rewrite_rtp", forward),
        ("parse_rtcp TWCC, 60 packets", lambda: parse_rtcp(twcc)),
        ("parse_rtcp NACK", lambda: parse_rtcp(nack)),
    ]
    print(f"python {sys.version.split()[0]}, {count} iterations, best of 5")
    for name, fn in rows:
        print(f"{name:44s} {per_call_us(fn, count):7.2f} us")


if __name__ == "__main__":
    main()
