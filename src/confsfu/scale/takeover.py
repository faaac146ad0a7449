"""A room taken over live when the node of its authority dies (sans-IO; docs/scale-out.md,
"A node taken over"): the rules that say, on a relay member, what becomes of a page whose
authority link ended, and, at its front, when the member's follower room is **promoted** to
the room's meeting. The Redis claim is the arbiter: only the node whose claim won promotes;
a page held for a promotion that never comes is closed with 1012 and comes again, as before.
On one node (`serve --workers N`) a room's home *worker* that dies is taken over the same way,
without a claim: its front knows at once and picks the new home among the room's members
(`new_home`). Meeting messages a held page sends wait in a bounded queue (`HeldMessages`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from confsfu.scale.directory import Local, Remote, Wait

HOLD_LEASES = 2  # a held page waits this many node leases ...
HOLD_EXTRA_MS = 2_000  # ... and this much more for its node's front to claim and promote
WORKER_HOLD_MS = 8_000  # a home worker died: its front promotes at once (a loaded worker slowly)
HELD_MESSAGES = 32  # a held page's meeting messages kept for the promoted meeting: at most
HELD_BYTES = 64 << 10  # this many, of at most this many bytes together


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep the page and its media; it is adopted by a promotion before `until_ms`, or
    closed with 1012 then."""

    until_ms: int


LinkEnd = Hold | None


def hold_ms(lease_ms: int) -> int:
    """How long a page whose authority node went waits for this node to take the room over:
    the dead node's lease lapses within `lease_ms`, the front looks each second."""
    return HOLD_LEASES * max(0, lease_ms) + HOLD_EXTRA_MS


def link_ended(
    *, bye: bool, across_nodes: bool, closing: bool, now_ms: int, lease_ms: int
) -> LinkEnd:
    """An authority link ended. `bye`: the authority said goodbye (the page was told; nothing
    to do). `across_nodes`: the authority was another node's (held for its lease to lapse
    and this node to claim the room); else a worker of this node (no lease: its front saw
    the death and promotes a member at once, `WORKER_HOLD_MS` is for a loaded worker).
    `closing`: the page's own session is ending anyway."""
    if bye or closing:
        return None
    if not across_nodes:
        return Hold(now_ms + WORKER_HOLD_MS)
    return Hold(now_ms + hold_ms(lease_ms))


def hold_over(hold: Hold, *, adopted: bool, now_ms: int) -> bool:
    """Whether a held page is closed now (1012): not adopted by its deadline."""
    return not adopted and now_ms >= hold.until_ms


def new_home(members: Mapping[int, int], alive: Callable[[int], bool]) -> int | None:
    """A room's home worker died: the live member (worker index -> its connections of the
    room) it is promoted on, the one with the most connections (fewest pages to move), the
    lowest index among equals; None (no live member): the room waits for a join."""
    live = [(-count, index) for index, count in members.items() if alive(index)]
    return min(live)[1] if live else None


class HeldMessages:
    """A held page's meeting messages (hands, chat, a chair's acts), in order, for the meeting
    promoted here. Bounded: beyond `HELD_MESSAGES` messages or `HELD_BYTES` bytes a message
    is refused (`offer` False: the page is told it was not handled; the room state it gets
    at the promotion shows what counts)."""

    __slots__ = ("_bytes", "_texts", "refused")

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._bytes = 0
        self.refused = 0

    def offer(self, text: str) -> bool:
        size = len(text.encode())
        if len(self._texts) >= HELD_MESSAGES or self._bytes + size > HELD_BYTES:
            self.refused += 1
            return False
        self._texts.append(text)
        self._bytes += size
        return True

    def take(self) -> list[str]:
        """Every message kept, oldest first; the queue is empty after."""
        texts, self._texts, self._bytes = self._texts, [], 0
        return texts

    def __len__(self) -> int:
        return len(self._texts)


@dataclass(frozen=True, slots=True)
class Promote:
    """This node holds the room's claim now: its follower room becomes the meeting, from the
    snapshot in Redis (None: there was none) merged with what it knows."""


@dataclass(frozen=True, slots=True)
class Follow:
    """The authority is elsewhere (or not known yet): go on following."""


@dataclass(frozen=True, slots=True)
class Forget:
    """No home of the room here any more: nothing to promote (a join claims and restores)."""


@dataclass(frozen=True, slots=True)
class Lost:
    """Another node than the one this node's part followed holds the room now (this node lost
    the claim race): pages held for a takeover here are closed with 1012 at once (they come
    again, into that node's meeting), not at their hold's end."""

    node: str


FrontStep = Promote | Follow | Forget | Lost


def front_step(
    *,
    home_here: bool,
    claim_held: bool,
    route: Local | Remote | Wait,
    authority: str | None = None,
) -> FrontStep:
    """Each second, for a room this node serves as a relay member: `route` is what the room
    directory said for it (`FrontNodes.route`, read only: a claim was tried if the
    authority's lease had lapsed), `claim_held` whether this node holds the room's claim now.
    Promote only on a claim won in Redis: a `Local` while Redis is unreachable is not one
    (the authority may well be alive), so the room goes on following. `authority`: the node
    this node's part followed (None: not known); a `Remote` naming another is `Lost`."""
    if not home_here:
        return Forget()
    if isinstance(route, Local) and claim_held:
        return Promote()
    if isinstance(route, Remote) and authority is not None and route.node != authority:
        return Lost(route.node)
    return Follow()


WorkerStep = Literal["promote", "replace", "held"]


def worker_step(*, follows: bool, connected: int, takeover: bool) -> WorkerStep:
    """A room's snapshot handed to a worker that has the room live: on a takeover (the front
    won the claim of a room it served as a member, or picked this worker as the new home of a
    room whose home worker died) a follower with pages connected is promoted (their media
    stays); a follower otherwise (nobody here) is replaced by the snapshot's meeting; a room
    that is the meeting here already keeps it (`held`)."""
    if not follows:
        return "held"
    return "promote" if takeover and connected > 0 else "replace"
