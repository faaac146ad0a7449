"""Receive statistics of one incoming media SSRC (C, src/confsfu/forwarding/_reception.c),
sans-IO: the intake (confsfu.server._wire) counts every packet here."""

from confsfu.bandwidth._counts import LayerCounts
from confsfu.ids import LayerKey

class ReceptionReport(tuple[int, int, int, int, int]):
    """The values of one RTCP report block (RFC 3550 6.4.1), as of now."""

    @property
    def ssrc(self) -> int: ...
    @property
    def fraction_lost(self) -> int: ...
    @property
    def packets_lost(self) -> int: ...
    @property
    def highest_sequence(self) -> int: ...
    @property
    def jitter(self) -> int: ...

class Reception:
    """One incoming media SSRC: sequence numbers, loss and NACKs owed, VP8 picture ids
    unwrapped, and the layer it carries; the specification is
    confsfu.forwarding.reception.Reception."""

    ssrc: int
    bytes_received: int
    last_packet_ms: int
    last_ext: int
    def __init__(self, ssrc: int, *, nack_delay_ms: int = 10, nack_retries: int = 5) -> None: ...
    @property
    def started(self) -> bool: ...
    @property
    def key(self) -> LayerKey | None: ...
    def on_packet(self, now_ms: int, sequence_number: int, size_bytes: int) -> bool: ...
    def nacks_due(self, now_ms: int) -> list[int]: ...
    def next_nack_ms(self) -> int | None: ...
    def report(self) -> ReceptionReport: ...
    def unwrap_picture(self, picture_id: int) -> int: ...
    def route(
        self,
        key: LayerKey,
        is_video: bool,
        layer: int,
        meter: LayerCounts | None = None,
    ) -> None:
        """What an Intake does with its packets: the layer key they carry, and where the
        bytes of each (spatial, temporal) layer of its source are counted."""
