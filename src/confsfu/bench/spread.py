"""Where each participant of a run joins: which room (the scenario's `rooms`) and which of the
`--url` list (`spread_peers`), and the URL list's own checks (`parse_urls`).

The rule (docs/scale-out.md, README "Benchmarks"):
- rooms: a scenario with `rooms: R` holds its meeting R times, in rooms ROOM-1 .. ROOM-R, every
  room with the same participants (same names: the report tells them apart by room). Joining
  order goes round robin over the rooms (each room's first, then each room's second, ...).
- URLs, `spread="participants"` (the default): in each room, participant k in joining order
  (the chair first, then publishers, subscribers, listeners) joins URL (k + r) mod U, r being
  the room's index from 0. Through the fronts of one deployment a room stays one room; on
  independent servers each server holds its share as a meeting of its own.
- URLs, `spread="rooms"`: room r joins URL r mod U whole (independent servers each hold whole
  meetings).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import urlsplit

from confsfu.bench.peers import plan_peers
from confsfu.bench.scenario import Scenario, ScenarioError
from confsfu.bench.worker import PeerPlan

Spread = Literal["participants", "rooms"]
SPREADS: tuple[Spread, ...] = ("participants", "rooms")
MAX_URLS = 64


def parse_urls(values: Iterable[str]) -> tuple[str, ...]:
    """The `--url` options (each may be a comma-separated list), checked: ws:// or wss://, a
    host, a valid port, a path ending in /ws, no repeats."""
    urls: list[str] = []
    for value in values:
        for part in value.split(","):
            url = part.strip()
            if not url:
                raise ScenarioError(f"--url {value!r}: an empty entry in the list")
            urls.append(_checked(url))
    if len(set(urls)) != len(urls):
        raise ScenarioError("--url: the same URL twice (each URL is one server or front)")
    if len(urls) > MAX_URLS:
        raise ScenarioError(f"--url: at most {MAX_URLS} URLs")
    return tuple(urls)


def _checked(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ScenarioError(f"--url {url!r}: must start with ws:// or wss://")
    try:
        port = parts.port
    except ValueError:
        raise ScenarioError(f"--url {url!r}: not a valid port") from None
    if not parts.hostname:
        raise ScenarioError(f"--url {url!r}: no host")
    if port == 0:
        raise ScenarioError(f"--url {url!r}: not a valid port")
    if not parts.path.endswith("/ws") or parts.query or parts.fragment:
        raise ScenarioError(f"--url {url!r}: the path must end in /ws (ws://host:port/ws)")
    return url


def is_loopback(url: str) -> bool:
    """Whether `url`'s host is this machine (its /healthz pids are this machine's)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def spread_peers(
    scenario: Scenario,
    secret: str | None,
    tokens: tuple[str, ...],
    urls: Sequence[str],
    spread: Spread = "participants",
) -> list[PeerPlan]:
    """Everyone who joins, in joining order, each with its URL and room (see the module)."""
    if not urls:
        raise ScenarioError("no URL to join")
    if spread not in SPREADS:
        raise ScenarioError(f"--spread must be one of {', '.join(SPREADS)}")
    names = scenario.room_names
    if tokens and len(names) > 1:
        raise ScenarioError("a token file's tokens name one room: rooms > 1 needs --token-secret")
    per_room = [
        plan_peers(scenario.with_values(room=room, rooms=1), secret, tokens) for room in names
    ]
    plans: list[PeerPlan] = []
    for k in range(max(len(room) for room in per_room)):
        for r, room in enumerate(per_room):
            if k >= len(room):
                continue
            at = (k + r if spread == "participants" else r) % len(urls)
            label = room[k].name if len(names) == 1 else f"{room[k].name} @{names[r]}"
            plans.append(dataclasses.replace(room[k], url=urls[at], room=names[r], label=label))
    return plans


def shares(plans: Sequence[PeerPlan]) -> dict[tuple[str, str], int]:
    """(url, room) -> how many join there: what each server holds of each room."""
    counts: dict[tuple[str, str], int] = {}
    for plan in plans:
        key = (plan.url or "", plan.room or "")
        counts[key] = counts.get(key, 0) + 1
    return counts
