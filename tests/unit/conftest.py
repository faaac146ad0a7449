"""UDP sockets on 127.0.0.1 for the tests of the C hot path (test_wire, test_fan_out,
test_intake, test_pump)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


def _loopback_udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A subscriber's socket."""
    with _loopback_udp() as sock:
        sock.settimeout(2.0)
        yield sock


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    """The server's socket towards `receiver`."""
    with _loopback_udp() as sock:
        yield sock


@pytest.fixture
def inbox() -> Iterator[socket.socket]:
    """A publish connection's ICE socket, which a tap watches."""
    with _loopback_udp() as sock:
        sock.setblocking(False)
        yield sock


@pytest.fixture
def publisher() -> Iterator[socket.socket]:
    """A publisher's socket, sending to `inbox`."""
    with _loopback_udp() as sock:
        yield sock
