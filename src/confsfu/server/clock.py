"""The server's clock: CLOCK_MONOTONIC in milliseconds, the one the C intake stamps packets with.

Not the event loop's `time()`: uvloop's is a coarse copy taken once per iteration (up to a few
milliseconds behind), and `asyncio.get_running_loop()` asks the kernel for the process id on
every call.
"""

from __future__ import annotations

import time


def clock_ms() -> int:
    return int(time.monotonic() * 1000)
