"""confsfu.server._wire.pump: the sockets the taps watch, read when Python asks, between the steps
of long work: RTP straight to the intake, everything else to `defer`, never both, never lost."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.server import _wire

from .test_intake import FIXED, audio, taken, taking, video

KEY, SALT = bytes(range(16)), bytes(range(12))


class Deferred(list[tuple[Any, bytes, Any]]):
    def __call__(self, fallback: Any, data: bytes, addr: Any) -> None:
        self.append((fallback, data, addr))


def pumped(limit: int = 256) -> tuple[int, Deferred]:
    deferred = Deferred()
    return _wire.pump(deferred, limit), deferred


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def watching(
    receiver: socket.socket, sender: socket.socket, inbox: socket.socket, *, keys: bool = True
) -> Iterator[_wire.Intake]:
    """An intake (with its keys, unless not) whose tap the pump reads `inbox` for; its
    fallback is `print`, which the pump hands back and never calls."""
    _side, intake = taking(receiver, sender)
    if keys:
        intake.opener = _wire.Opener(KEY, SALT)
    tap = intake.tap(print)
    tap.watch(inbox)
    try:
        yield intake
    finally:
        tap.unwatch()
        _wire.flush()


def test_the_pump_takes_rtp_and_defers_the_rest(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    with watching(receiver, sender, inbox) as intake:
        audio_sealer = _wire.Sealer(KEY, SALT)  # one per stream: a Sealer's `seal` is one
        first, second = audio_sealer.seal(audio(1, 10)), audio_sealer.seal(audio(2, 10))
        media = [first, _wire.Sealer(KEY, SALT).seal(video(1, 1, 0, True)), second]
        stun = b"\x00\x01" + bytes(18)
        for datagram in (media[0], stun, media[1], media[2]):
            assert datagram is not None
            publisher.sendto(datagram, inbox.getsockname())
        count, deferred = pumped()
        assert count == 4
        assert taken(intake)["packets_in"] == 3
        assert deferred == [(print, stun, publisher.getsockname())]
        assert _wire.pending() > 0  # forwarded, waiting for flush
        _wire.flush()
        assert receiver.recv(2048)  # a subscriber's wire sent it
        assert pumped()[0] == 0  # drained
        with pytest.raises(BlockingIOError):
            inbox.recv(2048)  # nothing left for the socket's owner either


def test_a_socket_whose_intake_has_no_keys_yet_is_left_to_the_loop(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    """Deferred, its first RTP would be opened by Python after later packets the intake took
    (the keys arrive with the first packet Python opens): out of order, so dropped."""
    with watching(receiver, sender, inbox, keys=False):
        sealed = _wire.Sealer(KEY, SALT).seal(audio(1, 10))
        assert sealed is not None
        publisher.sendto(sealed, inbox.getsockname())
        assert pumped()[0] == 0
        assert inbox.recv(2048) == sealed


def test_an_unwatched_socket_is_left_to_its_owner(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    _side, intake = taking(receiver, sender)
    tap = intake.tap(print)
    before = open_fds()
    tap.watch(inbox.fileno())
    assert tap.watching and open_fds() == before + 1  # its own dup of the socket
    with pytest.raises(ValueError, match="already"):
        tap.watch(inbox)
    tap.unwatch()
    tap.unwatch()  # twice is fine
    assert not tap.watching and open_fds() == before
    publisher.sendto(b"\x00\x01" + bytes(18), inbox.getsockname())
    assert pumped()[0] == 0
    assert inbox.recv(2048)


def test_watch_refuses_what_is_not_a_datagram_socket(receiver: Any, sender: Any) -> None:
    _side, intake = taking(receiver, sender)
    tap = intake.tap(print)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream,
        pytest.raises(ValueError, match="datagram"),
    ):
        tap.watch(stream)
    with pytest.raises(TypeError):
        tap.watch("socket")
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="datagram"):
            tap.watch(r)
    finally:
        os.close(r)
        os.close(w)
    assert not tap.watching
    with pytest.raises(TypeError):
        _wire.pump("defer")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _wire.pump(Deferred(), 0)


def test_the_limit_leaves_the_rest_for_later(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    with watching(receiver, sender, inbox):
        for i in range(5):
            publisher.sendto(bytes([i]) * 20, inbox.getsockname())
        first, deferred = pumped(limit=3)
        second, more = pumped()
        assert (first, second) == (3, 2)
        assert [d[1][0] for d in deferred + more] == [0, 1, 2, 3, 4]  # in order, none twice


def test_a_failing_callback_stops_the_pump_and_loses_nothing_else(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    with watching(receiver, sender, inbox):
        for i in range(3):
            publisher.sendto(bytes([i]) * 20, inbox.getsockname())

        def refuse(fallback: Any, data: bytes, addr: Any) -> None:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            _wire.pump(refuse)
        count, deferred = pumped()
        assert count == 2 and [d[1][0] for d in deferred] == [1, 2]


@settings(max_examples=100, **FIXED)
@given(datagrams=st.lists(st.binary(min_size=1, max_size=1600), max_size=12))
def test_any_datagrams_are_taken_or_deferred(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
    datagrams: list[bytes],
) -> None:
    sealed = _wire.Sealer(KEY, SALT).seal(audio(7, 10))
    assert sealed is not None
    with watching(receiver, sender, inbox) as intake:
        sent = [*datagrams, sealed]
        for datagram in sent:
            publisher.sendto(datagram, inbox.getsockname())
        count, deferred = pumped()
        counts = taken(intake)
        assert count == len(sent)
        assert counts.get("packets_in", 0) + len(deferred) == len(sent)
        assert counts.get("packets_in", 0) >= 1  # the sealed one at least
        assert all(d[1] in datagrams for d in deferred)
