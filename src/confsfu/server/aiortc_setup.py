"""Process-wide aiortc setup: the pinned version, DTLS cipher suites any peer shares, the
simulcast header extensions, the ICE addresses offered, and ICE's sends on plain sockets.

Importing this module patches aiortc's DTLS context (the cipher suites); `configure_aiortc` does
the rest once per process, before the first PeerConnection.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

import aioice.ice
import aiortc
import aiortc.codecs
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from confsfu.rtp import extensions
from confsfu.server import plain_sends

PINNED_AIORTC = "1.16.0"
CandidatePolicy = Literal["loopback", "host"]


class AdapterError(RuntimeError):
    """aiortc does not look the way this adapter needs it to."""


# DTLS cipher suites: aiortc offers only ECDHE-ECDSA ones, so as the DTLS client (the answering
# side) it shares none with a peer whose certificate is RSA (GStreamer's webrtcbin): "no shared
# cipher". The ECDHE-RSA twins let such a peer in; browsers (ECDSA) still pick the first.
DTLS_CIPHERS = b":".join(
    f"ECDHE-{auth}-{cipher}".encode()
    for auth in ("ECDSA", "RSA")
    for cipher in ("AES128-GCM-SHA256", "CHACHA20-POLY1305", "AES128-SHA", "AES256-SHA")
)
_aiortc_ssl_context = RTCCertificate._create_ssl_context


def _ssl_context_for_any_peer(self: RTCCertificate, srtp_profiles: list[Any]) -> Any:
    context = _aiortc_ssl_context(self, srtp_profiles)
    context.set_cipher_list(DTLS_CIPHERS)
    return context


RTCCertificate._create_ssl_context = _ssl_context_for_any_peer  # type: ignore[method-assign]

# Header-extension ids we add to aiortc's list (ids are shared across kinds under BUNDLE).
_EXTRA_VIDEO_EXTENSIONS = (
    (extensions.RID, 10),
    (extensions.REPAIRED_RID, 11),
)


def configure_aiortc(candidates: CandidatePolicy) -> None:
    """Process-wide aiortc setup: simulcast extensions, the ICE addresses to offer, and ICE's
    sends on plain sockets (`plain_sends`)."""
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
    plain_sends.install()


_original_get_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def _host_addresses_with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    found = _original_get_host_addresses(use_ipv4, use_ipv6)
    usable = [a for a in found if not ipaddress.ip_address(a.split("%")[0]).is_link_local]
    return [*usable, "127.0.0.1"] if use_ipv4 else usable
