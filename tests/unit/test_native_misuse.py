"""The native types refuse misuse from Python with an exception, never a memory error:
initialised twice, used before __init__, handed an uninitialised partner, or entered again from
a callback of their own (issue 19). scripts/sanitize.sh runs these under ASan and UBSan."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from confsfu.bandwidth._counts import LayerCounts
from confsfu.forwarding._reception import Reception
from confsfu.rtp import _fast
from confsfu.rtp.packet import RtpPacket, build_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

from .test_intake import Side, audio, make_intake, make_slots
from .test_pump import KEY, SALT, pumped, watching
from .test_wire import route_to, sessions, video_header, wire_for

NEVER = "never initialised"


def packet(seq: int) -> bytes:
    return build_rtp(payload_type=96, sequence_number=seq, timestamp=0, ssrc=7, payload=b"x")


# ---- Wire -------------------------------------------------------------------------------------


def test_a_wire_is_initialised_once(receiver: socket.socket, sender: socket.socket) -> None:
    """A second __init__ with a header longer than the template once left the Wire writing past
    its header buffer; now the Wire refuses it and keeps the stream it began."""
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    header = video_header()
    wire = wire_for(route, header)
    for header_bytes in (bytes(100), header.template()):
        with pytest.raises(RuntimeError, match="initialised once"):
            wire.__init__(route, header_bytes)  # type: ignore[misc]
    assert wire.queue(True, 1, 2, b"\x00\x00\x00", b"payload") == header.header_bytes + 7
    _wire.flush()
    clear = rx.unprotect(receiver.recv(2048))
    assert clear[8:12] == header.template()[8:12] and clear.endswith(b"payload")  # its SSRC


def test_a_wire_whose_init_failed_is_still_uninitialised(
    receiver: socket.socket, sender: socket.socket
) -> None:
    route = route_to(receiver, sender, sessions()[0])
    wire = _wire.Wire.__new__(_wire.Wire)
    for bad in (bytes(100), bytes(13), bytes(8)):
        with pytest.raises(ValueError, match="header"):
            wire.__init__(route, bad)  # type: ignore[misc]
        with pytest.raises(RuntimeError, match=NEVER):
            wire.queue(True, 1, 2, b"\x00\x00\x00", b"payload")
    with pytest.raises(ValueError, match="history"):
        wire.__init__(route, video_header().template(), history=3)  # type: ignore[misc]
    assert wire.sent(1) is None and wire.route is None  # type: ignore[comparison-overlap]
    wire.__init__(route, video_header().template())  # type: ignore[misc]
    assert wire.route is route
    assert wire.queue(True, 1, 2, b"\x00\x00\x00", b"payload") > 0
    _wire.flush()


# ---- Sealer, Opener and what takes them --------------------------------------------------------


def test_an_uninitialised_sealer_is_refused_by_a_route(
    receiver: socket.socket, sender: socket.socket
) -> None:
    """Its cipher context is NULL: sealing with it would crash in OpenSSL."""
    route = route_to(receiver, sender, sessions()[0])
    with pytest.raises(RuntimeError, match=NEVER):
        route.seal(7, _wire.Sealer.__new__(_wire.Sealer))
    assert route.sealed == 0 and route.dedicated == 0


def test_an_uninitialised_opener_is_refused_by_an_intake(
    receiver: socket.socket, sender: socket.socket
) -> None:
    _side, intake = _intake(receiver, sender)
    with pytest.raises(RuntimeError, match=NEVER):
        intake.opener = _wire.Opener.__new__(_wire.Opener)
    assert intake.opener is None
    intake.opener = _wire.Opener(KEY, SALT)  # an initialised one is taken
    assert intake.opener is not None


def test_sealer_and_opener_are_initialised_once() -> None:
    sealer, opener = _wire.Sealer(KEY, SALT), _wire.Opener(KEY, SALT)
    for made in (sealer, opener):
        with pytest.raises(RuntimeError, match="initialised once"):
            made.__init__(bytes(16), bytes(12))  # type: ignore[misc]
    sealed = sealer.seal(packet(1))
    assert sealed is not None and opener.open(sealed) == packet(1)  # the first keys stay


def test_sealer_and_opener_that_failed_init_refuse_to_work() -> None:
    sealer, opener = _wire.Sealer.__new__(_wire.Sealer), _wire.Opener.__new__(_wire.Opener)
    for made in (sealer, opener):
        with pytest.raises(ValueError, match="key"):
            made.__init__(bytes(5), bytes(12))  # type: ignore[misc]
    with pytest.raises(RuntimeError, match=NEVER):
        sealer.seal(packet(1))
    with pytest.raises(RuntimeError, match=NEVER):
        opener.open(packet(1) + bytes(16))


# ---- the send arena: flush and queue from a send's own callback --------------------------------


class Relay:
    """A relayed route's sendto (a TURN connection's, in Python) that misbehaves on demand."""

    def __init__(self, misbehave: Any) -> None:
        self.misbehave = misbehave
        self.sent: list[bytes] = []
        self.refused: list[BaseException] = []

    def __call__(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)
        try:
            self.misbehave()
        except RuntimeError as error:
            self.refused.append(error)


def relayed_wire(relay: Relay) -> _wire.Wire:
    tx = sessions()[0]
    route = _wire.Route()
    route.over_callable(srtp_context(tx), tx, relay, ("192.0.2.1", 3478))
    return wire_for(route, video_header())


def test_flush_from_a_send_of_the_flush_is_refused() -> None:
    """It used to send the arena again from within, each packet twice, and release each route
    twice (a use after free)."""
    relay = Relay(_wire.flush)
    wire = relayed_wire(relay)
    for seq in range(3):
        assert wire.queue(False, seq, 0, b"\x00\x00\x00", b"payload") > 0
    assert _wire.flush() == 0
    assert len(relay.sent) == 3  # each once
    assert [str(e) for e in relay.refused] == ["flush() called from a send of the flush"] * 3
    assert _wire.pending() == 0 and _wire.flush() == 0


def test_a_send_may_queue_more_which_the_same_flush_sends() -> None:
    queued: list[int] = []

    def queue_one_more() -> None:
        if not queued:
            queued.append(wire.queue(False, 100, 0, b"\x00\x00\x00", b"more"))

    relay = Relay(queue_one_more)
    wire = relayed_wire(relay)
    assert wire.queue(False, 1, 0, b"\x00\x00\x00", b"payload") > 0
    assert _wire.flush() == 0
    assert queued and queued[0] > 0 and len(relay.sent) == 2 and not relay.refused
    assert _wire.pending() == 0


def test_a_send_cannot_queue_into_the_full_arena_it_is_being_sent_from() -> None:
    """A full arena sends itself before taking more; from within its own sending it refuses."""
    relay = Relay(lambda: wire.queue(False, 999, 0, b"\x00\x00\x00", b"more"))
    wire = relayed_wire(relay)
    seq = 0
    while _wire.pending() < 128:  # fill the arena (its size, ARENA_SLOTS)
        assert wire.queue(False, seq, 0, b"\x00\x00\x00", b"payload") > 0
        seq += 1
    assert _wire.flush() == 0
    assert len(relay.sent) == 128
    assert relay.refused and str(relay.refused[0]) == "the send arena is full and being sent"
    assert _wire.pending() == 0


# ---- the pump ----------------------------------------------------------------------------------


def test_the_pump_refuses_to_be_entered_from_its_own_callback(
    receiver: socket.socket,
    sender: socket.socket,
    inbox: socket.socket,
    publisher: socket.socket,
) -> None:
    refused: list[BaseException] = []

    def defer(fallback: Any, data: bytes, addr: Any) -> None:
        try:
            _wire.pump(defer)
        except RuntimeError as error:
            refused.append(error)

    with watching(receiver, sender, inbox):
        for _ in range(2):
            publisher.sendto(b"\x00\x01" + bytes(18), inbox.getsockname())  # STUN: deferred
        assert _wire.pump(defer) == 2
        assert [str(e) for e in refused] == ["pump() called from a callback of the pump"] * 2
        assert pumped()[0] == 0  # and it works again afterwards


# ---- Intake, Reception, Tap ---------------------------------------------------------------------


def _intake(receiver: socket.socket, sender: socket.socket) -> tuple[Side, _wire.Intake]:
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    return side, make_intake(side, lambda data, now: None)


def test_an_intake_is_initialised_once(receiver: socket.socket, sender: socket.socket) -> None:
    _side, intake = _intake(receiver, sender)
    with pytest.raises(RuntimeError, match="initialised once"):
        intake.__init__("q", {}, print, print, print, print, print)  # type: ignore[misc]
    assert intake.pid == "p"
    intake.receive(audio(1, 10), 0)  # still its own fan-outs and callbacks
    assert intake.take_counts()[0]["packets_in"] == 1
    _wire.flush()


def test_an_intake_takes_only_initialised_receptions(
    receiver: socket.socket, sender: socket.socket
) -> None:
    _side, intake = _intake(receiver, sender)
    bare = Reception.__new__(Reception)
    with pytest.raises(RuntimeError, match=NEVER):
        intake.add(bare)
    with pytest.raises(RuntimeError, match=NEVER):
        intake.add_repair(5, 97, bare)
    with pytest.raises(TypeError):
        intake.add(object())  # type: ignore[arg-type]
    assert not intake.holds(0) and not intake.holds(5)


def test_a_reception_is_initialised_once_and_refuses_use_before() -> None:
    bare = Reception.__new__(Reception)
    assert not bare.started and bare.key is None  # reading is harmless
    for use in (
        lambda: bare.on_packet(0, 1, 100),
        lambda: bare.nacks_due(0),
        lambda: bare.report(),
        lambda: bare.unwrap_picture(1),
        lambda: bare.route("k", True, 0),
    ):
        with pytest.raises(RuntimeError, match=NEVER):
            use()
    reception = Reception(5)
    assert reception.on_packet(0, 10, 100)
    with pytest.raises(RuntimeError, match="initialised once"):
        reception.__init__(6)  # type: ignore[misc]
    assert reception.ssrc == 5 and reception.report().highest_sequence == 10


def test_a_reception_refuses_numbers_out_of_range() -> None:
    reception = Reception(5)
    with pytest.raises(ValueError):
        reception.on_packet(0, 1, -1)
    with pytest.raises(ValueError):
        Reception(5, nack_delay_ms=-1)
    assert reception.unwrap_picture(2**62 + 3) == 3  # 15 bits count, far-out values too
    assert reception.unwrap_picture(-(2**62) + 4) == 4
    with pytest.raises(OverflowError):
        reception.unwrap_picture(2**64)


def test_a_tap_is_made_only_by_its_intake(receiver: socket.socket, sender: socket.socket) -> None:
    _side, intake = _intake(receiver, sender)
    tap = intake.tap(print)
    with pytest.raises(TypeError):
        type(tap)()
    with pytest.raises(TypeError):
        tap(b"only the data")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        intake.tap(42)  # type: ignore[arg-type]


# ---- LayerCounts and the fast parsers ------------------------------------------------------------


def test_layer_counts_are_initialised_once_and_refuse_use_before() -> None:
    bare = LayerCounts.__new__(LayerCounts)
    with pytest.raises(RuntimeError, match=NEVER):
        bare.add(0, 0, 0, 100)
    with pytest.raises(RuntimeError, match=NEVER):
        bare.rates(0)
    counts = LayerCounts(2000, 250)
    with pytest.raises(RuntimeError, match="initialised once"):
        counts.__init__(4000, 250)  # type: ignore[misc]


def test_the_fast_parser_takes_only_its_classes_own_slots() -> None:
    """A class borrowing another class's slot descriptor would have its objects written past
    their end."""

    class Borrowing:
        __slots__ = ()

    for name in ("data", "marker", "payload_type", "sequence_number", "timestamp", "ssrc",
                 "csrcs", "extensions", "payload_start", "payload_end"):  # fmt: skip
        setattr(Borrowing, name, getattr(RtpPacket, name))
    with pytest.raises(TypeError, match="not a __slots__ field"):
        _fast.configure_rtp(Borrowing, print)
    assert isinstance(_fast.parse_rtp(packet(1)), RtpPacket)  # still configured as it was
