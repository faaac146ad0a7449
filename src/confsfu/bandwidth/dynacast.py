"""Which simulcast layers a publisher sends: on at once when wanted, off only after a delay."""

from __future__ import annotations


class LayerGate:
    """The number of layers a publisher keeps on, from the highest layer anyone could use.

    Raising is immediate; lowering waits `off_delay_ms` so a layer does not bounce off and on
    while subscribers come and go. At least the lowest layer always stays on.
    """

    __slots__ = ("_lower_since_ms", "_off_delay_ms", "layers_on", "total_layers")

    def __init__(self, total_layers: int, off_delay_ms: int) -> None:
        self.total_layers = total_layers
        self.layers_on = total_layers
        self._off_delay_ms = off_delay_ms
        self._lower_since_ms: int | None = None

    def update(self, now_ms: int, highest_needed: int | None) -> int | None:
        """The new number of layers to keep on when it changes, else None."""
        wanted = max(1, min(self.total_layers, (highest_needed or 0) + 1))
        if wanted > self.layers_on:
            self._lower_since_ms = None
            self.layers_on = wanted
            return wanted
        if wanted == self.layers_on:
            self._lower_since_ms = None
            return None
        if self._lower_since_ms is None:
            self._lower_since_ms = now_ms
        if now_ms - self._lower_since_ms < self._off_delay_ms:
            return None
        self._lower_since_ms = None
        self.layers_on = wanted
        return wanted
