"""Header patch, SRTP protect and batched send of outgoing RTP (C, src/confsfu/_wire.c)."""

from collections.abc import Callable
from typing import Any

MAX_PACKET: int

class Route:
    """Where one connection's packets go: its SRTP context and socket."""

    srtp_errors: int
    send_errors: int
    @property
    def ready(self) -> bool: ...
    def over_socket(self, srtp: int, owner: object, fd: int, host: str, port: int) -> None: ...
    def over_callable(
        self, srtp: int, owner: object, sendto: Callable[[bytes, Any], object], addr: Any
    ) -> None: ...
    def clear(self) -> None: ...
    def send(self, packet: bytes, rtcp: bool = False) -> bool: ...

class Wire:
    """One outgoing RTP stream on a route: its header template and counters."""

    packets: int
    payload_octets: int
    packet_bytes: int
    def __init__(self, route: Route, header: bytes, abs_send_time_at: int = 0) -> None: ...
    @property
    def route(self) -> Route: ...
    def queue(
        self, marker: bool, sequence_number: int, timestamp: int, send_time: bytes, payload: bytes
    ) -> int: ...

def set_protect(rtp: int, rtcp: int) -> None: ...
def flush() -> int:
    """Send every queued packet; how many queued since the last flush were not sent."""

def pending() -> int: ...
