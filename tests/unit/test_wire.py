"""confsfu.server._wire (C): header patch, SRTP protect and batched send, checked by unprotecting
what arrives on a real UDP socket with a second libsrtp session."""

from __future__ import annotations

import gc
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from confsfu.forwarding.outgoing import SlotHeader
from confsfu.rtp import rtcp
from confsfu.rtp.extensions import abs_send_time, parse_sdes_string
from confsfu.rtp.packet import parse_rtp
from confsfu.rtp.rtcp_build import serialize_rtcp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

KEY = bytes(range(30))  # AES_CM_128_HMAC_SHA1_80: 16 bytes of key, 14 of salt


def sessions() -> tuple[Session, Session]:
    tx = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    return tx, rx


def route_to(receiver: socket.socket, sender: socket.socket, tx: Session) -> _wire.Route:
    route = _wire.Route()
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(tx), tx, sender.fileno(), host, port)
    return route


def video_header(ssrc: int = 0xCAFE, mid: str = "3") -> SlotHeader:
    return SlotHeader(ssrc=ssrc, payload_type=96, mid=mid, mid_id=4, abs_send_time_id=2)


def wire_for(route: _wire.Route, header: SlotHeader) -> _wire.Wire:
    return _wire.Wire(route, header.template(), header.abs_send_time_at)


def test_queued_packets_arrive_protected_with_the_slots_header(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    header = video_header()
    wire = wire_for(route, header)
    sent = [(True, 65_535, 2**32 - 1, b"\x90\x80" + bytes(1000)), (False, 0, 7, b"tiny")]
    for marker, seq, ts, payload in sent:
        length = wire.queue(marker, seq, ts, abs_send_time(12_345), payload)
        assert length == header.header_bytes + len(payload)
    assert _wire.pending() == 2
    assert _wire.flush() == 0 and _wire.pending() == 0  # none failed
    for marker, seq, ts, payload in sent:
        data = receiver.recv(2048)
        assert data[12:] != header.build(marker, seq, ts, 12_345, payload)[12:]  # encrypted
        clear = rx.unprotect(data)
        assert clear == header.build(marker, seq, ts, 12_345, payload)
        pkt = parse_rtp(clear)
        assert (pkt.marker, pkt.sequence_number, pkt.timestamp, pkt.ssrc) == (
            marker,
            seq,
            ts,
            0xCAFE,
        )
        assert parse_sdes_string(pkt.extensions[4]) == "3"
        assert pkt.extensions[2] == abs_send_time(12_345)
        assert pkt.payload == payload
    assert (wire.packets, wire.payload_octets) == (2, 1002 + 4)
    assert wire.packet_bytes == 2 * header.header_bytes + 1002 + 4
    assert route.srtp_errors == route.send_errors == 0


def test_an_audio_header_without_send_time_and_numbers_past_their_width(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    header = SlotHeader(ssrc=9, payload_type=111, mid="0", mid_id=4)
    wire = wire_for(route_to(receiver, sender, tx), header)
    # The numbers are taken modulo 2**16 and 2**32, like the header's own fields.
    assert wire.queue(False, 65_536 + 5, 2**32 + 6, b"", b"opus")
    _wire.flush()
    assert rx.unprotect(receiver.recv(2048)) == header.build(False, 5, 6, 0, b"opus")


def test_route_send_protects_rtp_and_rtcp_now(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    packet = video_header().build(False, 1, 2, 3, b"again")
    assert route.send(packet)
    assert rx.unprotect(receiver.recv(2048)) == packet
    report = serialize_rtcp([rtcp.PictureLossIndication(sender_ssrc=1, media_ssrc=2)])
    assert route.send(report, True)
    assert rx.unprotect_rtcp(receiver.recv(2048)) == report


def test_a_dedicated_ssrc_has_its_own_context_on_every_path(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    own_key = bytes(range(100, 130))
    own = Session(policy=Policy(key=own_key, ssrc_type=Policy.SSRC_SPECIFIC, ssrc_value=0xCAFE))
    own_rx = Session(policy=Policy(key=own_key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    route = _wire.Route()
    route.dedicate(0xCAFE, srtp_context(own), own)
    host, port = receiver.getsockname()
    route.clear()  # a new path (ICE pair) keeps the dedicated contexts
    route.over_socket(srtp_context(tx), tx, sender.fileno(), host, port)
    del own
    gc.collect()  # the route keeps the session alive
    assert route.dedicated == 1 and route.sealed == 0
    mine, other = video_header(0xCAFE), video_header(0xBEEF)
    assert wire_for(route, mine).queue(False, 1, 1, abs_send_time(0), b"queued")
    _wire.flush()
    assert own_rx.unprotect(receiver.recv(2048)).endswith(b"queued")
    assert route.send(mine.build(False, 2, 1, 0, b"sent now"))
    assert own_rx.unprotect(receiver.recv(2048)).endswith(b"sent now")
    # Other SSRCs, and RTCP of any SSRC, keep the route's context.
    assert route.send(other.build(False, 1, 1, 0, b"other"))
    assert rx.unprotect(receiver.recv(2048)).endswith(b"other")
    report = serialize_rtcp([rtcp.PictureLossIndication(sender_ssrc=0xCAFE, media_ssrc=2)])
    assert route.send(report, True)
    assert rx.unprotect_rtcp(receiver.recv(2048)) == report
    with pytest.raises(ValueError, match="already"):
        route.dedicate(0xCAFE, srtp_context(tx), tx)
    with pytest.raises(ValueError, match="NULL"):
        route.dedicate(1, 0, tx)
    assert route.srtp_errors == 0


def test_without_a_route_nothing_is_queued_or_sent() -> None:
    route = _wire.Route()
    wire = wire_for(route, video_header())
    assert not route.ready
    assert wire.queue(True, 1, 2, abs_send_time(0), b"x") == 0
    assert not route.send(b"\x80" + bytes(20))
    assert _wire.pending() == 0 and wire.packets == 0


def test_packets_queued_before_the_route_went_away_are_counted_not_sent(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, _rx = sessions()
    route = route_to(receiver, sender, tx)
    wire = wire_for(route, video_header())
    assert wire.queue(True, 1, 2, abs_send_time(0), b"x")
    route.clear()
    assert not route.ready
    assert _wire.flush() == 1  # failed
    assert route.send_errors == 1


def test_a_relayed_route_sends_through_python() -> None:
    tx, rx = sessions()
    got: list[tuple[bytes, Any]] = []
    route = _wire.Route()
    route.over_callable(srtp_context(tx), tx, lambda data, addr: got.append((data, addr)), "relay")
    header = video_header()
    wire = wire_for(route, header)
    assert wire.queue(True, 3, 4, abs_send_time(5), b"turn")
    assert got == []  # nothing leaves before the flush
    _wire.flush()
    assert [addr for _, addr in got] == ["relay"]
    assert rx.unprotect(got[0][0]) == header.build(True, 3, 4, 5, b"turn")


def test_a_failing_relay_send_is_counted_and_the_others_go_on() -> None:
    tx, _rx = sessions()

    def broken(data: bytes, addr: Any) -> None:
        raise OSError("relay gone")

    bad, good = _wire.Route(), _wire.Route()
    got: list[bytes] = []
    bad.over_callable(srtp_context(tx), tx, broken, None)
    good.over_callable(srtp_context(tx), tx, lambda data, addr: got.append(data), None)
    wire_for(bad, video_header(ssrc=1)).queue(False, 1, 1, b"", b"a")
    wire_for(good, video_header(ssrc=2)).queue(False, 1, 1, b"", b"b")
    assert _wire.flush() == 1
    assert bad.send_errors == 1 and len(got) == 1
    assert _wire.flush() == 0  # counted once


def test_failures_of_sends_made_because_the_arena_was_full_are_counted_too() -> None:
    tx, _rx = sessions()

    def broken(data: bytes, addr: Any) -> None:
        raise OSError("no buffer space")

    route = _wire.Route()
    route.over_callable(srtp_context(tx), tx, broken, None)
    wire = wire_for(route, video_header())
    for seq in range(200):
        assert wire.queue(False, seq, 0, b"", b"x")
    assert _wire.pending() < 200  # some went out early
    assert _wire.flush() == 200 and route.send_errors == 200


def test_more_packets_than_the_arena_holds_are_all_sent(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    header = video_header()
    wire = wire_for(route_to(receiver, sender, tx), header)
    for seq in range(300):  # the arena flushes by itself when full
        assert wire.queue(False, seq, seq, abs_send_time(0), seq.to_bytes(2, "big") * 50)
    _wire.flush()
    seqs = [parse_rtp(rx.unprotect(receiver.recv(2048))).sequence_number for _ in range(300)]
    assert seqs == list(range(300))


def test_srtp_refusals_are_counted(receiver: socket.socket, sender: socket.socket) -> None:
    tx, _rx = sessions()
    route = route_to(receiver, sender, tx)
    # libsrtp refuses a packet shorter than an RTP header.
    assert not route.send(b"\x80\x60")
    assert route.srtp_errors == 1


def test_bad_arguments_are_refused_with_clear_errors(sender: socket.socket) -> None:
    tx, _rx = sessions()
    route = _wire.Route()
    with pytest.raises(ValueError, match="not an IP address"):
        route.over_socket(srtp_context(tx), tx, sender.fileno(), "fe80::1%eth0", 5)
    with pytest.raises(ValueError, match="port"):
        route.over_socket(srtp_context(tx), tx, sender.fileno(), "127.0.0.1", 70_000)
    with pytest.raises(OSError):
        route.over_socket(srtp_context(tx), tx, -1, "127.0.0.1", 5)
    with pytest.raises(ValueError, match="NULL"):
        route.over_callable(0, tx, print, None)
    with pytest.raises(TypeError):
        route.over_callable(srtp_context(tx), tx, "not callable", None)
    with pytest.raises(ValueError, match="header"):
        _wire.Wire(route, b"\x80" * 10)
    with pytest.raises(ValueError, match="header"):
        _wire.Wire(route, bytes(16), abs_send_time_at=15)
    with pytest.raises(TypeError):
        _wire.Wire("not a route", bytes(12))  # type: ignore[arg-type]
    wire = _wire.Wire(route, bytes(12))
    with pytest.raises(TypeError):
        wire.queue(True, 1, 2)  # type: ignore[call-arg]
    assert wire.queue(True, 1, 2, b"", bytes(_wire.MAX_PACKET)) == 0  # too large: not sent
    assert wire.oversized == 1
    with pytest.raises(ValueError, match="exceeds"):
        route.send(bytes(_wire.MAX_PACKET + 1))
    assert not route.ready


def test_a_route_dups_its_socket_and_closes_only_its_own(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    route = route_to(receiver, other, tx)
    other.close()  # the ICE agent closing its socket: the route still has its own descriptor
    assert route.send(video_header().build(False, 1, 1, 0, b"after"))
    assert rx.unprotect(receiver.recv(2048)).endswith(b"after")
    route.clear()
    assert sender.fileno() >= 0  # unrelated descriptors are untouched


def test_a_wire_keeps_its_route_and_session_alive(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    wire = wire_for(route_to(receiver, sender, tx), video_header())
    del tx
    gc.collect()
    assert wire.route.ready
    assert wire.queue(False, 1, 1, b"\x00\x00\x00", b"alive")
    _wire.flush()
    assert rx.unprotect(receiver.recv(2048)).endswith(b"alive")


@settings(max_examples=60, deadline=None)
@given(
    marker=st.booleans(),
    seq=st.integers(0, 2**16 - 1),
    ts=st.integers(0, 2**32 - 1),
    send_ms=st.integers(0, 2**40),
    payload=st.binary(min_size=0, max_size=1400),
    ssrc=st.integers(0, 2**32 - 1),
    mid=st.text(alphabet="0123456789abc", min_size=1, max_size=16),
)
def test_any_packet_arrives_as_slot_header_builds_it(
    marker: bool, seq: int, ts: int, send_ms: int, payload: bytes, ssrc: int, mid: str
) -> None:
    tx, rx = sessions()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2.0)
        header = video_header(ssrc=ssrc, mid=mid)
        wire = wire_for(route_to(receiver, sender, tx), header)
        assert wire.queue(marker, seq, ts, abs_send_time(send_ms), payload)
        assert _wire.flush() == 0
        expected = header.build(marker, seq, ts, send_ms, payload)
        assert rx.unprotect(receiver.recv(2048)) == expected


@given(
    packets=st.lists(
        st.tuples(st.binary(min_size=1, max_size=1500), st.booleans()), min_size=1, max_size=8
    ),
    damage=st.integers(0, 2**16),
)
@settings(max_examples=40)
def test_unprotect_gives_back_what_was_protected_and_refuses_anything_else(
    packets: list[tuple[bytes, bool]], damage: int
) -> None:
    tx, rx = sessions()
    address = srtp_context(rx)
    for i, (body, is_rtcp) in enumerate(packets):
        if is_rtcp:  # a receiver report with the body as its profile extension
            clear = serialize_rtcp([rtcp.ReceiverReport(ssrc=7, reports=())]) + body[:600]
            clear = clear[:2] + ((len(clear) + 3) // 4 - 1).to_bytes(2, "big") + clear[4:]
            clear += bytes(-len(clear) % 4)
            protected = tx.protect_rtcp(clear)
        else:
            clear = b"\x80\x60" + i.to_bytes(2, "big") + bytes(8) + body
            protected = tx.protect(clear)
        flipped = bytearray(protected)
        flipped[12 + damage % (len(flipped) - 12)] ^= 0x01
        assert _wire.unprotect(address, bytes(flipped), is_rtcp) is None  # the tag fails
        assert _wire.unprotect(address, protected, is_rtcp) == clear
        assert _wire.unprotect(address, protected, is_rtcp) is None  # replayed


def test_unprotect_refuses_what_it_cannot_hold_and_bad_arguments() -> None:
    _tx, rx = sessions()
    address = srtp_context(rx)
    assert _wire.unprotect(address, b"\x80" * (_wire.MAX_PACKET + 1), False) is None
    for short in (b"", b"\x80", b"\x80" * 11):  # shorter than any header and tag
        assert _wire.unprotect(address, short, False) is None
        assert _wire.unprotect(address, short, True) is None
    with pytest.raises(TypeError):
        _wire.unprotect(address, bytearray(20), False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NULL"):
        _wire.unprotect(0, b"\x80" * 20, False)


def test_no_datagram_exceeds_the_path_budget(
    receiver: socket.socket, sender: socket.socket
) -> None:
    """Issue 19: a 1,500-byte packet would go out as 1,510 or more bytes of SRTP, past what every
    path carries (and past what aiortc's receiver takes). Media that would not fit with SRTP's
    largest tag and an RTX resend's two bytes is dropped and counted; so is an RTX resend or
    padding that would not fit."""
    tx, _ = sessions()
    route = route_to(receiver, sender, tx)
    header = video_header()
    wire = wire_for(route, header)
    fits = _wire.MAX_DATAGRAM - 16 - 2 - header.header_bytes
    assert wire.queue(True, 1, 0, abs_send_time(0), bytes(fits)) > 0
    assert wire.queue(True, 2, 0, abs_send_time(0), bytes(fits + 1)) == 0
    assert wire.queue(True, 3, 0, abs_send_time(0), bytes(1400)) == 0
    _wire.flush()
    assert len(receiver.recv(2048)) <= _wire.MAX_DATAGRAM - 2
    assert wire.oversized == 2 and wire.packets == 1
    resend_fits = _wire.MAX_DATAGRAM - 16 - header.header_bytes
    assert not route.send(header.build(False, 9, 0, 0, bytes(resend_fits + 1)))
    assert route.oversized == 1
    assert route.send(header.build(False, 10, 0, 0, bytes(resend_fits)))
    assert len(receiver.recv(2048)) <= _wire.MAX_DATAGRAM
