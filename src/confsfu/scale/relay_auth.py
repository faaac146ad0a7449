"""Authenticated relay datagrams (sans-IO), for the relay over UDP (docs/scale-out.md, "The
relay over UDP"): a relay frame crossing a network carries a trailer that proves it comes from
a holder of the room's key and was not seen before.

A sealed datagram is `frame | sender(4) counter(8) | tag(16)` (big-endian):

- `frame`: a relay frame (`scale/relay_frame.py`), untouched; its room index (header bytes 4-8)
  names the key, so the frame codec knows nothing of this trailer.
- `sender`: the sending worker's index on the relay (its peer id).
- `counter`: per sender, increasing by one a datagram; its high 32 bits are never below the
  sender's clock in seconds (`Sealer.tick`), so a restarted sender starts above everything it
  sent before, and a receiver refuses a datagram whose seconds are more than `MAX_AGE_S` from
  its own clock (a capture replayed to a receiver that restarted and forgot its window).
- `tag`: keyed BLAKE2b (RFC 7693's MAC mode), 16 bytes, over frame, sender, counter and the
  receiver's index (not sent: a datagram for one worker does not open at another), with the
  room's key: `room_key(secret, room name)`, HKDF-SHA256 of the deployment's `relay_secret`, so
  nodes sharing the secret agree on every room's key without exchanging one.

Each sender has a replay window (`ReplayWindow`, 128 counters wide, as SRTP's but wider): a
counter seen or older than the window is refused. The window is checked before the tag, and
moved only after it. Nothing here raises on a peer's bytes: `Opener.open` returns None and
counts why (`Opener.counts`).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import Counter
from collections.abc import Mapping
from typing import Final

from confsfu.scale import relay_frame as rf

TRAILER: Final = struct.Struct(">IQ")  # sender, counter
_SEALED_TAIL: Final = struct.Struct(">IQ16s")  # sender, counter, tag
_ROOM: Final = struct.Struct(">I")
_RECEIVER: Final = struct.Struct(">I")
TAG_BYTES: Final = 16
TRAILER_BYTES: Final = TRAILER.size + TAG_BYTES  # 28
MIN_SEALED_BYTES: Final = rf.HEADER_BYTES + TRAILER_BYTES
MAX_SEALED_BYTES: Final = rf.MAX_FRAME_BYTES + TRAILER_BYTES
ROOM_AT: Final = 4  # the room index in a frame's header (`relay_frame.HEADER`)
WINDOW: Final = 128
MAX_SENDERS: Final = 1024  # windows kept; only holders of a room key make one
MAX_AGE_S: Final = 60  # a counter's seconds further than this from the receiver's clock
MAX_SENDER: Final = 0xFFFFFFFF
KEY_SALT: Final = b"confsfu relay v1"
MIN_SECRET_BYTES: Final = 16


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869's HKDF with SHA-256: extract then expand."""
    if not 0 < length <= 255 * 32:
        raise ValueError("length out of range")
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes((i,)), "sha256")
        out += block
    return out[:length]


def room_key(secret: bytes, room: str) -> bytes:
    """The 32-byte key of `room`'s relay datagrams, from the deployment's relay secret."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError("relay secret too short")
    return hkdf_sha256(secret, KEY_SALT, b"room\x00" + room.encode())


class RoomKey:
    """A room key ready to tag: the keyed hash's state made once, copied per datagram."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hashlib.blake2b(key=key, digest_size=TAG_BYTES)

    def tag(self, *parts: bytes) -> bytes:
        h = self._base.copy()
        for part in parts:
            h.update(part)
        return h.digest()


class ReplayWindow:
    """The counters seen from one sender: the highest, and a bit for each of the `WINDOW`
    below it (bit i: highest - i seen)."""

    __slots__ = ("_seen", "highest")

    def __init__(self) -> None:
        self.highest = -1
        self._seen = 0

    def fresh(self, counter: int) -> bool:
        """Not seen, and not older than the window."""
        if counter > self.highest:
            return True
        behind = self.highest - counter
        return behind < WINDOW and not (self._seen >> behind) & 1

    def accept(self, counter: int) -> None:
        """Mark `counter` seen (after `fresh` said so and the tag was right)."""
        if counter > self.highest:
            ahead = counter - self.highest
            self._seen = ((self._seen << ahead) | 1) & ((1 << WINDOW) - 1) if ahead < WINDOW else 1
            self.highest = counter
        else:
            self._seen |= 1 << (self.highest - counter)


class Sealer:
    """One sender's end: its id and counter."""

    def __init__(self, sender: int, now_s: int) -> None:
        if not 0 <= sender <= MAX_SENDER:
            raise ValueError("sender out of range")
        self.sender = sender
        self._counter = now_s << 32

    def tick(self, now_s: int) -> None:
        """The clock's seconds: the counter never stays below them."""
        self._counter = max(self._counter, now_s << 32)

    def seal(self, key: RoomKey, frame: bytes, receiver: int) -> bytes:
        """`frame` for the worker `receiver`, sealed."""
        self._counter += 1
        trailer = TRAILER.pack(self.sender, self._counter)
        return b"".join((frame, trailer, key.tag(frame, trailer, _RECEIVER.pack(receiver))))


class Opener:
    """A receiver's end (the worker `receiver`): a replay window per sender, and why datagrams
    were refused."""

    def __init__(self, receiver: int, now_s: int) -> None:
        if not 0 <= receiver <= MAX_SENDER:
            raise ValueError("receiver out of range")
        self._receiver = _RECEIVER.pack(receiver)
        self.now_s = now_s
        self.counts: Counter[str] = Counter()
        self._windows: dict[int, ReplayWindow] = {}

    def tick(self, now_s: int) -> None:
        self.now_s = now_s

    def open(self, data: bytes, keys: Mapping[int, RoomKey]) -> tuple[int, bytes] | None:
        """(sender, frame) of an authentic datagram not seen before, else None (counted).
        `keys`: by room index, the rooms this receiver shares."""
        n = len(data)  # (written for speed: once per relayed packet)
        if n < MIN_SEALED_BYTES or n > MAX_SEALED_BYTES:
            self.counts["auth_bad_length"] += 1
            return None
        key = keys.get(_ROOM.unpack_from(data, ROOM_AT)[0])
        if key is None:
            self.counts["auth_unknown_room"] += 1
            return None
        at = n - TRAILER_BYTES
        sender, counter, tag = _SEALED_TAIL.unpack_from(data, at)
        if abs((counter >> 32) - self.now_s) > MAX_AGE_S:
            self.counts["auth_stale"] += 1
            return None
        window = self._windows.get(sender)
        if window is not None and counter <= window.highest and not window.fresh(counter):
            self.counts["auth_replayed"] += 1
            return None
        h = key._base.copy()
        h.update(data[: n - TAG_BYTES])
        h.update(self._receiver)
        if not hmac.compare_digest(h.digest(), tag):
            self.counts["auth_bad_tag"] += 1
            return None
        if window is None:
            if len(self._windows) >= MAX_SENDERS:
                self.counts["auth_too_many_senders"] += 1
                return None
            window = self._windows[sender] = ReplayWindow()
        window.accept(counter)
        return sender, data[:at]
