"""When the kernel put the datagram a socket handed over last into that socket's queue.

A subscriber's forwarding delay ends when the packet reaches its socket, not when the
benchmark's worker (a busy process, on one machine niced below the server) gets round to reading
it: SIOCGSTAMPNS answers that for the datagram read last. The first question switches the
socket's time stamping on (until then the answer is the time of asking, so a late answer, never an
early one). The kernel's time is CLOCK_REALTIME; `latest` returns it on the monotonic clock the
workers stamp sends with, converted through how long ago it was on the realtime clock, read at once
(a cached offset goes wrong by milliseconds a second while the realtime clock is slewed or stepped,
as on a freshly booted VM whose time is being corrected).
"""

from __future__ import annotations

import fcntl
import struct
import time

SIOCGSTAMPNS = 0x8907  # linux/sockios.h: the last datagram's receive time, a struct timespec


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
        ago = time.time() - (seconds + nanoseconds * 1e-9)
        return time.monotonic() - ago
