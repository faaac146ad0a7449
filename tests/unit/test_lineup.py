"""The room-wide lineup gives each subscriber what ranking the room for them alone would."""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.lineup import Lineup
from confsfu.conference.slots import rank_for_audio

PIDS = [f"p{i}" for i in range(8)]


def audio_alone(
    loudest: list[str],
    audible: set[str],
    holder: str | None,
    me: str,
    n: int,
    heard: Collection[str] = (),
) -> list[str]:
    """The definition, per subscriber: holder first if audible to me, then the n+1 loudest
    (the holder not twice; whoever I hear now before newcomers), then drop whoever I may not
    hear, keep n."""
    mine = audible - {me}
    first = [holder] if holder in mine else []
    talkers = sorted((p for p in loudest if p not in first), key=lambda p: p not in heard)
    picked = first + talkers[: n + 1 - len(first)]
    return [p for p in picked if p in mine][:n]


def grid_alone(
    join_order: list[str], heard: dict[str, int], me: str, page: int, n: int
) -> list[str]:
    ranked = rank_for_audio([p for p in join_order if p != me], heard)
    last = max(0, (len(ranked) - 1) // n)
    page = min(page, last)
    return ranked[page * n : (page + 1) * n]


@given(
    loudest=st.permutations(PIDS).flatmap(lambda p: st.integers(0, len(p)).map(lambda k: p[:k])),
    audible=st.sets(st.sampled_from(PIDS)),
    holder=st.none() | st.sampled_from(PIDS),
    me=st.sampled_from(PIDS),
    n=st.integers(0, 5),
    now=st.sets(st.sampled_from(PIDS)),
)
def test_audio_matches_ranking_for_one_subscriber(
    loudest: list[str], audible: set[str], holder: str | None, me: str, n: int, now: set[str]
) -> None:
    lineup = Lineup(loudest, audible, holder, ())
    for heard_now in (set(), now):
        heard = lineup.audio_for(me, n, heard_now)
        assert heard == audio_alone(list(loudest), audible, holder, me, n, heard_now)
        assert me not in heard and len(heard) <= n and len(set(heard)) == len(heard)


@given(
    join_order=st.permutations(PIDS),
    heard=st.dictionaries(st.sampled_from(PIDS), st.integers(0, 5)),
    me=st.sampled_from(PIDS),
    page=st.integers(0, 9),
    n=st.integers(1, 5),
)
def test_grid_matches_ranking_for_one_subscriber(
    join_order: list[str], heard: dict[str, int], me: str, page: int, n: int
) -> None:
    lineup = Lineup((), (), None, rank_for_audio(join_order, heard))
    assert lineup.grid_for(me, page, n) == grid_alone(list(join_order), heard, me, page, n)


def test_talkers_heard_now_keep_their_slots_while_they_talk() -> None:
    # The holder and three talkers for three slots: whoever is heard keeps it as the ranking
    # of b, c and d shifts; a talker who stops (leaves `loudest`) makes room.
    heard = Lineup(["b", "c", "d"], {"b", "c", "d", "h"}, "h", ()).audio_for("x", 3)
    assert heard == ["h", "b", "c"]
    shifted = Lineup(["d", "c", "b"], {"b", "c", "d", "h"}, "h", ())
    assert shifted.audio_for("x", 3) == ["h", "d", "c"]  # a pass with nobody heard yet
    assert shifted.audio_for("x", 3, set(heard)) == ["h", "c", "b"]
    stopped = Lineup(["d", "c"], {"b", "c", "d", "h"}, "h", ())
    assert stopped.audio_for("x", 3, set(heard)) == ["h", "c", "d"]


def test_holder_is_heard_first_even_when_silent_but_never_by_themselves() -> None:
    lineup = Lineup(["a", "b", "c"], {"a", "b", "c", "h"}, "h", ())
    assert lineup.audio_for("x", 3) == ["h", "a", "b"]
    assert lineup.audio_for("h", 3) == ["a", "b", "c"]
    assert lineup.audio_for("a", 2) == ["h", "b"]


def test_equal_rankings_are_equal_lineups() -> None:
    a = Lineup(["x", "y"], {"x", "y"}, None, ["y", "x"])
    assert a == Lineup(("x", "y"), ["y", "x"], None, ("y", "x"))
    assert hash(a) == hash(Lineup(("x", "y"), ["y", "x"], None, ("y", "x")))
    assert a != Lineup(["y", "x"], {"x", "y"}, None, ["y", "x"])  # another loudest order
    assert a != Lineup(["x", "y"], {"x"}, None, ["y", "x"])  # y no longer audible
    assert a != Lineup(["x", "y"], {"x", "y"}, "x", ["y", "x"])  # x holds the floor
    assert a != Lineup(["x", "y"], {"x", "y"}, None, ["x", "y"])  # another grid order
