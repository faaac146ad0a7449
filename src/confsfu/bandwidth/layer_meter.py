"""Per-track bitrate of every simulcast (spatial, temporal) layer over a sliding window."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from confsfu.bandwidth._counts import LayerCounts

SPATIAL_LAYERS = 3
TEMPORAL_LAYERS = 3
_LAYERS = SPATIAL_LAYERS * TEMPORAL_LAYERS
LAYER_RESTART_MS = 300  # as _meter.c has it: see LayerBitrateMeter
COST_HALF_LIFE_MS = 2000  # see LayerBitrateMeter.costs_bps


class LayerMeterError(ValueError):
    """A packet or setting the meter cannot account for."""


class LayerBitrateMeter:
    """Bytes per layer in a ring of time buckets (`counts`, C: the intake adds every packet of
    the source there without Python); rates are computed on demand as (3, 3) numpy arrays.

    The rule, per layer: its bytes in the window's buckets over the window's span, or over its
    own span when it sent nothing in the stream's first `LAYER_RESTART_MS` of the window
    (switched back on by the publisher); every span at least half a window, so that a layer's
    first keyframe alone does not read as its rate. Sparse layers (a low frame rate) leave
    shorter gaps than that.
    """

    __slots__ = ("_held", "_held_ms", "counts")

    def __init__(self, window_ms: int = 1000, bucket_ms: int = 100) -> None:
        if bucket_ms <= 0 or window_ms < bucket_ms or window_ms % bucket_ms:
            raise LayerMeterError("window_ms must be a positive multiple of bucket_ms")
        self._held = [0.0] * _LAYERS  # each layer's cost as costs_bps last gave it
        self._held_ms: int | None = None
        try:
            self.counts = LayerCounts(window_ms, bucket_ms)
        except ValueError as exc:
            raise LayerMeterError(str(exc)) from exc

    def on_packet(self, now_ms: int, spatial: int, temporal: int, size_bytes: int) -> None:
        """Count one packet of layer (spatial, temporal) received at `now_ms`."""
        if not (0 <= spatial < SPATIAL_LAYERS and 0 <= temporal < TEMPORAL_LAYERS):
            raise LayerMeterError(f"no layer ({spatial}, {temporal})")
        if size_bytes < 0:
            raise LayerMeterError("negative packet size")
        self.counts.add(now_ms, spatial, temporal, size_bytes)

    def layer_bitrates_bps(self, now_ms: int) -> npt.NDArray[np.float64]:
        """Bitrate of each layer on its own, shape (3, 3), over the window ending at `now_ms`."""
        return np.array(self.counts.rates(now_ms), dtype=np.float64).reshape(
            SPATIAL_LAYERS, TEMPORAL_LAYERS
        )

    def bitrates_bps(self, now_ms: int) -> npt.NDArray[np.float64]:
        """Cumulative bitrates, shape (3, 3): [s, t] = spatial layer s forwarding temporal 0..t.

        An entry is zero when that temporal layer, or one below it, received nothing in the
        window: forwarding it is not possible.
        """
        return _cumulative(list(self.counts.rates(now_ms)))

    def costs_bps(self, now_ms: int) -> npt.NDArray[np.float64]:
        """What the allocator should take each layer to cost: `bitrates_bps`, but no layer
        below what it last cost, less half every `COST_HALF_LIFE_MS` while it is sent (frozen
        while it is not). A layer the publisher starts again (its encoder short of CPU or
        bits, a gap in its stream) reads low for its first half window, and a stage switched
        up onto a layer that cheap found it dearer a second later and switched down again; a
        cost read high for a while only keeps a tile a layer lower."""
        rates = list(self.counts.rates(now_ms))
        last, self._held_ms = self._held_ms, now_ms
        fade = 0.5 ** (max(now_ms - last, 0) / COST_HALF_LIFE_MS) if last is not None else 0.0
        held = self._held
        for k in range(_LAYERS):
            if rates[k] > 0:
                held[k] = max(rates[k], held[k] * fade)
                rates[k] = held[k]
        return _cumulative(rates)


def _cumulative(rates: list[float]) -> npt.NDArray[np.float64]:
    """Own rates (s * 3 + t) to cumulative ones, (3, 3); zero from a silent temporal layer up."""
    cumulative = [0.0] * _LAYERS
    for base in range(0, _LAYERS, TEMPORAL_LAYERS):
        total = 0.0
        for k in range(base, base + TEMPORAL_LAYERS):
            if rates[k] <= 0:
                break
            total += rates[k]
            cumulative[k] = total
    return np.array(cumulative, dtype=np.float64).reshape(SPATIAL_LAYERS, TEMPORAL_LAYERS)
