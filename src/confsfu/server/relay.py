"""One room's relay on one worker, the IO shell around `scale.relay.RelayRoom`: local
publishers' layers that other workers need go to them (the intake's `relay` hook), and other
workers' sources come in as relayed publishers of the room's media, fed to the same fan-out
as a local publisher's packets. Keyframe requests and NACKs go back over the relay."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from confsfu.bandwidth.layer_meter import LayerBitrateMeter
from confsfu.conference.permissions import Role
from confsfu.forwarding._reception import Reception
from confsfu.forwarding.published import PublishedStream, PublishedTrack, StreamRouter
from confsfu.ids import LayerKey, Purpose, SourceId
from confsfu.rtp import rtcp
from confsfu.rtp.extensions import ExtensionIds
from confsfu.scale import relay_frame as rf
from confsfu.scale.relay import (
    NEED_EVERY_MS,
    Deliver,
    Effect,
    KeyframeAsked,
    RelayChanged,
    RelayRoom,
    Resend,
)
from confsfu.server.media_handles import Publisher
from confsfu.server.relay_decisions import RoomDecisions
from confsfu.server.rtc_adapter import RawPeerConnection

if TYPE_CHECKING:
    from confsfu.server.live_room import LiveRoom
    from confsfu.server.media import RoomMedia

log = logging.getLogger(__name__)
Send = Callable[[int, bytes], None]  # (peer worker, frame): never raises


class RelayPc:
    """Stands in for a relayed publisher's PeerConnection: the RTCP the room would send the
    publisher (keyframe requests, NACKs) goes back over the relay; the rest is dropped."""

    def __init__(self, ask: Callable[[int, list[int] | None], None]) -> None:
        self._ask = ask  # (media SSRC, lost sequence numbers or None for a keyframe)

    def send_rtcp(self, data: bytes) -> None:
        packets, _ = rtcp.parse_rtcp_lenient(data)
        for packet in packets:
            if isinstance(packet, rtcp.PictureLossIndication):
                self._ask(packet.media_ssrc, None)
            elif isinstance(packet, rtcp.FullIntraRequest):
                for ssrc, _seq in packet.entries:
                    self._ask(ssrc, None)
            elif isinstance(packet, rtcp.Nack):
                self._ask(packet.media_ssrc, list(packet.lost))

    async def close(self) -> None:
        return None


class RoomRelay:
    """The relay of `live` (the room with front index `index`) to and from `peers`."""

    def __init__(
        self, index: int, peers: frozenset[int], live: LiveRoom, send: Send, home: int = -1
    ) -> None:
        """`home`: the worker of the room's authority (-1: this one)."""
        self.core = RelayRoom(index, peers)
        self.live = live
        self._send = send
        self.home = home
        self._targets: dict[LayerKey, tuple[int, ...]] = {}  # local layers peers need: who
        self._relaying: dict[LayerKey, Publisher] = {}  # ... and whose intake relays them
        self.relayed: dict[tuple[str, Purpose], Publisher] = {}  # other workers' sources
        self.mirrors: set[str] = set()  # their participants, in this worker's meeting
        self._learning: LayerKey | None = None  # the layer of the packet being delivered
        self._needed: frozenset[LayerKey] = frozenset()
        self._said_ms = -NEED_EVERY_MS
        self._announced_ms = -NEED_EVERY_MS
        self.delivered = 0
        self.decisions: RoomDecisions | None = None  # None: a bare relay (benchmarks/relay.py)
        self._now_ms = 0
        if live is not None:
            live.on_promote = self.mirrors.clear  # (the meeting's own participants then)
            live.on_authority_lost = self._authority_lost
            live.media.relay_wants = lambda: self.core.wanted_layers(self._now_ms)
            self.decisions = RoomDecisions(
                index,
                home,
                live.media,
                send,
                self._mirror,
                self._unmirror,
                counted=live.audience_changed,
                live=live,
            )

    @property
    def media(self) -> RoomMedia:
        return self.live.media

    # ---- the room's timer ----------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Local sources announced, needs said (again), lapsed needs and gone sources."""
        self._now_ms = now_ms
        media = self.media
        local: set[SourceId] = set()
        for pub in list(media.publishers.values()):
            if pub.router is None or pub in self.relayed.values():
                continue
            for section in pub.router.sections:
                level = pub.ext.audio_level or 0 if section.kind == "audio" else 0
                name = self._name_of(pub.participant_id)
                if self.core.add_local(section.source, level, name) is not None:
                    local.add(section.source)
        for source in [s for s in self.core.local_sources() if s not in local]:
            self._execute(now_ms, self.core.remove_local(source))
        self._execute(now_ms, self.core.expire(now_ms))
        for key in list(self._targets):  # a publisher that published again: its new intake
            self._install(key)
        if self.core.expire_remotes(now_ms):
            self._sync_relayed(now_ms)
        # The layers slots carry or await, every microphone, and each source's highest layer
        # any slot could use (dynacast at the publisher's worker keeps it on for us).
        wanted = [s.layer(w) for s, w in media.wanted_layers.items() if 0 <= w <= rf.MAX_LAYER]
        needed = frozenset(
            k
            for k in [*media._slots_by_key, *self._remote_audio(), *wanted]
            if isinstance(k, LayerKey) and (k.source.participant, k.source.purpose) in self.relayed
        )
        if now_ms - self._announced_ms >= NEED_EVERY_MS:  # its own cadence: needs may change
            self._announced_ms = now_ms  # faster than it, announcements must still go out
            for frame in self.core.announcements():
                for peer in self.core.peers:
                    self._send(peer, frame)
        if needed != self._needed or now_ms - self._said_ms >= NEED_EVERY_MS:
            self._said_ms = now_ms
            for peer, frame in self.core.need_frames(needed):
                self._send(peer, frame)
            for peer, frame in self._withdrawn(self._needed - needed):
                self._send(peer, frame)
            self._needed = needed
        if self.decisions is not None:
            # (a participant linked to the authority is there already, as itself)
            self.decisions.tick(now_ms, self.core.peers, self.mirrors | self.live.linked)

    def _name_of(self, pid: str) -> str:
        participant = self.media.meeting.room.participants.get(pid)
        return participant.name if participant is not None else ""

    def _remote_audio(self) -> list[LayerKey]:
        """Every remote microphone is needed: its levels pick who is heard."""
        return [s.layer(0) for s in self.core.remote_sources().values() if s.kind == "audio"]

    def _withdrawn(self, keys: frozenset[LayerKey]) -> list[tuple[int, bytes]]:
        out = []
        for (peer, index), source in self.core.remote_sources().items():
            for key in keys:
                if key.source is source:
                    frame = rf.RelayFrame(rf.LAYER_NEED, self.core.room, index, key.spatial, 0)
                    out.append((peer, rf.encode(frame)))
        return out

    # ---- frames ----------------------------------------------------------------------------

    def on_frame(self, peer: int, frame: rf.RelayFrame, now_ms: int) -> None:
        if frame.kind == rf.RTP:  # the common case, without an effect list
            delivered = self.core.rtp_in(peer, frame, now_ms)
            if delivered is not None:
                self._deliver(delivered, now_ms)
            return
        if frame.kind == rf.ROOM:
            if peer in self.core.peers and self.decisions is not None:
                self.decisions.on_room(peer, frame.payload, now_ms)
            return
        self._execute(now_ms, self.core.on_frame(peer, frame, now_ms))
        if frame.kind == rf.SOURCE:
            self._sync_relayed(now_ms)

    def _execute(self, now_ms: int, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Deliver):
                self._deliver(effect, now_ms)
            elif isinstance(effect, RelayChanged):
                self._retarget(effect.key, effect.targets)
            elif isinstance(effect, KeyframeAsked):
                self.media._request_keyframe(now_ms, effect.key)
            elif isinstance(effect, Resend):
                for frame in effect.frames:
                    self._send(effect.peer, frame)

    # ---- local layers out ------------------------------------------------------------------

    def _retarget(self, key: LayerKey, targets: tuple[int, ...]) -> None:
        old = self._relaying.pop(key, None)
        if old is not None and old.intake.relay is not None:
            old.intake.relay.pop(key, None)
        if targets:
            self._targets[key] = targets
        else:
            self._targets.pop(key, None)
        self._install(key)

    def _install(self, key: LayerKey) -> None:
        """The hook on the intake of the layer's local publisher (if it has one now)."""
        targets = self._targets.get(key)
        pub = self.media.publishers.get((key.source.participant, key.source.purpose))
        if targets is None or pub is None or pub is self._relaying.get(key):
            return
        if pub in self.relayed.values():
            return  # another worker's: never relayed on
        if pub.intake.relay is None:
            pub.intake.relay = {}
        pub.intake.relay[key] = partial(self._relay, key, targets)
        self._relaying[key] = pub

    def _relay(self, key: LayerKey, targets: tuple[int, ...], packet: bytes) -> None:
        """The intake's hook, once per packet of a relayed layer: never raises."""
        try:
            frame = self.core.rtp_frame(key, packet)
            if frame is not None:
                for peer in targets:
                    self._send(peer, frame)
        except Exception:
            log.exception("relaying a packet failed")

    # ---- other workers' sources in ------------------------------------------------------

    def _sync_relayed(self, now_ms: int) -> None:
        """A relayed publisher (and a mirror in the meeting) per remote participant's purpose;
        gone ones removed."""
        remote = self.core.remote_sources()
        changed = False
        wanted: dict[tuple[str, Purpose], list[SourceId]] = {}
        for source in remote.values():
            wanted.setdefault((source.participant, source.purpose), []).append(source)
        for pid_purpose, sources in wanted.items():
            pub = self.relayed.get(pid_purpose)
            if pub is not None and self.media.publishers.get(pid_purpose) is not pub:
                del self.relayed[pid_purpose]  # the room let it go (its participant left here)
                pub = None
            if pub is None:
                if pid_purpose in self.media.publishers:
                    continue  # a local publisher of that name: it is here, not there
                pub = self._relayed_publisher(*pid_purpose)
            known = {s.source for s in pub.router.sections} if pub.router else set()
            if set(sources) != known:
                self._route(pub, sources)
                changed = True
            self._mirror(now_ms, pid_purpose[0], self.core.remote_name(pid_purpose[0]))
        for pid_purpose in [k for k in self.relayed if k not in wanted]:
            pub = self.relayed.pop(pid_purpose)
            if self.media.publishers.get(pid_purpose) is pub:  # (not a local one since)
                del self.media.publishers[pid_purpose]
            for ssrc in list(pub.receptions):
                pub.intake.remove(ssrc)
            if not any(pid == pid_purpose[0] for pid, _ in self.relayed):
                self._unmirror(now_ms, pid_purpose[0])
            changed = True
        if changed:  # a source more or less: the slots are planned again
            self.media.reassign_gradually()

    def _relayed_publisher(self, pid: str, purpose: Purpose) -> Publisher:
        media = self.media
        ask = partial(self._ask, (pid, purpose))
        pub = Publisher(
            pid,
            purpose,
            cast(RawPeerConnection, RelayPc(ask)),
            rtcp_ssrc=1,
            relayed=True,
            intake=media.make_intake(
                pid, lambda data, ms: self._learn(pub, data, ms), rf.MAX_RTP_BYTES
            ),
        )
        pub.intake.level_floor = media.meeting.speakers.quiet_from
        self.relayed[pid, purpose] = media.publishers[pid, purpose] = pub
        return pub

    def _route(self, pub: Publisher, sources: list[SourceId]) -> None:
        sections = [
            PublishedTrack(f"relay{i}", s.kind, s) for i, s in enumerate(sorted(sources, key=str))
        ]
        old = pub.router
        pub.router = StreamRouter(sections, ExtensionIds(), heard=pub.heard)
        if old is not None:
            pub.router.streams.update(
                {ssrc: s for ssrc, s in old.streams.items() if s.section.source in sources}
            )
        for source in sources:
            if source.kind == "video" and source not in pub.meters:
                pub.meters[source] = LayerBitrateMeter(window_ms=4000, bucket_ms=250)
            elif source.kind == "audio":  # its level extension's id, as its worker has it
                pub.intake.level_id = self.core.remote_level(source)

    def _deliver(self, d: Deliver, now_ms: int) -> None:
        pub = self.relayed.get((d.source.participant, d.source.purpose))
        if pub is None:
            return
        self._learning = d.key
        try:
            pub.intake.receive(d.packet, now_ms)
            self.delivered += 1
        finally:
            self._learning = None

    def _learn(self, pub: Publisher, data: bytes, now_ms: int) -> None:
        """A relayed packet the intake does not take: the first of its SSRC (routed to the
        layer its frame named, then taken), or one it refuses (dropped)."""
        key = self._learning
        if key is None or len(data) < 12 or pub.router is None:
            return
        self._learning = None  # once: a packet refused again is dropped
        ssrc = int.from_bytes(data[8:12], "big")
        if pub.intake.holds(ssrc):
            return
        section = next((s for s in pub.router.sections if s.source is key.source), None)
        if section is None:
            return
        for old, stream in list(pub.router.streams.items()):
            if stream.key is key:  # a restarted encoder: its layer's new SSRC
                pub.intake.remove(old)
                pub.receptions.pop(old, None)
                del pub.router.streams[old]
        config = self.media._media
        incoming = Reception(
            ssrc,
            nack_delay_ms=config.upstream_nack_delay_ms,
            nack_retries=config.upstream_nack_retries,
        )
        meter = pub.meters.get(key.source)
        incoming.route(
            key, key.source.kind == "video", key.spatial, meter.counts if meter else None
        )
        if not pub.intake.add(incoming):
            return
        pub.receptions[ssrc] = incoming
        pub.router.streams[ssrc] = PublishedStream(ssrc, section, key.spatial)
        pub.intake.receive(data, now_ms)

    def _ask(self, pid_purpose: tuple[str, Purpose], ssrc: int, lost: list[int] | None) -> None:
        """The room asks a relayed publisher for a keyframe or a retransmission."""
        pub = self.relayed.get(pid_purpose)
        stream = pub.router.streams.get(ssrc) if pub is not None and pub.router else None
        if stream is None:
            return
        asked = self.core.ask_frame(stream.key, lost)
        if asked is not None:
            self._send(*asked)

    # ---- the meeting's mirrors -------------------------------------------------------------

    def _mirror(self, now_ms: int, pid: str, name: str) -> None:
        """Another worker's participant joins this worker's meeting (if not there yet)."""
        meeting = self.media.meeting
        if pid in self.mirrors or pid in meeting.room.participants:
            return
        try:
            meeting.join(now_ms, pid, name or pid, Role.PARTICIPANT, f"relay:{pid}")
        except ValueError as exc:  # MeetingError: the room is full, or locked
            log.info("relayed participant %s not mirrored: %s", pid, exc)
            return
        self.mirrors.add(pid)

    def _unmirror(self, now_ms: int, pid: str) -> None:
        if pid in self.mirrors:
            self.mirrors.discard(pid)
            if pid not in self.live.connections:  # (else it came here since: it stays)
                self.media.meeting.leave(now_ms, pid)

    def _authority_lost(self) -> None:
        """The authority's node died (a linked page is held for a takeover): its plans are
        no longer applied, this worker plans its subscribers' slots itself (its meeting hears
        every microphone). A dying authority's last plan may already be wrong (its members'
        participants gone from it as its processes die one after the other)."""
        if self.decisions is not None and self.decisions.orphan():
            log.warning(
                "room %s: its authority is gone; this worker plans its slots", self.live.room.name
            )
            self.media.reassign_gradually()

    def close(self, now_ms: int) -> None:
        """Relay nothing more; the relayed publishers and mirrors go."""
        for key in list({*self._relaying, *self._targets}):
            self._retarget(key, ())
        self.core.peers = frozenset()
        for peer, _index in list(self.core.remote_sources()):
            self.core.forget_peer(peer)
        self._sync_relayed(now_ms)
        for pid in list(self.mirrors):
            self._unmirror(now_ms, pid)
        if self.decisions is not None:
            self.decisions.close()
            self.media.relay_wants = None
