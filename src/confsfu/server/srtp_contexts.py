"""The SRTP protections of a connection's C route (`confsfu.server._wire.Route`): libsrtp
contexts and AES-GCM sealers and openers, keyed from the connection's DTLS session the way aiortc
keys its own. With `rtc_adapter`, the only module that reads aiortc's private DTLS state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pylibsrtp
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

from confsfu.server import _wire, srtp_keys


def _address(pointer: Any) -> int:
    return int(srtp_ffi.cast("uintptr_t", pointer))


def srtp_context(session: pylibsrtp.Session) -> int:
    """The address of a pylibsrtp session's libsrtp context, for `confsfu.server._wire.Route`."""
    return _address(session._srtp[0])


# Packets are protected and unprotected by the C paths with pylibsrtp's own libsrtp.
_wire.set_protect(
    *(
        _address(srtp_ffi.addressof(srtp_lib, name))
        for name in ("srtp_protect", "srtp_protect_rtcp", "srtp_unprotect", "srtp_unprotect_rtcp")
    )
)


GCM_PROFILES = (
    pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
)


def dedicate(route: _wire.Route, dtls: Any, ssrcs: Iterable[int]) -> None:
    """Give each outgoing SSRC a protection of its own, keyed like aiortc's sending session:
    one AES-GCM `Sealer` for all (a few lines of C around OpenSSL), or for other profiles a libsrtp
    session (libsrtp finds a session's stream by walking a linked list, once per packet)."""
    key, profile = srtp_key(dtls, sending=True)
    session_keys = gcm_session_keys(key, profile)
    if session_keys is not None:
        sealer = _wire.Sealer(session_keys.key, session_keys.salt)
        for ssrc in ssrcs:
            route.seal(ssrc, sealer)
        return
    for ssrc in ssrcs:
        policy = pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC, ssrc_value=ssrc, srtp_profile=profile
        )
        policy.allow_repeat_tx = True  # as aiortc's: a packet may be sent again as it was
        policy.window_size = 1024
        session = pylibsrtp.Session(policy)
        route.dedicate(ssrc, srtp_context(session), session)


def opener(dtls: Any) -> _wire.Opener | None:
    """An AES-GCM `Opener` for the connection's incoming RTP, keyed like aiortc's receiving
    session; None for other profiles (libsrtp's session then opens RTP too)."""
    session_keys = gcm_session_keys(*srtp_key(dtls, sending=False))
    return None if session_keys is None else _wire.Opener(session_keys.key, session_keys.salt)


def gcm_session_keys(key: bytes, profile: int) -> srtp_keys.SessionKeys | None:
    if profile not in GCM_PROFILES or not _wire.sealing_available():
        return None
    salt_at = len(key) - srtp_keys.GCM_SALT_BYTES
    return srtp_keys.gcm_rtp_keys(key[:salt_at], key[salt_at:])


def srtp_key(dtls: Any, *, sending: bool) -> tuple[bytes, int]:
    """The SRTP master key + salt of one side of a connected DTLS transport and its libsrtp
    profile, exported from the DTLS session again the way aiortc's `_setup_srtp` does."""
    chosen = dtls._ssl.get_selected_srtp_profile()
    profile = next(p for p in dtls._srtp_profiles if p.openssl_profile == chosen)
    material = dtls._ssl.export_keying_material(
        b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
    )
    key = profile.get_key_and_salt(material, 1 if (dtls._role == "server") == sending else 0)
    return bytes(key), int(profile.libsrtp_profile)
