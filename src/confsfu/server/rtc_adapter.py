"""Where aiortc's private seams are touched (with `srtp_contexts` for the DTLS keying and
`aiortc_setup` for the process-wide patches): a PeerConnection that moves raw RTP.

aiortc drives SDP, ICE, DTLS and SRTP; its media objects (decoders, encoders, jitter buffers, RTCP
loops) are kept idle. Decrypted RTP/RTCP bytes go straight to callbacks, and outgoing bytes are
SRTP-protected and sent on the nominated ICE pair synchronously, with no task per packet, by the
connection's `confsfu.server._wire.Route` (C), which this module points at the pair and SRTP
context.
Pinned to aiortc 1.16.0 / aioice 0.13.0; tests/integration/test_rtc_adapter.py fails loudly when
the pinned versions stop behaving as assumed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aiortc
import aiortc.codecs
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from confsfu.ids import Kind
from confsfu.server import _wire, srtp_contexts
from confsfu.server.aiortc_setup import AdapterError
from confsfu.server.clock import clock_ms

log = logging.getLogger(__name__)

MAX_SRTP_SSRCS = 32  # incoming SSRCs libsrtp opens on a connection (the intake's MAX_TRACKS)
SOCKET_BUFFER_BYTES = 1 << 20  # each ICE socket's receive and send buffer (see _grow_buffers)

RtpCallback = Callable[[bytes, int], None]  # decrypted packet, arrival time (ms, loop clock)
RtcpCallback = Callable[[bytes], None]


def aiortc_readable(sdp: str) -> str:
    """`sdp` with what standard stacks send but the pinned aiortc cannot read taken out: an
    extmap line's extension attributes after the URI (RFC 8285 4.6, e.g. GStreamer's
    `a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on`), which aiortc's parser
    refuses ("too many values to unpack"); the extension itself is kept."""
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    out = []
    for line in lines:
        if line.startswith("a=extmap:"):
            parts = line.split()
            if len(parts) > 2:
                line = f"{parts[0]} {parts[1]}"
        out.append(line)
    return ("\r\n" if "\r\n" in sdp else "\n").join(out)


class NegotiationError(ValueError):
    """A remote description could not be applied; the connection is unusable."""


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
        self._on_rtp: RtpCallback | None = _ignore_rtp
        self._on_rtcp: RtcpCallback = _ignore_rtcp
        self._intake: _wire.Intake | None = None
        self._dtls: Any = None
        self._connection: Any = None
        self._fast_path_installed = False
        self._taps: list[Any] = []  # the intake's taps, watched by _wire.pump until closed
        self.route = _wire.Route()  # where outgoing packets go; set up once ICE and DTLS are
        self._route_pair: Any = None  # the nominated ICE pair `route` was set up for
        self._outgoing_ssrcs: list[int] = []  # media and RTX SSRCs of the sendonly transceivers
        self._unprotect_errors = 0
        self.callback_errors = 0  # packets whose handling raised (a bug, counted, not raised)
        self.sealed_rtp = False  # the load generator's light subscribers: RTP left sealed
        self._srtp_ssrcs: set[int] = set()  # the SSRCs libsrtp opened RTP of on the slow path
        self._srtcp_ssrcs: set[int] = set()  # ... and RTCP of (the sender SSRCs)
        self.max_srtcp_ssrcs = MAX_SRTP_SSRCS  # ... of at most so many (set once negotiated)
        # aiortc's receiving pylibsrtp Session, its context's address, and an AES-GCM Opener
        # for RTP (None: the Session opens RTP too); the Session always opens RTCP.
        self._receiving: list[Any] = [None, 0, None]
        self.slow_path_packets = 0
        self.on_state: Callable[[str], None] | None = None

        @self.pc.on("connectionstatechange")
        def _state_changed() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._drop_route()
                self._unwatch()
            elif self.pc.connectionState == "connected":
                self.refresh_route()  # else the first packet sent finds none (and is lost)
            if self.on_state is not None:
                self.on_state(self.pc.connectionState)

    def set_callbacks(
        self,
        *,
        on_rtp: RtpCallback | None,
        on_rtcp: RtcpCallback,
        intake: _wire.Intake | None = None,
    ) -> None:
        """Where decrypted packets go; set before negotiating. An `intake` takes the RTP it can
        open from the sockets itself, and is told the opener once the keys exist. Without
        `on_rtp` the connection takes no RTP: it is dropped unopened."""
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._intake = intake

    @property
    def srtp_errors(self) -> int:
        """Packets SRTP refused, both ways (e.g. replayed, or too far behind)."""
        return self._unprotect_errors + self.route.srtp_errors

    @property
    def rtp_opener(self) -> _wire.Opener | None:
        """What opens incoming RTP once the keys exist, when not libsrtp."""
        opener: _wire.Opener | None = self._receiving[2]
        return opener

    @property
    def media_fd(self) -> int | None:
        """The file descriptor of the nominated ICE pair's local socket, which media uses both
        ways; None until the connection is up."""
        pair = self._nominated_pair()
        transport = getattr(pair.protocol, "transport", None) if pair is not None else None
        sock = transport.get_extra_info("socket") if transport is not None else None
        return sock.fileno() if sock is not None else None

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
            offer = RTCSessionDescription(sdp=aiortc_readable(offer_sdp), type="offer")
            await self.pc.setRemoteDescription(offer)
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
        self._outgoing_ssrcs = [ssrc for s in streams for ssrc in (s.ssrc, s.rtx_ssrc)]
        return self.local_sdp, streams

    async def accept_answer(self, answer_sdp: str) -> None:
        try:
            answer = RTCSessionDescription(sdp=aiortc_readable(answer_sdp), type="answer")
            await self.pc.setRemoteDescription(answer)
        except Exception as exc:  # aiortc raises many kinds on bad SDP
            raise NegotiationError(f"the answer was not accepted: {exc}") from exc

    async def close(self) -> None:
        self._connection = None  # nothing is sent any more
        self._drop_route()
        self._unwatch()  # before aiortc closes the sockets: the pump holds a dup of each
        await self.pc.close()

    # ---- media out ---------------------------------------------------------------------------

    def send_rtp(self, packet: bytes, *, stamp: bool = True) -> bool:
        """Protect and send one RTP packet now; False when the transport is not up yet.
        `stamp`: give it the next transport-wide number (not for a resend byte for byte)."""
        self.refresh_route()
        return self.route.send(packet, False, stamp)

    def send_rtcp(self, packet: bytes) -> bool:
        """Protect and send one (compound) RTCP packet now; False when not up yet."""
        self.refresh_route()
        return self.route.send(packet, True)

    def refresh_route(self) -> bool:
        """Point `route` at the nominated ICE pair and the DTLS session's SRTP context (they
        appear once the connection is up); True when packets can go out."""
        pair = self._nominated_pair()
        if pair is self._route_pair:
            return self.route.ready
        tx = self._dtls._tx_srtp if self._dtls is not None else None
        if pair is None or tx is None:
            self._drop_route()
            return False
        if self._outgoing_ssrcs and not self.route.dedicated:
            srtp_contexts.dedicate(self.route, self._dtls, self._outgoing_ssrcs)
        srtp = srtp_contexts.srtp_context(tx)
        transport = getattr(pair.protocol, "transport", None)
        if isinstance(pair.protocol, aioice.ice.StunProtocol) and transport is not None:
            host, port = pair.remote_addr[:2]
            try:
                fd = transport.get_extra_info("socket").fileno()
                self.route.over_socket(srtp, tx, fd, host, port)
            except ValueError:  # e.g. a scoped IPv6 address: the transport's own sendto
                self.route.over_callable(srtp, tx, transport.sendto, pair.remote_addr)
        else:  # a relayed (TURN) candidate sends through its own coroutine
            self.route.over_callable(srtp, tx, _relay_sender(pair.protocol), pair.remote_addr)
        self._route_pair = pair
        return True

    def _nominated_pair(self) -> Any:
        """aioice's nominated candidate pair for RTP (component 1), once there is one."""
        connection = self._connection
        return connection._nominated.get(1) if connection is not None else None

    def _drop_route(self) -> None:
        self.route.clear()
        self._route_pair = None

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
        # aiortc's arrival time has another epoch: use the server's clock like the fast path.
        self.slow_path_packets += 1
        if self._on_rtp is not None:
            self._on_rtp(data, clock_ms())

    async def _slow_rtcp(self, data: bytes) -> None:
        self._on_rtcp(data)

    def _srtp_admits(self, data: bytes, opener: _wire.Opener | None) -> bool:
        """Whether RTP of this SSRC may be opened here: libsrtp keeps a stream for every SSRC it
        opens and walks them all for every packet, so a connection gets a few (as the intake
        allows; an Opener keeps its own limit)."""
        if opener is not None or len(data) < 12:
            return True
        ssrc = int.from_bytes(data[8:12], "big")
        if ssrc not in self._srtp_ssrcs and len(self._srtp_ssrcs) >= MAX_SRTP_SSRCS:
            return False
        self._srtp_ssrcs.add(ssrc)
        return True

    def _srtcp_admits(self, data: bytes) -> int | None:
        """The sender SSRC of this RTCP when libsrtp may open it here, else None: libsrtp keeps
        a stream for every SSRC it opens RTCP of too (whatever opens the RTP), so a connection
        gets a few of those as well. An SSRC counts once its RTCP was opened."""
        ssrc = int.from_bytes(data[4:8], "big")
        if ssrc not in self._srtcp_ssrcs and len(self._srtcp_ssrcs) >= self.max_srtcp_ssrcs:
            return None
        return ssrc

    def _install_fast_receive(self) -> None:
        """Decrypt SRTP in the socket callback instead of queue -> task -> DTLS loop."""
        if self._fast_path_installed:
            return
        self._fast_path_installed = True
        # A browser may send RTCP from an SSRC of each m-line (and of its RTX): room for those
        # of the largest subscribe connection, still a few dozen streams for libsrtp to walk.
        self.max_srtcp_ssrcs = MAX_SRTP_SSRCS + 2 * len(self.pc.getTransceivers())
        dtls = self._dtls
        keys = self._receiving
        queued = self._connection._queue  # what aiortc's DTLS task has yet to read, in order
        for protocol in self._connection._protocols:
            _grow_buffers(protocol)
            fallback = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: tuple[Any, ...], fallback: Any = fallback
            ) -> None:
                if not data:
                    return  # an empty datagram: nothing anyone could read
                rx = dtls._rx_srtp
                if rx is None or not 127 < data[0] < 192:
                    fallback(data, addr)  # STUN, DTLS, or SRTP before the keys exist
                    return
                if rx is not keys[0]:
                    if queued.qsize():  # SRTP that came before the keys goes first
                        fallback(data, addr)
                        return
                    opener = srtp_contexts.opener(dtls)
                    keys[0], keys[1], keys[2] = rx, srtp_contexts.srtp_context(rx), opener
                    if self._intake is not None:  # it opens RTP with whichever there is
                        self._intake.opener = keys[2]
                        self._intake.set_srtp(keys[1] if keys[2] is None else None, rx)
                rtcp = len(data) > 1 and 192 <= data[1] <= 223
                opener = keys[2]
                on_rtp = self._on_rtp
                if self.sealed_rtp and not rtcp and on_rtp is not None:
                    self._sealed(on_rtp, data)
                    return
                if not rtcp and (on_rtp is None or not self._srtp_admits(data, opener)):
                    self._unprotect_errors += 1  # RTP nobody publishes here, or too many SSRCs
                    return
                sender = self._srtcp_admits(data) if rtcp else None
                if rtcp and sender is None:
                    self._unprotect_errors += 1  # RTCP of too many SSRCs
                    return
                if rtcp or opener is None:
                    clear = _wire.unprotect(keys[1], data, rtcp)
                else:
                    clear = opener.open(data)
                if clear is None:
                    self._unprotect_errors += 1
                    return
                if sender is not None:
                    self._srtcp_ssrcs.add(sender)
                try:
                    if rtcp:
                        self._on_rtcp(clear)
                    elif on_rtp is not None:
                        on_rtp(clear, clock_ms())
                except Exception:  # a peer's packet never raises out of the socket's callback
                    self.callback_errors += 1
                    if self.callback_errors == 1:
                        log.exception("a packet's handling failed (later ones only counted)")

            if self._intake is None:
                protocol.datagram_received = datagram_received
                continue
            tap = protocol.datagram_received = self._intake.tap(datagram_received)
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:  # _wire.pump reads it too, between steps of long work
                tap.watch(sock)
                self._taps.append(tap)

    def _sealed(self, on_rtp: RtpCallback, data: bytes) -> None:
        """The load generator's light subscriber: RTP as it came, SRTP unopened (and so
        unauthenticated: never for what a server forwards)."""
        try:
            on_rtp(data, clock_ms())
        except Exception:  # a packet never raises out of the socket's callback
            self.callback_errors += 1

    def _unwatch(self) -> None:
        for tap in self._taps:
            tap.unwatch()
        self._taps.clear()


def _grow_buffers(protocol: Any) -> None:
    """Room for a few hundred packets each way, so that a short stall of this process (or of a
    busy machine) delays media instead of losing it; the kernel caps it at net.core.rmem_max /
    wmem_max."""
    transport = getattr(protocol, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)


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
