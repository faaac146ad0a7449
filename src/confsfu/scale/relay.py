"""The relay of one room on one worker (sans-IO): which of its local sources other workers need
(and so get relayed), what the other workers' sources are, and what to make of each frame a
peer sends. Time comes in as `now_ms`; frames go out as bytes for the shell to send.

Bounds: local sources (`MAX_SOURCES`), remote sources (`MAX_REMOTE`), needs (local sources x
layers x peers), RTP frames per remote source (a token bucket) and the NACK history (a ring per
relayed layer). Nothing a peer sends grows any of them past its bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple, cast

from confsfu.ids import Kind, LayerKey, Purpose, SourceId
from confsfu.scale import relay_frame as rf
from confsfu.scale.relay_frame import RelayFrame, RelayFrameError, SourceInfo

MAX_SOURCES: Final = 64  # local sources a room relays
MAX_REMOTE: Final = 128  # other workers' sources a room knows
NEED_TTL_MS: Final = 3000  # a need not said again for this long lapses
NEED_EVERY_MS: Final = 1000  # how often a worker says what it needs (and announces its sources)
RATE_PER_S: Final = 2000  # relayed RTP frames per remote source and second, at most ...
BURST: Final = 400  # ... with this many at once
HISTORY: Final = 512  # relayed packets kept per layer for NACKs (a power of two)


class Deliver(NamedTuple):  # one per relayed packet: a tuple, made cheaply
    """A remote source's packet for the local fan-out."""

    peer: int
    source: SourceId
    key: LayerKey
    level_id: int
    packet: bytes


@dataclass(frozen=True, slots=True)
class KeyframeAsked:
    key: LayerKey


@dataclass(frozen=True, slots=True)
class RelayChanged:
    """Which peers need `key` changed (`targets` now; empty: relay it no more)."""

    key: LayerKey
    targets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Resend:
    """Frames to send `peer` again: the answers to its NACK, from the history."""

    peer: int
    frames: tuple[bytes, ...]


Effect = Deliver | KeyframeAsked | RelayChanged | Resend


@dataclass(slots=True)
class _Remote:
    source: SourceId
    level_id: int
    name: str
    heard_ms: int  # when it was last announced
    tokens: float = BURST
    at_ms: int = 0
    keys: tuple[LayerKey, ...] = ()  # source.layer(0..MAX_LAYER), made once

    def __post_init__(self) -> None:
        self.keys = tuple(self.source.layer(n) for n in range(rf.MAX_LAYER + 1))


@dataclass(slots=True)
class _Local:
    index: int
    level_id: int
    name: str
    needs: dict[int, dict[int, int]] = field(default_factory=dict)  # layer -> peer -> until
    history: dict[int, list[bytes | None]] = field(default_factory=dict)  # layer -> ring
    headers: dict[int, bytes] = field(default_factory=dict)  # layer -> its RTP frames' header


class RelayRoom:
    """One room's relay on one worker: `room` is the front's index of the room, `peers` the
    other workers holding some of its participants."""

    def __init__(self, room: int, peers: Iterable[int] = ()) -> None:
        self.room = room
        self.peers: frozenset[int] = frozenset(peers)
        self._locals: dict[SourceId, _Local] = {}
        self._by_index: dict[int, SourceId] = {}
        self._next_index = 1
        self._remotes: dict[tuple[int, int], _Remote] = {}
        self.drops: Counter[str] = Counter()

    # ---- local sources: relayed to the peers that need them ----------------------------------

    def add_local(self, source: SourceId, level_id: int = 0, name: str = "") -> int | None:
        """A local publisher's source (`name`: its participant's); its index (None: too many
        sources)."""
        local = self._locals.get(source)
        if local is not None:
            local.level_id, local.name = level_id, name
            return local.index
        if len(self._locals) >= MAX_SOURCES:
            return None
        index = self._next_index
        self._next_index = self._next_index % 0xFFFFFFFF + 1
        self._locals[source] = _Local(index, level_id, name)
        self._by_index[index] = source
        return index

    def remove_local(self, source: SourceId) -> list[Effect]:
        local = self._locals.pop(source, None)
        if local is None:
            return []
        del self._by_index[local.index]
        return [RelayChanged(source.layer(layer), ()) for layer in local.needs]

    def local_sources(self) -> list[SourceId]:
        return list(self._locals)

    def announcements(self) -> list[bytes]:
        """SOURCE frames naming every local source (for every peer, each `NEED_EVERY_MS`)."""
        frames = []
        for source, local in self._locals.items():
            info = SourceInfo(
                source.participant, source.purpose, source.kind, local.level_id, local.name
            )
            try:
                payload = rf.source_payload(info)
            except RelayFrameError:  # a participant id too long to relay
                continue
            frames.append(rf.encode(RelayFrame(rf.SOURCE, self.room, local.index, 0, 0, payload)))
        return frames

    def targets(self, key: LayerKey, now_ms: int) -> tuple[int, ...]:
        local = self._locals.get(key.source)
        needs = local.needs.get(key.spatial) if local is not None else None
        if not needs:
            return ()
        return tuple(sorted(p for p, until in needs.items() if until > now_ms))

    def wanted_layers(self, now_ms: int) -> dict[SourceId, int]:
        """Per local source, the highest layer a peer needs (for dynacast to keep it on)."""
        out: dict[SourceId, int] = {}
        for source, local in self._locals.items():
            live = [
                layer for layer, n in local.needs.items() if any(u > now_ms for u in n.values())
            ]
            if live:
                out[source] = max(live)
        return out

    def rtp_frame(self, key: LayerKey, packet: bytes) -> bytes | None:
        """The RTP frame of a local packet (kept for NACKs); None when `key` is not relayed or
        the packet cannot be framed."""
        local = self._locals.get(key.source)
        if local is None:
            return None
        if not rf.MIN_RTP_BYTES <= len(packet) <= rf.MAX_RTP_BYTES or packet[0] >> 6 != 2:
            self.drops["relay_unframed"] += 1
            return None
        layer = key.spatial
        header = local.headers.get(layer)
        if header is None:
            header = local.headers[layer] = rf.rtp_header(self.room, local.index, layer)
        frame = header + packet
        ring = local.history.get(layer)
        if ring is None:
            ring = local.history[layer] = [None] * HISTORY
        ring[int.from_bytes(packet[2:4], "big") % HISTORY] = frame
        return frame

    def expire(self, now_ms: int) -> list[Effect]:
        """Needs not said again in `NEED_TTL_MS`, and needs of workers no longer peers."""
        effects: list[Effect] = []
        for source, local in self._locals.items():
            for layer in list(local.needs):
                needs = local.needs[layer]
                gone = [p for p, until in needs.items() if until <= now_ms or p not in self.peers]
                if gone:
                    for peer in gone:
                        del needs[peer]
                    if not needs:
                        del local.needs[layer]
                        local.history.pop(layer, None)
                    effects.append(RelayChanged(source.layer(layer), tuple(sorted(needs))))
        return effects

    # ---- remote sources: what this worker needs of them --------------------------------------

    def remote(self, peer: int, index: int) -> SourceId | None:
        found = self._remotes.get((peer, index))
        return found.source if found is not None else None

    def remote_sources(self) -> dict[tuple[int, int], SourceId]:
        return {k: r.source for k, r in self._remotes.items()}

    def remote_level(self, source: SourceId) -> int:
        """The audio level extension id a remote source's packets carry (0: none)."""
        return next((r.level_id for r in self._remotes.values() if r.source is source), 0)

    def remote_name(self, participant: str) -> str:
        """A remote participant's display name, as its worker announced it."""
        return next(
            (r.name for r in self._remotes.values() if r.source.participant == participant), ""
        )

    def expire_remotes(self, now_ms: int) -> list[SourceId]:
        """Remote sources not announced again for `NEED_TTL_MS` (their publisher left), and
        those of workers no longer peers: gone."""
        gone = [
            k
            for k, r in self._remotes.items()
            if now_ms - r.heard_ms >= NEED_TTL_MS or k[0] not in self.peers
        ]
        return [self._remotes.pop(k).source for k in gone]

    def forget_peer(self, peer: int) -> list[SourceId]:
        """A worker left the room (or died): its sources, gone."""
        gone = [k for k in self._remotes if k[0] == peer]
        return [self._remotes.pop(k).source for k in gone]

    def need_frames(self, wanted: Collection[LayerKey]) -> list[tuple[int, bytes]]:
        """(peer, LAYER_NEED frame) for each remote layer in `wanted` (each `NEED_EVERY_MS`, and
        when a new one is wanted)."""
        out = []
        for (peer, index), remote in self._remotes.items():
            for layer in range(rf.MAX_LAYER + 1):
                if remote.source.layer(layer) in wanted:
                    frame = RelayFrame(rf.LAYER_NEED, self.room, index, layer, rf.NEEDED)
                    out.append((peer, rf.encode(frame)))
        return out

    def ask_frame(self, key: LayerKey, nack: list[int] | None = None) -> tuple[int, bytes] | None:
        """(peer, KEYFRAME_REQUEST or NACK frame) for a remote layer (None: not remote)."""
        for (peer, index), remote in self._remotes.items():
            if remote.source is key.source:
                if nack:
                    frame = RelayFrame(rf.NACK, self.room, index, key.spatial, 0,
                                       rf.nack_payload(nack))  # fmt: skip
                else:
                    frame = RelayFrame(rf.KEYFRAME_REQUEST, self.room, index, key.spatial)
                return peer, rf.encode(frame)
        return None

    # ---- a peer's frame ------------------------------------------------------------------

    def on_frame(self, peer: int, frame: RelayFrame, now_ms: int) -> list[Effect]:
        """What a peer's frame (of this room) means. A peer that is not one of the room's, or a
        frame about a source nobody announced, is counted and dropped."""
        if peer not in self.peers:
            self.drops["relay_not_peer"] += 1
            return []
        kind = frame.kind
        if kind == rf.RTP:
            delivered = self.rtp_in(peer, frame, now_ms)
            return [delivered] if delivered is not None else []
        if kind == rf.SOURCE:
            self._announced(peer, frame, now_ms)
            return []
        source = self._by_index.get(frame.source)
        if source is None:
            self.drops["relay_unknown_source"] += 1
            return []
        local = self._locals[source]
        key = source.layer(frame.layer)
        if kind == rf.LAYER_NEED:
            needs = local.needs.setdefault(frame.layer, {})
            before = tuple(sorted(needs))
            if frame.flags & rf.NEEDED:
                needs[peer] = now_ms + NEED_TTL_MS
            else:
                needs.pop(peer, None)
            if not needs:
                del local.needs[frame.layer]
            after = tuple(sorted(needs))
            return [RelayChanged(key, after)] if after != before else []
        if kind == rf.KEYFRAME_REQUEST:
            return [KeyframeAsked(key)]
        ring = local.history.get(frame.layer)  # a NACK: answered from the history
        answers = []
        for seq in rf.nack_seqs(frame.payload):
            kept = ring[seq % HISTORY] if ring is not None else None
            if kept is not None and kept[rf.HEADER_BYTES + 2 : rf.HEADER_BYTES + 4] == bytes(
                (seq >> 8, seq & 0xFF)
            ):
                answers.append(kept)
            else:
                self.drops["relay_nack_missed"] += 1
        return [Resend(peer, tuple(answers))] if answers else []

    def _announced(self, peer: int, frame: RelayFrame, now_ms: int) -> None:
        info = rf.source_info(frame.payload)  # decode checked it
        try:
            source = SourceId(info.participant, cast(Purpose, info.purpose), cast(Kind, info.kind))
        except ValueError:
            self.drops["relay_bad_source"] += 1
            return
        found = self._remotes.get((peer, frame.source))
        if found is not None and found.source is source:
            found.level_id, found.name, found.heard_ms = info.level_id, info.name, now_ms
            return
        if found is None and len(self._remotes) >= MAX_REMOTE:
            self.drops["relay_remote_limit"] += 1
            return
        self._remotes[peer, frame.source] = _Remote(source, info.level_id, info.name, now_ms)

    def rtp_in(self, peer: int, frame: RelayFrame, now_ms: int) -> Deliver | None:
        """A peer's RTP frame (`on_frame`'s case, the common one, without a list): its packet
        for the local fan-out, or None (not a peer, an unknown source, over its rate)."""
        remote = self._remotes.get((peer, frame.source))
        if remote is None or peer not in self.peers:
            self.drops["relay_not_peer" if peer not in self.peers else "relay_unknown_source"] += 1
            return None
        if now_ms > remote.at_ms:
            elapsed, remote.at_ms = now_ms - remote.at_ms, now_ms
            remote.tokens = min(float(BURST), remote.tokens + elapsed * RATE_PER_S / 1000)
        if remote.tokens < 1:
            self.drops["relay_rate"] += 1
            return None
        remote.tokens -= 1
        layer = frame.layer
        keys = remote.keys
        key = keys[layer] if layer < len(keys) else remote.source.layer(layer)
        return Deliver(peer, remote.source, key, remote.level_id, frame.payload)
