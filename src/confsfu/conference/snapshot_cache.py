"""The snapshot record cache: the snapshot dicts of a meeting's records (chat messages, the
report's chat records, floor grants, chair actions) as the last capture built them, so the
next capture of the same meeting builds only the records that are new or changed.

A record is found by identity (the cache holds it, so its id cannot be reused) and, for the
mutable ones, by the fields that may still change (a grant's end, a chat record's removal).
Each capture keeps only the records it used: the cache is bounded by the snapshot's own
bounds, and a removed message drops out with the capture that no longer lists it. The unix
offset is part of every built dict: another offset empties the cache.

The dicts are shared between the captures that use the cache: read-only to their users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")

_Entry = tuple[object, object, dict[str, Any]]  # record, its state, its dict


@dataclass(slots=True)
class _List:
    records: tuple[object, ...]
    states: tuple[object, ...] | None
    out: list[dict[str, Any]]
    entries: dict[int, _Entry]  # by id(record)


class SnapshotCache:
    """One meeting's built record dicts, from one capture to the next."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self._lists: dict[str, _List] = {}
        self._seen: set[str] = set()

    def begin(self, offset_ms: int) -> None:
        """A capture starts, times shifted by `offset_ms`."""
        if offset_ms != self._offset:
            self._offset, self._lists = offset_ms, {}
        self._seen = set()

    def end(self) -> None:
        """The capture is done: lists it did not ask for are forgotten."""
        for name in self._lists.keys() - self._seen:
            del self._lists[name]

    def dicts(
        self,
        name: str,
        records: Iterable[R],
        build: Callable[[R], dict[str, Any]],
        state: Callable[[R], object] | None = None,
    ) -> list[dict[str, Any]]:
        """`build(record)` for each of the records (a list called `name`), reusing the dicts
        built before for the same record in the same `state`. The list is new, its dicts not."""
        kept = tuple(records)
        states = None if state is None else tuple([state(r) for r in kept])
        last = self._lists.get(name)
        self._seen.add(name)
        if last is not None and last.records == kept and last.states == states:
            return list(last.out)  # the same records (C compares them): the common case
        before = {} if last is None else last.entries
        entries: dict[int, _Entry] = {}
        out: list[dict[str, Any]] = []
        start = 0
        shift = None if last is None else _shift(last, kept, states)
        if last is not None and shift is not None:  # the oldest dropped, the newest added
            start = len(last.records) - shift
            out = last.out[shift:]
            for record in kept[:start]:
                entries[id(record)] = before[id(record)]
        for i, record in enumerate(kept[start:], start):
            key = id(record)
            now = None if states is None else states[i]
            entry = before.get(key) or entries.get(key)
            if entry is None or entry[0] is not record or entry[1] != now:
                entry = (record, now, build(record))
            entries[key] = entry
            out.append(entry[2])
        self._lists[name] = _List(kept, states, out, entries)
        return list(out)

    def __len__(self) -> int:
        """Records held (those the last capture listed)."""
        return sum(len(lst.entries) for lst in self._lists.values())


def _shift(last: _List, kept: tuple[object, ...], states: tuple[object, ...] | None) -> int | None:
    """How many of the last records dropped from the front if the rest start `kept`, in the
    same states (records are appended and the oldest dropped: the usual change); else None."""
    if not kept:
        return None
    first = kept[0]
    shift = next((i for i, r in enumerate(last.records) if r is first), None)
    if shift is None:
        return None
    n = len(last.records) - shift
    if n > len(kept) or tuple(map(id, kept[:n])) != tuple(map(id, last.records[shift:])):
        return None
    if states is not None and (last.states is None or states[:n] != last.states[shift:]):
        return None
    return shift
