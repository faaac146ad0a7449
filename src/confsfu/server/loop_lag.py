"""How late the event loop runs a timer: time it spent not reading sockets (a long callback, a
garbage collection, the process waiting for a CPU). Every packet that arrives during such a
stall waits in its socket for as long, so the lag's tail is a floor under forwarding delay's.

`LoopLag` only counts (sans-IO); `LagProbe` is the timer that feeds it. Beside the lateness
(wall time, which a machine busy with other processes inflates), the probe measures the CPU time
the loop's thread spent between two of its ticks: what callbacks held, whoever else runs.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from typing import Any

EVERY_MS = 10  # the probe timer's period
# Lateness bins' lower edges (ms): a count per bin, cumulative since the probe started.
BIN_EDGES_MS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)


class LoopLag:
    """Counts of timer lateness by bin, the worst seen, the total time stalled, and the most CPU
    time the loop spent between two ticks (`max_cpu_ms`)."""

    def __init__(self) -> None:
        self.counts = [0] * len(BIN_EDGES_MS)
        self.max_ms = 0.0
        self.late_ms_total = 0.0
        self.max_cpu_ms = 0.0

    def record(self, late_ms: float, cpu_ms: float = 0.0) -> None:
        """One tick: how late it ran, and the loop thread's CPU time since the tick before."""
        late_ms = max(late_ms, 0.0)
        self.counts[bisect_right(BIN_EDGES_MS, late_ms) - 1] += 1
        self.max_ms = max(self.max_ms, late_ms)
        self.late_ms_total += late_ms
        self.max_cpu_ms = max(self.max_cpu_ms, cpu_ms)

    def reset_max(self) -> None:
        """Start the worst-case figures afresh (a test measuring one episode)."""
        self.max_ms = self.max_cpu_ms = 0.0

    @property
    def samples(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[float, int]]:
        """A histogram's buckets: (upper edge in ms, samples below it), then (inf, all)."""
        edges = [*BIN_EDGES_MS[1:], float("inf")]
        totals = [sum(self.counts[: i + 1]) for i in range(len(edges))]
        return list(zip(edges, totals, strict=True))

    def snapshot(self) -> dict[str, Any]:
        """For /healthz: bins keyed by their lower edge in ms (as strings, for JSON)."""
        return {
            "every_ms": EVERY_MS,
            "bins": {str(edge): n for edge, n in zip(BIN_EDGES_MS, self.counts, strict=True)},
            "max_ms": round(self.max_ms, 1),
            "max_cpu_ms": round(self.max_cpu_ms, 1),
            "late_ms_total": round(self.late_ms_total, 1),
        }


class LagProbe:
    """The timer feeding a `LoopLag`: fires every `every_ms` on the running loop and records how
    long after its due time it ran."""

    def __init__(self, lag: LoopLag, every_ms: int = EVERY_MS) -> None:
        self.lag = lag
        self._every_s = every_ms / 1000
        self._handle: asyncio.TimerHandle | None = None
        self._cpu_s = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._cpu_s = time.thread_time()
        self._schedule(loop, loop.time() + self._every_s)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._handle = loop.call_at(due, self._fire, loop, due)

    def _fire(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now, cpu_s = loop.time(), time.thread_time()
        self.lag.record((now - due) * 1000, (cpu_s - self._cpu_s) * 1000)
        self._cpu_s = cpu_s
        self._schedule(loop, now + self._every_s)
