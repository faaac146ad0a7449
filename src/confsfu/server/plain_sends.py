"""ICE's sends (STUN, and aiortc's DTLS through them) on a plain socket under uvloop.

uvloop's `transport.sendto(data, addr)` keeps every new `addr`, with its parsed sockaddr, in a
process-wide LRU cache of 2,048 entries (uvloop/dns.pyx) that nothing empties. Each ICE
connection's remote (host, port) stays there after the connection is gone, and the entries,
allocated in the middle of a meeting's objects, keep the heap pages around them from being
returned: 46-participant meetings left 2-4 MB each until the cache filled. A plain socket on a
dup of the transport's fd caches nothing. Media does not go through here (the route sends it).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import aioice.ice

_ATTRIBUTE = "_confsfu_socket"
_original_send_stun = aioice.ice.StunProtocol.send_stun
_original_send_data = aioice.ice.StunProtocol.send_data
_original_connection_lost = aioice.ice.StunProtocol.connection_lost


def install() -> None:
    """Route aioice's sends through plain sockets where the transport is uvloop's (idempotent)."""
    aioice.ice.StunProtocol.send_stun = _send_stun  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_data = _send_data  # type: ignore[method-assign]
    aioice.ice.StunProtocol.connection_lost = _connection_lost  # type: ignore[method-assign]


def plain_socket(protocol: Any) -> socket.socket | None:
    """The protocol's socket on a dup of its uvloop transport's fd (closed in connection_lost);
    None on another loop's transport, a closing one, or one without an fd."""
    sock = protocol.__dict__.get(_ATTRIBUTE)
    if sock is not None:
        return sock  # type: ignore[no-any-return]
    transport = getattr(protocol, "transport", None)
    if transport is None or transport.is_closing():
        return None
    if not type(transport).__module__.startswith("uvloop"):
        return None
    try:
        sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
    except (AttributeError, OSError):
        return None
    sock.setblocking(False)
    setattr(protocol, _ATTRIBUTE, sock)
    return sock


def _send_plain(protocol: Any, data: bytes, addr: Any) -> bool:
    sock = plain_socket(protocol)
    if sock is None:
        return False
    try:
        sock.sendto(data, addr)
    except BlockingIOError:
        return False  # a full send buffer: uvloop queues it (and caches this addr, rarely)
    except OSError as exc:
        protocol.error_received(exc)
    return True


def _send_stun(self: Any, message: Any, addr: tuple[str, int]) -> None:
    if not _send_plain(self, bytes(message), addr):
        _original_send_stun(self, message, addr)


async def _send_data(self: Any, data: bytes, addr: tuple[str, int]) -> None:
    if not _send_plain(self, data, addr):
        await _original_send_data(self, data, addr)


def _connection_lost(self: Any, exc: Exception | None) -> None:
    sock = self.__dict__.pop(_ATTRIBUTE, None)
    if sock is not None:
        sock.close()
    _original_connection_lost(self, exc)
