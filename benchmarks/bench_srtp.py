"""Micro-benchmark of SRTP for RTP: libsrtp (pylibsrtp, as aiortc keys it) against confsfu's
AES-GCM Sealer (protect) and Opener (authenticate, replay check, decrypt), each called once per
packet from Python, in CPU time. Protecting calls libsrtp through pylibsrtp's wrapper (which
copies the packet twice); opening calls it from C as the server did (`_wire.unprotect`).

Run: python benchmarks/bench_srtp.py [--packets N] [--size BYTES]
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pylibsrtp import Policy, Session

from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context
from confsfu.server.srtp_keys import gcm_rtp_keys


def per_call_us(protect: Callable[[bytes], object], packets: list[bytes], count: int) -> float:
    """Best of five runs, in process CPU time per call; the packets go round from one run to
    the next."""
    best = float("inf")
    for run in range(5):
        start = time.process_time()
        for i in range(run * count, (run + 1) * count):
            protect(packets[i & 4095])
        best = min(best, time.process_time() - start)
    return best / count * 1e6


def open_us(receivers: list[Any], packets: list[bytes]) -> float:
    """Best over the receivers (one run each, all the packets in order), CPU time per packet;
    a receiver is an Opener or a libsrtp context's address."""
    best = float("inf")
    unprotect = _wire.unprotect
    for receiver in receivers:
        start = time.process_time()
        if isinstance(receiver, _wire.Opener):
            for packet in packets:
                receiver.open(packet)
        else:
            for packet in packets:
                unprotect(receiver, packet, False)
        best = min(best, time.process_time() - start)
    return best / len(packets) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1200, help="bytes of RTP per packet")
    args = parser.parse_args()
    # 4,096 packets 16 numbers apart: going round them, the numbers only go forward (and wrap)
    packets = [
        build_rtp(
            payload_type=96, sequence_number=seq, timestamp=0, ssrc=0xCAFE,
            payload=bytes(args.size - 12), extensions=None,
        )
        for seq in range(0, 65_536, 16)
    ]  # fmt: skip
    print(f"{args.size}-byte RTP packets, {args.packets:,} per run, best of 5, CPU time")
    for name, key_bytes, profile in (
        ("AEAD_AES_128_GCM", 16, Policy.SRTP_PROFILE_AEAD_AES_128_GCM),
        ("AEAD_AES_256_GCM", 32, Policy.SRTP_PROFILE_AEAD_AES_256_GCM),
    ):
        master_key, master_salt = bytes(range(key_bytes)), bytes(range(12))
        policy = Policy(
            key=master_key + master_salt, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
        )
        policy.allow_repeat_tx = True  # as aiortc's
        policy.window_size = 1024
        libsrtp = Session(policy)
        keys = gcm_rtp_keys(master_key, master_salt)
        sealer = _wire.Sealer(keys.key, keys.salt)
        old = per_call_us(libsrtp.protect, packets, args.packets)
        new = per_call_us(sealer.seal, packets, args.packets)
        print(f"{name} protect: libsrtp {old:.2f} us, Sealer {new:.2f} us ({old / new:.1f}x)")
        # Opening: each receiver sees a run of packets once, as they were protected.
        protected = [sender.protect(packet) for sender in [Session(policy)] for packet in packets]
        receiving = Policy(
            key=master_key + master_salt, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile
        )
        receiving.window_size = 1024
        sessions = [Session(receiving) for _ in range(5)]  # opened as the server did: from C
        old = open_us([srtp_context(session) for session in sessions], protected)
        new = open_us([_wire.Opener(keys.key, keys.salt) for _ in range(5)], protected)
        print(f"{name} open:    libsrtp {old:.2f} us, Opener {new:.2f} us ({old / new:.1f}x)")


if __name__ == "__main__":
    main()
