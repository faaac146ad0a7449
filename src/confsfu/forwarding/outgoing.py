"""Outgoing RTP for one slot: its own header (SSRC, payload type, extensions), shared payload."""

from __future__ import annotations

import struct

from confsfu.rtp.extensions import abs_send_time

_FIXED = struct.Struct(">BBHII")


class SlotHeader:
    """Builds a slot's packets: the slot's SSRC, payload type, mid and abs-send-time ids.

    One bytearray per slot is patched in place for every packet; the payload is never copied twice.
    """

    __slots__ = ("_abs_send_time_at", "_buf", "_first_byte", "header_bytes", "payload_type", "ssrc")

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        mid: str | None = None,
        mid_id: int | None = None,
        abs_send_time_id: int | None = None,
    ) -> None:
        elements = bytearray()
        self._abs_send_time_at = 0
        if mid_id is not None and mid:
            value = mid.encode("ascii")
            elements += bytes([(mid_id << 4) | (len(value) - 1)]) + value
        if abs_send_time_id is not None:
            self._abs_send_time_at = 12 + 4 + len(elements) + 1
            elements += bytes([(abs_send_time_id << 4) | 2, 0, 0, 0])
        elements += b"\x00" * (-len(elements) % 4)
        if elements:
            ext_header = struct.pack(">HH", 0xBEDE, len(elements) // 4)
            self._first_byte = 0x90
        else:
            ext_header = b""
            self._first_byte = 0x80
        self._buf = bytearray(12) + ext_header + elements
        self.header_bytes = len(self._buf)
        self.ssrc = ssrc
        self.payload_type = payload_type

    def build(
        self, marker: bool, sequence_number: int, timestamp: int, now_ms: int, payload: bytes
    ) -> bytes:
        """The whole packet: this slot's header, then `payload` as it is."""
        buf = self._buf
        _FIXED.pack_into(
            buf,
            0,
            self._first_byte,
            (0x80 if marker else 0) | self.payload_type,
            sequence_number,
            timestamp,
            self.ssrc,
        )
        if self._abs_send_time_at:
            at = self._abs_send_time_at
            buf[at : at + 3] = abs_send_time(now_ms)
        return b"".join((buf, payload))

    def rtx(
        self, original: bytes, *, rtx_ssrc: int, rtx_payload_type: int, rtx_seq: int, now_ms: int
    ) -> bytes:
        """A retransmission of `original` (built by this header) with a fresh abs-send-time.

        A receiver's delay-based estimate reads the send time of every packet: an old one on a
        retransmission would look like queueing delay.
        """
        out = build_rtx(
            original,
            header_bytes=self.header_bytes,
            rtx_ssrc=rtx_ssrc,
            rtx_payload_type=rtx_payload_type,
            rtx_seq=rtx_seq,
        )
        if not self._abs_send_time_at:
            return out
        patched = bytearray(out)
        at = self._abs_send_time_at
        patched[at : at + 3] = abs_send_time(now_ms)
        return bytes(patched)


def build_rtx(
    original: bytes, *, header_bytes: int, rtx_ssrc: int, rtx_payload_type: int, rtx_seq: int
) -> bytes:
    """RFC 4588 retransmission of a packet this slot sent: own SSRC/PT/seq, original seq first."""
    out = bytearray(original[:header_bytes])
    out[1] = (out[1] & 0x80) | rtx_payload_type
    struct.pack_into(">H", out, 2, rtx_seq)
    struct.pack_into(">I", out, 8, rtx_ssrc)
    out += original[2:4]  # the original sequence number
    out += original[header_bytes:]
    return bytes(out)
