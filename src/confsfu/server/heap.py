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


def heap_in_use_bytes() -> int | None:
    """Bytes allocated through malloc now (in its heaps and in mmap'd blocks); None where glibc's
    mallinfo2 is missing."""
    function = _mallinfo2()
    if function is None:
        return None
    info = function()
    return int(info.uordblks + info.hblkhd)
