"""Per-phase adaptation figures of one benchmark subscriber behind a scheduled link, defined as
the virtual-time simulator (`bandwidth/weaksim.py`) and the browser benchmark
(`benchmarks/weak_link.py`) define them: per phase of the schedule, the time to go below the top
layer after a drop, the time back to the top layer after a rise, the longest stretch with no
stage frame completed, audio packets lost and the share of the link used.

A stage frame is "completed" (the simulator's "decoded") when every packet from the one after
the previous frame's marker to its own marker has arrived, in order; a frame still incomplete
GIVE_UP_US after its marker arrived is given up, and from then on only a keyframe completes
(the page asks for one: `wants_keyframe`). Its layer is the width its keyframe says. Sans-time:
times are microseconds since the schedule started.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from confsfu.bandwidth.linksim import Phase

GIVE_UP_US = 1_000_000  # as the simulator's receiver (give_up_ms)
MAX_GAP = 1000  # a jump in sequence numbers beyond this starts over (a new stream)
MISSING_KEPT = 4096


@dataclass
class PhaseFigures:
    kbit_s: int
    seconds: float
    down_s: float | None = None  # below the top layer after a drop (None: it never went)
    up_s: float | None = None  # at the top layer after a rise or at the start (None: never)
    longest_freeze_s: float = 0.0  # the longest stretch with no stage frame completed
    audio_loss_pct: float = 0.0
    link_use_pct: float = 0.0  # RTP bytes delivered against the link's rate
    widths: list[int] = field(default_factory=list)  # completed stage widths in turn
    # The same by the layer the server says the stage carries (its slot map): when it decided
    told_down_s: float | None = None
    told_up_s: float | None = None
    audio_expected: int = 0
    audio_lost: int = 0
    delivered_bytes: int = 0
    stage_frames: int = 0
    observed_s: float = 0.0  # how much of the phase the run saw

    def line(self) -> str:
        down = "-" if self.down_s is None else f"{self.down_s:.1f} s"
        up = "-" if self.up_s is None else f"{self.up_s:.1f} s"
        cut = "" if self.observed_s >= self.seconds else f" (run ended {self.observed_s:.0f} s in)"
        told = "/".join(
            "-" if t is None else f"{t:.1f}" for t in (self.told_down_s, self.told_up_s)
        )
        return (
            f"{self.kbit_s:>5} kbit/s x {self.seconds:g} s: down {down}, up {up} (told {told} s),"
            f" longest freeze "
            f"{self.longest_freeze_s:.1f} s, audio lost {self.audio_loss_pct:.1f} %, link used "
            f"{self.link_use_pct:.0f} %; widths {self.widths}{cut}"
        )


class StageFrames:
    """Which stage frames completed, from the stage slot's packets as they arrive."""

    def __init__(self) -> None:
        self._highest: int | None = None  # unwrapped
        self._prev_marker: int | None = None
        self._missing: set[int] = set()
        self._pending: deque[tuple[int, int, int]] = deque()  # (first, last, marker arrived)
        self._keys: dict[int, int] = {}  # unwrapped seq of a keyframe's first packet -> width
        self._broken = False
        self.width = 0  # of the latest completed keyframe
        self.wants_keyframe = False

    def unwrap(self, seq: int) -> int:
        if self._highest is None:
            return seq
        return self._highest + ((seq - self._highest + 32768) % 65536 - 32768)

    def packet(
        self,
        now_us: int,
        seq: int,
        marker: bool,
        starts: bool,
        key_width: int | None,
        *,
        repaired: bool,
    ) -> list[int]:
        """A stage packet arrived (`starts`: a frame's first; `key_width`: a keyframe's first,
        of that width); the widths of the frames it completed."""
        u = self.unwrap(seq)
        if self._highest is None or abs(u - self._highest) > MAX_GAP:  # a start: from a keyframe
            self._highest, self._prev_marker, self._broken = u, None, True
            self._missing.clear()
            self._pending.clear()
            self._keys.clear()
        elif u > self._highest:
            if not repaired:
                self._missing.update(range(self._highest + 1, u))
            self._highest = u
        else:
            self._missing.discard(u)
        if key_width:
            self._keys[u] = key_width
        if not repaired:
            if starts and self._prev_marker is not None and u - 1 > self._prev_marker:
                self._pending.append((self._prev_marker + 1, u - 1, now_us))  # its end was lost
            if starts:
                self._prev_marker = u - 1
            if marker and self._prev_marker is not None and u > self._prev_marker:
                self._pending.append((self._prev_marker + 1, u, now_us))
            if marker:
                self._prev_marker = u
        if len(self._missing) > MISSING_KEPT:
            self._missing = {s for s in self._missing if s > self._highest - MISSING_KEPT // 2}
        return self._complete(now_us)

    def _whole(self, first: int, last: int) -> bool:
        return not any(s in self._missing for s in range(first, last + 1))

    def _complete(self, now_us: int) -> list[int]:
        out: list[int] = []
        pending = self._pending
        for i in range(len(pending) - 1, 0, -1):  # a whole keyframe goes before what came first
            first, last, _ = pending[i]
            if first in self._keys and self._whole(first, last):
                for _ in range(i):
                    dropped_first, dropped_last, _ = pending.popleft()
                    self._missing.difference_update(range(dropped_first, dropped_last + 1))
                break
        while self._pending:
            first, last, since_us = self._pending[0]
            whole = self._whole(first, last)
            if not whole and now_us - since_us < GIVE_UP_US:
                break
            self._pending.popleft()
            self._missing.difference_update(range(first, last + 1))
            key = self._keys.pop(first, None) if whole else None
            for s in [s for s in self._keys if s < first]:
                del self._keys[s]
            if not whole:
                self._broken = self.wants_keyframe = True
            elif key is not None or not self._broken:
                if key is not None:
                    self.width, self._broken, self.wants_keyframe = key, False, False
                out.append(self.width)
        return out


class Adaptation:
    """One subscriber's figures over the schedule's phases."""

    def __init__(self, phases: tuple[Phase, ...], top_width: int) -> None:
        self.phases = [PhaseFigures(p.kbit_s, p.seconds) for p in phases]
        self.top_width = top_width
        self.stage = StageFrames()
        self._ends_us: list[int] = []
        end = 0.0
        for p in phases:
            end += p.seconds * 1e6
            self._ends_us.append(round(end))
        self._index = 0
        self._last_frame_us = 0
        self._audio_received = 0  # in the current phase

    def _at(self, t_us: int) -> PhaseFigures | None:
        """The phase `t_us` falls in, closing the ones before it; None past the schedule."""
        while self._index < len(self.phases) and t_us >= self._ends_us[self._index]:
            self._close(self._ends_us[self._index])
            self._index += 1
        return self.phases[self._index] if self._index < len(self.phases) else None

    def _start_us(self, index: int) -> int:
        return self._ends_us[index - 1] if index else 0

    def _close(self, end_us: int) -> None:
        fig = self.phases[self._index]
        start = self._start_us(self._index)
        fig.observed_s = (end_us - start) / 1e6
        gap = end_us - max(self._last_frame_us, start)
        fig.longest_freeze_s = round(max(fig.longest_freeze_s, gap / 1e6), 3)
        fig.audio_lost = max(fig.audio_expected - self._audio_received, 0)
        self._audio_received = 0
        fig.audio_loss_pct = round(100.0 * fig.audio_lost / max(fig.audio_expected, 1), 2)
        rate_bits = fig.kbit_s * 1000 * max(fig.observed_s, 1e-6)
        fig.link_use_pct = round(100.0 * fig.delivered_bytes * 8 / rate_bits, 1)

    def stage_packet(
        self,
        t_us: int,
        seq: int,
        marker: bool,
        starts: bool,
        key_width: int | None,
        *,
        repaired: bool = False,
    ) -> None:
        fig = self._at(t_us)
        widths = self.stage.packet(t_us, seq, marker, starts, key_width, repaired=repaired)
        if fig is None or not widths:
            return
        index = self._index
        start = self._start_us(index)
        previous = self.phases[index - 1].kbit_s if index else None
        for width in widths:
            gap = t_us - max(self._last_frame_us, start)
            fig.longest_freeze_s = round(max(fig.longest_freeze_s, gap / 1e6), 3)
            self._last_frame_us = t_us
            fig.stage_frames += 1
            if width and (not fig.widths or fig.widths[-1] != width):
                fig.widths.append(width)
            dropping = previous is not None and fig.kbit_s < previous
            if dropping and fig.down_s is None and 0 < width < self.top_width:
                fig.down_s = round((t_us - start) / 1e6, 2)
            rising = previous is None or fig.kbit_s > previous
            if rising and fig.up_s is None and width >= self.top_width:
                fig.up_s = round((t_us - start) / 1e6, 2)

    def told(self, t_us: int, spatial: int | None, top: int) -> None:
        """The server says the stage now carries layer `spatial` (None: paused) of `top`."""
        fig = self._at(t_us)
        if fig is None:
            return
        index = self._index
        start = self._start_us(index)
        previous = self.phases[index - 1].kbit_s if index else None
        dropping = previous is not None and fig.kbit_s < previous
        if dropping and fig.told_down_s is None and (spatial is None or spatial < top):
            fig.told_down_s = round((t_us - start) / 1e6, 2)
        rising = previous is None or fig.kbit_s > previous
        if rising and fig.told_up_s is None and spatial == top:
            fig.told_up_s = round((t_us - start) / 1e6, 2)

    def audio(self, t_us: int, expected: int, received: int) -> None:
        """Audio arrived: `expected` new sequence numbers (skipped ones included), `received`
        packets that were not there before."""
        fig = self._at(t_us)
        if fig is not None:
            fig.audio_expected += expected
            self._audio_received += received

    def delivered(self, t_us: int, size: int) -> None:
        fig = self._at(t_us)
        if fig is not None:
            fig.delivered_bytes += size

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """The figures, the current phase closed at `t_us` (a run that ended in it)."""
        if self._at(t_us) is not None:
            self._close(t_us)
            self._index = len(self.phases)
        return [asdict(p) for p in self.phases]


def adaptation_result(peers: list[dict[str, Any]], scenario: dict[str, Any]) -> dict[str, Any]:
    """The result's `adaptation`: the link and, per subscriber behind it, its phases."""
    linked = [p for p in peers if p.get("adaptation")]
    return {
        "schedule": scenario.get("link_schedule"),
        "delay_ms": scenario.get("link_delay_ms"),
        "loss": scenario.get("link_loss"),
        "queue_ms": scenario.get("link_queue_ms"),
        "estimator": scenario.get("link_estimator"),
        "planned": scenario.get("scheduled_links", 0),
        "how": "phases from the first packet each subscriber received; down: first stage frame "
        "below the top width after a drop; up: first at the top width after a rise (told: the "
        "layer the slot map names); freeze: longest stretch with no stage frame completed; audio "
        "lost: sequence numbers never received; link used: RTP bytes delivered against the rate",
        "subscribers": [{"name": p["name"], **p["adaptation"]} for p in linked],
    }


def adaptation_lines(adaptation: dict[str, Any] | None) -> list[str]:
    """The summary's lines: one per subscriber behind the link, then one per phase."""
    if not adaptation or not adaptation.get("planned"):
        return []
    out = [
        f"scheduled links ({adaptation['estimator']}): {adaptation['schedule']} kbit/s x s, "
        f"delay {adaptation['delay_ms']} ms, loss {100 * adaptation['loss']:g} %, "
        f"{len(adaptation['subscribers'])}/{adaptation['planned']} subscribers"
    ]
    for sub in adaptation["subscribers"]:
        link = sub["link"]
        out.append(
            f"  {sub['name']}: {link['delivered']:,}/{link['packets']:,} packets through, "
            f"{link['random_loss']} lost at random, {link['queue_drops']} dropped by the queue, "
            f"{sub['keyframe_requests']} keyframe requests"
        )
        for phase in sub["phases"]:
            out.append("    " + PhaseFigures(**phase).line())
    return out
