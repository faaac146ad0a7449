"""The aiortc seams the adapter relies on: fails loudly when the pinned aiortc behaves otherwise."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import aioice.ice
import aiortc
import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire
from confsfu.server.aiortc_setup import PINNED_AIORTC, configure_aiortc
from confsfu.server.rtc_adapter import SOCKET_BUFFER_BYTES, RawPeerConnection


def test_pinned_version() -> None:
    assert aiortc.__version__ == PINNED_AIORTC, "the adapter is written for aiortc 1.16.0 only"


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (RTCDtlsTransport, "_handle_rtp_data"),
        (RTCDtlsTransport, "_handle_rtcp_data"),
        (RTCRtpReceiver, "receive"),
        (RTCRtpSender, "send"),
        (aioice.ice.StunProtocol, "datagram_received"),
        (aioice.ice, "get_host_addresses"),
    ],
)
def test_private_seams_exist(owner: object, name: str) -> None:
    assert hasattr(owner, name), f"aiortc/aioice no longer has {owner}.{name}"


def test_seam_signatures() -> None:
    params = list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters)
    assert params == ["self", "data", "arrival_time_ms"]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtcp_data).parameters) == [
        "self",
        "data",
    ]
    source = inspect.getsource(RTCIceTransport.__init__)
    assert "self._connection" in source


async def test_raw_rtp_both_ways_without_media_threads() -> None:
    configure_aiortc("loopback")
    threads_before = threading.active_count()
    got_at_answerer: list[bytes] = []
    got_at_offerer: list[bytes] = []
    offerer, answerer = RawPeerConnection(), RawPeerConnection()
    offerer.set_callbacks(on_rtp=lambda d, t: got_at_offerer.append(d), on_rtcp=lambda d: None)
    answerer.set_callbacks(on_rtp=lambda d, t: got_at_answerer.append(d), on_rtcp=lambda d: None)
    try:
        offer, streams = await offerer.offer(["audio", "video"])
        assert [s.kind for s in streams] == ["audio", "video"]
        assert all(s.ssrc and s.rtx_ssrc for s in streams)
        answer = await answerer.answer(offer)
        await offerer.accept_answer(answer)
        payload = bytes(range(200))
        for _ in range(200):
            packet = build_rtp(
                payload_type=97,
                sequence_number=len(got_at_answerer) + 1,
                timestamp=1,
                ssrc=streams[1].ssrc,
                payload=payload,
            )
            offerer.send_rtp(packet)
            answerer.send_rtp(packet)
            if got_at_answerer and got_at_offerer:
                break
            await asyncio.sleep(0.05)
        assert got_at_answerer, "no RTP reached the answering side"
        assert got_at_offerer, "no RTP reached the offering side"
        assert parse_rtp(got_at_answerer[0]).payload == payload
        assert threading.active_count() == threads_before, "aiortc started a media thread"
        assert offerer.srtp_errors == answerer.srtp_errors == 0
        # The sending side's SSRCs have SRTP sessions of their own, keyed from the DTLS session
        # again: the answerer decrypting what the offerer sent shows the keys are the same.
        assert offerer.route.dedicated == 2 * len(streams)
        # aiortc negotiates AES-256-GCM: confsfu's own Sealer protects and Opener opens
        assert offerer.route.sealed == 2 * len(streams)
        for pc in (offerer, answerer):
            assert pc.rtp_opener is not None and pc.rtp_opener.streams == 1
        assert answerer.route.dedicated == 0  # it offered no streams: aiortc's session alone
        # The ICE sockets have room for a stall: Linux reports twice what was granted.
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
        for pc in (offerer, answerer):
            for protocol in pc._connection._protocols:
                sock = protocol.transport.get_extra_info("socket")
                granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                assert granted >= 2 * min(SOCKET_BUFFER_BYTES, rmem_max)
    finally:
        await offerer.close()
        await answerer.close()


async def test_srtp_that_came_before_the_keys_is_read_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SRTP arriving before our side has the keys waits in aioice's queue for aiortc's DTLS
    task; until that queue is read, later packets join it instead of overtaking it (a stream's
    first packets would otherwise come after its later ones, and be dropped as too old)."""
    key, salt = bytes(range(16)), bytes(range(12))
    monkeypatch.setattr("confsfu.server.srtp_contexts.opener", lambda dtls: _wire.Opener(key, salt))
    monkeypatch.setattr("confsfu.server.srtp_contexts.srtp_context", lambda rx: 0)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    protocol = SimpleNamespace(datagram_received=lambda data, addr: queue.put_nowait(data))
    pc = RawPeerConnection()
    pc._dtls = SimpleNamespace(_rx_srtp=None)
    pc._connection = SimpleNamespace(_protocols=[protocol], _queue=queue)
    opened: list[bytes] = []
    pc.set_callbacks(on_rtp=lambda data, at: opened.append(data), on_rtcp=lambda data: None)
    pc._install_fast_receive()
    receive = protocol.datagram_received
    sealer = _wire.Sealer(key, salt)
    clear = [build_rtp(payload_type=96, sequence_number=n, timestamp=0, ssrc=7, payload=b"x" * 20)
             for n in range(3)]  # fmt: skip
    sealed = [sealer.seal(packet) for packet in clear]
    receive(sealed[0], ("127.0.0.1", 1))  # no keys yet: aiortc's
    pc._dtls._rx_srtp = object()  # the handshake is done
    receive(sealed[1], ("127.0.0.1", 1))  # the first is still queued: behind it
    assert opened == [] and queue.qsize() == 2
    while not queue.empty():
        queue.get_nowait()  # aiortc's task reads them (and opens them itself)
    receive(sealed[2], ("127.0.0.1", 1))
    assert opened == [clear[2]]
    await pc.close()


async def test_nothing_a_peer_sends_raises_out_of_the_socket_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, salt = bytes(range(16)), bytes(range(12))
    monkeypatch.setattr("confsfu.server.srtp_contexts.opener", lambda dtls: _wire.Opener(key, salt))
    monkeypatch.setattr("confsfu.server.srtp_contexts.srtp_context", lambda rx: 0)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    fell_back: list[bytes] = []
    protocol = SimpleNamespace(datagram_received=lambda data, addr: fell_back.append(data))
    pc = RawPeerConnection()
    pc._dtls = SimpleNamespace(_rx_srtp=object())  # the keys exist

    def broken(data: bytes, at: int) -> None:
        raise RuntimeError("a bug in a packet's handling")

    pc._connection = SimpleNamespace(_protocols=[protocol], _queue=queue)
    pc.set_callbacks(on_rtp=broken, on_rtcp=lambda data: None)
    pc._install_fast_receive()
    receive = protocol.datagram_received
    receive(b"", ("127.0.0.1", 1))  # an empty datagram
    packet = build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=7, payload=bytes(20))
    sealed = _wire.Sealer(key, salt).seal(packet)
    assert sealed is not None
    for _ in range(3):
        receive(sealed, ("127.0.0.1", 1))  # opened once (then replays), handled: it raises
    assert pc.callback_errors == 1 and fell_back == []
    await pc.close()
