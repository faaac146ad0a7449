"""What a loopback publisher's packets are made with: the header-extension ids and layer names it
uses, the browser-like pacer, the store that answers NACKs, and the keyframe finder."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from confsfu.forwarding.history import PacketHistory
from confsfu.loadgen.media import EncodedFrame

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
