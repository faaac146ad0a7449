"""ICE's sends go out on a plain socket under uvloop (whose sendto caches every address), and
through the transport on asyncio's loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aioice.ice
import pytest
import uvloop

from confsfu.server import plain_sends


class Receiver:
    def __init__(self) -> None:
        self.lost: list[Any] = []

    def protocol_lost(self, protocol: Any) -> None:
        self.lost.append(protocol)


async def _send_and_close() -> tuple[bytes, bytes, bool, bool]:
    """(what arrived from send_data, from send_stun, whether a plain socket was used, whether it
    was closed with the transport)."""
    plain_sends.install()
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2)
        receiver = Receiver()
        _transport, protocol = await loop.create_datagram_endpoint(
            lambda: aioice.ice.StunProtocol(receiver),  # type: ignore[arg-type]
            local_addr=("127.0.0.1", 0),
        )
        await protocol.send_data(b"dtls record", rx.getsockname())
        data = rx.recv(100)
        request = aioice.stun.Message(aioice.stun.Method.BINDING, aioice.stun.Class.REQUEST)
        protocol.send_stun(request, rx.getsockname())
        stun = rx.recv(100)
        plain = protocol.__dict__.get("_confsfu_socket")
        await protocol.close()
        assert receiver.lost == [protocol]
        closed = plain is not None and plain.fileno() == -1
        return data, stun, plain is not None, closed


@pytest.mark.parametrize(
    ("new_loop", "plain"), [(uvloop.new_event_loop, True), (asyncio.new_event_loop, False)]
)
def test_ice_sends_arrive_and_take_a_plain_socket_only_under_uvloop(
    new_loop: Callable[[], asyncio.AbstractEventLoop], plain: bool
) -> None:
    loop = new_loop()
    try:
        data, stun, used, closed = loop.run_until_complete(_send_and_close())
    finally:
        loop.close()
    assert data == b"dtls record"
    assert aioice.stun.parse_message(stun).message_method == aioice.stun.Method.BINDING
    assert used is plain
    assert closed is plain  # the dup'd fd goes with the transport
