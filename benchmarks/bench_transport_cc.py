"""Micro-benchmark of transport-wide sequence numbers in the hot path: a Wire queuing packets
through a Route with transport-cc (stamp, log the send) against one without, flushed to a UDP
socket on 127.0.0.1, in process CPU time per packet; the two alternate, best of each kept. Then
what the feedback costs per packet it reports: the send log read back and the send-side
estimator fed (as media_feedback does it, 100 packets a report).

Run: python benchmarks/bench_transport_cc.py [--packets N] [--rounds R]
"""

import argparse
import socket
import sys
import time
from pathlib import Path

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pylibsrtp import Policy, Session

from confsfu.bandwidth.estimation import EstimatorConfig
from confsfu.bandwidth.twcc import TwccEstimator
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.rtp.extensions import abs_send_time
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

KEY = bytes(range(30))


def run(packets: int, transport_cc: bool, receiver: socket.socket, sender: socket.socket) -> float:
    """CPU time per packet (us) to queue and flush `packets` 1,100-byte packets."""
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    tx = Session(policy=policy)
    route = _wire.Route()
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(tx), tx, sender.fileno(), host, port)
    header = SlotHeader(
        ssrc=0xA1, payload_type=96, mid="1", mid_id=4, abs_send_time_id=2,
        transport_cc_id=5 if transport_cc else None,
    )  # fmt: skip
    if transport_cc:
        route.transport_cc_id = 5
    wire = _wire.Wire(route, header.template(), header.abs_send_time_at)
    payload, stamp = bytes(1100), abs_send_time(0)
    start = time.process_time()
    for i in range(packets):
        wire.queue(False, i & 0xFFFF, i * 3000, stamp, payload)
        if i % 32 == 31:
            _wire.flush()
    _wire.flush()
    elapsed = time.process_time() - start
    while True:  # drain what the socket holds so the next run starts empty
        try:
            receiver.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
    return elapsed / packets * 1e6


def feedback_us(packets: int) -> float:
    """CPU time per packet reported (us): the route's log read back, the estimator told of each
    send and then of the feedback (100 packets a report, 1 in 50 lost)."""
    route = _wire.Route()
    route.transport_cc_id = 5
    estimator = TwccEstimator(EstimatorConfig())
    start = time.process_time()
    for first in range(0, packets, 100):
        seqs = [(first + i) & 0xFFFF for i in range(100)]
        for seq, sent in zip(seqs, route.transport_sent(seqs), strict=True):
            estimator.on_packet_sent(first + seq % 100, seq, sent[1] if sent else 1200)
        arrivals = [
            (s, None if s % 50 == 0 else (first + i + 20) * 1000) for i, s in enumerate(seqs)
        ]
        estimator.on_transport_feedback(first + 120, arrivals)
    return (time.process_time() - start) / packets * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    best = {False: float("inf"), True: float("inf")}
    try:
        for _ in range(args.rounds):
            for transport_cc in (False, True):
                best[transport_cc] = min(
                    best[transport_cc], run(args.packets, transport_cc, receiver, sender)
                )
    finally:
        receiver.close()
        sender.close()
    plain, stamped = best[False], best[True]
    print(f"queue + protect + send, per packet: {plain:.2f} us without transport-cc, "
          f"{stamped:.2f} us with (x{stamped / plain:.3f})")  # fmt: skip
    fed = min(feedback_us(args.packets) for _ in range(args.rounds))
    print(f"feedback, per packet reported: {fed:.2f} us (send log read, estimator fed)")


if __name__ == "__main__":
    main()
