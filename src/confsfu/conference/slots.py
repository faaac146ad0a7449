"""Which participant each of a subscriber's fixed slots carries, kept stable across changes."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def stable_assign(current: Sequence[T | None], wanted: Sequence[T]) -> list[T | None]:
    """Fill len(current) slots with the first len(current) of `wanted`.

    Someone already in a slot keeps it; newcomers take the freed slots in order.
    """
    chosen = list(dict.fromkeys(wanted))[: len(current)]
    keep = set(chosen)
    result: list[T | None] = [p if p in keep else None for p in current]
    placed = {p for p in result if p is not None}
    newcomers = iter(p for p in chosen if p not in placed)
    for i, p in enumerate(result):
        if p is None:
            result[i] = next(newcomers, None)
    return result


def rank_for_audio(others_in_join_order: Sequence[str], last_heard_ms: dict[str, int]) -> list[str]:
    """Most recently heard first; the never-heard follow in join order."""
    heard = sorted(
        (p for p in others_in_join_order if p in last_heard_ms),
        key=lambda p: -last_heard_ms[p],
    )
    rest = [p for p in others_in_join_order if p not in last_heard_ms]
    return heard + rest
