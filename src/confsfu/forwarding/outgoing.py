"""Outgoing RTP for one slot: its own header (SSRC, payload type, extensions), shared payload."""

from __future__ import annotations

import struct

from confsfu.rtp.extensions import abs_send_time


class SlotHeader:
    """Writes a slot's packets: the slot's SSRC, payload type, mid, abs-send-time and room for
    a transport-wide sequence number (written by the route as the packet goes out).

    `write` puts header and payload into a caller's buffer with one struct call and one copy;
    the header is everything but seq, timestamp, marker and the abs-send-time value.
    """

    __slots__ = (
        "_abs_send_time_at",
        "_first_byte",
        "_pack",
        "_prefix",
        "_second_byte",
        "_suffix",
        "_transport_cc_at",
        "header_bytes",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        mid: str | None = None,
        mid_id: int | None = None,
        abs_send_time_id: int | None = None,
        transport_cc_id: int | None = None,
    ) -> None:
        elements = bytearray()
        if mid_id is not None and mid:
            value = mid.encode("ascii")
            elements += bytes([(mid_id << 4) | (len(value) - 1)]) + value
        transport_cc_at = 0
        if transport_cc_id is not None:
            transport_cc_at = 12 + 4 + len(elements) + 1
            elements += bytes([(transport_cc_id << 4) | 1, 0, 0])
        abs_bytes = 0
        if abs_send_time_id is not None:
            elements += bytes([(abs_send_time_id << 4) | 2])
            abs_bytes = 3  # the value itself is written per packet
        suffix = b"\x00" * (-(len(elements) + abs_bytes) % 4)
        if elements:
            words = (len(elements) + abs_bytes + len(suffix)) // 4
            self._prefix = struct.pack(">HH", 0xBEDE, words) + bytes(elements)
            self._first_byte = 0x90
        else:
            self._prefix = b""
            self._first_byte = 0x80
        self._suffix = suffix
        self._abs_send_time_at = 12 + len(self._prefix) if abs_bytes else 0
        self._transport_cc_at = transport_cc_at
        self._pack = struct.Struct(
            f">BBHII{len(self._prefix)}s{abs_bytes}s{len(suffix)}s"
        ).pack_into
        self.header_bytes = 12 + len(self._prefix) + abs_bytes + len(suffix)
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._second_byte = (payload_type, 0x80 | payload_type)  # by marker

    def write(
        self,
        buf: bytearray,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        send_time: bytes,
        payload: bytes,
    ) -> int:
        """Write the packet at the start of `buf`; its length. `send_time` is the 3-byte
        abs-send-time value (ignored when the slot has no abs-send-time extension)."""
        self._pack(
            buf,
            0,
            self._first_byte,
            self._second_byte[marker],
            sequence_number,
            timestamp,
            self.ssrc,
            self._prefix,
            send_time,
            self._suffix,
        )
        end = self.header_bytes + len(payload)
        buf[self.header_bytes : end] = payload
        return end

    @property
    def abs_send_time_at(self) -> int:
        """Where the 3-byte abs-send-time value goes in the header, or 0 without one."""
        return self._abs_send_time_at

    @property
    def transport_cc_at(self) -> int:
        """Where the 2-byte transport-wide sequence number goes in the header, or 0."""
        return self._transport_cc_at

    def template(self) -> bytes:
        """The header with marker, sequence number, timestamp and send time zero: what a
        `confsfu.server._wire.Wire` patches per packet."""
        buf = bytearray(self.header_bytes)
        self.write(buf, False, 0, 0, b"\x00\x00\x00", b"")
        return bytes(buf)

    def build(
        self, marker: bool, sequence_number: int, timestamp: int, now_ms: int, payload: bytes
    ) -> bytes:
        """The whole packet as bytes: this slot's header, then `payload` as it is."""
        return self.packet(marker, sequence_number, timestamp, abs_send_time(now_ms), payload)

    def packet(
        self, marker: bool, sequence_number: int, timestamp: int, send_time: bytes, payload: bytes
    ) -> bytes:
        """`build` with the 3-byte abs-send-time value as it is."""
        buf = bytearray(self.header_bytes + len(payload))
        self.write(buf, marker, sequence_number, timestamp, send_time, payload)
        return bytes(buf)

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


def transport_cc_at(packet: bytes | bytearray, ext_id: int) -> int:
    """Where the 2-byte value of extension element `ext_id` starts in an RTP packet with a
    one-byte-header extension block, or 0 (none, or not 2 bytes): the route's scan (C,
    server/_route.c), which stamps transport-wide sequence numbers there."""
    if len(packet) < 12 or not packet[0] & 0x10:
        return 0
    at = 12 + 4 * (packet[0] & 0x0F)
    if at + 4 > len(packet) or packet[at : at + 2] != b"\xbe\xde":
        return 0
    end = at + 4 + 4 * int.from_bytes(packet[at + 2 : at + 4], "big")
    if end > len(packet):
        return 0
    pos = at + 4
    while pos < end:
        byte = packet[pos]
        if byte == 0:  # padding between elements
            pos += 1
            continue
        element_id, length = byte >> 4, (byte & 0x0F) + 1
        if element_id == 15 or pos + 1 + length > end:
            return 0
        if element_id == ext_id:
            return pos + 1 if length == 2 else 0
        pos += 1 + length
    return 0


MAX_PADDING = 255  # bytes of RTP padding one packet can carry (its count is one byte)


def build_padding(
    header: SlotHeader,
    *,
    rtx_ssrc: int,
    rtx_payload_type: int,
    rtx_seq: int,
    timestamp: int,
    now_ms: int,
    size: int = MAX_PADDING,
) -> bytes:
    """A padding-only packet on a slot's RTX stream (RFC 3550 5.1 padding, no payload): what a
    probe sends when the slot has no video packet to repeat. A receiver discards it, but counts
    it, with its send time, in its estimate."""
    if not 1 <= size <= MAX_PADDING:
        raise ValueError(f"padding is 1 to {MAX_PADDING} bytes, not {size}")
    out = bytearray(header.packet(False, 0, timestamp, abs_send_time(now_ms), b""))
    out[0] |= 0x20  # P: the last byte counts the padding
    out[1] = rtx_payload_type & 0x7F
    struct.pack_into(">H", out, 2, rtx_seq & 0xFFFF)
    struct.pack_into(">I", out, 8, rtx_ssrc)
    out += bytes(size - 1) + bytes((size,))
    return bytes(out)


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
