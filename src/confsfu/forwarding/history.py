"""Recently sent packets by sequence number, to answer NACKs.

The load generator's publishers keep theirs here; the server's slots keep theirs in their
`confsfu.server._wire.Wire`, which records each packet as it queues it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class PacketHistory(Generic[T]):
    """A ring of the last `size` packets sent, keyed by their 16-bit sequence number."""

    __slots__ = ("_mask", "_packets", "_seqs")

    def __init__(self, size: int = 1024) -> None:
        if size & (size - 1):
            raise ValueError("history size must be a power of two")
        self._mask = size - 1
        self._packets: list[T | None] = [None] * size
        self._seqs = [-1] * size

    def put(self, sequence_number: int, packet: T) -> None:
        i = sequence_number & self._mask
        self._packets[i] = packet
        self._seqs[i] = sequence_number

    def get(self, sequence_number: int) -> T | None:
        i = sequence_number & self._mask
        return self._packets[i] if self._seqs[i] == sequence_number else None

    def clear(self) -> None:
        self._packets = [None] * len(self._packets)
        self._seqs = [-1] * len(self._seqs)
