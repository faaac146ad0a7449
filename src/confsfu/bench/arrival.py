"""When the kernel put the datagram a socket handed over last into that socket's queue.

A subscriber's forwarding delay ends when the packet reaches its socket, not when the
benchmark's worker (a busy process, on one machine niced below the server) gets round to reading
it: SIOCGSTAMPNS answers that for the datagram read last. The first question switches the
socket's time stamping on (until then the answer is the time of asking, so a late answer, never an
early one). The kernel's time is CLOCK_REALTIME; `latest` returns it on the monotonic clock the
workers stamp sends with, converted through the clocks' offset read at each question (an offset
cached for a second goes wrong by milliseconds while the realtime clock is slewed or stepped, as on
a freshly booted VM whose time is being corrected).
"""

from __future__ import annotations

import fcntl
import struct
import time

SIOCGSTAMPNS = 0x8907  # linux/sockios.h: the last datagram's receive time, a struct timespec
OFFSET_TRIES = 5  # readings of the realtime clock at most, for one between close monotonic ones
TIGHT_S = 50e-6  # ... close enough


class ArrivalStamps:
    """Kernel receive times of one socket's datagrams, read right after each is received."""

    __slots__ = ("_buffer", "_fd")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray(16)

    def latest(self) -> float | None:
        """Monotonic seconds at which the datagram read last from the socket arrived; None if the
        socket has none (or the kernel does not say)."""
        try:
            fcntl.ioctl(self._fd, SIOCGSTAMPNS, self._buffer, True)
        except OSError:  # ENOENT: no datagram yet; or not a socket any more
            return None
        seconds: int
        nanoseconds: int
        seconds, nanoseconds = struct.unpack("qq", self._buffer)
        return seconds + nanoseconds * 1e-9 - realtime_offset()


def realtime_offset() -> float:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now, from the realtime clock read between two monotonic
    readings: of a few tries, the one read closest together (a process preempted between two
    readings, as a busy benchmark worker is, would be off by the preemption)."""
    best_gap, offset = float("inf"), 0.0
    for _ in range(OFFSET_TRIES):
        before = time.monotonic()
        real = time.time()
        after = time.monotonic()
        if after - before < best_gap:
            best_gap, offset = after - before, real - (before + after) / 2
        if best_gap < TIGHT_S:
            break
    return offset
