"""Pins: one per participant, only of someone else in the room, ended by a departure."""

from __future__ import annotations

import pytest

from confsfu.conference.pins import PinError, Pins

ROOM = {"a", "b", "c"}


def test_one_pin_each_a_new_one_replaces_the_old() -> None:
    pins = Pins()
    assert pins.pin("a", "b", ROOM)
    assert not pins.pin("a", "b", ROOM)  # the same again: nothing changes
    assert pins.pin("a", "c", ROOM)
    assert pins.of("a") == "c"
    assert len(pins) == 1
    assert pins.pin("a", None, ROOM)
    assert pins.of("a") is None
    assert not pins.pin("a", None, ROOM)  # unpinning with no pin


def test_refused_pins_change_nothing() -> None:
    pins = Pins()
    pins.pin("a", "b", ROOM)
    with pytest.raises(PinError) as exc:
        pins.pin("a", "a", ROOM)
    assert exc.value.code == "refused"
    with pytest.raises(PinError) as exc:
        pins.pin("a", "zed", ROOM)
    assert exc.value.code == "no_such_participant"
    assert pins.of("a") == "b"


def test_a_departure_ends_the_pins_of_and_by_that_participant() -> None:
    pins = Pins()
    pins.pin("a", "c", ROOM)
    pins.pin("b", "c", ROOM)
    pins.pin("c", "a", ROOM)
    assert sorted(pins.left("c")) == ["a", "b"]
    assert (pins.of("a"), pins.of("b"), pins.of("c")) == (None, None, None)
    assert len(pins) == 0
