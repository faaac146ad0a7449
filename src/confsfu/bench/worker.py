"""One benchmark worker process: an asyncio loop running its share of the loopback participants."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from confsfu.bench.arrival import ArrivalStamps
from confsfu.bench.linkwatch import LinkPlan, LinkWatch, make_link
from confsfu.bench.peer_result import peer_result
from confsfu.bench.scenario import SCREEN_FPS
from confsfu.bench.streams import DELAY_MAX_MS, SendTimes, StreamStats, server_read_after
from confsfu.loadgen.media import EncodedFrame, opus_frames, vp8_frames, vp8_slides
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.rtp.errors import ParseError
from confsfu.rtp.packet import parse_rtp
from confsfu.server.aiortc_setup import configure_aiortc
from confsfu.server.rtc_adapter import RawPeerConnection
from confsfu.server.run import run_loop

DELAY_BIN_MS = 0.1  # forwarding delay histogram resolution
TAIL_BYTES = 12  # packet tail used to match a received packet to its send time
TAG = b"\xc0\xf5"  # ...of which the last 6: this mark and a 4-byte count (see BenchPeer)
TAG_BYTES = len(TAG) + 4
MIN_TAGGED_BYTES = 64  # header with extensions, VP8 descriptor and keyframe header, the tag
SPLIT_EVERY = 8  # video packets whose delay is also split at the server's read: 1 in 8 (a parse)
CLOCK_SLACK_S = 0.001  # realtime -> monotonic conversion error allowed in an arrival time
MESSAGES_KEPT = 200  # signalling messages a peer's log keeps (what the run needs is noted apart)
LINK_STAMP_MAX_S = 5.0  # a kernel time stamp older than this, for a linked subscriber, is wrong


class _Queue(Protocol):
    def put(self, item: Any) -> None: ...


class _Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PeerPlan:
    """One simulated participant."""

    name: str
    role: str  # "chair", "participant" or "listener"
    publish: bool
    token: str | None
    remb_bps: int | None
    publisher_index: int | None  # position in the talk rotation
    presenter: bool = False
    link: bool = False  # behind the scenario's scheduled link (WorkerPlan.link)
    url: str | None = None  # where it joins (None: WorkerPlan.url); see spread.py
    room: str | None = None  # which room (None: WorkerPlan.room)
    label: str | None = None  # its name in the report when rooms repeat names (None: name)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What one worker process runs."""

    worker: int
    url: str
    room: str
    peers: tuple[PeerPlan, ...]
    layers: tuple[tuple[int, int, int], ...]  # width, height, bitrate_bps (lowest first)
    simulcast: bool
    talkers: int
    publishers: int
    talk_rotate_s: float
    epoch_s: float  # wall clock shared by all workers (talk rotation)
    presenter_name: str | None
    screen: tuple[int, int, int] | None  # the presenter's slides: width, height, bitrate_bps
    pass_floor_s: float | None
    floor_turns: tuple[str, ...]  # whom the chair passes the floor to, in turn
    max_duration_s: float
    join_spacing_s: float
    nice: int = 0  # added to the worker process's nice value at start
    idle: bool = False  # run under SCHED_IDLE: any other runnable process goes first
    light_listeners: bool = True  # listeners count sealed SRTP (see Scenario)
    link: LinkPlan = field(default_factory=LinkPlan)  # of the peers with `link`


class BenchPeer(LoopbackPeer):
    """A LoopbackPeer that keeps bounded statistics and measures forwarding delay in-process."""

    def __init__(
        self, url: str, *, sent_at: SendTimes, link_plan: LinkPlan | None = None, **kw: Any
    ) -> None:
        link = make_link(link_plan, kw["name"]) if link_plan is not None else None
        super().__init__(url, link=link, **kw)
        self.sent_at = sent_at
        # Behind a scheduled link: its adaptation figures (and no delays: the link's own)
        self.link_watch = LinkWatch(link_plan, link) if link_plan and link else None
        # Forwarding delay: publisher send -> arrival in this subscriber's socket (the kernel's
        # receive time); and -> this worker reading it, which adds the load generator's own lag.
        self.delays: Counter[int] = Counter()
        self.read_delays: Counter[int] = Counter()
        self.unstamped = 0  # delays measured at the read: the kernel gave no arrival time
        # Video's delay split at the server's read (its abs-send-time): send -> server reads it,
        # server reads it -> arrival. Only meaningful on one machine (one clock).
        self.upstream: Counter[int] = Counter()
        self.downstream: Counter[int] = Counter()
        self._arrivals: ArrivalStamps | None = None
        # What the run needs of the signalling, kept as it arrives: the message log itself is
        # cut to its last MESSAGES_KEPT (a soak's slot maps would fill gigabytes).
        self.people: dict[str, str] = {}  # name -> participant id, as the room announced them
        self.room_state: dict[str, Any] = {}  # the latest
        self.floor_holders: set[str] = set()
        self.stage_seen: set[str] = set()  # what this subscriber's stage showed: camera, screen
        self.stats: dict[int, StreamStats] = {}
        self.join_ms: float | None = None
        self.error = ""
        self.label = self.name  # the report's key (unique in the run)

    async def _on_message(self, m: dict[str, Any]) -> None:
        await super()._on_message(m)
        people = list(m.get("participants") or [])
        if isinstance(m.get("participant"), dict):
            people.append(m["participant"])
        for person in people:
            if isinstance(person, dict) and person.get("name") and person.get("id"):
                self.people[str(person["name"])] = str(person["id"])
        kind = m.get("type")
        if self.link_watch is not None and kind in ("slot_map", "subscribe_offer"):
            self.link_watch.told(self, time.monotonic_ns() // 1000)
        if kind == "room_state":
            self.room_state = m
            if m.get("floor_holder"):
                self.floor_holders.add(str(m["floor_holder"]))
        elif kind in ("slot_map", "subscribe_offer"):
            self.stage_seen.update(
                str(slot.get("source"))
                for slot in m.get("slots") or ()
                if slot.get("purpose") == "stage" and slot.get("name")
            )
        if len(self.messages) > 2 * MESSAGES_KEPT:
            del self.messages[:-MESSAGES_KEPT]

    def _publisher_connection(self) -> RawPeerConnection:
        """Camera and screen share alike: each packet's send time is noted as it goes, under
        its last TAIL_BYTES. The media loops (a camera's every 4 s, keyframes included), so the
        payload's last bytes become a per-publisher count first (subscribers never decode);
        a packet sent again (a NACK's answer) keeps its count. Keyed by room and name: rooms
        of one run repeat names."""
        pc = super()._publisher_connection()
        send, name, note = pc.send_rtp, f"{self.room}/{self.name}", self.sent_at.note
        counts = itertools.count()

        def timed_send(packet: bytes, *, stamp: bool = True) -> bool:
            if len(packet) >= MIN_TAGGED_BYTES and packet[-TAG_BYTES:-4] != TAG:
                packet = packet[:-TAG_BYTES] + TAG + (next(counts) & 0xFFFFFFFF).to_bytes(4, "big")
            note((name, packet[-TAIL_BYTES:]), time.monotonic())
            return send(packet, stamp=stamp)

        pc.send_rtp = timed_send  # type: ignore[method-assign]
        return pc

    def _receive(self, data: bytes, arrival_ms: int) -> None:
        now = time.monotonic()
        if len(data) < 12 + TAIL_BYTES:
            return
        ssrc, seq = int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big")
        recovered = ssrc in self._rtx_of
        if recovered and self.sealed:  # the original number is sealed: counted as a repair
            repaired = self.stats.setdefault(self._rtx_of[ssrc], StreamStats())
            repaired.packets += 1
            repaired.octets += len(data)
            repaired.recovered += 1
            return
        if recovered:  # rare: parse properly for the original sequence number
            try:
                payload = parse_rtp(data).payload
            except ParseError:
                return
            ssrc, seq = self._rtx_of[ssrc], int.from_bytes(payload[:2], "big")
        stats = self.stats.get(ssrc)
        if stats is None:
            stats = self.stats[ssrc] = StreamStats()
        stats.packets += 1
        stats.octets += len(data)
        if self.link_watch is not None:
            self._through_watch(data, arrival_ms, ssrc, seq, recovered, stats)
            return
        if recovered:
            stats.filled(seq)
            return
        if self.sealed:  # a light listener: sequence numbers only (the payload is sealed)
            skipped = stats.arrived(seq)
            if 0 < skipped < 100:
                self._send_nack(ssrc, [(seq - i) % 65536 for i in range(skipped, 0, -1)])
            return
        skipped = stats.arrived(seq)
        if 0 < skipped < 100:
            self._send_nack(ssrc, [(seq - i) % 65536 for i in range(skipped, 0, -1)])
        _kind, mid = self._ssrc_kind.get(ssrc, ("", ""))
        slot = self.slots.get(mid)
        if slot and slot.get("name"):
            sent = self.sent_at.get((f"{self.room}/{slot['name']}", data[-TAIL_BYTES:]))
            if sent is not None and 0 <= (now - sent) * 1000 < DELAY_MAX_MS:
                self.read_delays[int((now - sent) * 1000 / DELAY_BIN_MS)] += 1
                delay_ms = (self._arrival(sent, now) - sent) * 1000
                self.delays[int(delay_ms / DELAY_BIN_MS)] += 1
                if not seq % SPLIT_EVERY and _kind == "video" and self.abs_send_time_id:
                    self._split(data, sent, delay_ms)

    def _reached_us(self) -> int:
        """The kernel's receive time of the packet just read (up to LINK_STAMP_MAX_S old)."""
        now, unstamped = time.monotonic(), self.unstamped
        reached = self._arrival(now - LINK_STAMP_MAX_S, now)
        self.unstamped = unstamped  # that count is of the delays measured (none here)
        return int(reached * 1e6)

    def _through_watch(
        self, data: bytes, arrival_ms: int, ssrc: int, seq: int, recovered: bool, stats: StreamStats
    ) -> None:
        """Counted as any other subscriber's, and watched (no delays: they would be the link's)."""
        assert self.link_watch is not None
        before = (stats.first, stats.highest, stats.late)
        if recovered:
            stats.filled(seq)
        else:
            skipped = stats.arrived(seq)
            if 0 < skipped < 100:
                self._send_nack(ssrc, [(seq - i) % 65536 for i in range(skipped, 0, -1)])
        self.link_watch.packet(self, data, arrival_ms, ssrc, seq, recovered, stats, before)

    def _arrival(self, sent: float, now: float) -> float:
        """When the packet just read reached the socket; `now` when the kernel does not say (or
        says something outside [sent, now]: a datagram that came another way)."""
        if self._arrivals is None:
            fd = self.subscribe_pc.media_fd if self.subscribe_pc is not None else None
            if fd is None:
                self.unstamped += 1
                return now
            self._arrivals = ArrivalStamps(fd)
        arrived = self._arrivals.latest()
        if arrived is None or not sent - CLOCK_SLACK_S <= arrived <= now + CLOCK_SLACK_S:
            self.unstamped += 1
            return now
        return min(max(arrived, sent), now)

    def _split(self, data: bytes, sent: float, delay_ms: float) -> None:
        try:
            value = parse_rtp(data).extensions.get(self.abs_send_time_id or 0)
            up_ms = min(server_read_after(sent, value) * 1000, delay_ms) if value else None
        except ParseError:
            return
        if up_ms is None:
            return
        self.upstream[int(up_ms / DELAY_BIN_MS)] += 1
        self.downstream[int((delay_ms - up_ms) / DELAY_BIN_MS)] += 1

    @property
    def octets(self) -> int:
        return sum(s.octets for s in self.stats.values())

    @property
    def packets(self) -> int:
        return sum(s.packets for s in self.stats.values())

    def layers(self) -> list[tuple[str, str]]:
        """(purpose, layer) of every video slot carrying someone; "paused: why" when off."""
        return [
            (str(s.get("purpose")), layer_label(s))
            for s in self.slots.values()
            if s.get("kind") == "video" and s.get("name")
        ]


def layer_label(slot: dict[str, Any]) -> str:
    if slot.get("spatial") is not None:
        return str(slot["spatial"])
    reason = str(slot.get("reason") or "")
    return reason if reason.startswith("paused") else f"paused: {reason}" if reason else "paused"


def _idle() -> bool:
    """Whether this process runs under SCHED_IDLE."""
    return hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) == os.SCHED_IDLE


def run_worker(plan: WorkerPlan, queue: _Queue, stop: _Flag) -> None:
    """Process entry: run the plan until `stop` is set (or its time is up), report, tear down."""
    if plan.nice:
        os.nice(plan.nice)
    if plan.idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    configure_aiortc("loopback")
    run_loop(_run(plan, queue, stop))  # uvloop, as the server: the generator must not lag


def _talking(plan: WorkerPlan, index: int | None) -> Any:
    def talking(_t: float) -> bool:
        if index is None or plan.talkers <= 0 or plan.publishers <= 0:
            return False
        turn = int((time.time() - plan.epoch_s) / plan.talk_rotate_s)
        return (index - turn * plan.talkers) % plan.publishers < plan.talkers

    return talking


async def _run(plan: WorkerPlan, queue: _Queue, stop: _Flag) -> None:
    # Media is made (or read from the cache) before anyone joins: encoding blocks the loop.
    layers = [vp8_frames(w, h, bitrate_bps=b) for w, h, b in plan.layers]
    slides = _slides(plan)
    audio: dict[int, list[EncodedFrame]] = {}
    sent_at = SendTimes(time.monotonic())
    peers: list[BenchPeer] = []
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    joining = asyncio.create_task(_join_all(plan, peers, sent_at, layers, slides, audio, tasks))
    try:
        while not stop.is_set() and time.monotonic() - started < plan.max_duration_s:
            await asyncio.sleep(1.0)
            queue.put(_progress(plan, peers))
    finally:
        joining.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await joining
        for task in tasks:
            task.cancel()
        for peer in peers:
            task_ = peer._media_task
            if task_ is not None:
                task_.cancel()
        await asyncio.sleep(0.5)  # packets in flight arrive
        result = {"type": "result", "worker": plan.worker, "nice": os.nice(0), "idle": _idle()}
        queue.put(result | {"peers": [peer_result(p) for p in peers]})
        for peer in peers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.close(), 5)


async def _join_all(
    plan: WorkerPlan,
    peers: list[BenchPeer],
    sent_at: SendTimes,
    layers: list[list[EncodedFrame]],
    slides: list[EncodedFrame],
    audio: dict[int, list[EncodedFrame]],
    tasks: list[asyncio.Task[None]],
) -> None:
    for spec in plan.peers:
        peer = BenchPeer(
            spec.url or plan.url,
            sent_at=sent_at,
            name=spec.name,
            room=spec.room or plan.room,
            token=spec.token,
            simulcast=spec.publish and plan.simulcast,
            remb_bps=None if spec.link else spec.remb_bps,
            link_plan=plan.link if spec.link else None,
            watch=spec.role == "listener",
            sealed=spec.role == "listener" and plan.light_listeners,
        )
        peer.label = spec.label or spec.name
        peers.append(peer)
        begin = time.monotonic()
        try:
            await peer.join(publish=spec.publish)
        except Exception as exc:  # any failure is a result of the run, not a crash
            peer.error = f"{type(exc).__name__}: {exc}"
            continue
        peer.join_ms = (time.monotonic() - begin) * 1000
        if spec.publish:
            variant = (spec.publisher_index or 0) % 4
            sound = audio.setdefault(variant, opus_frames(variant=variant))
            talking = _talking(plan, spec.publisher_index)
            if plan.simulcast:
                peer.start_simulcast(sound, layers, duration_s=plan.max_duration_s, talking=talking)
            else:
                peer.start_media(sound, layers[-1], duration_s=plan.max_duration_s, talking=talking)
        if spec.presenter and slides:
            tasks.append(asyncio.create_task(_present(peer, slides, plan.max_duration_s)))
        if spec.role == "chair" and (plan.presenter_name or plan.pass_floor_s):
            tasks.append(asyncio.create_task(_chair(plan, peer)))
        await asyncio.sleep(plan.join_spacing_s)


async def _chair(plan: WorkerPlan, chair: BenchPeer) -> None:
    """Make the presenter presenter as soon as they are in; then pass the floor to each of the
    others in turn, every pass_floor_s."""
    if plan.presenter_name is not None:
        pid = await _find(chair, plan.presenter_name)
        await chair.send({"type": "chair", "action": "make_presenter", "participant_id": pid})
    if plan.pass_floor_s is None:
        return
    for turn in itertools.cycle(plan.floor_turns):
        holder = chair.people.get(turn)
        if holder is None:  # not (yet) in the room: skipped
            await asyncio.sleep(0.1)
            continue
        await chair.send({"type": "chair", "action": "grant_floor", "participant_id": holder})
        await asyncio.sleep(plan.pass_floor_s)


async def _find(chair: BenchPeer, name: str) -> str:
    while (pid := chair.people.get(name)) is None:
        await asyncio.sleep(0.5)
    return pid


def _slides(plan: WorkerPlan) -> list[EncodedFrame]:
    """The presenter's slides, if this worker runs the presenter and the scenario has them."""
    if plan.screen is None or not any(p.presenter for p in plan.peers):
        return []
    width, height, bitrate_bps = plan.screen
    return vp8_slides(width, height, fps=SCREEN_FPS, bitrate_bps=bitrate_bps)


async def _present(presenter: BenchPeer, slides: list[EncodedFrame], duration_s: float) -> None:
    """Share the slides once the chair has made this participant presenter."""

    def presenting() -> bool:
        return bool(presenter.participant_id) and (
            presenter.room_state.get("presenter") == presenter.participant_id
        )

    try:
        await presenter.wait_for(presenting, timeout=30)
        await presenter.share_screen(slides, fps=SCREEN_FPS, duration_s=duration_s)
    except Exception as exc:  # a result of the run, not a crash
        presenter.error = f"screen share: {type(exc).__name__}: {exc}"


def _progress(plan: WorkerPlan, peers: list[BenchPeer]) -> dict[str, Any]:
    layers: Counter[str] = Counter()
    for peer in peers:
        if peer.watch:
            continue  # the participants' layers; listeners are reported apart
        for purpose, layer in peer.layers():
            layers[f"{purpose}:{layer}"] += 1
    return {
        "type": "progress",
        "worker": plan.worker,
        "joined": sum(1 for p in peers if p.join_ms is not None),
        "failed": sum(1 for p in peers if p.error),
        "octets": {p.label: p.octets for p in peers},
        "packets": sum(p.packets for p in peers),
        "sent": sum(
            p.sent.audio_packets + p.sent.video_packets + p.sent.screen_packets for p in peers
        ),
        "layers": dict(layers),
    }
