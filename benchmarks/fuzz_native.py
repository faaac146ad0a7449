"""A long fuzzing pass over the C intake and the pump (scripts/sanitize.sh runs it under ASan and
UBSan; the test suite runs the intake's hypothesis tests, which are short).

    python benchmarks/fuzz_native.py --inputs 100000 [--seed 1]

Three ways in, each `--inputs` datagrams, drawn from a seeded generator: valid packets of a
publisher (VP8 video with picture ids, temporal layers and keyframes; audio with a level; RTX of
the video, padding-only probes) with bytes flipped, cut short or extended, other SSRCs, jumps of
the sequence numbers, and plain random bytes:
- `receive`: as clear RTP, straight into Intake.receive;
- `tap`: SRTP-sealed (so that they pass authentication and reach the reader) or not (refused),
  through the socket's Tap;
- `pump`: sent over loopback to a socket a tap watches, read by `pump` in batches.
Every packet is fanned out to real slots and wires whose SRTP-protected output goes to a socket
nobody reads. Nothing may raise: the intake hands what it does not take to `slow`, the tap and
the pump what they cannot open to the fallback. Prints the inputs and what became of them.
"""

from __future__ import annotations

import argparse
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from pylibsrtp import Policy, Session

from confsfu.bandwidth._counts import LayerCounts
from confsfu.codecs.vp8 import packetize_vp8
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.slot import SlotForwarder
from confsfu.rtp.extensions import build_audio_level
from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

VIDEO, AUDIO, RTX = 0x1111, 0x2222, 0x3333
KEYS = {VIDEO: "p/video#0", AUDIO: "p/audio#0"}
LEVEL_ID, KEY, SALT = 1, bytes(range(16)), bytes(range(12))
KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01"


class Publisher:
    """A publisher's packets, valid and broken, from a seeded generator."""

    def __init__(self, rng: random.Random, jumps: bool) -> None:
        self.rng = rng
        self.jumps = jumps  # sequence numbers jump by half the space, or anything
        self.seq = {VIDEO: 0, AUDIO: 0, RTX: 0}
        self.picture = 0

    def valid(self) -> bytes:
        rng = self.rng
        other = 0x10000 + rng.randrange(300)  # 300 others: more than an Opener takes
        ssrc = rng.choice((VIDEO,) * 4 + (AUDIO,) * 3 + (RTX, other))
        steps = (1,) * 12 + (2, 0, -1, 100)
        step = rng.choice((*steps, 0x8000, rng.getrandbits(16)) if self.jumps else steps)
        seq = self.seq[ssrc] = (self.seq.get(ssrc, 0) + step) % 65536
        if ssrc == AUDIO:
            level = build_audio_level(rng.random() < 0.5, rng.randrange(128))
            return build_rtp(
                payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=ssrc,
                payload=rng.randbytes(rng.randrange(0, 160)), extensions={LEVEL_ID: level},
            )  # fmt: skip
        self.picture = (self.picture + rng.choice((1, 1, 2, 0, 0x4000))) % 32768
        body = (KEYFRAME if rng.random() < 0.05 else b"\x11\x02\x00") + rng.randbytes(
            rng.randrange(0, 1200)
        )
        payload = rng.choice(
            packetize_vp8(
                body, picture_id=self.picture, tl0picidx=self.picture % 256,
                temporal_id=rng.randrange(4), layer_sync=rng.random() < 0.1,
            )
        )  # fmt: skip
        if ssrc == RTX:
            payload = (
                rng.getrandbits(16).to_bytes(2, "big") + payload if rng.random() < 0.9 else b""
            )
        return build_rtp(
            payload_type=97 if ssrc == RTX else 96, sequence_number=seq, timestamp=seq * 3000,
            ssrc=ssrc, payload=payload, marker=rng.random() < 0.3,
            padding_bytes=rng.choice((0, 0, 0, 1, 17)),
        )  # fmt: skip

    def any(self, keep_numbers: bool = False) -> bytes:
        """A packet, valid or broken (`keep_numbers`: its sequence number and SSRC mostly left
        as they are, so that its stream's SRTP index stays where the sealer and opener are)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:
            return rng.randbytes(rng.randrange(0, 1600))
        data = bytearray(self.valid())
        if roll < 0.4:
            return bytes(data)
        for _ in range(rng.randrange(1, 8)):
            at = rng.randrange(len(data))
            if not (keep_numbers and at in (2, 3, 8, 9, 10, 11) and rng.random() < 0.95):
                data[at] = rng.getrandbits(8)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data) + 1) :]
        if rng.random() < 0.2:
            data += rng.randbytes(rng.randrange(1, 64))
        return bytes(data)


def sink_route(out: socket.socket, sink: socket.socket) -> _wire.Route:
    tx = Session(
        policy=Policy(
            key=bytes(28),
            ssrc_type=Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
    )
    route = _wire.Route()
    route.over_socket(srtp_context(tx), tx, out.fileno(), *sink.getsockname())
    return route


def make_intake(route: _wire.Route, heard: Counter[str]) -> _wire.Intake:
    fan_outs: dict[str, Any] = {}
    for k, (ssrc, key) in enumerate(KEYS.items()):
        entries = []
        for i, max_temporal in enumerate((0, 1, 2)):
            forwarder = SlotForwarder(
                is_video=ssrc == VIDEO, clock_rate=90000 if ssrc == VIDEO else 48000,
                initial_seq=1000 * i, initial_ts=7 * i,
            )  # fmt: skip
            forwarder.max_temporal = max_temporal
            forwarder.assign(0, key)
            header = SlotHeader(ssrc=10 + 3 * k + i, payload_type=96, mid=str(k), mid_id=4,
                                abs_send_time_id=2)  # fmt: skip
            wire = _wire.Wire(route, header.template(), header.abs_send_time_at, history=256)
            entries.append((i, forwarder, wire))
        fan_outs[key] = tuple(entries)

    def hear(name: str) -> Callable[..., None]:
        return lambda *args: heard.update((name,))

    intake = _wire.Intake(
        "p", fan_outs, slow=hear("slow"), on_level=hear("level"), on_keyframe=hear("keyframe"),
        after_fan_out=hear("switched"), schedule_flush=_wire.flush, max_packet=1500,
    )  # fmt: skip
    intake.level_id, intake.level_floor = LEVEL_ID, 70
    meter = LayerCounts(2000, 250)
    for ssrc, key in KEYS.items():
        reception = Reception(ssrc)
        reception.route(key, ssrc == VIDEO, 0, meter if ssrc == VIDEO else None)
        assert intake.add(reception)
        if ssrc == VIDEO:
            assert intake.add_repair(RTX, 97, reception)
    intake.opener = _wire.Opener(KEY, SALT)
    return intake


def run(way: str, inputs: int, seed: int) -> tuple[Counter[str], float]:
    rng = random.Random(seed)
    publisher = Publisher(rng, jumps=way == "receive")  # else SRTP would refuse most
    sealers: dict[bytes, _wire.Sealer] = {}  # one per SSRC: each keeps its stream's index
    heard: Counter[str] = Counter()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inbox,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        for sock in (sink, inbox, sender):
            sock.bind(("127.0.0.1", 0))
        inbox.setblocking(False)
        intake = make_intake(sink_route(out, sink), heard)
        tap = intake.tap(lambda data, addr: heard.update(("fallback",)))
        if way == "pump":
            tap.watch(inbox)
        start = time.perf_counter()
        try:
            for n in range(inputs):
                data = publisher.any(keep_numbers=way != "receive")
                if way == "receive":
                    intake.receive(data, n)
                    continue
                if rng.random() < 0.8 and (data[8:12] in sealers or len(sealers) < 1000):
                    sealer = sealers.setdefault(data[8:12], _wire.Sealer(KEY, SALT))
                    data = sealer.seal(data) or data  # not RTP, or too old: sent as it is
                if way == "tap":
                    tap(data, ("127.0.0.1", 5000))
                    continue
                sender.sendto(data, inbox.getsockname())
                if n % 32 == 31 or n == inputs - 1:
                    while _wire.pump(lambda fallback, data, addr: fallback(data, addr), 64):
                        pass
        finally:
            if way == "pump":
                tap.unwatch()
            _wire.flush()
        seconds = time.perf_counter() - start
        counters, drops = intake.take_counts()
        heard.update({f"in:{k}": v for k, v in counters.items() if k.startswith("packets")})
        heard.update({f"drop:{k}": v for k, v in drops.items()})
        heard["opener_refused"] = intake.opener.refused if intake.opener else 0
    return heard, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="datagrams per way in")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("receive", "tap", "pump"), action="append")
    args = parser.parse_args()
    total = 0
    for way in args.only or ("receive", "tap", "pump"):
        heard, seconds = run(way, args.inputs, args.seed)
        total += args.inputs
        shown = ", ".join(f"{k} {v}" for k, v in sorted(heard.items()))
        print(f"{way:8} {args.inputs:8} inputs, {seconds:6.1f} s, nothing raised: {shown}")
    print(f"total    {total:8} inputs")


if __name__ == "__main__":
    main()
