"""CPU per packet relayed to another worker (docs/scale-out.md, "The relay"): a publisher's
1.1 KB VP8 packets to 2 x K subscriber slots, all on one worker, against K slots on the
publisher's worker and K on another that gets each packet once over the relay. In one process,
both workers' code in turn per packet: the intake with its `relay` hook (the frame built and
kept for NACKs, `sendto` on a Unix datagram socket), then the other worker's read (`recvfrom`,
`RelayLink._frame`: decode, the room's relay core and its rate bound, `RoomRelay._deliver`
into a second intake and its fan-out). Runs alternate; medians of CPU time.

The same over UDP (`relay_transport: udp`, docs/scale-out.md "The relay over UDP"): the frame
sealed with the room's key (`scale/relay_auth.py`) and sent on a UDP socket on 127.0.0.1, read
and opened (tag, replay window) by the other worker's `UdpRelay`. And the two MACs considered
for the tag (keyed BLAKE2b-128, the one used; HMAC-SHA256 truncated), per 1.1 KB frame.

.venv/bin/python benchmarks/relay.py [--slots K] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import socket
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from pylibsrtp import Policy, Session

from confsfu.codecs.vp8 import packetize_vp8
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.ids import SourceId
from confsfu.rtp.packet import build_rtp
from confsfu.scale import relay_auth as ra
from confsfu.scale import relay_frame as rf
from confsfu.server import _wire
from confsfu.server.relay import RoomRelay
from confsfu.server.relay_link import RelayLink, relay_path
from confsfu.server.relay_udp import UdpRelay, format_address
from confsfu.server.srtp_contexts import srtp_context

SOURCE = SourceId.camera("a", "video")
KEY = SOURCE.layer(0)
N = 5000


def packets() -> list[bytes]:
    out = []
    for i in range(N + 9):
        body = (b"\x10\x02\x00\x9d\x01\x2a" if i == 0 else b"\x11\x02\x00") + bytes(1100)
        (payload,) = packetize_vp8(
            body, picture_id=i % 32768, tl0picidx=i % 256, temporal_id=0, layer_sync=False
        )
        out.append(build_rtp(payload_type=96, sequence_number=i % 65536, timestamp=3000 * i,
                             ssrc=1, payload=payload, marker=True))  # fmt: skip
    return out


def wire(out: socket.socket, sink: socket.socket, ssrc: int) -> _wire.Wire:
    policy = Policy(key=bytes(28), ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                    srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM)  # fmt: skip
    tx = Session(policy=policy)
    route = _wire.Route()
    route.over_socket(srtp_context(tx), tx, out.fileno(), *sink.getsockname())
    header = SlotHeader(ssrc=ssrc, payload_type=97, mid="3", mid_id=1, abs_send_time_id=3)
    return _wire.Wire(route, header.template(), header.abs_send_time_at)


def intake(out: socket.socket, sink: socket.socket, slots: int) -> _wire.Intake:
    entries = []
    for i in range(slots):
        fwd = SlotForwarder(is_video=True, clock_rate=90000, initial_seq=7, initial_ts=9)
        fwd.assign(0, KEY)
        entries.append((None, fwd, wire(out, sink, 5 + i)))
    made = _wire.Intake(
        "a", {KEY: tuple(entries)}, slow=lambda *a: None, on_level=lambda *a: None,
        on_keyframe=lambda key: None, after_fan_out=lambda s, u: None,
        schedule_flush=lambda: None,
    )  # fmt: skip
    track = Reception(1)
    track.route(KEY, True, 0, None)
    assert made.add(track)
    return made


def one_worker(data: list[bytes], out: socket.socket, sink: socket.socket, slots: int) -> float:
    """CPU microseconds per packet: 2K slots on the publisher's worker."""
    here = intake(out, sink, 2 * slots)
    return run(data, lambda clear, now: here.receive(clear, now))


def two_rooms(
    out: socket.socket, sink: socket.socket, slots: int, out_link: RelayLink
) -> tuple[_wire.Intake, RoomRelay]:
    """The room on both workers: the publisher's intake (K slots), relaying KEY to worker 1
    through `out_link`, and worker 1's room relay, delivering into K slots of its own."""
    sender = RoomRelay(7, frozenset({1}), cast(Any, None), out_link.send)
    sender.core.add_local(SOURCE)
    here = intake(out, sink, slots)
    here.relay = {KEY: lambda packet: sender._relay(KEY, (1,), packet)}
    receiver = RoomRelay(7, frozenset({0}), cast(Any, None), lambda p, f: None)
    info = rf.source_payload(rf.SourceInfo("a", "camera", "video"))
    receiver.core.on_frame(0, rf.RelayFrame(rf.SOURCE, 7, 1, 0, 0, info), 0)
    there = intake(out, sink, slots)
    receiver.relayed["a", "camera"] = cast(Any, SimpleNamespace(intake=there))
    return here, receiver


def relayed(data: list[bytes], out: socket.socket, sink: socket.socket, slots: int) -> float:
    """CPU microseconds per packet: K slots here, K on a worker the packet is relayed to."""
    with tempfile.TemporaryDirectory(prefix="confsfu-bench-relay-") as directory:
        a_path, b_path = relay_path(Path(directory), 0), relay_path(Path(directory), 1)
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as b,
        ):
            a.bind(str(a_path))
            b.bind(str(b_path))
            b.setblocking(False)
            # The publisher's worker's link sends on its socket; the other worker's reads.
            out_link = RelayLink(cast(Any, None))
            out_link._sock, out_link.directory, out_link.index = a, Path(directory), 0
            here, receiver = two_rooms(out, sink, slots, out_link)
            link = RelayLink(cast(Any, None))
            link._peers = {str(a_path): 0}
            link._by_index = {7: receiver}

            def both(clear: bytes, now: int) -> None:
                here.receive(clear, now)
                frame, addr = b.recvfrom(rf.MAX_FRAME_BYTES + 1)
                link._frame(frame, addr, now)

            spent = run(data, both)
            assert receiver.delivered == len(data), (receiver.delivered, link.counts)
            return spent


def relayed_udp(data: list[bytes], out: socket.socket, sink: socket.socket, slots: int) -> float:
    """As `relayed`, over UDP on 127.0.0.1 with each frame sealed and opened."""
    secret, now_s = b"bench-relay-secret-0123456789abcdef", int(time.time())
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", 0))
        b.setblocking(False)
        # The publisher's worker's link: its UDP end seals and sends to worker 1; the other
        # worker's UDP end opens the datagram, its link hands the frame over.
        out_link = RelayLink(cast(Any, None))
        udp_out = out_link._udp = UdpRelay(0, secret, lambda *a: None, now_s)
        udp_out._sock = a
        udp_out.set_peers({"1": format_address(*b.getsockname())})
        udp_out.set_rooms({"east": 7})
        here, receiver = two_rooms(out, sink, slots, out_link)
        link = RelayLink(cast(Any, None))
        link._by_index = {7: receiver}
        udp_in = UdpRelay(1, secret, link._take, now_s)
        udp_in.set_rooms({"east": 7})

        def both(clear: bytes, now: int) -> None:
            here.receive(clear, now)
            udp_in.receive(b.recv(ra.MAX_SEALED_BYTES + 1), now)

        spent = run(data, both)
        assert receiver.delivered == len(data), (receiver.delivered, udp_in.health())
        return spent


def macs(frame: bytes, n: int = 20000) -> tuple[float, float]:
    """CPU microseconds per tag of `frame`: keyed BLAKE2b-128, HMAC-SHA256 cut to 16 bytes
    (each from a keyed state made once, as `RoomKey` does)."""
    key = bytes(range(32))
    blake = ra.RoomKey(key)
    sha = hmac.new(key, digestmod=hashlib.sha256)

    def hmac_tag() -> bytes:
        h = sha.copy()
        h.update(frame)
        return h.digest()[:16]

    out = []
    for tag in (lambda: blake.tag(frame), hmac_tag):
        begin = time.process_time_ns()
        for _ in range(n):
            tag()
        out.append((time.process_time_ns() - begin) / n / 1000)
    return out[0], out[1]


def run(data: list[bytes], step: Any) -> float:
    spent = 0
    flush = _wire.flush
    for now_ms, clear in enumerate(data, 1000):
        begin = time.process_time_ns()
        step(clear, now_ms)
        flush()
        spent += time.process_time_ns() - begin
    return spent / len(data) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=10, help="subscriber slots per worker")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = packets()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
    ):
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        ones, relays, udps, blakes, shas = [], [], [], [], []
        frame = rf.rtp(7, 1, 0, data[5])
        for _ in range(args.runs):  # alternated
            ones.append(one_worker(data, out, sink, args.slots))
            relays.append(relayed(data, out, sink, args.slots))
            udps.append(relayed_udp(data, out, sink, args.slots))
            blake, sha = macs(frame)
            blakes.append(blake)
            shas.append(sha)
    one, two, three = (statistics.median(v) for v in (ones, relays, udps))
    k = args.slots
    print(f"CPU microseconds per publisher packet, medians of {args.runs} alternated runs of {N}")
    print(f"  one worker, {2 * k} slots                     {one:7.2f}  {fmt(ones)}")
    print(f"  two workers, {k} + {k} slots, relayed once    {two:7.2f}  {fmt(relays)}")
    print(f"  the same over UDP, sealed and opened        {three:7.2f}  {fmt(udps)}")
    for name, runs in (("Unix socket", relays), ("UDP + authentication", udps)):
        paired = statistics.median(r - o for r, o in zip(runs, ones, strict=True))
        print(f"  the relay's cost per relayed packet, {name}: {paired:.2f} (median of the")
        print(f"    pairs' differences; of the fastest runs: {min(runs) - min(ones):.2f})")
    paired = statistics.median(u - r for u, r in zip(udps, relays, strict=True))
    print(f"  UDP + authentication over the Unix socket: {paired:+.2f} (median of the pairs)")
    print(
        f"  a tag of a {len(frame)}-byte frame: keyed BLAKE2b-128 {statistics.median(blakes):.2f},"
    )
    print(f"    HMAC-SHA256/128 {statistics.median(shas):.2f} (medians)")


def fmt(values: list[float]) -> str:
    return "(" + " ".join(f"{v:.2f}" for v in values) + ")"


if __name__ == "__main__":
    main()
