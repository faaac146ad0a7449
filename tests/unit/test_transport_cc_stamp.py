"""Transport-wide sequence numbers (transport-cc): the route stamps every RTP packet that carries
the extension, media, RTX and padding alike, and logs when it went out and its size; a resend
without RTX keeps its number. Checked by unprotecting what arrives on a real UDP socket."""

from __future__ import annotations

import socket
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from confsfu.forwarding.outgoing import SlotHeader, build_padding, transport_cc_at
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire
from confsfu.server.srtp_contexts import srtp_context

KEY = bytes(range(30))
TCC = 5


def sessions() -> tuple[Session, Session]:
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as the server keys it: the route's guard is what refuses
    tx = Session(policy=policy)
    rx = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    return tx, rx


def route_to(receiver: socket.socket, sender: socket.socket, tx: Session) -> _wire.Route:
    route = _wire.Route()
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(tx), tx, sender.fileno(), host, port)
    route.transport_cc_id = TCC
    return route


def header(ssrc: int) -> SlotHeader:
    return SlotHeader(
        ssrc=ssrc, payload_type=96, mid="1", mid_id=4, abs_send_time_id=2, transport_cc_id=TCC
    )


def transport_seq(packet: bytes) -> int:
    at = transport_cc_at(packet, TCC)
    assert at, "no transport-cc element"
    return int.from_bytes(packet[at : at + 2], "big")


def test_every_packet_of_every_slot_gets_the_next_number_and_its_send_is_logged(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    video, audio = header(0xA1), header(0xB2)
    wires = [_wire.Wire(route, h.template(), h.abs_send_time_at) for h in (video, audio)]
    before_us = time.monotonic_ns() // 1000
    sizes = []
    for i in range(10):
        wire = wires[i % 2]
        sizes.append(wire.queue(False, 100 + i, 9_000 * i, abs_send_time(i), bytes(50 + i)))
    # A retransmission and a padding packet, built in Python, go through route.send.
    original = video.packet(False, 100, 0, abs_send_time(0), bytes(50))
    rtx = video.rtx(original, rtx_ssrc=0xC3, rtx_payload_type=97, rtx_seq=1, now_ms=1)
    pad = build_padding(video, rtx_ssrc=0xC3, rtx_payload_type=97, rtx_seq=2, timestamp=0,
                        now_ms=1)  # fmt: skip
    _wire.flush()
    assert route.send(rtx) and route.send(pad)
    after_us = time.monotonic_ns() // 1000
    arrived = [transport_seq(rx.unprotect(receiver.recv(2048))) for _ in range(12)]
    assert arrived == list(range(12))  # unique and increasing, media, RTX and padding alike
    assert route.stamped == 12
    log = route.transport_sent(list(range(13)))
    assert log[12] is None  # never sent
    assert [size for _, size in log[:10]] == sizes  # type: ignore[misc]
    assert log[10] == (log[10][0], len(rtx)) and log[11] == (log[11][0], len(pad))  # type: ignore[index]
    times = [t for t, _ in log[:12]]  # type: ignore[misc]
    assert times == sorted(times) and before_us <= times[0] and times[-1] <= after_us


def test_a_resend_without_rtx_keeps_its_number_and_its_bytes(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    video = header(0xA1)
    wire = _wire.Wire(route, video.template(), video.abs_send_time_at)
    route.dedicate(0xA1, srtp_context(tx), tx)  # the index-reuse guard: same bytes or nothing
    for seq in (7, 8):
        wire.queue(False, seq, 0, abs_send_time(0), b"frame %d" % seq)
    _wire.flush()
    raw = [receiver.recv(2048) for _ in range(2)]
    first = [rx.unprotect(r) for r in raw]
    assert not route.send(video.packet(False, 7, 1, abs_send_time(0), b"other"), False, False)
    number = wire.transport_seq(7)
    assert number == transport_seq(first[0]) == 0 and wire.transport_seq(8) == 1
    marker, ts, payload, send_time = wire.sent(7)  # type: ignore[misc]
    again = bytearray(video.packet(marker, 7, ts, send_time, payload))
    again[video.transport_cc_at : video.transport_cc_at + 2] = number.to_bytes(2, "big")
    assert route.send(bytes(again), False, False)
    assert receiver.recv(2048) == raw[0]  # the same datagram (a receiver takes it as a replay)
    assert route.repeats == 1 and route.stamped == 2  # only the other bytes were refused


def test_a_route_without_transport_cc_leaves_packets_alone(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, rx = sessions()
    route = route_to(receiver, sender, tx)
    route.transport_cc_id = 0
    packet = header(0xA1).packet(False, 1, 2, abs_send_time(3), b"x")
    assert route.send(packet)
    assert rx.unprotect(receiver.recv(2048)) == packet and route.stamped == 0
    assert route.transport_sent([0]) == [None]


elements = st.lists(
    st.one_of(
        st.just(b"\x00"),  # padding
        st.tuples(st.integers(1, 15), st.binary(min_size=1, max_size=16)).map(
            lambda e: bytes([(e[0] << 4) | (len(e[1]) - 1)]) + e[1]
        ),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(blocks=elements, csrcs=st.integers(0, 3), cut=st.integers(0, 8), junk=st.binary(max_size=4))
def test_the_route_stamps_where_the_python_scan_says(
    blocks: list[bytes], csrcs: int, cut: int, junk: bytes
) -> None:
    """The C scan (whatever the extension block holds, cut short or not) and the Python one
    agree: the bytes that change are exactly the two the Python scan names."""
    body = b"".join(blocks)
    body += bytes(-len(body) % 4)
    ext = b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body
    packet = bytearray(build_rtp(payload_type=96, sequence_number=1, timestamp=2, ssrc=3,
                                 payload=b""))  # fmt: skip
    packet[0] = 0x90 | csrcs
    packet += bytes(4 * csrcs) + ext + junk
    if cut:
        packet = packet[: max(12, len(packet) - cut)]
    tx, rx = sessions()
    a, b = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    try:
        a.bind(("127.0.0.1", 0))
        route = route_to(a, b, tx)
        route.transport_cc_id = TCC
        route.max_datagram = 2000
        if not route.send(bytes(packet)):  # libsrtp refuses a header cut short
            assert route.stamped == 0 and route.transport_sent([0]) == [None]
            return
        out = rx.unprotect(a.recv(4096))
    finally:
        a.close()
        b.close()
    at = transport_cc_at(packet, TCC)
    changed = [i for i in range(len(packet)) if out[i] != packet[i]]
    expected_seq = 0
    if at:
        assert out[at : at + 2] == expected_seq.to_bytes(2, "big")
        assert all(i in (at, at + 1) for i in changed)
        assert route.stamped == 1
    else:
        assert changed == [] and route.stamped == 0
