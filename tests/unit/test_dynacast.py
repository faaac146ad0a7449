"""Dynacast: layers go on at once and off only after the delay, the lowest never; the highest
layer any tile could use decides."""

from __future__ import annotations

from confsfu.bandwidth.allocator import LayerDecision, Reason
from confsfu.bandwidth.dynacast import Dynacast, LayerGate, LayersChanged, highest_wanted
from confsfu.ids import SourceId

A, B = SourceId.camera("a", "video"), SourceId.camera("b", "video")
RIDS = ("q", "h", "f")


def test_the_highest_tile_anyone_shows_counts_not_the_layer_it_got() -> None:
    shown = [
        (A, LayerDecision("1", 0, 1, 1, Reason.BANDWIDTH, preferred_spatial=2)),  # weak link
        (A, LayerDecision("2", 0, 1, 1, Reason.TILE_SIZE, preferred_spatial=0)),
        (B, LayerDecision("3", 1, 0, 1, Reason.BANDWIDTH)),  # no preference: what it got
        (B, LayerDecision("4", None, None, 0, Reason.PAUSED_BANDWIDTH)),
    ]
    assert highest_wanted(shown) == {A: 2, B: 1}


def test_layers_go_off_after_the_delay_and_back_on_at_once() -> None:
    dynacast = Dynacast(off_delay_ms=5000)
    dynacast.add(A, RIDS)
    dynacast.add(B, ("q",))  # one layer: nothing to switch
    assert len(dynacast) == 1
    assert dynacast.update(0, {A: 2}) == []
    assert dynacast.update(1000, {A: 0}) == []  # wanted lower: waits
    assert dynacast.update(6000, {A: 0}) == [LayersChanged(A, ("q",))]
    assert dynacast.update(6100, {}) == []  # nobody watching: the lowest stays on
    assert dynacast.update(6200, {A: 1}) == [LayersChanged(A, ("q", "h"))]
    dynacast.remove(A)
    assert dynacast.update(7000, {A: 2}) == []


def test_raise_is_immediate_lowering_waits() -> None:
    gate = LayerGate(3, off_delay_ms=5000)
    assert gate.update(0, 0) is None  # starts with everything on; lowering waits
    assert gate.update(4999, 0) is None
    assert gate.update(5000, 0) == 1
    assert gate.update(5001, 2) == 3  # someone wants the top layer: at once


def test_a_brief_dip_does_not_turn_a_layer_off() -> None:
    gate = LayerGate(3, off_delay_ms=5000)
    assert gate.update(0, 1) is None
    assert gate.update(3000, 2) is None  # wanted again before the delay ran out
    assert gate.update(7000, 1) is None  # a new dip starts a new delay
    assert gate.update(12_000, 1) == 2


def test_the_lowest_layer_stays_on_when_nobody_watches() -> None:
    gate = LayerGate(3, off_delay_ms=0)
    assert gate.update(0, None) == 1
    assert gate.layers_on == 1
