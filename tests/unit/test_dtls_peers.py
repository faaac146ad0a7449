"""DTLS with a peer whose certificate is RSA (GStreamer's webrtcbin): aiortc as it is shares no
cipher suite with it as the DTLS client; with confsfu's seam (aiortc_setup.DTLS_CIPHERS) the
handshake completes both ways, and an ECDSA peer still gets an ECDSA suite."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import pytest
from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80, RTCCertificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from confsfu.server import aiortc_setup


def peer_context(kind: str) -> SSL.Context:
    """A DTLS context as another stack makes one: OpenSSL's default suites, its own key."""
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.use_certificate(crypto.X509.from_cryptography(cert))
    ctx.use_privatekey(crypto.PKey.from_cryptography_key(key))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    ctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    return ctx


def handshake(client_ctx: SSL.Context, server_ctx: SSL.Context) -> str:
    """The cipher suite a DTLS handshake over memory settles on."""
    client, server = SSL.Connection(client_ctx, None), SSL.Connection(server_ctx, None)
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(20):
        finished = 0
        for side, other in ((client, server), (server, client)):
            try:
                side.do_handshake()
                finished += 1
            except SSL.WantReadError:
                pass
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(side.bio_read(65536))
        if finished == 2:
            return str(client.get_cipher_name())
    raise AssertionError("the handshake did not finish")


def confsfu_context() -> SSL.Context:
    certificate = RTCCertificate.generateCertificate()
    context: SSL.Context = certificate._create_ssl_context([SRTP_AES128_CM_SHA1_80])
    return context


def test_the_pinned_aiortc_alone_shares_no_cipher_with_an_rsa_peer() -> None:
    # If this starts to pass, aiortc offers RSA suites itself and the seam can go.
    certificate = RTCCertificate.generateCertificate()
    aiortc_alone = aiortc_setup._aiortc_ssl_context(certificate, [SRTP_AES128_CM_SHA1_80])
    with pytest.raises(SSL.Error, match="no shared cipher"):
        handshake(aiortc_alone, peer_context("rsa"))


@pytest.mark.parametrize(
    ("peer", "confsfu_is", "authentication"),
    [
        ("rsa", "client", "RSA"),  # the server's certificate decides
        ("rsa", "server", "ECDSA"),
        ("ecdsa", "client", "ECDSA"),
        ("ecdsa", "server", "ECDSA"),
    ],
)
def test_confsfu_completes_dtls_with_rsa_and_ecdsa_peers(
    peer: str, confsfu_is: str, authentication: str
) -> None:
    ours, theirs = confsfu_context(), peer_context(peer)
    got = handshake(ours, theirs) if confsfu_is == "client" else handshake(theirs, ours)
    assert got.encode() in aiortc_setup.DTLS_CIPHERS.split(b":")
    assert got.startswith(f"ECDHE-{authentication}-")
