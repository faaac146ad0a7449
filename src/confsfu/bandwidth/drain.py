"""When a subscriber's video waits for its bottleneck queue to drain after a sharp fall.

When the link narrows under a layer it can no longer carry, the queue in front of it is full of
that layer's packets, and a lower layer's keyframe sent into it is lost at its tail (the
weak-link simulator froze the stage for about 2 s at 300 kbit/s that way, and the overflow took
audio with it). So, as a sender's pacer stops feeding a congested link rather than queueing more
in it: once the estimate falls, to below `fall` times what is sent (the subscriber's layers and
audio), its video is held (nothing new goes out, audio does) until transport-cc feedback
acknowledges a packet sent since the hold began. The queue is first in, first out: what was
queued before that packet has left (or was dropped), so the next keyframe meets an empty queue.
A fall that finds the queue `queue_ms` long (transport-cc's queue delay) begins one too,
whatever the layers cost: a fall decided in steps (each a lower layer) left the browser runs'
queue at 400-650 ms for 2 s behind a layer that fitted, its tail dropping the lower layer's
packets, and Firefox froze.
Probe padding is neither cost nor cause: a 2x probe that fails stops at the fall, and its queue
drains by itself under a layer that goes on fitting. So padding is not priced, and a queue met
within `padding_tail_ms` of padding begins no hold (with 80 ms of delay a failed probe's queue
showed 1.1 s after it stopped). Holding then only froze the stage and sent a keyframe into
that queue: the simulator's steady 300 kbit/s phase began a hold every few probes.
A queue `link_queue_ms` long and growing begins one before the estimate falls when what came
out of it since it was last empty (the link's rate) is under `fall` times what is sent: the
trendline's cut came 250-600 ms after the queue began in the browser runs, and each of those ms
is one more of freeze (the queue is full of frames its tail drop broke). Such a hold ends only
once the estimate has fallen too: a decision on the estimate before the fall went back to the
top layer, whose keyframe overflowed the queue (the simulator's lossy link, freeze 0.9 -> 1.7 s).
A hold ends anyway after `max_hold_ms` (feedback lost), and another begins no sooner than
`rest_ms` after one ended.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DrainConfig:
    fall: float = 0.5  # an estimate below this share of what the layers cost starts a hold
    max_hold_ms: int = 1500
    rest_ms: int = 2000  # from the end of a hold to the next
    queue_ms: float = 250.0  # a fall with this much queue delay starts a hold (0: never)
    padding_tail_ms: int = 2000  # ... unless probe padding went out this recently (its queue)
    link_queue_ms: float = 100.0  # a queue this long, growing, begins one without a fall when
    # what comes out of it (the link's rate) is under `fall` times what is sent (0: never)

    def __post_init__(self) -> None:
        if not 0.0 < self.fall <= 1.0 or self.max_hold_ms <= 0 or self.rest_ms < 0:
            raise ValueError("need 0 < fall <= 1, max_hold_ms > 0 and rest_ms >= 0")
        if min(self.queue_ms, self.padding_tail_ms, self.link_queue_ms) < 0:
            raise ValueError("need queue_ms, padding_tail_ms and link_queue_ms >= 0 (0: never)")


class QueueDrain:
    """`on_estimate` after each estimate change, `on_acknowledged` after each transport-cc
    feedback; both say whether `holding` changed."""

    __slots__ = ("_config", "_ended_ms", "_estimate_bps", "_padded_ms", "_until_bps", "since_ms")

    def __init__(self, config: DrainConfig | None = None) -> None:
        self._config = config or DrainConfig()
        self.since_ms: int | None = None  # when the hold began (None: not holding)
        self._ended_ms = -(1 << 62)
        self._estimate_bps: int | None = None  # the previous one
        self._padded_ms = -(1 << 62)  # when probe padding was last seen going out
        self._until_bps: float | None = None  # a hold begun before the fall waits for it

    @property
    def holding(self) -> bool:
        return self.since_ms is not None

    def on_estimate(
        self,
        now_ms: int,
        estimate_bps: int,
        cost_bps: int,
        queue_ms: float = 0.0,
        padding_bps: int = 0,
        link_bps: float | None = None,
        rising: bool = False,
    ) -> bool:
        """`cost_bps`: what the layers and audio sent cost; `queue_ms`: the queue delay (0: not
        known); `padding_bps`: probe padding sent since the previous call; `link_bps`: what
        came out of the queue since it was last empty (None: not known); `rising`: the queue
        grew since the previous feedback. True when a hold began."""
        cfg = self._config
        previous, self._estimate_bps = self._estimate_bps, estimate_bps
        if padding_bps > 0:
            self._padded_ms = now_ms
        if self.since_ms is not None or now_ms - self._ended_ms < cfg.rest_ms:
            return False
        fell = previous is not None and estimate_bps < previous
        padded = now_ms - self._padded_ms < cfg.padding_tail_ms
        queued = bool(cfg.queue_ms) and queue_ms >= cfg.queue_ms and not padded
        narrowed = (
            bool(cfg.link_queue_ms)
            and rising
            and not padded
            and queue_ms >= cfg.link_queue_ms
            and link_bps is not None
            and link_bps < cfg.fall * cost_bps
        )
        if not narrowed and (not fell or (estimate_bps >= cfg.fall * cost_bps and not queued)):
            return False
        self.since_ms = now_ms
        held = fell and estimate_bps < cfg.fall * cost_bps
        self._until_bps = None if held or not narrowed else cfg.fall * cost_bps
        return True

    def on_acknowledged(self, now_ms: int, newest_sent_ms: int | None) -> bool:
        """`newest_sent_ms`: the send time of the latest packet feedback acknowledged as
        arrived (None: none yet). True when a hold ended."""
        since = self.since_ms
        if since is None:
            return False
        drained = newest_sent_ms is not None and newest_sent_ms >= since
        until = self._until_bps
        if until is not None and self._estimate_bps is not None and self._estimate_bps >= until:
            drained = False  # the estimate has yet to fall: a decision now would go back up
        if not drained and now_ms - since < self._config.max_hold_ms:
            return False
        self.since_ms = None
        self._ended_ms = now_ms
        return True
