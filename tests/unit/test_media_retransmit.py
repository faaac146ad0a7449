"""The media shell's answer to a subscriber's NACK: what the retransmission limit refuses takes
no RTX sequence number, so the RTX stream a receiver sees stays continuous."""

from __future__ import annotations

import socket
from collections import Counter
from typing import cast

from confsfu.bandwidth.budget import SubscriberBudget
from confsfu.bandwidth.drain import QueueDrain
from confsfu.bandwidth.retransmit import RetransmitConfig, RetransmitLimiter
from confsfu.forwarding._slot import SlotForwarder
from confsfu.forwarding.subscription import Subscription
from confsfu.rtp.extensions import abs_send_time
from confsfu.server import _wire
from confsfu.server.media_feedback import MediaFeedback
from confsfu.server.media_handles import Slot, Subscriber
from confsfu.server.rtc_adapter import OutgoingStream, RawPeerConnection

from .test_wire import route_to, sessions, video_header, wire_for


class FakePc:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_rtp(self, packet: bytes, *, stamp: bool = True) -> bool:
        self.sent.append(packet)
        return True


class FixedBudget:
    drain = QueueDrain()  # not holding

    def estimate_bps(self, now_ms: int) -> int:
        return 1_000_000


def test_a_refused_resend_takes_no_rtx_number(
    receiver: socket.socket, sender: socket.socket
) -> None:
    tx, _rx = sessions()
    header = video_header()
    pc = FakePc()
    sub = Subscriber(
        participant_id="p",
        pc=cast(RawPeerConnection, pc),
        budget=cast(SubscriberBudget, FixedBudget()),
        retransmits=RetransmitLimiter(RetransmitConfig(min_interval_ms=100)),
    )
    slot = Slot(
        subscriber=sub,
        stream=OutgoingStream(mid="3", kind="video", ssrc=0xCAFE, rtx_ssrc=0xCAFF),
        purpose="grid",
        subscription=Subscription(
            SlotForwarder(is_video=True, clock_rate=90_000, initial_seq=0, initial_ts=0)
        ),
        header=header,
        wire=wire_for(route_to(receiver, sender, tx), header),
        rtx_payload_type=97,
        rtx_seq=65_534,
    )
    assert slot.wire is not None
    for seq in (7, 8, 9):
        assert slot.wire.queue(False, seq, 9, abs_send_time(5), b"frame")
    _wire.flush()
    now = [1000]
    shell = MediaFeedback.__new__(MediaFeedback)  # _retransmit reads only these
    shell._clock_ms = lambda: now[0]
    shell._drops, shell._counters = Counter(), Counter()

    shell._retransmit(sub, slot, (7,))
    now[0] = 1050  # 7 again within its interval: refused; 8 and 9 go
    shell._retransmit(sub, slot, (7, 8, 3000, 9))

    assert shell._drops == {"nack_resent_recently": 1, "nack_not_in_history": 1}
    rtx_numbers = [int.from_bytes(p[2:4], "big") for p in pc.sent]
    originals = [int.from_bytes(p[header.header_bytes :][:2], "big") for p in pc.sent]
    assert originals == [7, 8, 9]
    assert rtx_numbers == [65_535, 0, 1]  # continuous, across the wrap
    assert slot.rtx_sent == 3
