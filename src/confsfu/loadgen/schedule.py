"""A link schedule for the load generator's emulated downlinks: "3000x20,300x30,..." is 3 Mbit/s
for 20 s, then 300 kbit/s for 30 s (kbit/s x seconds per phase; the last rate holds after)."""

from __future__ import annotations

import math
import re

from confsfu.bandwidth.linksim import Phase

MAX_PHASES = 32
MIN_KBIT_S, MAX_KBIT_S = 10, 1_000_000
MAX_SCHEDULE_S = 75 * 60  # the benchmark's longest window
_PHASE = re.compile(r"\s*(\d{1,7})\s*[xX]\s*(\d{1,5}(?:\.\d{1,3})?)\s*")


class ScheduleError(ValueError):
    """A link schedule that is not "KBITxSECONDS,..." with sane rates and lengths."""


def parse_link_schedule(text: str) -> tuple[Phase, ...]:
    """The phases of a schedule like "3000x20,300x30"; ScheduleError on anything else."""
    if not isinstance(text, str):
        raise ScheduleError(f"a link schedule is text like '3000x20,300x30', not {text!r}")
    parts = text.split(",")
    if not text.strip() or len(parts) > MAX_PHASES:
        raise ScheduleError(f"a link schedule has 1 to {MAX_PHASES} phases: 'KBITxSECONDS,...'")
    phases: list[Phase] = []
    for part in parts:
        match = _PHASE.fullmatch(part)
        if match is None:
            raise ScheduleError(f"{part.strip()!r} is not KBITxSECONDS (e.g. 300x30)")
        kbit_s, seconds = int(match[1]), float(match[2])
        if not MIN_KBIT_S <= kbit_s <= MAX_KBIT_S:
            raise ScheduleError(f"{part.strip()!r}: {MIN_KBIT_S} to {MAX_KBIT_S} kbit/s")
        if seconds <= 0:
            raise ScheduleError(f"{part.strip()!r}: a phase lasts more than 0 seconds")
        phases.append(Phase(kbit_s, seconds))
    total = sum(p.seconds for p in phases)
    if total > MAX_SCHEDULE_S:
        raise ScheduleError(f"a link schedule lasts at most {MAX_SCHEDULE_S} s, not {total:g}")
    return tuple(phases)


def schedule_seconds(phases: tuple[Phase, ...]) -> float:
    return math.fsum(p.seconds for p in phases)


def format_link_schedule(phases: tuple[Phase, ...]) -> str:
    return ",".join(f"{p.kbit_s}x{p.seconds:g}" for p in phases)
