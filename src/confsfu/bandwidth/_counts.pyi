"""LayerCounts (C: src/confsfu/bandwidth/_counts.c), the storage of LayerBitrateMeter."""

class LayerCounts:
    """The bytes of each (spatial, temporal) layer of one video source in a ring of time
    buckets (C, sans-IO); see confsfu.bandwidth.layer_meter for the rule of its rates."""

    def __init__(self, window_ms: int, bucket_ms: int) -> None: ...
    def add(self, now_ms: int, spatial: int, temporal: int, size_bytes: int) -> None: ...
    def rates(self, now_ms: int) -> list[float]:
        """9 rates in bit/s, layer (s, t) at s * 3 + t, over the window ending at `now_ms`."""
    def state(self) -> tuple[int, int, int | None, list[int], list[int]]:
        """(bucket_ms, buckets, first bucket or None, epochs, bytes): for tests."""
