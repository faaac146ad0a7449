"""A loopback participant: joins over the WebSocket, publishes pre-encoded media, receives raw RTP.

It never decodes. It answers like a browser would: NACKs gaps, and counts what each slot carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from confsfu.codecs.vp8 import packetize_vp8
from confsfu.forwarding.history import PacketHistory
from confsfu.forwarding.outgoing import transport_cc_at
from confsfu.loadgen.media import EncodedFrame
from confsfu.rtp import rtcp
from confsfu.rtp.errors import ParseError
from confsfu.rtp.extensions import ABS_SEND_TIME, TRANSPORT_CC, build_audio_level
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.rtp.seq import seq_diff
from confsfu.sdp import parse_sdp
from confsfu.server.rtc_adapter import OutgoingStream, RawPeerConnection
from confsfu.server.sdp_plan import with_transport_cc

AUDIO_LEVEL_ID = 2  # aiortc's id for ssrc-audio-level
MID_ID = 1
RID_ID = 10  # as configure_aiortc numbers the rid extension
SIMULCAST_RIDS = ("q", "h", "f")
TEMPORAL_PATTERN = (0, 2, 1, 2)  # L1T3, like Chromium's VP8 simulcast
PACING_FACTOR = 2.5  # video goes out at up to this times its mean rate, as a browser's pacer sends
TICK_S = 0.02  # the send loop's period (one Opus frame)


class Pacer:
    """A browser-like pacer for one publisher's video: each tick sends queued packets up to a
    byte budget, so a keyframe leaves over a few ticks instead of as one burst of dozens of
    packets (which no real publisher sends, and which a server then has to queue)."""

    __slots__ = ("_budget", "_per_tick", "_queue")

    def __init__(self, bytes_per_tick: float) -> None:
        self._per_tick = max(bytes_per_tick, 1500.0)
        self._budget = 0.0
        self._queue: deque[tuple[bytes, Callable[[], None]]] = deque()

    def push(self, packet: bytes, on_sent: Callable[[], None]) -> None:
        self._queue.append((packet, on_sent))

    def tick(self, send: Callable[[bytes], object]) -> None:
        """Send what this tick's budget allows (at least one packet when any is queued)."""
        self._budget = min(self._budget + self._per_tick, 2 * self._per_tick)
        while self._queue and self._budget > 0:
            packet, on_sent = self._queue.popleft()
            send(packet)
            on_sent()
            self._budget -= len(packet)
        if not self._queue:
            self._budget = min(self._budget, 0.0)  # no saving up while idle


def simulcast_offer(offer: str) -> str:
    """Announce three rid layers on the video m-line instead of SSRCs, like Chromium does."""
    out: list[str] = []
    in_video = False
    for line in offer.split("\r\n"):
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        if in_video and (line.startswith("a=ssrc:") or line.startswith("a=ssrc-group:")):
            continue
        out.append(line)
        if in_video and line.startswith("a=mid:"):
            out += [f"a=rid:{rid} send" for rid in SIMULCAST_RIDS]
            out.append("a=simulcast:send " + ";".join(SIMULCAST_RIDS))
    return "\r\n".join(out)


def sim_group_offer(offer: str, ssrcs: list[int]) -> str:
    """Announce simulcast layers as legacy Chrome did: their SSRCs in an a=ssrc-group:SIM on the
    video m-line, lowest layer first, and no rids."""
    out: list[str] = []
    in_video = False
    for line in offer.split("\r\n"):
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        if in_video and (line.startswith("a=ssrc:") or line.startswith("a=ssrc-group:")):
            continue
        out.append(line)
        if in_video and line.startswith("a=mid:"):
            out.append("a=ssrc-group:SIM " + " ".join(map(str, ssrcs)))
            out += [f"a=ssrc:{ssrc} cname:loopback" for ssrc in ssrcs]
    return "\r\n".join(out)


@dataclass(slots=True)
class ReceivedStream:
    """What one slot (SSRC) of the subscribe connection delivered."""

    ssrc: int
    kind: str = ""
    mid: str = ""
    packets: int = 0
    octets: int = 0
    seqs: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # seqs that arrived by RTX
    keep_payloads: bool = False


@dataclass(slots=True)
class SentMedia:
    audio_payloads: list[bytes] = field(default_factory=list)
    video_payloads: list[bytes] = field(default_factory=list)
    audio_packets: int = 0
    video_packets: int = 0
    screen_packets: int = 0
    retransmitted: int = 0  # answers to the server's NACKs


class LoopbackPeer:
    """One simulated participant on the server at `url` (ws://host:port/ws)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        room: str = "demo",
        token: str | None = None,
        keep_payloads: bool = False,
        drop_received: Callable[[int, int], bool] | None = None,
        simulcast: bool = False,
        legacy_sim: bool = False,
        remb_bps: int | None = None,
        remb_follows: bool = False,
        confirms_slots: bool = False,
        link_bps: Callable[[], int] | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.room = room
        self.token = token
        self.keep_payloads = keep_payloads
        self.simulcast = simulcast  # publish three rid layers (start_simulcast) instead of one
        self.legacy_sim = legacy_sim  # ... named by an a=ssrc-group:SIM instead of rids
        self.remb_bps = remb_bps  # the downlink this subscriber reports (REMB every 250 ms)
        # ... or, with remb_follows, at least that and 1.5 x what arrived over the last second,
        # as a receiver-side estimate (Chromium's, Firefox's) can never report much more
        self.remb_follows = remb_follows
        # Say confirms_slots at join, as the page does; the peer then confirms slot maps only
        # when told to (confirm_slots), so a test can play a page that is late to show them.
        self.confirms_slots = confirms_slots
        # A downlink of link_bps() (read per packet) with a 300 ms queue, in front of this
        # subscriber: it answers with transport-cc and reports when each packet would have come
        # out of that queue (TransportLink); what would overflow it is lost.
        self.link = TransportLink(link_bps) if link_bps is not None else None
        self._feedback_task: asyncio.Task[None] | None = None
        self.slot_map_seq = 0  # the latest slot map's
        self.received_bytes = 0  # every RTP packet that arrived, padding included
        self._remb_task: asyncio.Task[None] | None = None
        self.layer_payloads: list[set[bytes]] = [set(), set(), set()]
        self.drop_received = drop_received  # (ssrc, seq) -> drop this packet on arrival
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.participant_id = ""
        self.slots: dict[str, dict[str, Any]] = {}  # mid -> latest SlotInfo
        self.received: dict[int, ReceivedStream] = {}
        self.sent = SentMedia()
        self.publish_pc: RawPeerConnection | None = None
        self.screen_pc: RawPeerConnection | None = None  # a screen share's publish connection
        self.subscribe_pc: RawPeerConnection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._media_task: asyncio.Task[None] | None = None
        self._screen_task: asyncio.Task[None] | None = None
        self._screen_answered = asyncio.Event()
        self._changed = asyncio.Event()
        self._ssrc_kind: dict[int, tuple[str, str]] = {}
        self._rtx_of: dict[int, int] = {}
        self.abs_send_time_id: int | None = None  # in the server's subscribe offer
        self._highest: dict[int, int] = {}
        self._nacked: set[tuple[int, int]] = set()
        self._publish_streams: list[OutgoingStream] = []
        self._recent = RecentPackets()
        self._publish_answered = asyncio.Event()
        self.keyframe_requests = 0
        self.keyframe_requests_by_ssrc: Counter[int] = Counter()
        self.layer_ssrcs: list[int] = []  # the simulcast layers' SSRCs, lowest first
        # Simulcast layers the server says anyone receives (publisher_layers); like a browser,
        # the others are not sent.
        self.active_rids: set[str] = set(SIMULCAST_RIDS)
        self._layers_resumed = False
        self.sent_by_ssrc: Counter[int] = Counter()  # video packets per simulcast layer
        self._subscribed = asyncio.Event()

    @property
    def publish_streams(self) -> list[OutgoingStream]:
        """The streams of the publish connection (audio first), once published."""
        return list(self._publish_streams)

    # ---- signalling ----------------------------------------------------------------------

    async def join(self, *, publish: bool = True) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda: any(m["type"] == "hello" for m in self.messages))
        join: dict[str, Any] = {"type": "join", "confirms_slots": self.confirms_slots}
        if self.token:
            join["token"] = self.token
        else:
            join.update(room=self.room, name=self.name)
        await self.send(join)
        await self.wait_for(lambda: bool(self.participant_id) or bool(self.errors))
        if not self.participant_id:
            raise RuntimeError(f"{self.name} could not join: {self.errors[-1]}")
        await asyncio.wait_for(self._subscribed.wait(), 10)
        if publish:
            await self._publish()

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            self.messages.append(message)
            await self._on_message(message)
            self._changed.set()
        self._changed.set()

    async def _on_message(self, m: dict[str, Any]) -> None:
        kind = m["type"]
        if kind == "joined":
            self.participant_id = m["participant_id"]
        elif kind == "error":
            self.errors.append(m)
        elif kind == "subscribe_offer":
            for slot in m["slots"]:
                self.slots[slot["mid"]] = slot
            await self._answer_subscribe(m["sdp"])
        elif kind == "slot_map":
            for slot in m["slots"]:
                self.slots[slot["mid"]] = slot
            self.slot_map_seq = m.get("seq", self.slot_map_seq)
        elif kind == "publisher_layers" and m.get("purpose") == "camera":
            active = set(m["active"])
            self._layers_resumed |= bool(active - self.active_rids)  # they start on a keyframe
            self.active_rids = active
        elif kind == "publish_answer" and m.get("purpose") == "screen":
            assert self.screen_pc is not None
            await self.screen_pc.accept_answer(m["sdp"])
            self._screen_answered.set()
        elif kind == "publish_answer":
            assert self.publish_pc is not None
            await self.publish_pc.accept_answer(m["sdp"])
            self._publish_answered.set()

    async def confirm_slots(self) -> None:
        """Tell the server the latest slot map is shown (a page does so as it draws it)."""
        await self.send({"type": "slots_shown", "seq": self.slot_map_seq})

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async def until() -> None:
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

        await asyncio.wait_for(until(), timeout)

    async def go_silent(self) -> None:
        """Stop reading, answering and sending, as if the network vanished (no goodbye)."""
        for task in (self._reader, self._media_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._media_task = None

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def close(self, *, goodbye: bool = True) -> None:
        for task in (self._media_task, self._screen_task, self._remb_task, self._feedback_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if goodbye and self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send({"type": "leave"})
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for pc in (self.publish_pc, self.screen_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self._session is not None:
            await self._session.close()

    # ---- subscribe side --------------------------------------------------------------------

    async def _answer_subscribe(self, offer_sdp: str) -> None:
        pc = RawPeerConnection()
        pc.set_callbacks(on_rtp=self._on_rtp, on_rtcp=lambda data: None)
        self.subscribe_pc = pc
        for m in parse_sdp(offer_sdp).media:
            self.abs_send_time_id = m.extmap.get(ABS_SEND_TIME, self.abs_send_time_id)
            for ssrc in m.ssrcs:
                self._ssrc_kind[ssrc] = (m.kind, m.mid or "")
            for semantics, group in m.ssrc_groups:
                if semantics == "FID" and len(group) == 2:
                    self._rtx_of[group[1]] = group[0]
        answer = await pc.answer(offer_sdp)
        offered = [m.extmap.get(TRANSPORT_CC) for m in parse_sdp(offer_sdp).media]
        if self.link is not None and offered and offered[0] is not None:
            answer, self.link.ext_id = with_transport_cc(answer, offered[0])
            self._feedback_task = asyncio.create_task(self._send_feedback())
        await self.send({"type": "subscribe_answer", "sdp": answer})
        self._subscribed.set()
        if self.remb_bps is not None and self._remb_task is None:
            self._remb_task = asyncio.create_task(self._send_remb())

    async def _send_remb(self) -> None:
        ssrcs = tuple(s for s, (kind, _mid) in self._ssrc_kind.items() if kind == "video")
        window: deque[int] = deque(maxlen=5)  # received_bytes over the last second
        while self.subscribe_pc is not None:
            window.append(self.received_bytes)
            if self.remb_bps is not None:
                bitrate = self.remb_bps
                if self.remb_follows and len(window) > 1:
                    received_bps = (window[-1] - window[0]) * 8 * 4 // (len(window) - 1)
                    bitrate = max(bitrate, received_bps * 3 // 2)
                remb = rtcp.Remb(sender_ssrc=1, bitrate_bps=bitrate, ssrcs=ssrcs)
                self.subscribe_pc.send_rtcp(rtcp.serialize_rtcp([remb]))
            await asyncio.sleep(0.25)

    async def _send_feedback(self) -> None:
        """Transport-wide feedback every 100 ms, as browsers send it."""
        assert self.link is not None
        count = 0
        while self.subscribe_pc is not None:
            await asyncio.sleep(0.1)
            media = next(iter(self._ssrc_kind), 0)
            for report in self.link.reports(sender_ssrc=1, media_ssrc=media, count=count):
                count = (count + 1) & 0xFF
                self.subscribe_pc.send_rtcp(rtcp.serialize_rtcp([report]))

    def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        if self.link is not None and not self.link.arrives(data):
            return  # lost in the link's queue
        self.received_bytes += len(data)
        try:
            pkt = parse_rtp(data)
        except ParseError:
            return
        ssrc, seq, payload, recovered = pkt.ssrc, pkt.sequence_number, pkt.payload, False
        if ssrc in self._rtx_of:
            if len(payload) < 2:
                return
            ssrc, seq = self._rtx_of[ssrc], int.from_bytes(payload[:2], "big")
            payload, recovered = payload[2:], True
        elif self.drop_received is not None and self.drop_received(ssrc, seq):
            return
        stream = self.received.get(ssrc)
        if stream is None:
            kind, mid = self._ssrc_kind.get(ssrc, ("", ""))
            stream = self.received[ssrc] = ReceivedStream(ssrc, kind, mid)
        stream.packets += 1
        stream.octets += len(data)
        stream.seqs.append(seq)
        if recovered:
            stream.recovered.append(seq)
        if self.keep_payloads:
            stream.payloads.append(payload)
        if not recovered:
            self._nack_gaps(ssrc, seq)

    def _nack_gaps(self, ssrc: int, seq: int) -> None:
        last = self._highest.get(ssrc)
        self._highest[ssrc] = seq if last is None or (seq - last) % 65536 < 32768 else last
        if last is None:
            return
        gap = (seq - last) % 65536
        if 1 < gap < 100:
            lost = [(last + i) % 65536 for i in range(1, gap)]
            self._send_nack(ssrc, lost)

    def _send_nack(self, ssrc: int, lost: list[int]) -> None:
        fresh = [s for s in lost if (ssrc, s) not in self._nacked]
        self._nacked.update((ssrc, s) for s in fresh)
        if fresh and self.subscribe_pc is not None:
            nack = rtcp.Nack(sender_ssrc=1, media_ssrc=ssrc, lost=tuple(fresh))
            self.subscribe_pc.send_rtcp(rtcp.serialize_rtcp([nack]))

    def streams_showing(self, kind: str, purpose: str | None = None) -> dict[str, ReceivedStream]:
        """Participant name -> the received stream of the slot the server says shows them.

        Video looks at the stage and the grid unless `purpose` names one of them.
        """
        purposes = {purpose} if purpose else ({"grid", "stage"} if kind == "video" else {"audio"})
        out: dict[str, ReceivedStream] = {}
        for ssrc, stream in self.received.items():
            slot = self.slots.get(stream.mid)
            if (
                slot
                and slot["kind"] == kind
                and slot.get("purpose", "grid") in purposes
                and slot["name"]
                and self._ssrc_kind[ssrc][0] == kind
            ):
                out[slot["name"]] = stream
        return out

    # ---- publish side ----------------------------------------------------------------------

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
        await asyncio.wait_for(self._publish_answered.wait(), 10)

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


class TransportLink:
    """A bottleneck in front of a subscriber, for transport-cc: each packet leaves a queue
    drained at `rate_bps()` (a packet that would wait over `max_queue_us` is lost), and the
    feedback says when each transport-wide number came out of it."""

    def __init__(self, rate_bps: Callable[[], int], max_queue_us: int = 300_000) -> None:
        self.rate_bps = rate_bps
        self.max_queue_us = max_queue_us
        self.ext_id: int | None = None  # the transport-wide-cc extension's id, once answered
        self.lost = 0
        self._free_us = 0  # when the queue is empty again
        self._arrivals: dict[int, int] = {}  # unwrapped transport-wide number -> arrival (us)
        self._highest: int | None = None
        self._next: int | None = None  # the first number the next feedback reports

    def arrives(self, packet: bytes) -> bool:
        """Whether `packet` makes it through the queue (its arrival noted either way)."""
        at = transport_cc_at(packet, self.ext_id) if self.ext_id is not None else 0
        now_us = time.monotonic_ns() // 1000
        leaves = max(now_us, self._free_us) + len(packet) * 8_000_000 // max(self.rate_bps(), 1)
        through = leaves - now_us <= self.max_queue_us
        if through:
            self._free_us = leaves
        else:
            self.lost += 1
        if at:
            seq = int.from_bytes(packet[at : at + 2], "big")
            ext = seq if self._highest is None else self._highest + seq_diff(seq, self._highest)
            self._highest = ext if self._highest is None else max(self._highest, ext)
            if self._next is None:
                self._next = ext
            if through and ext >= self._next:
                self._arrivals[ext] = leaves
        return through

    def reports(
        self, *, sender_ssrc: int, media_ssrc: int, count: int
    ) -> list[rtcp.TransportFeedback]:
        """Feedback on every number since the last report (None: lost), in packets of at most
        500 numbers."""
        out: list[rtcp.TransportFeedback] = []
        while self._next is not None and self._highest is not None and self._next <= self._highest:
            first, last = self._next, min(self._highest, self._next + 499)
            numbers = range(first, last + 1)
            times = [self._arrivals.pop(n, None) for n in numbers]
            known = [t for t in times if t is not None]
            if not known:
                break  # nothing arrived yet: wait for more (all-lost reports say too little)
            reference = min(known) // 64_000
            base_us = reference * 64_000
            packets = tuple(
                (n & 0xFFFF, None if t is None else t - base_us)
                for n, t in zip(numbers, times, strict=True)
            )
            out.append(
                rtcp.TransportFeedback(
                    sender_ssrc, media_ssrc, first & 0xFFFF, reference & 0xFFFFFF,
                    (count + len(out)) & 0xFF, packets,
                )
            )  # fmt: skip
            self._next = last + 1
        return out


class RecentPackets:
    """The last packets a publisher sent, per SSRC by sequence number, to answer NACKs."""

    def __init__(self, size: int = 1024) -> None:
        self._by_ssrc: dict[int, PacketHistory[bytes]] = {}
        self._size = size  # per SSRC, a power of two

    def keep(self, packet: bytes) -> None:
        ssrc = int.from_bytes(packet[8:12], "big")
        history = self._by_ssrc.get(ssrc)
        if history is None:
            history = self._by_ssrc[ssrc] = PacketHistory(self._size)
        history.put(int.from_bytes(packet[2:4], "big"), packet)

    def get(self, ssrc: int, seq: int) -> bytes | None:
        history = self._by_ssrc.get(ssrc)
        return history.get(seq) if history is not None else None


def next_keyframe(frames: list[EncodedFrame], index: int) -> int:
    """The index (from `index` on, going round) of the next keyframe; `index` if there is none."""
    n = len(frames)
    return next((i for i in range(index, index + n) if frames[i % n].keyframe), index)
