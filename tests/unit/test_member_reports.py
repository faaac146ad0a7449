"""A room's meeting report is its authority's: a relay member's part of the room never writes
one (server/hub.py, server/app.py), and two writers of the same room's report in the same
second never share a `.partial` file (server/reports.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from confsfu.server.hub import Hub
from confsfu.server.reports import write_reports
from tests import conftest


@pytest.mark.parametrize(("member", "written"), [(False, 2), (True, 0)])
async def test_an_ended_empty_room_s_report_is_written_unless_a_member_s(
    tmp_path: Path, member: bool, written: int
) -> None:
    hub = Hub(conftest.test_settings(), report_dir=tmp_path)
    live = hub.room("bench")
    live.reports_elsewhere = member
    hub._forget("bench", live)
    assert len(list(tmp_path.glob("bench-*"))) == written
    assert "bench" not in hub.rooms
    live.stop_timers()
    await live.media.close()


async def test_the_partial_file_is_the_writer_s_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = Hub(conftest.test_settings())
    live = hub.room("bench")
    names: list[str] = []
    real = Path.replace

    def replace(self: Path, target: Path) -> Path:
        names.append(self.name)
        return real(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    write_reports({"bench": live}, tmp_path)
    assert len(names) == 2 and all(f".{os.getpid()}.partial" in n for n in names)
    assert not list(tmp_path.glob("*.partial"))
    live.stop_timers()
    await live.media.close()
