"""Per-track bitrate of every simulcast (spatial, temporal) layer over a sliding window."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SPATIAL_LAYERS = 3
TEMPORAL_LAYERS = 3
_LAYERS = SPATIAL_LAYERS * TEMPORAL_LAYERS
# A layer whose first packet in the window came this long after the stream's (re)started then:
# sparse layers (a low frame rate) leave shorter gaps.
LAYER_RESTART_MS = 300


class LayerMeterError(ValueError):
    """A packet or setting the meter cannot account for."""


class LayerBitrateMeter:
    """Bytes per layer in a ring of time buckets; rates are computed on demand.

    `on_packet` is on the hot path (one call per forwarded packet), so it touches two
    Python lists and nothing else; the rates are handed out as (3, 3) numpy arrays.
    """

    __slots__ = ("_bucket_ms", "_bytes", "_epochs", "_first_bucket", "_latest_bucket", "_n")

    def __init__(self, window_ms: int = 1000, bucket_ms: int = 100) -> None:
        if bucket_ms <= 0 or window_ms < bucket_ms or window_ms % bucket_ms:
            raise LayerMeterError("window_ms must be a positive multiple of bucket_ms")
        self._bucket_ms = bucket_ms
        self._n = window_ms // bucket_ms
        self._bytes = [0] * (self._n * _LAYERS)
        self._epochs = [-1] * self._n  # the absolute bucket number each slot holds
        self._first_bucket: int | None = None
        self._latest_bucket = -1

    def on_packet(self, now_ms: int, spatial: int, temporal: int, size_bytes: int) -> None:
        """Count one packet of layer (spatial, temporal) received at `now_ms`."""
        if not (0 <= spatial < SPATIAL_LAYERS and 0 <= temporal < TEMPORAL_LAYERS):
            raise LayerMeterError(f"no layer ({spatial}, {temporal})")
        if size_bytes < 0:
            raise LayerMeterError("negative packet size")
        bucket = now_ms // self._bucket_ms
        if bucket <= self._latest_bucket - self._n:
            return  # older than the window: ignore
        slot = bucket % self._n
        epoch = self._epochs[slot]
        if epoch != bucket:
            if epoch > bucket:
                return  # the slot already holds a newer bucket
            base = slot * _LAYERS
            self._bytes[base : base + _LAYERS] = [0] * _LAYERS
            self._epochs[slot] = bucket
        self._bytes[slot * _LAYERS + spatial * TEMPORAL_LAYERS + temporal] += size_bytes
        if bucket > self._latest_bucket:
            self._latest_bucket = bucket
        if self._first_bucket is None or bucket < self._first_bucket:
            self._first_bucket = bucket

    def layer_bitrates_bps(self, now_ms: int) -> npt.NDArray[np.float64]:
        """Bitrate of each layer on its own, shape (3, 3), over the window ending at `now_ms`."""
        return np.array(self._rates(now_ms), dtype=np.float64).reshape(
            SPATIAL_LAYERS, TEMPORAL_LAYERS
        )

    def bitrates_bps(self, now_ms: int) -> npt.NDArray[np.float64]:
        """Cumulative bitrates, shape (3, 3): [s, t] = spatial layer s forwarding temporal 0..t.

        An entry is zero when that temporal layer, or one below it, received nothing in the
        window: forwarding it is not possible.
        """
        rates = self._rates(now_ms)
        cumulative = [0.0] * _LAYERS
        for base in range(0, _LAYERS, TEMPORAL_LAYERS):
            total = 0.0
            for k in range(base, base + TEMPORAL_LAYERS):
                if rates[k] <= 0:
                    break
                total += rates[k]
                cumulative[k] = total
        return np.array(cumulative, dtype=np.float64).reshape(SPATIAL_LAYERS, TEMPORAL_LAYERS)

    def _rates(self, now_ms: int) -> list[float]:
        """Per layer (s * 3 + t), bits per second over the window. Plain lists: read for every
        source on every reassign pass, nine numbers are cheaper without numpy."""
        if self._first_bucket is None:
            return [0.0] * _LAYERS
        now_bucket = now_ms // self._bucket_ms
        oldest = now_bucket - self._n + 1
        start = max(oldest, self._first_bucket)
        # A layer that sent nothing in the stream's first buckets of the window (switched back
        # on by the publisher) is measured from its own start, or it would read as a fraction
        # of its rate. Sparse layers (a low frame rate) leave shorter gaps than this.
        restart = start + -(-LAYER_RESTART_MS // self._bucket_ms)
        live: list[tuple[int, list[int]]] = []
        early_chunks: list[list[int]] = []  # bytes before `restart`
        for slot, epoch in enumerate(self._epochs):
            if oldest <= epoch <= now_bucket:
                chunk = self._bytes[slot * _LAYERS : (slot + 1) * _LAYERS]
                live.append((epoch, chunk))
                if epoch < restart:
                    early_chunks.append(chunk)
        if not live:
            return [0.0] * _LAYERS
        totals = [sum(layer) for layer in zip(*(chunk for _, chunk in live), strict=True)]
        early = [sum(layer) for layer in zip(*early_chunks, strict=True)] or [0] * _LAYERS
        # At least half a window: a layer's first keyframe alone must not read as its rate.
        least_ms = self._bucket_ms * max(1, self._n // 2)
        span_ms = max(now_ms - start * self._bucket_ms, least_ms)
        rates = [total * 8000.0 / span_ms for total in totals]
        for k in [k for k, (t, e) in enumerate(zip(totals, early, strict=True)) if t and not e]:
            since = min(epoch for epoch, chunk in live if chunk[k])
            rates[k] = totals[k] * 8000.0 / max(now_ms - since * self._bucket_ms, least_ms)
        return rates
