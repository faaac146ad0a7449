"""The intake's relay (C): each taken packet of a layer another worker needs, as it arrived or its
RTX unwrapped, before the fan-out; fed to a second intake (the other worker's), the same packets
reach its slots as reach the first one's."""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire

from .test_intake import (
    FIXED,
    KEYS,
    RTX,
    RTX_PT,
    VIDEO,
    Side,
    audio,
    make_intake,
    make_slots,
    packet,
    raw,
    video,
)
from .test_wire import route_to, sessions


def relaying(receiver: socket.socket, sender: socket.socket) -> tuple[_wire.Intake, list[bytes]]:
    side = Side(make_slots(route_to(receiver, sender, sessions()[0]), 10))
    intake = make_intake(side, lambda data, now: None)
    relayed: list[bytes] = []
    intake.relay = {KEYS[VIDEO]: relayed.append}
    return intake, relayed


def test_a_needed_layer_is_relayed_as_it_arrived(
    receiver: socket.socket, sender: socket.socket
) -> None:
    intake, relayed = relaying(receiver, sender)
    first = video(100, 5, 0, True)
    intake.receive(first, 1000)
    intake.receive(first, 1001)  # a duplicate: not again
    intake.receive(audio(7, 30), 1002)  # a layer nobody needs elsewhere
    padded = video(101, 6, 0, False, padding=5)
    intake.receive(padded, 1003)
    _wire.flush()
    assert relayed[0] == first
    unpadded = parse_rtp(relayed[1])
    assert (unpadded.sequence_number, unpadded.payload) == (101, parse_rtp(padded).payload)
    assert not relayed[1][0] & 0x20 and len(relayed) == 2


def test_rtx_is_relayed_unwrapped(receiver: socket.socket, sender: socket.socket) -> None:
    intake, relayed = relaying(receiver, sender)
    intake.receive(video(200, 1, 0, True), 1000)
    original = parse_rtp(video(202, 3, 0, False))
    repair = build_rtp(
        payload_type=RTX_PT,
        sequence_number=9,
        timestamp=original.timestamp,
        ssrc=RTX,
        payload=original.data[2:4] + original.payload,
        marker=original.marker,
    )
    intake.receive(repair, 1001)
    assert len(relayed) == 2
    got = parse_rtp(relayed[1])
    assert (got.ssrc, got.sequence_number, got.timestamp) == (VIDEO, 202, original.timestamp)
    assert (got.payload, got.marker) == (original.payload, original.marker)


def test_the_relayed_fan_out_is_not_empty(receiver: socket.socket, sender: socket.socket) -> None:
    route = route_to(receiver, sender, sessions()[0])
    here, there = Side(make_slots(route, 10)), Side(make_slots(route, 20))
    relayed: list[bytes] = []
    source = make_intake(here, lambda data, now: None)
    source.relay = {KEYS[VIDEO]: relayed.append}
    other = make_intake(there, lambda data, now: None)
    for seq in range(5):
        source.receive(video(300 + seq, seq, 0, seq == 0), 1000 + seq)
    for data in relayed:
        other.receive(data, 2000)
    _wire.flush()
    sent = [s.wire.packets for s in there.slots[KEYS[VIDEO]]]
    assert sent == [s.wire.packets for s in here.slots[KEYS[VIDEO]]] and min(sent) == 5


def test_a_chair_muted_layer_is_not_relayed(receiver: socket.socket, sender: socket.socket) -> None:
    intake, relayed = relaying(receiver, sender)
    intake.gate_video = False
    intake.receive(video(100, 5, 0, True), 1000)
    intake.relay = None
    intake.gate_video = True
    intake.receive(video(101, 6, 0, False), 1001)
    assert relayed == []


@settings(max_examples=40, **FIXED)
@given(items=st.lists(packet, min_size=1, max_size=50), base=st.integers(0, 65_535))
def test_relayed_packets_reach_the_other_side_s_slots_alike(
    receiver: socket.socket, sender: socket.socket, items: list[tuple[Any, ...]], base: int
) -> None:
    """A publisher's intake (here) relays every layer to another intake (the other worker's):
    their slots send the same packets."""
    route = route_to(receiver, sender, sessions()[0])
    receiver.setblocking(False)
    here, there = Side(make_slots(route, 10)), Side(make_slots(route, 20))
    relayed: list[bytes] = []
    source = make_intake(here, lambda data, now: None)
    source.relay = {key: relayed.append for key in KEYS.values()}
    # The other worker's intake learns each SSRC as its slow path would (here: known at once).
    other = make_intake(there, lambda data, now: None)
    for now, item in enumerate(items, start=5000):
        source.receive(raw(item, base), now)
        for data in relayed:
            other.receive(data, now)
        relayed.clear()
        _wire.flush()
        while True:
            try:
                receiver.recv(2048)
            except BlockingIOError:
                break
    for key in KEYS.values():
        for mine, theirs in zip(there.slots[key], here.slots[key], strict=True):
            assert mine.forwarder.last_seq == theirs.forwarder.last_seq
            assert mine.wire.packets == theirs.wire.packets
            for seq in range(theirs.forwarder.last_seq - 60, theirs.forwarder.last_seq + 1):
                assert mine.wire.sent(seq % 65536) == theirs.wire.sent(seq % 65536)
