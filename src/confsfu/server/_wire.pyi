"""The hot path's IO (C, src/confsfu/server/_wire.c, _route.c, _fanout.c, _seal.c, _intake.c and
_tap.c): the intake from the sockets, fan_out over a layer's slots, header patch, SRTP protect,
history and batched send."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from confsfu.forwarding._reception import Reception
from confsfu.forwarding._slot import SlotForwarder
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.ids import LayerKey

MAX_PACKET: int
MAX_DATAGRAM: int
TRANSPORT_LOG: int  # transport-wide numbers whose send a Route remembers

class Route:
    """Where one connection's packets go: its SRTP context and socket."""

    srtp_errors: int
    send_errors: int
    oversized: int
    max_datagram: int
    dedicated: int
    sealed: int
    @property
    def ready(self) -> bool: ...
    @property
    def repeats(self) -> int:
        """Packets refused (among srtp_errors): their index protected a different packet."""
    def over_socket(self, srtp: int, owner: object, fd: int, host: str, port: int) -> None: ...
    def over_callable(
        self, srtp: int, owner: object, sendto: Callable[[bytes, Any], object], addr: Any
    ) -> None: ...
    def clear(self) -> None: ...
    def dedicate(self, ssrc: int, srtp: int, owner: object) -> None:
        """RTP of `ssrc` is protected with context `srtp` (kept alive by `owner`) from now on."""
    def seal(self, ssrc: int, sealer: Sealer) -> None:
        """RTP of `ssrc` is protected by `sealer` from now on (like `dedicate`); the route
        keeps the SSRC's packet index, so one sealer serves all of a connection's SSRCs."""
    def send(self, packet: bytes, rtcp: bool = False, stamp: bool = True) -> bool: ...
    transport_cc_id: int
    @property
    def stamped(self) -> int: ...
    @property
    def last_transport_seq(self) -> int: ...
    def transport_sent(self, seqs: Sequence[int]) -> list[tuple[int, int] | None]: ...

class Sealer:
    """SRTP AEAD AES-GCM protection of a connection's outgoing RTP (session key and salt)."""

    refused: int
    repeats: int
    def __init__(self, key: bytes, salt: bytes) -> None: ...
    def seal(self, packet: bytes) -> bytes | None:
        """The SRTP packet, or None when it is not RTP, too old to protect, or its index
        protected a different packet before (the packets given to `seal` are one stream)."""

class Wire:
    """One outgoing RTP stream on a route: its header template, counters and history."""

    packets: int
    payload_octets: int
    packet_bytes: int
    oversized: int
    def __init__(
        self, route: Route, header: bytes, abs_send_time_at: int = 0, history: int = 1024
    ) -> None: ...
    @property
    def route(self) -> Route: ...
    def queue(
        self, marker: bool, sequence_number: int, timestamp: int, send_time: bytes, payload: bytes
    ) -> int: ...
    def transport_seq(self, sequence_number: int) -> int | None: ...
    def sent(self, sequence_number: int) -> tuple[bool, int, bytes, bytes] | None:
        """(marker, timestamp, payload, 3-byte send time) of a packet sent, while the history
        keeps it."""

S = TypeVar("S")

def fan_out(
    entries: tuple[tuple[S, SlotForwarder, Wire], ...],
    inbound: SourcePacket,
    now_ms: int,
    send_time: bytes,
) -> tuple[int, int, list[S] | None, list[S] | None]:
    """Queue one incoming packet on every (slot, forwarder, wire) whose forwarder forwards it:
    (packets, bytes, slots whose source changed, slots whose route is down)."""

def set_protect(
    protect_rtp: int, protect_rtcp: int, unprotect_rtp: int, unprotect_rtcp: int
) -> None: ...
def unprotect(srtp: int, data: bytes, rtcp: bool) -> bytes | None:
    """One incoming packet decrypted; None when libsrtp refuses it or it is too long."""

class Opener:
    """SRTP AEAD AES-GCM authentication, replay check and decryption of a connection's
    incoming RTP (session key and salt)."""

    refused: int
    streams: int
    def __init__(self, key: bytes, salt: bytes) -> None: ...
    def open(self, packet: bytes) -> bytes | None:
        """The clear RTP packet, or None when it is refused."""

def sealing_available() -> bool:
    """Whether OpenSSL's libcrypto could be loaded, so that Sealers and Openers can be made."""

def flush() -> int:
    """Send every queued packet; how many queued since the last flush were not sent."""

def pending() -> int: ...

class Intake:
    """A publish connection's RTP from its sockets to the slots (_intake.c, _tap.c): SRTP
    opened, the header read, its Reception found and the packet fanned out, without Python;
    `slow` gets the packets it does not take (unknown SSRCs, RTX, malformed) before anything is
    counted."""

    level_id: int
    level_floor: int
    voice_frame_bytes: int
    voice_dbov: int
    gate_audio: bool
    gate_video: bool
    opener: Opener | None
    on_gap: Callable[[int], object] | None
    relay: dict[LayerKey, Callable[[bytes], object]] | None
    @property
    def pid(self) -> str: ...
    def __init__(
        self,
        pid: str,
        fan_outs: dict[LayerKey, Any],
        slow: Callable[[bytes, int], object],
        on_level: Callable[[int, str, int, bool], object],
        on_keyframe: Callable[[LayerKey], object],
        after_fan_out: Callable[[Any, Any], object],
        schedule_flush: Callable[[], object],
        *,
        max_packet: int = 2048,
    ) -> None: ...
    def tap(self, fallback: Callable[[bytes, Any], object]) -> Tap:
        """A socket protocol's datagram_received: what the intake can open goes to it,
        everything else to `fallback`."""
    def set_srtp(self, context: int | None, owner: object) -> None:
        """libsrtp's receiving context (its address, as `srtp_context` gives it) opens the RTP
        when there is no `opener` (the AES-CM profile); `owner` keeps it alive."""
    def add(self, track: Reception) -> bool: ...
    def holds(self, ssrc: int) -> bool: ...
    def remove(self, ssrc: int) -> None:
        """Stop taking the track of `ssrc` (and its repair streams), or the repair stream."""
    def add_repair(self, ssrc: int, payload_type: int, media: Reception) -> bool:
        """RTX of `ssrc` with `payload_type` repairs the track `media` from now on (unwrapped
        in C); False when the intake holds as many as it can."""
    def take_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(counters, drops by reason) of the packets taken since the last call."""
    def receive(self, clear: bytes, now_ms: int) -> None:
        """One decrypted RTP packet, as if a socket had read it."""

class Tap:
    """One socket's datagram_received in front of an Intake (`Intake.tap`)."""

    @property
    def watching(self) -> bool: ...
    def __call__(self, data: bytes, addr: Any) -> None: ...
    def watch(self, sock: Any) -> None:
        """`pump` reads this socket too (a dup of it, held until `unwatch`); `sock` is a
        datagram socket or its file descriptor."""
    def unwatch(self) -> None:
        """`pump` no longer reads the socket, and the dup is closed."""

def pump(defer: Callable[[Any, bytes, Any], object], limit: int = 256) -> int:
    """Read what waits in the watched sockets now (at most `limit` datagrams): the intakes take
    their RTP (fanned out and queued: `flush` sends it), everything else goes to
    `defer(fallback, data, addr)` (e.g. the loop's call_soon). How many were read."""
