"""How much memory the process has allocated, as opposed to how much it holds (RSS).

After a meeting ends, RSS also counts memory that was freed but that the allocator keeps in pages
where something still lives, and reuses for the next meeting; glibc's mallinfo2 says what is
allocated: the C libraries' memory, and Python's objects under PYTHONMALLOC=malloc (the server's
default allocator; pymalloc's arenas are mapped apart and not counted).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes of the main heap (sbrk)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in mmap'd blocks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes allocated from the heaps
            "fordblks",  # bytes free in them
            "keepcost",
        )
    ]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2
    except (OSError, AttributeError, TypeError):  # not glibc, or glibc before 2.33
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    return function


MIN_INTERVAL_S = 1.0


class HeapGauge:
    """`heap_in_use_bytes` as /healthz?heap=1 gives it: mallinfo2 walks every free chunk of
    every arena, 20 ms or more on a fragmented heap, with the event loop held; so it is only
    read when asked, and at most once per `MIN_INTERVAL_S` (a caller asking more often, a
    monitor or a stranger, gets the last figure)."""

    def __init__(self, read: Callable[[], int | None] | None = None) -> None:
        self._read = read if read is not None else heap_in_use_bytes
        self._at_s: float | None = None
        self._value: int | None = None

    def value(self, now_s: float) -> int | None:
        if self._at_s is None or now_s - self._at_s >= MIN_INTERVAL_S:
            self._at_s, self._value = now_s, self._read()
        return self._value


def heap_in_use_bytes() -> int | None:
    """Bytes allocated through malloc now (in its heaps and in mmap'd blocks); None where glibc's
    mallinfo2 is missing."""
    function = _mallinfo2()
    if function is None:
        return None
    info = function()
    return int(info.uordblks + info.hblkhd)
