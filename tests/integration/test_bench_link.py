"""`confsfu bench` with a scheduled link: a subscriber behind an emulated downlink that narrows
and widens again gets its adaptation figures per phase (performance is reported, not asserted:
the bounds here are loose)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confsfu.cli import main as cli_main

pytestmark = pytest.mark.loopback


def test_a_scheduled_subscriber_goes_down_in_the_narrow_phase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fanout", "--participants", "3", "--duration", "2", "--workers", "1", "--quiet"]
    args += ["--set", "scheduled_links=1", "--set", "link_schedule=2000x3,300x5,2000x3"]
    args += ["--no-idle-workers", "--out", str(tmp_path)]
    assert cli_main(["bench", *args]) == 0
    printed = capsys.readouterr().out
    assert "scheduled links (twcc): 2000x3,300x5,2000x3" in printed
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["window_s"] >= 11  # the window covers the schedule, not just --duration 2
    adaptation = result["adaptation"]
    assert adaptation["planned"] == 1 and adaptation["estimator"] == "twcc"
    (viewer,) = adaptation["subscribers"]
    assert viewer["name"] == "Viewer 000"  # a receive-only subscriber gets the link first
    link = viewer["link"]
    assert link["numbered"] > 0.9 * link["packets"] > 0  # it answered with transport-cc
    first, narrow, last = viewer["phases"]
    assert [p["kbit_s"] for p in (first, narrow, last)] == [2000, 300, 2000]
    assert all(p["observed_s"] == p["seconds"] for p in (first, narrow, last))
    assert first["stage_frames"] > 0 and first["widths"]
    # At 300 kbit/s the 1280 layer (1.3 Mbit/s) cannot stay: a lower layer's frames arrive in
    # the narrow phase or, at the latest, as the link widens again.
    assert min(narrow["widths"] + last["widths"][:1]) < 1280, viewer["phases"]
    for phase in (first, narrow, last):
        assert 0 < phase["link_use_pct"] <= 110, phase  # RTP bytes: never much over the rate
        assert 0 <= phase["audio_loss_pct"] <= 100
        assert 0 <= phase["longest_freeze_s"] <= phase["seconds"]
    assert f"{narrow['kbit_s']:>5} kbit/s x 5 s: down" in printed
