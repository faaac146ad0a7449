"""SRTP session keys from a DTLS-SRTP master key and salt (RFC 3711 section 4.3, the AES-CM
key derivation, with the key derivation rate 0 WebRTC uses).

Sans-IO: the AEAD AES-GCM profiles (RFC 7714 section 11) derive the RTP session key and the
96-bit session salt the same way, the master salt padded with two zero bytes to 112 bits.
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

RTP_ENCRYPTION = 0x00  # labels of the key derivation (RFC 3711 4.3.2)
RTP_SALT = 0x02
GCM_SALT_BYTES = 12


class SessionKeys(NamedTuple):
    key: bytes
    salt: bytes


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """`length` bytes of the AES-CM PRF keyed with `master_key`, for `label`."""
    if len(master_key) not in (16, 24, 32):
        raise ValueError(f"an AES master key has 16, 24 or 32 bytes, not {len(master_key)}")
    if not 0 <= label <= 0xFF:
        raise ValueError(f"a label is one byte, not {label}")
    if len(master_salt) > 14:
        raise ValueError(f"a master salt has at most 14 bytes, not {len(master_salt)}")
    x = bytearray(master_salt.ljust(14, b"\0"))
    x[7] ^= label  # key_id = label || r (48 bits, r = 0), aligned right in 112 bits
    encryptor = Cipher(algorithms.AES(master_key), modes.CTR(bytes(x) + b"\0\0")).encryptor()
    return encryptor.update(bytes(length)) + encryptor.finalize()


def gcm_rtp_keys(master_key: bytes, master_salt: bytes) -> SessionKeys:
    """The RTP session key and salt of an AEAD AES-GCM profile (128 or 256 bits)."""
    if len(master_salt) != GCM_SALT_BYTES:
        raise ValueError(f"an AES-GCM master salt has 12 bytes, not {len(master_salt)}")
    return SessionKeys(
        key=derive(master_key, master_salt, RTP_ENCRYPTION, len(master_key)),
        salt=derive(master_key, master_salt, RTP_SALT, GCM_SALT_BYTES),
    )
