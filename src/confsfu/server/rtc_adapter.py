"""The only module that touches aiortc's private seams: a PeerConnection that moves raw RTP.

aiortc drives SDP, ICE, DTLS and SRTP; its media objects (decoders, encoders, jitter buffers, RTCP
loops) are kept idle. Decrypted RTP/RTCP bytes go straight to callbacks, and outgoing bytes are
SRTP-protected and sent on the nominated ICE pair synchronously, with no task per packet.
Pinned to aiortc 1.16.0 / aioice 0.13.0; tests/integration/test_rtc_adapter.py fails loudly when
the pinned versions stop behaving as assumed here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import aioice.ice
import aiortc
import aiortc.codecs
import pylibsrtp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

from confsfu.rtp import extensions

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"
Kind = Literal["audio", "video"]
CandidatePolicy = Literal["loopback", "host"]

RtpCallback = Callable[[bytes, int], None]  # decrypted packet, arrival time (ms, loop clock)
RtcpCallback = Callable[[bytes], None]

# Header-extension ids we add to aiortc's list (ids are shared across kinds under BUNDLE).
_EXTRA_VIDEO_EXTENSIONS = (
    (extensions.RID, 10),
    (extensions.REPAIRED_RID, 11),
)


# Room left after a packet in a PacketBuffer for the SRTP(C) trailer (tag, MKI, index).
_SRTP_TRAILER_BYTES = pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN


class PacketBuffer:
    """A reusable buffer in which one outgoing packet is written, SRTP-protected and sent.

    Protection happens in place through libsrtp itself: no copy in and out per packet as with
    pylibsrtp's `Session.protect`. Everything runs on one thread, so one buffer serves every
    connection.
    """

    __slots__ = ("_c", "capacity", "data", "view")

    def __init__(self, size: int = 2048) -> None:
        self.data = bytearray(size)
        self.view = memoryview(self.data)
        self._c = srtp_ffi.from_buffer(self.data)
        self.capacity = size - _SRTP_TRAILER_BYTES  # the longest packet that can be protected

    def put(self, packet: bytes) -> int:
        """Copy a whole packet in; its length."""
        if len(packet) > self.capacity:
            raise ValueError(f"a {len(packet)}-byte packet exceeds {self.capacity} bytes")
        self.data[: len(packet)] = packet
        return len(packet)


_length = srtp_ffi.new("int *")
_scratch = PacketBuffer()
_incoming = PacketBuffer()


class SendBatch:
    """Protected datagrams sent together by `flush`.

    Sends back to back cost the kernel far less than the same sends spread out between other
    work: on loopback, a receiver woken by the first datagram takes the rest without being
    woken again (27 against 7 us of system time per datagram measured here).
    """

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[[bytes, Any], None], bytes, Any]] = []

    def flush(self) -> None:
        queue = self.queue
        for sendto, data, addr in queue:
            sendto(data, addr)
        queue.clear()


@dataclass(slots=True)
class _Route:
    """Where a connection's packets go now: its SRTP context and the nominated ICE pair."""

    pair: Any
    srtp: Any  # srtp_t
    sendto: Callable[[bytes, Any], None]
    addr: Any


class AdapterError(RuntimeError):
    """aiortc does not look the way this adapter needs it to."""


class NegotiationError(ValueError):
    """A remote description could not be applied; the connection is unusable."""


def configure_aiortc(candidates: CandidatePolicy) -> None:
    """Process-wide aiortc setup: simulcast extensions and the ICE addresses to offer."""
    if aiortc.__version__ != PINNED_AIORTC:
        raise AdapterError(f"confsfu needs aiortc {PINNED_AIORTC}, found {aiortc.__version__}")
    video = aiortc.codecs.HEADER_EXTENSIONS["video"]
    known = {ext.uri for ext in video}
    for uri, ext_id in _EXTRA_VIDEO_EXTENSIONS:
        if uri not in known:
            video.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri))
    aioice.ice.get_host_addresses = (
        _host_addresses_loopback if candidates == "loopback" else (_host_addresses_with_loopback)
    )


_original_get_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def _host_addresses_with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    found = _original_get_host_addresses(use_ipv4, use_ipv6)
    usable = [a for a in found if not ipaddress.ip_address(a.split("%")[0]).is_link_local]
    return [*usable, "127.0.0.1"] if use_ipv4 else usable


@dataclass(frozen=True, slots=True)
class OutgoingStream:
    """A sendonly transceiver: the identity its packets must carry."""

    mid: str
    kind: Kind
    ssrc: int
    rtx_ssrc: int


async def _idle(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for aiortc's media start-up: registers nothing, starts no thread or task."""


class RawPeerConnection:
    """One RTCPeerConnection whose media objects stay idle; raw RTP/RTCP in and out."""

    def __init__(self, *, ice_servers: Iterable[RTCIceServer] = ()) -> None:
        config = RTCConfiguration(
            iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        self.pc = RTCPeerConnection(config)
        self._on_rtp: RtpCallback = _ignore_rtp
        self._on_rtcp: RtcpCallback = _ignore_rtcp
        self._dtls: Any = None
        self._connection: Any = None
        self._fast_path_installed = False
        self._route: _Route | None = None
        self.srtp_errors = 0
        self.slow_path_packets = 0
        self.on_state: Callable[[str], None] | None = None

        @self.pc.on("connectionstatechange")
        def _state_changed() -> None:
            if self.on_state is not None:
                self.on_state(self.pc.connectionState)

    def set_callbacks(self, *, on_rtp: RtpCallback, on_rtcp: RtcpCallback) -> None:
        """Where decrypted packets go; set before negotiating."""
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    @property
    def local_sdp(self) -> str:
        description = self.pc.localDescription
        return str(description.sdp) if description is not None else ""

    # ---- negotiation ----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Take a remote offer (the publish side) and return the local answer."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises many kinds on bad SDP
            raise NegotiationError(f"the offer was not accepted: {exc}") from exc
        if not self.pc.getTransceivers():
            raise NegotiationError("the offer has no audio or video")
        self._detach_media()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._install_fast_receive()
        return str(self.pc.localDescription.sdp)

    async def offer(self, kinds: Iterable[Kind]) -> tuple[str, list[OutgoingStream]]:
        """Create sendonly transceivers (the subscribe side) and return the local offer."""
        for kind in kinds:
            transceiver = self.pc.addTransceiver(kind, direction="sendonly")
            _prefer_single_codec(transceiver, kind)
        self._detach_media()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._install_fast_receive()
        streams = [
            OutgoingStream(
                mid=str(t.mid),
                kind=_kind(t.kind),
                ssrc=int(t.sender._ssrc),
                rtx_ssrc=int(t.sender._rtx_ssrc),
            )
            for t in self.pc.getTransceivers()
        ]
        return self.local_sdp, streams

    async def accept_answer(self, answer_sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:  # aiortc raises many kinds on bad SDP
            raise NegotiationError(f"the answer was not accepted: {exc}") from exc

    async def close(self) -> None:
        self._connection = None  # nothing is sent any more
        self._route = None
        await self.pc.close()

    # ---- media in and out -------------------------------------------------------------------

    def send_rtp(self, packet: bytes) -> bool:
        """Protect and send one RTP packet now; False when the transport is not up yet."""
        return self._send(_scratch, _scratch.put(packet), srtp_lib.srtp_protect)

    def send_rtcp(self, packet: bytes) -> bool:
        """Protect and send one (compound) RTCP packet now; False when not up yet."""
        return self._send(_scratch, _scratch.put(packet), srtp_lib.srtp_protect_rtcp)

    def queue_rtp(self, buf: PacketBuffer, length: int, batch: SendBatch) -> bool:
        """Protect the RTP packet written at the start of `buf` and queue it on `batch`."""
        route = self._protect(buf, length, srtp_lib.srtp_protect)
        if route is None:
            return False
        batch.queue.append((route.sendto, bytes(buf.view[: _length[0]]), route.addr))
        return True

    def _send(self, buf: PacketBuffer, length: int, protect: Any) -> bool:
        route = self._protect(buf, length, protect)
        if route is None:
            return False
        route.sendto(bytes(buf.view[: _length[0]]), route.addr)
        return True

    def _protect(self, buf: PacketBuffer, length: int, protect: Any) -> _Route | None:
        """Protect in place (the new length in `_length`); the route to send on, or None."""
        connection = self._connection
        route = self._route
        if route is None or connection is None or connection._nominated.get(1) is not route.pair:
            route = self._find_route()
            if route is None:
                return None
        _length[0] = length
        if protect(route.srtp, buf._c, _length) != srtp_lib.srtp_err_status_ok:
            self.srtp_errors += 1  # e.g. a sequence number too far behind for libsrtp
            return None
        return route

    def _find_route(self) -> _Route | None:
        tx = self._dtls._tx_srtp if self._dtls is not None else None
        pair = self._connection._nominated.get(1) if self._connection is not None else None
        if tx is None or pair is None:
            self._route = None
            return None
        transport = getattr(pair.protocol, "transport", None)
        if isinstance(pair.protocol, aioice.ice.StunProtocol) and transport is not None:
            sendto = transport.sendto
        else:  # a relayed (TURN) candidate sends through its own coroutine
            sendto = _relay_sender(pair.protocol)
        self._route = _Route(pair, tx._srtp[0], sendto, pair.remote_addr)
        return self._route

    # ---- seams ------------------------------------------------------------------------------

    def _detach_media(self) -> None:
        """Keep aiortc's receivers and senders idle and take the DTLS transport's decrypted data."""
        for transceiver in self.pc.getTransceivers():
            transceiver.receiver.receive = _idle  # type: ignore[method-assign]
            transceiver.sender.send = _idle  # type: ignore[method-assign]
            dtls = transceiver.receiver.transport
            if self._dtls is None:
                self._dtls = dtls
            elif dtls is not self._dtls:
                raise AdapterError("transceivers are not bundled on one DTLS transport")
        if self._dtls is None:
            raise AdapterError("no transceiver, so no DTLS transport")
        self._dtls._handle_rtp_data = self._slow_rtp
        self._dtls._handle_rtcp_data = self._slow_rtcp
        self._connection = self._dtls.transport._connection

    async def _slow_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        # aiortc's arrival time has another epoch: use the loop clock like the fast path.
        self.slow_path_packets += 1
        self._on_rtp(data, int(asyncio.get_running_loop().time() * 1000))

    async def _slow_rtcp(self, data: bytes) -> None:
        self._on_rtcp(data)

    def _install_fast_receive(self) -> None:
        """Decrypt SRTP in the socket callback instead of queue -> task -> DTLS loop."""
        if self._fast_path_installed:
            return
        self._fast_path_installed = True
        dtls = self._dtls
        loop = asyncio.get_running_loop()
        for protocol in self._connection._protocols:
            fallback = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: tuple[Any, ...], fallback: Any = fallback
            ) -> None:
                rx = dtls._rx_srtp
                if rx is None or not 127 < data[0] < 192:
                    fallback(data, addr)  # STUN, DTLS, or SRTP before the keys exist
                    return
                if len(data) > _incoming.capacity:
                    self.srtp_errors += 1
                    return
                rtcp = len(data) > 1 and 192 <= data[1] <= 223
                _incoming.data[: len(data)] = data
                _length[0] = len(data)
                unprotect = srtp_lib.srtp_unprotect_rtcp if rtcp else srtp_lib.srtp_unprotect
                if unprotect(rx._srtp[0], _incoming._c, _length) != srtp_lib.srtp_err_status_ok:
                    self.srtp_errors += 1
                    return
                clear = bytes(_incoming.view[: _length[0]])
                if rtcp:
                    self._on_rtcp(clear)
                else:
                    self._on_rtp(clear, int(loop.time() * 1000))

            protocol.datagram_received = datagram_received


def _kind(kind: str) -> Kind:
    if kind == "audio":
        return "audio"
    if kind == "video":
        return "video"
    raise AdapterError(f"unexpected transceiver kind {kind!r}")


def _ignore_rtp(data: bytes, arrival_ms: int) -> None:
    pass


def _ignore_rtcp(data: bytes) -> None:
    pass


_relay_sends: set[asyncio.Future[None]] = set()


def _relay_sender(protocol: Any) -> Callable[[bytes, Any], None]:
    def sendto(data: bytes, addr: Any) -> None:
        task = asyncio.ensure_future(protocol.send_data(data, addr))
        _relay_sends.add(task)
        task.add_done_callback(_relay_sends.discard)

    return sendto


def _prefer_single_codec(transceiver: RTCRtpTransceiver, kind: Kind) -> None:
    """Offer Opus for audio and VP8 (+ its RTX) for video, nothing else."""
    caps = aiortc.RTCRtpSender.getCapabilities(kind)
    wanted = "audio/opus" if kind == "audio" else "video/vp8"
    codecs = [c for c in caps.codecs if c.mimeType.lower() in (wanted, "video/rtx")]
    transceiver.setCodecPreferences(codecs)
