"""Who each subscriber hears and sees, ranked once per pass for the whole room.

Every subscriber's audio slots and grid page come from the same two rankings with the
subscriber themselves left out, so a pass over 46 subscribers ranks the room once, not 46 times.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


class Lineup:
    """The room's rankings as of one moment: `loudest` talkers, and the grid order."""

    __slots__ = ("_audible", "_grid", "_holder", "_loudest")

    def __init__(
        self,
        loudest: Sequence[str],
        audible: Collection[str],
        holder: str | None,
        grid: Sequence[str],
    ) -> None:
        # every talker with recent speech, loudest first, then who spoke lately (speakers.py)
        self._loudest = tuple(loudest)
        self._audible = frozenset(audible)  # publishing audio and allowed to be forwarded
        self._holder = holder
        self._grid = tuple(grid)  # camera publishers, most recently heard first

    def __eq__(self, other: object) -> bool:
        """The same rankings (a subscriber's plan from an equal lineup is the same)."""
        if not isinstance(other, Lineup):
            return NotImplemented
        return (self._loudest, self._audible, self._holder, self._grid) == (
            other._loudest,
            other._audible,
            other._holder,
            other._grid,
        )

    def parts(self) -> tuple[tuple[str, ...], tuple[str, ...], str | None, tuple[str, ...]]:
        """What `Lineup(*parts)` makes an equal lineup of (the audible sorted): for another
        worker applying this room's plan (scale/authority.py)."""
        return self._loudest, tuple(sorted(self._audible)), self._holder, self._grid

    def __hash__(self) -> int:
        return hash((self._loudest, self._holder, self._grid))

    def audio_for(self, subscriber: str | None, n: int, heard: Collection[str] = ()) -> list[str]:
        """The floor holder first, then the loudest, never the subscriber themselves (None: a
        listener, who is nobody in the lineup); those in
        `heard` (what the subscriber hears now) who still talk go before louder newcomers, so
        talkers of about the same loudness do not take turns in the slots every pass.

        The holder plus the `n + 1` picked talkers are taken before the inaudible are dropped,
        so a loud but muted talker takes a place (as the detector ranks them) rather than
        letting a quieter one through.
        """
        audible = self._audible
        holder = self._holder
        first = (
            [holder] if holder is not None and holder != subscriber and holder in audible else []
        )
        talkers = [p for p in self._loudest if p not in first]
        if heard:
            talkers = [p for p in talkers if p in heard] + [p for p in talkers if p not in heard]
        room = n + 1 - len(first)
        picked = first + talkers[: max(room, 0)]
        return [p for p in picked if p != subscriber and p in audible][:n]

    def shows(self, participant: str) -> bool:
        """Whether `participant` publishes a camera anyone may see."""
        return participant in self._grid

    def may_show(self, subscriber: str, participant: str, large: str | None = None) -> bool:
        """Whether `participant` may be in `subscriber`'s grid at all (on any page); `large` is
        whoever that subscriber's stage shows with their camera (not in their grid too)."""
        return participant not in (subscriber, large) and participant in self._grid

    def grid_for(self, subscriber: str, page: int, n: int, large: str | None = None) -> list[str]:
        """One page of `n` thumbnails, without `large` (on the subscriber's stage); a page past
        the end shows the last one."""
        ranked = [p for p in self._grid if p not in (subscriber, large)]
        pages = max(1, -(-len(ranked) // n))
        page = min(page, pages - 1)
        return ranked[page * n : (page + 1) * n]
