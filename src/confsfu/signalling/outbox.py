"""How much one connection may have waiting to be written before it is closed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outbox:
    """Counts one connection's unwritten messages against its limits.

    A page that stops reading grows this; past either limit the connection is closed (its
    messages are not dropped one by one: a page missing some room state would be wrong, not
    just late).
    """

    max_messages: int
    max_bytes: int
    messages: int = 0
    bytes: int = 0
    overflowed: bool = False

    def admit(self, size: int) -> bool:
        """A message of `size` bytes is to be queued: False (and overflowed from then on) when
        it would take the queue past a limit."""
        if self.overflowed:
            return False
        if self.messages + 1 > self.max_messages or self.bytes + size > self.max_bytes:
            self.overflowed = True
            return False
        self.messages += 1
        self.bytes += size
        return True

    def written(self, size: int) -> None:
        """A queued message of `size` bytes left the queue."""
        self.messages -= 1
        self.bytes -= size

    def why(self) -> str:
        return (
            f"the page stopped reading: more than {self.max_messages} messages or "
            f"{self.max_bytes} bytes waiting"
        )
