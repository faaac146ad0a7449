"""The front's reading of its workers' control frames: a snapshot kept, a room forgotten, and
anything else ignored without raising."""

from __future__ import annotations

import json

import pytest

from confsfu.server.front_snapshots import FrontSnapshots
from confsfu.server.worker_control import forgotten_frame, snapshot_frame
from tests import conftest


def front_snapshots() -> FrontSnapshots:
    return FrontSnapshots(conftest.test_settings(), lambda index, epoch: True)


def test_a_snapshot_frame_is_kept_and_a_forgotten_room_dropped() -> None:
    f = front_snapshots()
    f._on_frame(snapshot_frame("demo", '{"version":1}', 123))
    assert f.store.rooms()["demo"]["taken_unix_ms"] == 123
    assert f.store.texts()["demo"] == '{"version":1}'
    f._on_frame(forgotten_frame("demo"))
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
    f._on_frame(frame)
    assert f.store.rooms() == {}
