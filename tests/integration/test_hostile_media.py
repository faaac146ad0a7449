"""Issue 19: a participant with valid credentials sends what a browser never would; nobody
else's media suffers, and no SRTP index on anyone's downlink protects two different packets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import AUDIO_LEVEL_ID, LoopbackPeer
from confsfu.rtp.extensions import build_audio_level
from confsfu.rtp.packet import build_rtp
from confsfu.server.app import HUB

pytestmark = pytest.mark.loopback


async def honest(url: str, names: list[str], made: list[LoopbackPeer]) -> list[LoopbackPeer]:
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=200_000)
    out = []
    for name in names:
        peer = LoopbackPeer(url, name=name, keep_payloads=True)
        made.append(peer)
        await peer.join()
        peer.start_media(audio, video, duration_s=30)
        out.append(peer)
    return out


async def hostile(url: str, made: list[LoopbackPeer]) -> LoopbackPeer:
    peer = LoopbackPeer(url, name="Mallory")
    made.append(peer)
    await peer.join()
    pc = peer.publish_pc
    await peer.wait_for(lambda: pc is not None and pc.refresh_route(), timeout=10)
    return peer


def audio_packet(peer: LoopbackPeer, seq: int, payload: bytes, *, ssrc: int | None = None) -> bytes:
    stream = next(s for s in peer.publish_streams if s.kind == "audio")
    return build_rtp(
        payload_type=96,
        sequence_number=seq % 65_536,
        timestamp=seq * 960 % 2**32,
        ssrc=stream.ssrc if ssrc is None else ssrc,
        payload=payload,
        extensions={AUDIO_LEVEL_ID: build_audio_level(True, 10)},  # loud: it is heard
    )


def padding_only(peer: LoopbackPeer, seq: int) -> bytes:
    stream = next(s for s in peer.publish_streams if s.kind == "audio")
    return build_rtp(
        payload_type=96, sequence_number=seq % 65_536, timestamp=0, ssrc=stream.ssrc,
        payload=b"", padding_bytes=200,
    )  # fmt: skip


def no_pair_twice(peer: LoopbackPeer) -> None:
    """What the subscriber decrypted: never two different packets under one (SSRC, seq)."""
    for stream in peer.received.values():
        seen: dict[int, bytes] = {}
        for seq, payload in zip(stream.seqs, stream.payloads, strict=True):
            assert seen.setdefault(seq, payload) == payload, f"{stream.ssrc:#x} seq {seq} twice"


def downlink_repeats(server: Any) -> int:
    media = server.app[HUB].rooms["demo"].media
    return sum(sub.pc.route.repeats for sub in media.subscribers.values())


async def test_sequence_jumps_behind_padding_never_reuse_a_downlink_index(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    viewer, talker = await honest(server.ws_url, ["Dakar", "Oslo"], peers)
    mallory = await hostile(server.ws_url, peers)
    assert mallory.publish_pc is not None
    send = mallory.publish_pc.send_rtp
    seq = 1000

    def payloads() -> list[bytes]:
        stream = viewer.streams_showing("audio").get("Mallory")
        return stream.payloads if stream is not None else []

    async def talk(phase: int, count: int) -> None:
        nonlocal seq
        for i in range(count):
            assert send(audio_packet(mallory, seq, b"phase %d packet %d" % (phase, i)))
            seq += 1
            await asyncio.sleep(0.02)

    while not payloads():  # until the viewer hears her
        await talk(0, 10)
    # Far ahead in padding-only packets (counted, never forwarded), then on from there: a slot
    # numbering on from as far ahead would come round to the numbers it sent a moment ago
    # (65,517 ahead is 19 behind).
    jumps = [(30_000, 30_000, 5_516), (30_000,), (20_000, 20_000, 20_000, 5_530), (25_000,)]
    for phase, steps in enumerate(jumps, start=1):
        for step in steps:
            seq += step
            assert send(padding_only(mallory, seq))
            seq += 1
            await asyncio.sleep(0.02)
        await talk(phase, 30)

    def heard_every_phase() -> bool:
        return all(any(p.startswith(b"phase %d " % n) for p in payloads()) for n in range(1, 5))

    await viewer.wait_for(heard_every_phase, timeout=10)  # it goes on after every jump
    before = viewer.streams_showing("audio")["Oslo"].packets
    await viewer.wait_for(lambda: viewer.streams_showing("audio")["Oslo"].packets > before + 20)
    for peer in (viewer, talker):
        no_pair_twice(peer)
    # By construction: the slots' numbering stepped over the jumps; the sealer refused nothing.
    media = server.app[HUB].rooms["demo"].media
    slots = [slot for sub in media.subscribers.values() for slot in sub.slots]
    assert sum(slot.forwarder.rebased for slot in slots) >= 4
    assert downlink_repeats(server) == 0


async def test_a_second_ssrc_on_a_live_layer_is_refused(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    viewer, _ = await honest(server.ws_url, ["Dakar", "Oslo"], peers)
    mallory = await hostile(server.ws_url, peers)
    assert mallory.publish_pc is not None
    send = mallory.publish_pc.send_rtp
    media = server.app[HUB].rooms["demo"].media
    for i in range(60):  # the announced SSRC and an unannounced one, interleaved
        assert send(audio_packet(mallory, 2000 + i, b"first %d" % i))
        assert send(audio_packet(mallory, 9000 + i, b"second %d" % i, ssrc=0x5EC0D))
        await asyncio.sleep(0.02)

    def heard() -> bool:
        stream = viewer.streams_showing("audio").get("Mallory")
        return stream is not None and len(stream.payloads) >= 40

    await viewer.wait_for(heard, timeout=10)
    await viewer.wait_for(lambda: media.drops["ssrc_refused"] > 0, timeout=5)
    mallory_audio = viewer.streams_showing("audio")["Mallory"]
    assert all(p.startswith(b"first") for p in mallory_audio.payloads)  # one numbering only
    no_pair_twice(viewer)
    # Silent for a second, the announced SSRC gives way: a restarted encoder is taken up, and
    # the slot's numbering goes on.
    await asyncio.sleep(1.2)
    for i in range(60):
        assert send(audio_packet(mallory, 9100 + i, b"restarted %d" % i, ssrc=0x5EC0D))
        await asyncio.sleep(0.02)

    def restarted() -> bool:
        return any(p.startswith(b"restarted") for p in mallory_audio.payloads[-30:])

    await viewer.wait_for(restarted, timeout=10)
    no_pair_twice(viewer)
    assert downlink_repeats(server) == 0
