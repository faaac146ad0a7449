"""Wrap-around arithmetic for RTP sequence numbers, timestamps and other n-bit counters."""

__all__ = ["SeqUnwrapper", "Unwrapper", "Wraparound", "seq_diff", "seq_newer"]


def seq_diff(a: int, b: int) -> int:
    """Signed 16-bit difference ``a - b`` in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (mod 2**16)."""
    return seq_diff(a, b) > 0


class Wraparound:
    """Arithmetic on an n-bit counter: 15-bit picture id, 8-bit TL0PICIDX, 32-bit timestamps."""

    __slots__ = ("_half", "_mask", "bits", "modulus")

    def __init__(self, bits: int) -> None:
        if bits < 1:
            raise ValueError(f"bits must be positive, got {bits}")
        self.bits = bits
        self.modulus = 1 << bits
        self._mask = self.modulus - 1
        self._half = self.modulus >> 1

    def diff(self, a: int, b: int) -> int:
        """Signed difference ``a - b`` in [-2**(bits-1), 2**(bits-1) - 1]."""
        return ((a - b + self._half) & self._mask) - self._half

    def add(self, a: int, delta: int) -> int:
        """``a + delta`` wrapped into [0, 2**bits)."""
        return (a + delta) & self._mask

    def newer(self, a: int, b: int) -> bool:
        """True when ``a`` comes after ``b`` modulo 2**bits."""
        return self.diff(a, b) > 0


class Unwrapper:
    """Maps an n-bit wrapping counter onto an unbounded int, tolerating reordering.

    The first value maps to itself; each later value is placed within half the range of the
    previous one, so values from before the first one may come out negative.
    """

    __slots__ = ("_last", "_wrap")

    def __init__(self, bits: int = 16) -> None:
        self._wrap = Wraparound(bits)
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        last = self._last
        wrap = self._wrap
        extended = wrap.add(value, 0) if last is None else last + wrap.diff(value, last)
        self._last = extended
        return extended

    @property
    def last(self) -> int | None:
        """The most recently returned extended value."""
        return self._last


class SeqUnwrapper(Unwrapper):
    """16-bit RTP sequence numbers to a monotonic extended int (see :class:`Unwrapper`)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(16)
