"""A long fuzzing pass over every parser of outside input (the test suite runs a short one).

    python benchmarks/fuzz_parsers.py --examples 20000

Each parser gets `--examples` hypothesis inputs: arbitrary bytes, and mutations of valid packets
(which reach deeper than random bytes). The only exception allowed out of a parser is its own
error type; anything else is a bug and stops the run with the failing input.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confsfu.codecs.vp8 import parse_vp8
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.rtp.rtcp import parse_rtcp, parse_rtcp_lenient
from confsfu.sdp import SdpError, parse_sdp
from confsfu.signalling.connection import SignallingError, parse_client_message

VALID_RTP = build_rtp(
    payload_type=96,
    sequence_number=7,
    timestamp=90_000,
    ssrc=0x1234,
    payload=b"\x90\xe0\x80\x01\x10" + b"\x00" * 40,
    marker=True,
    extensions={1: b"0", 3: b"\x01\x02\x03"},
)
# RR + REMB + NACK + PLI, one compound packet.
VALID_RTCP = (
    (struct.pack(">BBHI", 0x81, 201, 7, 1) + struct.pack(">IIIIII", 2, 0x01000010, 10, 5, 0, 0))
    + (
        struct.pack(">BBHII", 0x8F, 206, 5, 1, 0)
        + b"REMB"
        + struct.pack(">BBHI", 1, 0x0A, 0x1000, 2)
    )
    + struct.pack(">BBHIIHH", 0x81, 205, 3, 1, 2, 100, 0x0003)
    + struct.pack(">BBHII", 0x81, 206, 2, 1, 2)
)
VALID_SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=rid:q send\r\na=rid:h send\r\n"
    "a=simulcast:send q;h\r\na=ssrc-group:FID 1 2\r\na=ssrc:1 cname:x\r\n"
)
VALID_JSON = json.dumps({"type": "chair", "action": "mute", "participant_id": "a", "kind": "audio"})


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """`valid` with bytes flipped, cut short or extended."""

    def apply(edits: list[tuple[int, int]], cut: int, tail: bytes) -> bytes:
        data = bytearray(valid)
        for at, value in edits:
            data[at % len(data)] = value
        return bytes(data[: max(0, len(data) - cut)]) + tail

    return st.builds(
        apply,
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
        st.integers(0, len(valid)),
        st.binary(max_size=16),
    )


def text_mutations(valid: str) -> st.SearchStrategy[str]:
    return mutated(valid.encode()).map(lambda b: b.decode("utf-8", "replace"))


TARGETS: dict[str, tuple[Callable[[Any], object], type[Exception], st.SearchStrategy[Any]]] = {
    "rtp": (parse_rtp, ParseError, st.one_of(st.binary(max_size=1500), mutated(VALID_RTP))),
    "rtcp": (parse_rtcp, ParseError, st.one_of(st.binary(max_size=1500), mutated(VALID_RTCP))),
    "rtcp_lenient": (
        parse_rtcp_lenient,
        ParseError,
        st.one_of(st.binary(max_size=1500), mutated(VALID_RTCP)),
    ),
    "vp8": (parse_vp8, ParseError, st.one_of(st.binary(max_size=64), mutated(VALID_RTP[24:]))),
    "sdp": (parse_sdp, SdpError, st.one_of(st.text(max_size=2000), text_mutations(VALID_SDP))),
    "signalling": (
        parse_client_message,
        SignallingError,
        st.one_of(st.text(max_size=500), text_mutations(VALID_JSON), st.binary(max_size=200)),
    ),
}


def fuzz(name: str, examples: int) -> tuple[int, int, float]:
    parse, allowed, strategy = TARGETS[name]
    counts = {"ok": 0, "refused": 0}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(data: Any) -> None:
        try:
            parse(data)
            counts["ok"] += 1
        except allowed:
            counts["refused"] += 1

    start = time.perf_counter()
    run()
    return counts["ok"], counts["refused"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per parser")
    parser.add_argument("--only", choices=sorted(TARGETS), action="append")
    args = parser.parse_args()
    total = 0
    for name in args.only or list(TARGETS):
        ok, refused, seconds = fuzz(name, args.examples)
        total += ok + refused
        print(f"{name:13} {ok + refused:7} inputs: {ok:6} parsed, {refused:6} refused, "
              f"{seconds:6.1f} s, no other exception")  # fmt: skip
    print(f"total         {total:7} inputs")


if __name__ == "__main__":
    main()
