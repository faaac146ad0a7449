"""Three aiortc peers on 127.0.0.1 meet through the real server: media flows, nothing transcoded."""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from confsfu.codecs.vp8 import parse_vp8
from confsfu.conference.speakers import SpeakerConfig
from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.rtp.packet import build_rtp
from confsfu.server.app import HUB

pytestmark = pytest.mark.loopback
T = TypeVar("T")


async def join_publishing(
    url: str, names: list[str], made: list[LoopbackPeer], level_dbov: int = 30, **kwargs: Any
) -> list[LoopbackPeer]:
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=300_000)
    out = []
    for name in names:
        peer = LoopbackPeer(url, name=name, **kwargs)
        made.append(peer)
        await peer.join()
        peer.start_media(audio, video, level_dbov=level_dbov, duration_s=30)
        out.append(peer)
    return out


def receives_from(
    peer: LoopbackPeer, names: list[str], kind: str, packets: int
) -> Callable[[], bool]:
    def check() -> bool:
        streams = peer.streams_showing(kind)
        return all(n in streams and streams[n].packets >= packets for n in names)

    return check


def _whose(payloads: list[bytes], by_name: dict[str, LoopbackPeer]) -> list[str]:
    """Where each stray payload came from, as far as the test can tell."""
    found = []
    for p in payloads[:5]:
        owners = [
            n
            for n, peer in by_name.items()
            if p in peer.sent.video_payloads or p in peer.sent.audio_payloads
        ]
        found.append(f"{len(p)} bytes {p[:8].hex()}: sent by {owners or 'nobody'}")
    return found


async def test_three_peers_see_and_hear_each_other_byte_identical(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    names = ["Seoul", "Lima", "Nairobi"]
    group = await join_publishing(server.ws_url, names, peers, keep_payloads=True)
    for peer in group:
        others = [n for n in names if n != peer.name]
        await peer.wait_for(receives_from(peer, others, "video", 40), timeout=15)
        await peer.wait_for(receives_from(peer, others, "audio", 40), timeout=15)

    by_name = {p.name: p for p in group}

    @functools.cache
    def sent_by(names: tuple[str, ...], kind: str) -> frozenset[bytes]:
        sent = [by_name[n].sent for n in names if n in by_name]
        return frozenset(
            p for s in sent for p in (s.video_payloads if kind == "video" else s.audio_payloads)
        )

    for peer in group:
        for kind in ("video", "audio"):
            for name, stream in peer.streams_showing(kind).items():
                assert stream.payloads, f"{peer.name} got no {kind} payloads from {name}"
                # Every payload arrived exactly as sent (nothing transcoded) by the participant
                # the slot showed then (a slot changes hands as the dominant speaker changes).
                # Media may come before the WebSocket says whose it is: the slot's first holder.
                first = next(lb for lb in stream.labels if lb[0])
                strangers = [
                    p
                    for p, shown in zip(stream.payloads, stream.labels, strict=True)
                    if p not in sent_by(shown if shown[0] else first, kind)
                ]
                assert not strangers, (
                    f"{peer.name} got {len(strangers)} of {len(stream.payloads)} {kind} payloads"
                    f" under a name whose holder never sent them: {_whose(strangers, by_name)}"
                )
    # A slot's first forwarded video packet starts a keyframe.
    first = group[0].streams_showing("video")["Lima"].payloads[0]
    assert parse_vp8(first).is_keyframe


async def test_slot_switch_keeps_sequence_numbers_continuous(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    server = await server_factory(slots={"audio": 1, "video": 1})
    # Silent, so nobody takes the stage: the one grid slot shows the others in join order.
    viewer, first, second = await join_publishing(
        server.ws_url, ["Chair", "Accra", "Quito"], peers, level_dbov=127
    )
    await viewer.wait_for(receives_from(viewer, ["Accra"], "video", 30), timeout=15)
    video = viewer.streams_showing("video")["Accra"]
    before = len(video.seqs)
    await first.close()
    peers.remove(first)
    await viewer.wait_for(receives_from(viewer, ["Quito"], "video", 30), timeout=15)
    seqs = video.seqs[before - 5 :]
    steps = {(b - a) % 65536 for a, b in itertools.pairwise(seqs)}
    assert steps == {1}, f"sequence jumps across the switch: {sorted(steps)}"
    assert viewer.slots[video.mid]["name"] == "Quito"
    assert second.name == "Quito"


async def test_a_moved_tile_gets_the_new_person_only_once_the_page_confirms_it(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    """A page that says it confirms slot maps, and is late to: the grid slot moved from Accra to
    Quito carries nothing of Quito's until the page confirms the map that named Quito."""
    server = await server_factory(slots={"audio": 1, "video": 1})
    viewer = LoopbackPeer(server.ws_url, name="Chair", confirms_slots=True)
    peers.append(viewer)
    await viewer.join(publish=False)
    first, _second = await join_publishing(server.ws_url, ["Accra", "Quito"], peers, level_dbov=127)
    # The first person on a slot nobody was shown on needs no confirmation.
    await viewer.wait_for(receives_from(viewer, ["Accra"], "video", 30), timeout=15)
    mid = viewer.streams_showing("video")["Accra"].mid
    await first.close()
    peers.remove(first)
    await viewer.wait_for(lambda: viewer.slots[mid]["name"] == "Quito", timeout=10)
    assert viewer.slots[mid]["state"] == "waiting"
    arrived = sum(s.packets for s in viewer.received.values() if s.mid == mid)
    await asyncio.sleep(2.0)  # Quito sends keyframes meanwhile (the switch asked for none)
    assert viewer.slots[mid]["state"] == "waiting"
    assert sum(s.packets for s in viewer.received.values() if s.mid == mid) == arrived
    await viewer.confirm_slots()
    await viewer.wait_for(lambda: viewer.slots[mid]["state"] == "live", timeout=10)
    assert viewer.slots[mid]["name"] == "Quito"
    await viewer.wait_for(
        lambda: sum(s.packets for s in viewer.received.values() if s.mid == mid) > arrived + 30
    )


async def test_lost_packet_is_recovered_by_nack_and_rtx(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    dropped: set[tuple[int, int]] = set()

    def drop_some(ssrc: int, seq: int) -> bool:
        if seq % 37 == 0 and (ssrc, seq) not in dropped and len(dropped) < 10:
            dropped.add((ssrc, seq))
            return True
        return False

    (talker,) = await join_publishing(server.ws_url, ["Dakar"], peers)
    listener = LoopbackPeer(server.ws_url, name="Oslo", drop_received=drop_some)
    peers.append(listener)
    await listener.join(publish=False)
    await listener.wait_for(lambda: len(dropped) >= 3, timeout=20)
    await asyncio.sleep(0.5)
    recovered = {(ssrc, seq) for ssrc, s in listener.received.items() for seq in s.recovered}
    assert dropped & recovered, f"dropped {sorted(dropped)}, recovered none"
    assert talker.sent.video_packets > 0


async def test_an_oversized_packet_is_dropped_and_media_keeps_flowing(
    server: Any, peers: list[LoopbackPeer]
) -> None:
    viewer, talker = await join_publishing(server.ws_url, ["Oslo", "Dakar"], peers)
    await viewer.wait_for(receives_from(viewer, ["Dakar"], "audio", 20), timeout=15)
    media = server.app[HUB].rooms["demo"].media
    assert talker.publish_pc is not None
    # 1,700 bytes: larger than the server forwards, small enough for SRTP to carry it there.
    # A fresh SSRC: one of the talker's own would move SRTP's packet index off its stream.
    big = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=0x0BAD0BAD,
                    payload=bytes(1688))  # fmt: skip
    talker.publish_pc.route.max_datagram = 2048  # this client is hostile: it sends it anyway
    assert talker.publish_pc.send_rtp(big)
    await viewer.wait_for(lambda: media.drops["oversized"] == 1, timeout=5)
    before = viewer.streams_showing("audio")["Dakar"].packets
    await viewer.wait_for(
        lambda: viewer.streams_showing("audio")["Dakar"].packets > before + 20, timeout=5
    )


async def test_pages_hear_of_slot_changes_once(server: Any, peers: list[LoopbackPeer]) -> None:
    names = ["Seoul", "Lima", "Nairobi"]
    group = await join_publishing(server.ws_url, names, peers)
    for peer in group:
        others = [n for n in names if n != peer.name]
        await peer.wait_for(receives_from(peer, others, "video", 60), timeout=15)
    for peer in group:
        maps = [m["slots"] for m in peer.messages if m["type"] in ("subscribe_offer", "slot_map")]
        assert len(maps) >= 2, f"{peer.name} was never told who its slots carry"
        repeated = [i for i in range(1, len(maps)) if maps[i] == maps[i - 1]]
        assert not repeated, f"{peer.name} got the same slot map again at {repeated}"


async def test_talkers_heard_keep_their_audio_slots(
    server_factory: Callable[..., Any], peers: list[LoopbackPeer]
) -> None:
    # Three talkers as loud as each other, two audio slots: the two heard stay heard (the
    # ranking of equals shifts with every packet; the slots must not follow it).
    server = await server_factory(slots={"audio": 2, "video": 4})
    await join_publishing(server.ws_url, ["Seoul", "Lima", "Nairobi"], peers)
    (listener,) = await join_publishing(server.ws_url, ["Oslo"], peers, level_dbov=127)

    def heard() -> list[str | None]:
        return [s.get("name") for s in listener.slots.values() if s["kind"] == "audio"]

    await listener.wait_for(lambda: None not in heard(), timeout=15)
    await asyncio.sleep(1.0)
    # Peers and server share this process: held up longer than `lately_ms` (a loaded
    # machine), the talkers were silent for the server and may lose their slots. Changes are
    # allowed only within a second after such a stall, seen as this loop's own lateness.
    may_silence_s = SpeakerConfig().lately_ms / 1000 - 0.2
    loop = asyncio.get_running_loop()
    seen, stalled_at = [heard()], -1e9
    unexplained: list[list[str | None]] = []
    last = loop.time()
    for _ in range(40):
        await asyncio.sleep(0.1)
        now = loop.time()
        if now - last > may_silence_s:
            stalled_at = now
        last = now
        if heard() != seen[-1]:
            seen.append(heard())
            if now - stalled_at > 1.0:
                unexplained.append(heard())
    assert not unexplained, f"the audio slots changed hands while everyone talked: {seen}"


async def test_the_periodic_pass_goes_a_few_subscribers_per_loop_iteration(
    server: Any, peers: list[LoopbackPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["Seoul", "Lima", "Nairobi"]
    group = await join_publishing(server.ws_url, names, peers)
    for peer in group:
        others = [n for n in names if n != peer.name]
        await peer.wait_for(receives_from(peer, others, "video", 10), timeout=15)
    live = server.app[HUB].rooms["demo"]
    live.stop_timers()  # the room's own periodic pass would add to what is counted
    media = live.media
    monkeypatch.setattr("confsfu.server.media_slots.REASSIGN_CHUNK", 1)
    done: list[str] = []
    allocate = media._allocate

    def counting(now_ms: int, sub: Any, known: Any) -> None:
        done.append(sub.participant_id)
        allocate(now_ms, sub, known)

    monkeypatch.setattr(media, "_allocate", counting)
    media.reassign_gradually()
    assert len(done) == 1  # the rest waits for the loop's next iterations
    for _ in range(10):
        await asyncio.sleep(0)
    assert sorted(done) == sorted(media.subscribers) and media._gradual is None
    # A pass made now replaces one under way: nobody is done twice.
    done.clear()
    media.reassign_gradually()
    media.reassign()
    for _ in range(10):
        await asyncio.sleep(0)
    assert sorted(done) == sorted([done[0], *media.subscribers])


class PeersInAThread:
    """Peers on an event loop of their own in another thread: they go on sending and
    receiving while the server's loop (the test's) is held up."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.made: list[LoopbackPeer] = []

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def close(self) -> None:
        async def close_all() -> None:
            for peer in self.made:
                await peer.close()

        await self.run(close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 5)
        self.loop.close()


async def test_long_python_work_pumps_the_publishers_sockets(server: Any) -> None:
    names = ["Seoul", "Lima", "Nairobi"]
    elsewhere = PeersInAThread()
    try:
        group = await elsewhere.run(join_publishing(server.ws_url, names, elsewhere.made))
        for peer in group:
            others = [n for n in names if n != peer.name]
            await elsewhere.run(peer.wait_for(receives_from(peer, others, "video", 10), timeout=15))
        media = server.app[HUB].rooms["demo"].media

        def forwarded_while_busy(pumping: bool) -> int:
            """Packets forwarded during 300 ms of work that never yields to the server's loop."""
            before = media.counters["packets_out"]
            until = time.monotonic() + 0.3
            while time.monotonic() < until:
                time.sleep(0.005)
                if pumping:
                    media.pump()
            return int(media.counters["packets_out"] - before)

        assert forwarded_while_busy(pumping=False) == 0  # it all waits for the loop
        await asyncio.sleep(0.2)
        # 3 publishers x 2 subscribers x (50 audio + some 30 video packets) a second.
        assert forwarded_while_busy(pumping=True) > 50
        await asyncio.sleep(0.2)  # what the pump left to the loop (RTCP, STUN) runs now
        received = {p.name: p.streams_showing("video")["Lima"].packets for p in group[::2]}
        await asyncio.sleep(1.0)
        for peer in group[::2]:  # media flows on
            assert peer.streams_showing("video")["Lima"].packets > received[peer.name] + 10
    finally:
        await elsewhere.close()
