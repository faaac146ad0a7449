"""The publish side of a loopback participant: its publish and screen-share connections, the
paced send loops (one layer, simulcast, a screen share) and its answers to keyframe requests and
NACKs."""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confsfu.codecs.vp8 import packetize_vp8
from confsfu.loadgen.media import EncodedFrame
from confsfu.loadgen.offers import sim_group_offer, simulcast_offer
from confsfu.loadgen.packets import (
    AUDIO_LEVEL_ID,
    MID_ID,
    PACING_FACTOR,
    RID_ID,
    SIMULCAST_RIDS,
    TEMPORAL_PATTERN,
    TICK_S,
    Pacer,
    RecentPackets,
    next_keyframe,
)
from confsfu.rtp import rtcp
from confsfu.rtp.extensions import build_audio_level
from confsfu.rtp.packet import build_rtp
from confsfu.server.rtc_adapter import OutgoingStream, RawPeerConnection


@dataclass(slots=True)
class SentMedia:
    audio_payloads: list[bytes] = field(default_factory=list)
    video_payloads: list[bytes] = field(default_factory=list)
    audio_packets: int = 0
    video_packets: int = 0
    screen_packets: int = 0
    retransmitted: int = 0  # answers to the server's NACKs


class Publisher:
    """LoopbackPeer's publish side: what it sends and what the server asked of it."""

    # LoopbackPeer's
    name: str
    errors: list[dict[str, Any]]
    keep_payloads: bool

    if TYPE_CHECKING:

        async def send(self, message: dict[str, Any]) -> None: ...

        async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None: ...

    def _init_publisher(self, simulcast: bool, legacy_sim: bool) -> None:
        self.simulcast = simulcast  # publish three rid layers (start_simulcast) instead of one
        self.legacy_sim = legacy_sim  # ... named by an a=ssrc-group:SIM instead of rids
        self.layer_payloads: list[set[bytes]] = [set(), set(), set()]
        self.sent = SentMedia()
        self.publish_pc: RawPeerConnection | None = None
        self.screen_pc: RawPeerConnection | None = None  # a screen share's publish connection
        self._media_task: asyncio.Task[None] | None = None
        self._screen_task: asyncio.Task[None] | None = None
        self._screen_answered = asyncio.Event()
        self._publish_streams: list[OutgoingStream] = []
        self._recent = RecentPackets()
        self._publish_answered = asyncio.Event()
        # How long a join's steps (hello, joined, subscribed, published) may each take: a
        # test on a loaded machine sets more (a worker's first join imports, a spilled one
        # waits for the room's authority).
        self.join_timeout_s = 10.0
        self.keyframe_requests = 0
        self.keyframe_requests_by_ssrc: Counter[int] = Counter()
        self.layer_ssrcs: list[int] = []  # the simulcast layers' SSRCs, lowest first
        # Simulcast layers the server says anyone receives (publisher_layers); like a browser,
        # the others are not sent.
        self.active_rids: set[str] = set(SIMULCAST_RIDS)
        self._layers_resumed = False
        self.sent_by_ssrc: Counter[int] = Counter()  # video packets per simulcast layer

    @property
    def publish_streams(self) -> list[OutgoingStream]:
        """The streams of the publish connection (audio first), once published."""
        return list(self._publish_streams)

    async def _publish(self) -> None:
        pc = self.publish_pc = self._publisher_connection()
        offer, self._publish_streams = await pc.offer(["audio", "video"])
        if self.simulcast and self.legacy_sim:
            rng = random.Random()
            self.layer_ssrcs = [rng.getrandbits(32) for _ in SIMULCAST_RIDS]
            offer = sim_group_offer(offer, self.layer_ssrcs)
        elif self.simulcast:
            offer = simulcast_offer(offer)
        await self.send({"type": "publish_offer", "sdp": offer})
        await asyncio.wait_for(self._publish_answered.wait(), self.join_timeout_s)

    def _publisher_connection(self) -> RawPeerConnection:
        """A publish connection that keeps what it sends, to answer the server's NACKs."""
        pc = RawPeerConnection()
        pc.set_callbacks(
            on_rtp=lambda data, at: None, on_rtcp=functools.partial(self._on_publish_rtcp, pc)
        )
        send = pc.send_rtp

        def send_and_keep(packet: bytes, *, stamp: bool = True) -> bool:
            self._recent.keep(packet)
            return send(packet, stamp=stamp)

        pc.send_rtp = send_and_keep  # type: ignore[method-assign]
        return pc

    async def share_screen(
        self, frames: list[EncodedFrame], *, fps: int = 5, duration_s: float = 60.0
    ) -> None:
        """Share a screen as a page does: a second publish connection, video only, one VP8 layer
        (`frames` at `fps`, paced, a keyframe when asked) for at most `duration_s`. Raises when
        the server refuses (only a chair, the presenter or the floor holder may share)."""
        pc = self.screen_pc = self._publisher_connection()
        offer, streams = await pc.offer(["video"])
        refusals = len(self.errors)
        await self.send({"type": "publish_offer", "sdp": offer, "purpose": "screen"})
        await self.wait_for(lambda: self._screen_answered.is_set() or len(self.errors) > refusals)
        if not self._screen_answered.is_set():
            raise RuntimeError(f"{self.name} may not share a screen: {self.errors[-1]}")
        self._screen_task = asyncio.create_task(
            self._send_screen(frames, streams[0], fps, duration_s)
        )

    async def _send_screen(
        self, frames: list[EncodedFrame], stream: OutgoingStream, fps: int, duration_s: float
    ) -> None:
        pc = self.screen_pc
        assert pc is not None
        rng = random.Random()
        seq, ts = rng.getrandbits(16), rng.getrandbits(32)
        picture_id, tl0 = rng.getrandbits(15), rng.getrandbits(8)
        pacer = Pacer(PACING_FACTOR * sum(len(f.data) for f in frames) / len(frames) * fps * TICK_S)
        loop = asyncio.get_running_loop()
        start, tick, index, answered = loop.time(), 0, 0, 0
        frame_every = max(1, round(1 / (fps * TICK_S)))

        def sent() -> None:
            self.sent.screen_packets += 1

        while loop.time() - start < duration_s:
            if tick % frame_every == 0:
                asked = self.keyframe_requests_by_ssrc[stream.ssrc]
                if asked > answered:  # the next keyframe (slide) now
                    answered = asked
                    index = next_keyframe(frames, index)
                chunks = packetize_vp8(
                    frames[index % len(frames)].data,
                    picture_id=picture_id,
                    tl0picidx=tl0,
                    temporal_id=0,
                    layer_sync=True,
                )
                for i, chunk in enumerate(chunks):
                    packet = build_rtp(
                        payload_type=97,
                        sequence_number=seq,
                        timestamp=ts,
                        ssrc=stream.ssrc,
                        payload=chunk,
                        marker=i == len(chunks) - 1,
                        extensions={MID_ID: stream.mid.encode()},
                    )
                    pacer.push(packet, sent)
                    seq = (seq + 1) % 65536
                index += 1
                picture_id, tl0 = (picture_id + 1) % 32768, (tl0 + 1) % 256
                ts = (ts + 90000 // fps) % (1 << 32)
            pacer.tick(pc.send_rtp)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * TICK_S - loop.time()))

    def start_simulcast(
        self,
        audio: list[EncodedFrame],
        layers: list[list[EncodedFrame]],
        *,
        fps: int = 30,
        duration_s: float = 60.0,
        talking: Callable[[float], bool] = lambda t: True,
        level_dbov: int = 30,
    ) -> None:
        """Send three VP8 layers (lowest first) with temporal layers, and audio, like Chromium.

        While `talking(t)`, audio carries `level_dbov` and the voice flag, else silence (127).
        """
        self._media_task = asyncio.create_task(
            self._send_simulcast(audio, layers, fps, duration_s, talking, level_dbov)
        )

    async def _send_simulcast(
        self,
        audio: list[EncodedFrame],
        layers: list[list[EncodedFrame]],
        fps: int,
        duration_s: float,
        talking: Callable[[float], bool],
        level_dbov: int,
    ) -> None:
        pc = self.publish_pc
        assert pc is not None
        a_stream = next(s for s in self._publish_streams if s.kind == "audio")
        v_stream = next(s for s in self._publish_streams if s.kind == "video")
        rng = random.Random()
        ssrcs = self.layer_ssrcs = self.layer_ssrcs or [rng.getrandbits(32) for _ in layers]
        seqs = [rng.getrandbits(16) for _ in layers]
        pics = [rng.getrandbits(15) for _ in layers]
        tl0s = [rng.getrandbits(8) for _ in layers]
        a_seq, a_ts, v_ts = rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32)
        loop = asyncio.get_running_loop()
        start, tick, index, answered = loop.time(), 0, 0, self.keyframe_requests
        last_keyframe_s = start
        frame_every = max(1, 50 // fps)
        mean_frame_bytes = sum(sum(len(f.data) for f in fs) / len(fs) for fs in layers if fs)
        pacer = Pacer(PACING_FACTOR * mean_frame_bytes * fps * TICK_S)

        def sent(layer: int, chunk: bytes) -> None:
            self.layer_payloads[layer].add(chunk[6:])  # the frame bytes, past the descriptor
            self.sent.video_packets += 1
            self.sent_by_ssrc[ssrcs[layer]] += 1

        while loop.time() - start < duration_s:
            payload = audio[tick % len(audio)].data
            level = level_dbov if talking(loop.time() - start) else 127
            pc.send_rtp(
                build_rtp(
                    payload_type=96,
                    sequence_number=a_seq,
                    timestamp=a_ts,
                    ssrc=a_stream.ssrc,
                    payload=payload,
                    extensions={AUDIO_LEVEL_ID: build_audio_level(level < 127, level)},
                )
            )
            self.sent.audio_packets += 1
            a_seq, a_ts = (a_seq + 1) % 65536, (a_ts + 960) % (1 << 32)
            if tick % frame_every == 0:
                asked = self.keyframe_requests > answered and loop.time() - last_keyframe_s > 1.0
                if asked or self._layers_resumed:
                    answered, self._layers_resumed = self.keyframe_requests, False
                    last_keyframe_s = loop.time()
                    index = next_keyframe(layers[0], index)
                keyframe = layers[0][index % len(layers[0])].keyframe
                tid = 0 if keyframe else TEMPORAL_PATTERN[index % 4]
                if tid == 0:  # a new TL0 frame; the frames above it carry its index
                    tl0s = [(t + 1) % 256 for t in tl0s]
                for layer, frames in enumerate(layers):
                    if SIMULCAST_RIDS[layer] not in self.active_rids:
                        continue  # switched off: nobody receives it
                    chunks = packetize_vp8(
                        frames[index % len(frames)].data,
                        picture_id=pics[layer],
                        tl0picidx=tl0s[layer],
                        temporal_id=tid,
                        layer_sync=tid > 0,
                    )
                    for i, chunk in enumerate(chunks):
                        ext = {MID_ID: v_stream.mid.encode()}
                        if not self.legacy_sim:
                            ext[RID_ID] = SIMULCAST_RIDS[layer].encode()
                        packet = build_rtp(
                            payload_type=97,
                            sequence_number=seqs[layer],
                            timestamp=v_ts,
                            ssrc=ssrcs[layer],
                            payload=chunk,
                            marker=i == len(chunks) - 1,
                            extensions=ext,
                        )
                        pacer.push(packet, functools.partial(sent, layer, chunk))
                        seqs[layer] = (seqs[layer] + 1) % 65536
                    pics[layer] = (pics[layer] + 1) % 32768
                index += 1
                v_ts = (v_ts + 90000 // fps) % (1 << 32)
            pacer.tick(pc.send_rtp)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * TICK_S - loop.time()))

    def _on_publish_rtcp(self, pc: RawPeerConnection, data: bytes) -> None:
        packets, _errors = rtcp.parse_rtcp_lenient(data)
        for packet in packets:
            if isinstance(packet, rtcp.PictureLossIndication | rtcp.FullIntraRequest):
                self.keyframe_requests += 1
                asked = (
                    [packet.media_ssrc]
                    if isinstance(packet, rtcp.PictureLossIndication)
                    else [ssrc for ssrc, _seq in packet.entries]
                )
                self.keyframe_requests_by_ssrc.update(asked)
            elif isinstance(packet, rtcp.Nack):
                # Like a browser without RTX: the lost packet again, as it was.
                for seq in packet.lost:
                    again = self._recent.get(packet.media_ssrc, seq)
                    if again is not None and pc.send_rtp(again):
                        self.sent.retransmitted += 1

    def start_media(
        self,
        audio: list[EncodedFrame],
        video: list[EncodedFrame],
        *,
        fps: int = 30,
        talking: Callable[[float], bool] = lambda t: True,
        level_dbov: int = 30,
        duration_s: float = 60.0,
    ) -> None:
        """Send the frames in a loop, paced in real time, for at most `duration_s`.

        While `talking(t)`, audio carries `level_dbov` and the voice flag, else silence (127).
        """
        self._media_task = asyncio.create_task(
            self._send_media(audio, video, fps, talking, level_dbov, duration_s)
        )

    async def _send_media(
        self,
        audio: list[EncodedFrame],
        video: list[EncodedFrame],
        fps: int,
        talking: Callable[[float], bool],
        level_dbov: int,
        duration_s: float,
    ) -> None:
        pc = self.publish_pc
        assert pc is not None
        a_stream = next(s for s in self._publish_streams if s.kind == "audio")
        v_stream = next(s for s in self._publish_streams if s.kind == "video")
        rng = random.Random()
        a_seq, v_seq = rng.getrandbits(16), rng.getrandbits(16)
        a_ts, v_ts = rng.getrandbits(32), rng.getrandbits(32)
        picture_id, tl0 = rng.getrandbits(15), rng.getrandbits(8)
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick, frame_every, v_index, a_index = 0, max(1, 50 // fps), 0, 0
        answered_requests = self.keyframe_requests
        while loop.time() - start < duration_s:
            t = loop.time() - start
            level = level_dbov if talking(t) else 127
            a_payload = audio[a_index % len(audio)].data
            a_index += 1
            pkt = build_rtp(
                payload_type=96,
                sequence_number=a_seq,
                timestamp=a_ts,
                ssrc=a_stream.ssrc,
                payload=a_payload,
                marker=False,
                extensions={AUDIO_LEVEL_ID: build_audio_level(level < 127, level)},
            )
            if pc.send_rtp(pkt):
                self.sent.audio_packets += 1
                if self.keep_payloads:
                    self.sent.audio_payloads.append(a_payload)
            a_seq, a_ts = (a_seq + 1) % 65536, (a_ts + 960) % (1 << 32)
            if video and tick % frame_every == 0:
                if self.keyframe_requests > answered_requests:
                    answered_requests = self.keyframe_requests
                    v_index = next_keyframe(video, v_index)
                frame = video[v_index % len(video)]
                v_index += 1
                payloads = packetize_vp8(
                    frame.data, picture_id=picture_id, tl0picidx=tl0, temporal_id=0, layer_sync=True
                )
                for i, payload in enumerate(payloads):
                    pkt = build_rtp(
                        payload_type=97,
                        sequence_number=v_seq,
                        timestamp=v_ts,
                        ssrc=v_stream.ssrc,
                        payload=payload,
                        marker=i == len(payloads) - 1,
                    )
                    if pc.send_rtp(pkt):
                        self.sent.video_packets += 1
                        if self.keep_payloads:
                            self.sent.video_payloads.append(payload)
                    v_seq = (v_seq + 1) % 65536
                picture_id = (picture_id + 1) % 32768
                tl0 = (tl0 + 1) % 256
                v_ts = (v_ts + 90000 // fps) % (1 << 32)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * 0.02 - loop.time()))
