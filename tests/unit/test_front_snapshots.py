"""The front's reading of its workers' control frames: a snapshot kept, a room forgotten, and
anything else ignored without raising."""

from __future__ import annotations

import json

import pytest

from confsfu.server.front_snapshots import FrontSnapshots
from confsfu.server.worker_control import forgotten_frame, snapshot_frame
from tests import conftest


def front_snapshots(home: int | None = None) -> FrontSnapshots:
    return FrontSnapshots(conftest.test_settings(), lambda index, epoch: True, lambda room: home)


def test_a_snapshot_frame_is_kept_and_a_forgotten_room_dropped() -> None:
    f = front_snapshots()
    f._on_frame(0, snapshot_frame("demo", '{"version":1}', 123))
    assert f.store.rooms()["demo"]["taken_unix_ms"] == 123
    assert f.store.texts()["demo"] == '{"version":1}'
    f._on_frame(0, forgotten_frame("demo"))
    assert f.store.rooms() == {}


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json\n{}",
        "[1, 2]\n{}",
        json.dumps({"type": "meeting_snapshot"}) + "\n{}",
        json.dumps({"type": "meeting_snapshot", "room": {"a": 1}}) + "\n{}",
        json.dumps({"type": "meeting_snapshot", "room": ["demo"]}) + "\n{}",
        json.dumps({"type": "meeting_snapshot", "room": "nowhere"}) + "\n{}",
        json.dumps({"type": "other", "room": "demo"}),
        "{" * 100_000,
        "[" * 1_000 + "\n{}",
    ],
)
def test_a_frame_out_of_shape_is_ignored(frame: str) -> None:
    f = front_snapshots()
    f._on_frame(0, frame)
    assert f.store.rooms() == {}


def test_only_the_home_workers_snapshot_is_the_rooms() -> None:
    """A room spanning workers: a relay member's meeting holds only its part of the room."""
    f = front_snapshots(home=1)
    f._on_frame(0, snapshot_frame("demo", '{"version":1,"member":true}', 100))
    assert f.store.rooms() == {}
    f._on_frame(1, snapshot_frame("demo", '{"version":1}', 123))
    f._on_frame(0, forgotten_frame("demo"))  # the member let its part go: the room stays
    assert f.store.texts()["demo"] == '{"version":1}'
