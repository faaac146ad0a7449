"""CPU per incoming packet of the intake (C): a decrypted VP8 packet read, its Reception updated
(sequence state, picture id), its layer counted, then fanned out over 1 or 10 slots (each
slot's forwarder, header write, SRTP protect); the send (`flush`) apart, outside the clock.

.venv/bin/python benchmarks/bench_intake.py

What `bench_forwarder.py` measures per slot, this measures per packet, with the intake's own
work in front of it. Packets go to a UDP socket on 127.0.0.1 that nobody reads.
"""

from __future__ import annotations

import socket
import time

from pylibsrtp import Policy, Session

from confsfu.bandwidth._counts import LayerCounts
from confsfu.codecs.vp8 import packetize_vp8
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

KEY = "a#0"
PATTERN = (0, 2, 1, 2)
N = 20_000


def packets() -> list[bytes]:
    out = []
    for i in range(N):
        body = (b"\x10\x02\x00\x9d\x01\x2a" if i == 0 else b"\x11\x02\x00") + bytes(1100)
        (payload,) = packetize_vp8(
            body, picture_id=i % 32768, tl0picidx=(i // 4) % 256,
            temporal_id=PATTERN[i % 4], layer_sync=False,
        )  # fmt: skip
        raw = build_rtp(
            payload_type=96, sequence_number=i % 65536, timestamp=3000 * i, ssrc=1,
            payload=payload, marker=True,
        )  # fmt: skip
        out.append(raw)
    return out


def fresh_wire(out: socket.socket, sink: socket.socket, ssrc: int) -> _wire.Wire:
    """A new SRTP session each time: libsrtp refuses to protect numbers it has already seen."""
    policy = Policy(
        key=bytes(28),
        ssrc_type=Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    tx = Session(policy=policy)
    route = _wire.Route()
    route.over_socket(srtp_context(tx), tx, out.fileno(), *sink.getsockname())
    header = SlotHeader(ssrc=ssrc, payload_type=97, mid="3", mid_id=1, abs_send_time_id=3)
    return _wire.Wire(route, header.template(), header.abs_send_time_at)


def intake_for(wires: list[_wire.Wire]) -> _wire.Intake:
    entries = []
    for wire in wires:
        fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=7, initial_ts=9)
        fwd.assign(0, KEY)
        entries.append((None, fwd, wire))

    def unexpected(*args: object) -> None:
        raise AssertionError("not a packet the intake should hand back")

    intake = _wire.Intake(
        "a", {KEY: tuple(entries)}, slow=unexpected, on_level=unexpected,
        on_keyframe=lambda key: None, after_fan_out=lambda switched, unrouted: None,
        schedule_flush=lambda: None,
    )  # fmt: skip
    track = Reception(1)
    track.route(KEY, True, 0, LayerCounts(2000, 250))
    assert intake.add(track)
    return intake


def measure(data: list[bytes], intake: _wire.Intake) -> float:
    """CPU microseconds per incoming packet."""
    receive, flush = intake.receive, _wire.flush
    spent = 0
    for now_ms, clear in enumerate(data, 1000):
        begin = time.process_time_ns()
        receive(clear, now_ms)
        spent += time.process_time_ns() - begin
        flush()
    return spent / len(data) / 1000


def main() -> None:
    data = packets()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
    ):
        sink.bind(("127.0.0.1", 0))
        print("per incoming packet (CPU microseconds, best of 5)")
        for slots in (1, 10):
            runs = []
            for _ in range(5):
                intake = intake_for([fresh_wire(out, sink, 5 + i) for i in range(slots)])
                measure(data[:9], intake)  # a keyframe first starts the slots
                runs.append(measure(data[9:5009], intake))
            print(f"  intake, {slots:2d} slot(s), all layers  {min(runs):.2f}")


if __name__ == "__main__":
    main()
