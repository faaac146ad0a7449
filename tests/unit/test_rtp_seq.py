"""Wrap-around arithmetic: 16-bit sequence numbers, n-bit counters, unwrapping."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.rtp.seq import SeqUnwrapper, Unwrapper, Wraparound, seq_diff, seq_newer


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [
        (5, 3, 2),
        (3, 5, -2),
        (0, 65535, 1),
        (65535, 0, -1),
        (32767, 0, 32767),
        (32768, 0, -32768),
        (100, 100, 0),
    ],
)
def test_seq_diff_table(a: int, b: int, diff: int) -> None:
    assert seq_diff(a, b) == diff
    assert seq_newer(a, b) == (diff > 0)


def test_wraparound_picture_id_and_tl0() -> None:
    pic = Wraparound(15)
    assert pic.diff(0, 32767) == 1
    assert pic.add(32767, 1) == 0
    assert pic.add(0, -1) == 32767
    assert pic.newer(2, 32760)
    tl0 = Wraparound(8)
    assert tl0.diff(1, 255) == 2
    assert tl0.add(250, 10) == 4
    ts = Wraparound(32)
    assert ts.diff(10, 0xFFFFFFF0) == 26
    with pytest.raises(ValueError):
        Wraparound(0)


def test_seq_unwrapper_handles_wrap_and_reordering() -> None:
    unwrapper = SeqUnwrapper()
    assert unwrapper.last is None
    values = [65533, 65534, 65535, 0, 65534, 1, 2, 65535, 3]
    assert [unwrapper.unwrap(v) for v in values] == [
        65533,
        65534,
        65535,
        65536,
        65534,
        65537,
        65538,
        65535,
        65539,
    ]
    assert unwrapper.last == 65539


def test_unwrapper_before_first_value_goes_negative() -> None:
    unwrapper = SeqUnwrapper()
    assert unwrapper.unwrap(1) == 1
    assert unwrapper.unwrap(65535) == -1


@given(
    bits=st.integers(2, 32),
    start=st.integers(0, 2**32),
    steps=st.lists(st.integers(-1000, 1000), max_size=50),
)
def test_unwrapper_recovers_counter_when_steps_below_half_range(
    bits: int, start: int, steps: list[int]
) -> None:
    half = 1 << (bits - 1)
    unwrapper = Unwrapper(bits)
    wrap = Wraparound(bits)
    value = start % (1 << bits)
    assert unwrapper.unwrap(value) == value
    extended = value
    for step in steps:
        step = max(-half + 1, min(half - 1, step))
        extended += step
        assert unwrapper.unwrap(extended % (1 << bits)) == extended
        assert wrap.diff(extended % (1 << bits), (extended - step) % (1 << bits)) == step


@given(a=st.integers(0, 0xFFFF), b=st.integers(0, 0xFFFF))
def test_seq_diff_is_antisymmetric_and_bounded(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -32768 <= d <= 32767
    assert (b + d) & 0xFFFF == a
    if d != -32768:
        assert seq_diff(b, a) == -d
