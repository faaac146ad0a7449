"""The snapshot record cache and the orjson encoding: a capture with the meeting's cache is the
same value as one without, however the meeting changed between them; the cache keeps only
what the last capture listed; what JSON cannot hold is a SnapshotError."""

from __future__ import annotations

import contextlib
import json
import random

import pytest

from confsfu.conference import chat
from confsfu.conference.meeting import Meeting
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.snapshot import SnapshotCache, capture, capture_bytes
from confsfu.conference.snapshot_model import (
    MAX_SNAPSHOT_BYTES,
    SnapshotError,
    encode,
    encode_bytes,
)

UNIX = 1_700_000_000_000


def meeting() -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=UNIX, scheduled_minutes=60)
    m.chat = chat.Chat(rate_count=10**6)
    m.join(0, "chair", "Chair", Role.CHAIR, "t-chair")
    for i in range(6):
        m.join(1, f"p{i}", f"P {i}", Role.PARTICIPANT, f"t-{i}")
    return m


def step(m: Meeting, t: int, rng: random.Random) -> None:
    """One change of the kinds a capture's cached records see: new, ended, removed."""
    choice = rng.randrange(5)
    pid = f"p{rng.randrange(6)}"
    if choice == 0:
        m.send_chat(t, pid, f"message {t} \U0001f600")
    elif choice == 1:
        m.chair(t, "chair", "grant_floor", target=pid, limit_s=60)
    elif choice == 2:
        m.chair(t, "chair", "revoke_floor", target=m.floor.holder or pid)
    elif choice == 3:
        history = m.chat.history()
        if history:
            m.chair(t, "chair", "remove_chat", message_id=rng.choice(history).id)
    else:
        m.chair(t, "chair", "mute", target=pid, kind="audio")


def test_a_cached_capture_equals_a_fresh_one_through_changes() -> None:
    rng = random.Random(23)
    m, cache = meeting(), SnapshotCache()
    for t in range(2, 700):
        with contextlib.suppress(ValueError):  # a refused request changes nothing
            step(m, t, rng)
        if t % 3 == 0:
            cached = capture(m, cache)
            assert cached == capture(m)
            assert cached["chat"]["history"] == capture(m)["chat"]["history"]
    m.chair(800, "chair", "end")
    assert capture(m, cache) == capture(m)


def test_the_cache_keeps_only_what_the_last_capture_listed() -> None:
    m, cache = meeting(), SnapshotCache()
    for t in range(2, 2 + 3 * chat.HISTORY):
        m.send_chat(t, "p0", "hello")
        assert capture(m, cache) == capture(m)  # the history's oldest drop: a shifted list
    value = capture(m, cache)
    listed = sum(len(value["report"][k]) for k in ("grants", "actions", "chat"))
    assert len(cache) == len(value["chat"]["history"]) + listed
    removed = m.chat.history()[-1].id
    m.chair(10_000, "chair", "remove_chat", message_id=removed)
    value = capture(m, cache)
    assert removed not in [msg["id"] for msg in value["chat"]["history"]]
    assert value == capture(m)


def test_encoding_is_the_compact_json_it_was() -> None:
    m = meeting()
    m.send_chat(5, "p1", 'caf\u00e9 \U0001f600 "quoted" \\ \n tab\t')
    value = capture(m)
    old = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert encode(value) == old
    assert capture_bytes(m) == old.encode()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "\udc80"},  # a lone surrogate (a JWT's name may carry one)
        {1: "a key that is not a string"},
        {"n": 1 << 70},
        {"text": "\U0001f600" * (MAX_SNAPSHOT_BYTES // 4 + 1)},
    ],
)
def test_what_json_cannot_hold_is_a_snapshot_error(bad: dict[object, object]) -> None:
    with pytest.raises(SnapshotError):
        encode_bytes(bad)  # type: ignore[arg-type]
