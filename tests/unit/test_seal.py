"""confsfu.server._wire.Sealer (C, AES-GCM SRTP through OpenSSL) and confsfu.server.srtp_keys: byte
for byte what libsrtp (pylibsrtp, as aiortc keys it) protects, on every sequence of numbers."""

from __future__ import annotations

import socket

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from confsfu.forwarding._slot import SlotForwarder
from confsfu.forwarding.outgoing import SlotHeader
from confsfu.forwarding.subscription import Subscription
from confsfu.rtp.extensions import abs_send_time
from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire
from confsfu.server.media_handles import Slot
from confsfu.server.rtc_adapter import OutgoingStream
from confsfu.server.srtp_contexts import srtp_context
from confsfu.server.srtp_keys import derive, gcm_rtp_keys

GCM_PROFILES = {
    16: Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    32: Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def libsrtp_sender(master: bytes, ssrc: int | None = None) -> Session:
    """A sending session keyed like aiortc's (repeats allowed, window 1024)."""
    policy = Policy(
        key=master,
        ssrc_type=Policy.SSRC_ANY_OUTBOUND if ssrc is None else Policy.SSRC_SPECIFIC,
        ssrc_value=ssrc or 0,
        srtp_profile=GCM_PROFILES[len(master) - 12],
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def sealer_for(master: bytes) -> _wire.Sealer:
    keys = gcm_rtp_keys(master[:-12], master[-12:])
    return _wire.Sealer(keys.key, keys.salt)


def test_the_key_derivation_gives_rfc_3711s_test_vectors() -> None:
    # RFC 3711 appendix B.3
    key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert derive(key, salt, 0x00, 16) == bytes.fromhex("C61E7A93744F39EE10734AFE3FF7A087")
    assert derive(key, salt, 0x02, 14) == bytes.fromhex("30CBBC08863D8C85D49DB34A9AE1")


def test_the_key_derivation_refuses_what_is_not_a_master_key() -> None:
    with pytest.raises(ValueError, match="master key"):
        derive(bytes(15), bytes(14), 0, 16)
    with pytest.raises(ValueError, match="salt"):
        derive(bytes(16), bytes(15), 0, 16)
    with pytest.raises(ValueError, match="label"):
        derive(bytes(16), bytes(14), 256, 16)
    with pytest.raises(ValueError, match="12 bytes"):
        gcm_rtp_keys(bytes(16), bytes(14))


packet_numbers = st.lists(
    st.one_of(
        st.integers(1, 3),  # the usual next packets
        st.integers(-1100, 1100),  # retransmissions, gaps, and packets too old to protect
        st.sampled_from([32_767, 32_768, 32_769, -32_767, -32_768, 65_535]),  # ambiguous jumps
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    key_bytes=st.sampled_from(sorted(GCM_PROFILES)),
    master=st.binary(min_size=44, max_size=44),
    ssrc=st.integers(0, 2**32 - 1),
    first=st.integers(0, 65_535),
    steps=packet_numbers,
    payload=st.binary(max_size=300),
    extensions=st.sampled_from([None, {2: b"\x01\x02\x03"}, {4: b"3", 10: b"q"}]),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=3),
)
def test_a_sealer_protects_exactly_as_libsrtp(
    key_bytes: int,
    master: bytes,
    ssrc: int,
    first: int,
    steps: list[int],
    payload: bytes,
    extensions: dict[int, bytes] | None,
    csrcs: list[int],
) -> None:
    master = master[: key_bytes + 12]
    reference, sealer = libsrtp_sender(master), sealer_for(master)
    seq = first
    refused = repeats = 0
    highest, sent = 0, dict[int, bytes]()  # what the sealer must remember: index -> packet
    for i, step in enumerate([0, *steps]):
        seq = (seq + step) % 65_536
        packet = build_rtp(
            payload_type=96,
            sequence_number=seq,
            timestamp=i % 3,  # a packet sent again is sometimes the same, sometimes not
            ssrc=ssrc,
            payload=payload,
            extensions=extensions,
            csrcs=csrcs,
        )
        try:
            expected: bytes | None = reference.protect(packet)  # repeats allowed
        except pylibsrtp.Error:
            expected = None
            refused += 1
        if expected is not None:
            index = srtp_index(highest, seq)
            if sent.setdefault(index, packet) != packet:
                expected = None  # the same index for different bytes: refused
                refused += 1
                repeats += 1
            highest = max(highest, index)
        assert sealer.seal(packet) == expected, f"packet {i}, sequence number {seq}"
    assert (sealer.refused, sealer.repeats) == (refused, repeats)


def srtp_index(highest: int, seq: int) -> int:
    """RFC 3711 3.3.1's index estimate, as libsrtp makes it (the ROC is 0 near the start)."""
    if highest <= 32_768:
        return seq
    roc, local = highest >> 16, highest & 0xFFFF
    if local < 32_768 and seq - local > 32_768:
        roc -= 1
    elif local >= 32_768 and local - 32_768 > seq:
        roc += 1
    return roc << 16 | seq


def test_an_index_never_protects_two_different_packets() -> None:
    sealer = sealer_for(bytes(range(28)))
    first = build_rtp(payload_type=96, sequence_number=9, timestamp=0, ssrc=5, payload=b"one")
    other = build_rtp(payload_type=96, sequence_number=9, timestamp=0, ssrc=5, payload=b"two")
    protected = sealer.seal(first)
    assert protected is not None
    assert sealer.seal(first) == protected  # a packet resent as it was: the same bytes
    assert sealer.seal(other) is None  # another packet with index 9: refused
    assert (sealer.refused, sealer.repeats) == (1, 1)
    # Far ahead, then back: the window forgets nothing it still accepts.
    later = build_rtp(payload_type=96, sequence_number=1000, timestamp=0, ssrc=5, payload=b"x")
    assert sealer.seal(later) is not None
    assert sealer.seal(other) is None
    assert sealer.seal(first) == protected


def test_a_sealer_refuses_what_is_not_rtp() -> None:
    sealer = sealer_for(bytes(28))
    good = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=5, payload=b"x")
    assert sealer.seal(good) is not None
    assert sealer.seal(b"") is None
    assert sealer.seal(bytes(11)) is None  # too short
    assert sealer.seal(b"\x40" + good[1:]) is None  # version 1
    assert sealer.seal(b"\x8f" + good[1:]) is None  # 15 CSRCs announced, none there
    cut = build_rtp(
        payload_type=96, sequence_number=2, timestamp=0, ssrc=5, payload=b"", extensions={2: b"a"}
    )
    assert sealer.seal(cut[:14]) is None  # the extension header is cut
    assert sealer.seal(cut[:-4]) is None  # the extension's words are cut
    assert sealer.refused == 6
    with pytest.raises(ValueError, match="exceeds"):
        sealer.seal(bytes(2049))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_a_sealer_answers_any_bytes_with_a_packet_or_none(data: bytes) -> None:
    sealed = sealer_for(bytes(28)).seal(data)
    assert sealed is None or (len(sealed) == len(data) + 16 and sealed[:12] == data[:12])


def test_a_sealer_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="16- or 32-byte key"):
        _wire.Sealer(bytes(24), bytes(12))
    with pytest.raises(ValueError, match="12-byte salt"):
        _wire.Sealer(bytes(16), bytes(14))
    with pytest.raises(RuntimeError, match="never initialised"):
        _wire.Sealer.__new__(_wire.Sealer).seal(b"")
    assert _wire.sealing_available()


def test_a_route_seals_its_ssrcs_with_one_sealer_on_every_path(
    receiver: socket.socket, sender: socket.socket
) -> None:
    master = bytes(range(44))
    sealer = sealer_for(master)
    inbound = Policy(key=master, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=GCM_PROFILES[32])
    receiving = Session(inbound)
    route_session = libsrtp_sender(master)
    route = _wire.Route()
    route.seal(0xCAFE, sealer)
    route.seal(0xBEEF, sealer)  # one sealer, each SSRC its own packet index
    route.clear()  # a new path keeps the sealer
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(route_session), route_session, sender.fileno(), host, port)
    header = SlotHeader(ssrc=0xCAFE, payload_type=96, mid="3", mid_id=4, abs_send_time_id=2)
    other = SlotHeader(ssrc=0xBEEF, payload_type=111, mid="0", mid_id=4)
    wire = _wire.Wire(route, header.template(), header.abs_send_time_at)
    assert wire.queue(True, 40_007, 9, abs_send_time(5), b"queued")
    _wire.flush()
    assert receiving.unprotect(receiver.recv(2048)) == header.build(True, 40_007, 9, 5, b"queued")
    assert route.send(header.build(False, 40_008, 9, 5, b"sent now"))
    assert receiving.unprotect(receiver.recv(2048)).endswith(b"sent now")
    assert route.send(other.build(False, 38_000, 1, 0, b"another stream"))  # not "too old"
    assert receiving.unprotect(receiver.recv(2048)).endswith(b"another stream")
    assert route.dedicated == route.sealed == 2
    with pytest.raises(ValueError, match="already"):
        route.seal(0xCAFE, sealer)
    with pytest.raises(TypeError):
        route.seal(1, object())  # type: ignore[arg-type]
    # A packet the sealer refuses is counted as the route's SRTP error and not sent.
    assert not route.send(header.build(False, 40_008 - 2000, 9, 5, b"too old"))
    assert route.srtp_errors == 1 and sealer.refused == 1


def libsrtp_receiver(master: bytes) -> Session:
    """A receiving session keyed like aiortc's (window 1024)."""
    policy = Policy(
        key=master, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=GCM_PROFILES[len(master) - 12]
    )
    policy.window_size = 1024
    return Session(policy)


def opener_for(master: bytes) -> _wire.Opener:
    keys = gcm_rtp_keys(master[:-12], master[-12:])
    return _wire.Opener(keys.key, keys.salt)


arrivals = st.lists(
    st.tuples(
        st.sampled_from(["next", "next", "next", "again", "forged"]),
        st.integers(0, 1),  # which of two streams
        st.one_of(
            st.integers(-3, 3),
            st.integers(-1100, 1100),
            st.sampled_from([32_768, 40_000, 1_022, 1_023, 1_024, 1_025, -1_023, -1_024, -1_025]),
        ),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(
    key_bytes=st.sampled_from(sorted(GCM_PROFILES)),
    master=st.binary(min_size=44, max_size=44),
    firsts=st.tuples(st.integers(0, 65_535), st.integers(0, 65_535)),
    events=arrivals,
    payload=st.binary(max_size=100),
)
def test_an_opener_accepts_and_refuses_exactly_as_libsrtp(
    key_bytes: int,
    master: bytes,
    firsts: tuple[int, int],
    events: list[tuple[str, int, int]],
    payload: bytes,
) -> None:
    """Packets in order, out of order, lost, replayed, forged, too old, across the wrap."""
    open_as_libsrtp(master[: key_bytes + 12], firsts, events, payload)


def test_an_opener_forgets_what_left_its_window() -> None:
    # 1023 ahead, 2 more (index X + 1024 skipped: its bit is X's), then X + 1024 arrives late.
    events = [("next", 0, 0), ("next", 0, 1023), ("next", 0, 2), ("next", 0, -1), ("again", 0, 0)]
    open_as_libsrtp(bytes(28), (5, 0), events, b"late")


def open_as_libsrtp(
    master: bytes, firsts: tuple[int, int], events: list[tuple[str, int, int]], payload: bytes
) -> None:
    """Send `events` to an Opener and to libsrtp: (what happens, which stream, a step) where
    the next packet of the stream is `step` numbers on, or `step` picks a packet sent before
    to arrive again or forged."""
    sending, reference, opener = (
        libsrtp_sender(master),
        libsrtp_receiver(master),
        opener_for(master),
    )
    seqs = list(firsts)
    sent: list[bytes] = []
    refused = 0
    for kind, stream, step in events:
        if kind == "next" or not sent:
            seqs[stream] = (seqs[stream] + step) % 65_536
            packet = build_rtp(
                payload_type=96,
                sequence_number=seqs[stream],
                timestamp=len(sent),
                ssrc=1000 + stream,
                payload=payload,
                extensions={2: b"\x01\x02\x03"} if stream else None,
            )
            try:
                data = sending.protect(packet)
            except pylibsrtp.Error:
                continue  # too old for the sender too
            sent.append(data)
        elif kind == "again":
            data = sent[step % len(sent)]
        else:
            original = sent[step % len(sent)]
            at = abs(step) % len(original)
            data = original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1 :]
        try:
            expected: bytes | None = reference.unprotect(data)
        except pylibsrtp.Error:
            expected = None
            refused += 1
        assert opener.open(data) == expected
    assert opener.refused == refused


def test_an_opener_refuses_what_is_not_srtp() -> None:
    master = bytes(range(28))
    opener = opener_for(master)
    packet = libsrtp_sender(master).protect(
        build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=5, payload=b"x")
    )
    for bad in (b"", bytes(27), b"\x40" + packet[1:], packet[:-1], packet[:12] + packet[13:]):
        assert opener.open(bad) is None
    assert opener.refused == 5 and opener.streams == 0  # no stream before one authenticates
    assert opener.open(packet) is not None and opener.streams == 1
    with pytest.raises(TypeError):
        opener.open(bytearray(packet))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="never initialised"):
        _wire.Opener.__new__(_wire.Opener).open(packet)
    with pytest.raises(ValueError, match="12-byte salt"):
        _wire.Opener(bytes(16), bytes(14))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_an_opener_answers_any_bytes_with_none(data: bytes) -> None:
    assert opener_for(bytes(28)).open(data) is None  # nobody can forge the tag


def test_an_opener_keeps_at_most_256_streams() -> None:
    master = bytes(range(28))
    sending, opener = libsrtp_sender(master), opener_for(master)
    for ssrc in range(257):
        packet = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=ssrc, payload=b"")
        assert (opener.open(sending.protect(packet)) is None) == (ssrc == 256)
    assert opener.streams == 256


def test_a_packet_resent_without_rtx_is_the_same_srtp_packet(
    receiver: socket.socket, sender: socket.socket
) -> None:
    """The same sequence number means the same AES-GCM IV: sent again, the packet must be the
    same bytes (its first send time kept), or two packets would share an IV. With RTX the copy
    has its own sequence number, and a fresh send time."""
    master = bytes(range(44))
    route_session = libsrtp_sender(master)
    route = _wire.Route()
    route.seal(0xCAFE, sealer_for(master))
    route.seal(0xCAFF, sealer_for(master))
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(route_session), route_session, sender.fileno(), host, port)
    header = SlotHeader(ssrc=0xCAFE, payload_type=96, mid="3", mid_id=4, abs_send_time_id=2)
    slot = Slot(
        subscriber=None,  # type: ignore[arg-type]  # resend reads none of it
        stream=OutgoingStream(mid="3", kind="video", ssrc=0xCAFE, rtx_ssrc=0xCAFF),
        purpose="grid",
        subscription=Subscription(
            SlotForwarder(is_video=True, clock_rate=90_000, initial_seq=0, initial_ts=0)
        ),
        header=header,
        wire=_wire.Wire(route, header.template(), header.abs_send_time_at),
    )
    assert slot.wire is not None and slot.wire.queue(True, 7, 9, abs_send_time(5), b"frame")
    _wire.flush()
    first = receiver.recv(2048)
    resent = slot.resend(7, now_ms=900)
    assert resent is not None and route.send(resent)
    assert receiver.recv(2048) == first
    slot.rtx_payload_type = 97
    rtx = slot.resend(7, now_ms=900)
    assert rtx is not None and rtx[8:12] == (0xCAFF).to_bytes(4, "big")
    assert rtx[header.abs_send_time_at :][:3] == abs_send_time(900)


@pytest.mark.parametrize("profile", ["aes-cm", "gcm"])
def test_a_route_never_protects_two_packets_with_one_index(
    receiver: socket.socket, sender: socket.socket, profile: str
) -> None:
    master = bytes(range(44))
    route = _wire.Route()
    if profile == "gcm":
        route.seal(0xCAFE, sealer_for(master))
    else:
        policy = Policy(
            key=master[:30],
            ssrc_type=Policy.SSRC_SPECIFIC,
            ssrc_value=0xCAFE,
            srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        policy.allow_repeat_tx = True  # as the server keys it: the route is what refuses
        dedicated = Session(policy)
        route.dedicate(0xCAFE, srtp_context(dedicated), dedicated)
    route_session = libsrtp_sender(master)
    host, port = receiver.getsockname()
    route.over_socket(srtp_context(route_session), route_session, sender.fileno(), host, port)
    header = SlotHeader(ssrc=0xCAFE, payload_type=96, mid="3", mid_id=4)
    assert route.send(header.build(False, 500, 9, 0, b"first"))
    first = receiver.recv(2048)
    assert route.send(header.build(False, 501, 9, 0, b"second"))
    receiver.recv(2048)
    assert route.send(header.build(False, 500, 9, 0, b"first"))  # resent as it was
    assert receiver.recv(2048) == first
    assert not route.send(header.build(False, 500, 9, 0, b"forged"))
    assert not route.send(header.build(False, 501, 10, 0, b"second"))  # another timestamp
    assert route.repeats == route.srtp_errors == 2
