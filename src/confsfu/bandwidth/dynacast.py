"""Which simulcast layers each publisher keeps sending: on at once when wanted, off late.

The highest layer any subscriber's tile could use is kept on; raising is immediate, lowering
waits a delay (LiveKit's dynacast, Jitsi's sender limits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confsfu.bandwidth.allocator import LayerDecision
from confsfu.ids import SourceId


@dataclass(frozen=True, slots=True)
class LayersChanged:
    """Tell the publisher of `source` to send only these rids (lowest first)."""

    source: SourceId
    rids: tuple[str, ...]


class LayerGate:
    """The number of layers one source keeps on, from the highest layer anyone could use.

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


def highest_wanted(shown: Iterable[tuple[SourceId, LayerDecision]]) -> dict[SourceId, int]:
    """Per source, the highest spatial layer any subscriber's tile could use.

    A decision counts with its `preferred_spatial` (the tile's cap), not the layer it got: the
    allocator only picks layers the publisher sends, so if a layer were switched off because
    today's estimates do not reach it, no subscriber could ever climb back to it. Decisions
    without `preferred_spatial` count with the layer they got; paused ones without either not.
    """
    needs: dict[SourceId, int] = {}
    for source, d in shown:
        want = d.preferred_spatial if d.preferred_spatial is not None else d.spatial
        if want is not None and want > needs.get(source, -1):
            needs[source] = want
    return needs


class Dynacast:
    """The layer gates of every simulcast source in a room."""

    __slots__ = ("_gates", "_off_delay_ms", "_rids")

    def __init__(self, off_delay_ms: int) -> None:
        self._off_delay_ms = off_delay_ms
        self._gates: dict[SourceId, LayerGate] = {}
        self._rids: dict[SourceId, tuple[str, ...]] = {}

    def add(self, source: SourceId, rids: tuple[str, ...]) -> None:
        """A source published with these simulcast rids (lowest first); one rid: no gate."""
        if len(rids) > 1:
            self._gates[source] = LayerGate(len(rids), self._off_delay_ms)
            self._rids[source] = rids

    def remove(self, source: SourceId) -> None:
        self._gates.pop(source, None)
        self._rids.pop(source, None)

    def __len__(self) -> int:
        return len(self._gates)

    def update(self, now_ms: int, wanted: dict[SourceId, int]) -> list[LayersChanged]:
        """The sources whose layers on change now, given `highest_wanted` of every slot."""
        changes = []
        for source, gate in self._gates.items():
            layers_on = gate.update(now_ms, wanted.get(source))
            if layers_on is not None:
                changes.append(LayersChanged(source, self._rids[source][:layers_on]))
        return changes
