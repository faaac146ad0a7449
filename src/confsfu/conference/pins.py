"""Whom each participant pinned for themselves: their stage shows that person (slot_plan)."""

from __future__ import annotations

from collections.abc import Collection


class PinError(ValueError):
    """A pin was refused; `code` is the protocol error code."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


class Pins:
    """One pin per participant at most (a new pin replaces the old), only of someone else in
    the room; a pin ends when either of the two leaves."""

    __slots__ = ("_pins",)

    def __init__(self) -> None:
        self._pins: dict[str, str] = {}

    def pin(self, pid: str, target: str | None, present: Collection[str]) -> bool:
        """`pid` pins `target` (None: unpins); returns whether anything changed."""
        if target is not None:
            if target == pid:
                raise PinError("refused", "you cannot pin yourself", "pin_self")
            if target not in present:
                raise PinError("no_such_participant", f"there is no participant {target!r}")
        if self._pins.get(pid) == target:
            return False
        if target is None:
            del self._pins[pid]
        else:
            self._pins[pid] = target
        return True

    def of(self, pid: str) -> str | None:
        """Whom `pid` pinned, if anyone."""
        return self._pins.get(pid)

    def left(self, pid: str) -> list[str]:
        """`pid` left the room: its pin and every pin of it end; returns whose pins of it ended."""
        self._pins.pop(pid, None)
        ended = [p for p, target in self._pins.items() if target == pid]
        for p in ended:
            del self._pins[p]
        return ended

    def __len__(self) -> int:
        return len(self._pins)
