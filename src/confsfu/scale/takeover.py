"""A room taken over live when the node of its authority dies (sans-IO; docs/scale-out.md,
"A node taken over"): the rules that say, on a relay member, what becomes of a page whose
authority link ended, and, at its front, when the member's follower room is **promoted** to
the room's meeting. The Redis claim is the arbiter: only the node whose claim won promotes;
a page held for a promotion that never comes is closed with 1012 and comes again, as before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from confsfu.scale.directory import Local, Remote, Wait

HOLD_LEASES = 2  # a held page waits this many node leases ...
HOLD_EXTRA_MS = 2_000  # ... and this much more for its node's front to claim and promote


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep the page and its media; it is adopted by a promotion before `until_ms`, or
    closed with 1012 then."""

    until_ms: int


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the page with 1012 now: it comes again into the room's next home."""

    why: str


LinkEnd = Hold | Reconnect | None


def hold_ms(lease_ms: int) -> int:
    """How long a page whose authority node went waits for this node to take the room over:
    the dead node's lease lapses within `lease_ms`, the front looks each second."""
    return HOLD_LEASES * max(0, lease_ms) + HOLD_EXTRA_MS


def link_ended(
    *, bye: bool, across_nodes: bool, closing: bool, now_ms: int, lease_ms: int
) -> LinkEnd:
    """An authority link ended. `bye`: the authority said goodbye (the page was told; nothing
    to do). `across_nodes`: the authority was another node's (a worker of this node has no
    lease: its rooms go to their next home through a snapshot). `closing`: the page's own
    session is ending anyway."""
    if bye or closing:
        return None
    if not across_nodes:
        return Reconnect("the room's home worker is gone")
    return Hold(now_ms + hold_ms(lease_ms))


def hold_over(hold: Hold, *, adopted: bool, now_ms: int) -> bool:
    """Whether a held page is closed now (1012): not adopted by its deadline."""
    return not adopted and now_ms >= hold.until_ms


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


FrontStep = Promote | Follow | Forget


def front_step(*, home_here: bool, claim_held: bool, route: Local | Remote | Wait) -> FrontStep:
    """Each second, for a room this node serves as a relay member: `route` is what the room
    directory said for it (`FrontNodes.route`, never piping: a claim was tried if the
    authority's lease had lapsed), `claim_held` whether this node holds the room's claim now.
    Promote only on a claim won in Redis: a `Local` while Redis is unreachable is not one
    (the authority may well be alive), so the room goes on following."""
    if not home_here:
        return Forget()
    if isinstance(route, Local) and claim_held:
        return Promote()
    return Follow()


WorkerStep = Literal["promote", "replace", "held"]


def worker_step(*, follows: bool, connected: int, takeover: bool) -> WorkerStep:
    """A room's snapshot handed to a worker that has the room live: on a takeover (the front
    won the claim of a room it served as a member) a follower with pages connected is promoted
    (their media stays); a follower otherwise (nobody here, or its home worker on this node
    died: its pages are closing) is replaced by the snapshot's meeting; a room that is the
    meeting here already keeps it (`held`)."""
    if not follows:
        return "held"
    return "promote" if takeover and connected > 0 else "replace"
