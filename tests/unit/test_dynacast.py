"""LayerGate: layers go on at once and off only after the delay, the lowest never."""

from __future__ import annotations

from confsfu.bandwidth.dynacast import LayerGate


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
