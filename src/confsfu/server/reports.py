"""Meeting reports written to files: at shutdown for every room, and when a meeting ends."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from confsfu.server.clock import clock_ms

if TYPE_CHECKING:
    from confsfu.server.live_room import LiveRoom

log = logging.getLogger(__name__)


def write_reports(rooms: Mapping[str, LiveRoom], directory: Path) -> list[Path]:
    """Each room's meeting report so far, as JSON and CSV files in `directory` (created).

    A room whose report cannot be written is logged and skipped; shutdown goes on.
    """
    if not rooms:
        return []
    now_ms = clock_ms()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        log.exception("could not create the report directory %s", directory)
        return []
    written: list[Path] = []
    for name, live in rooms.items():
        try:
            for fmt, text in _report_contents(live, now_ms).items():
                path = directory / f"{_file_safe(name)}-{stamp}.{fmt}"
                partial = path.with_suffix(f".{fmt}.{os.getpid()}.partial")  # one per writer
                partial.write_text(text, encoding="utf-8")
                partial.replace(path)
                written.append(path)
                log.info("meeting report written to %s", path, extra={"room": name})
        except Exception:  # one room's failure must not cost the others their reports
            log.exception("could not write the meeting report", extra={"room": name})
    return written


def _report_contents(live: LiveRoom, now_ms: int) -> dict[str, str]:
    meeting, report = live.meeting, live.meeting.report
    report.set_speaking_ms(meeting.speakers.speaking_totals())
    return {
        "json": report.to_json(now_ms),
        "csv": report.full_csv(now_ms),
    }


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "room"
