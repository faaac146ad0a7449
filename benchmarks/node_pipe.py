"""The node pipe's cost: a signalling message's round trip on a connection to the room's
authority node against one joined on another node (piped to the authority's front over TCP),
alternated rounds on this machine.

    .venv/bin/python benchmarks/node_pipe.py --rounds 10 --pings 50

Starts a redis-server on a free port and two nodes (`confsfu serve`, `node_id` a and b, one
worker each) on loopback; the first join (on a) makes a the room's authority. Each round times
`--pings` ping/pong round trips on a connection joined through a, then as many through b.
Prints each round's medians, then the medians over all pings and their difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workers import free_port, ping_rtts


def start_node(
    name: str, port: int, redis_port: int, secret: str, tmp: Path
) -> subprocess.Popen[bytes]:
    config = {
        "token_secret": secret,
        "rooms": [{"name": "r0", "open": True}],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp / f"reports-{name}"),
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "node_id": name,
        "node_address": f"127.0.0.1:{port}",
        "messages_per_s": 1000,
        "message_burst": 1000,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    command = [sys.executable, "-m", "confsfu.cli", "serve", "--config", str(path)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(tmp / f"{name}.log").open("wb"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not re.search(rb"listening on", line):
        raise SystemExit(f"node {name} did not start: {(tmp / f'{name}.log').read_text()[-2000:]}")
    return proc


async def measure(ports: dict[str, int], rounds: int, pings: int) -> dict[str, list[float]]:
    every: dict[str, list[float]] = {"direct": [], "piped": []}
    await ping_rtts(ports["direct"], "r0", 1)  # node a claims the room
    for i in range(rounds):
        medians = {}
        for way in ("direct", "piped") if i % 2 == 0 else ("piped", "direct"):
            rtts = await ping_rtts(ports[way], "r0", pings)
            every[way] += rtts
            medians[way] = round(statistics.median(rtts), 3)
        print(json.dumps({"round": i, "ping_rtt_ms_median": medians}), flush=True)
    return every


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pings", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("needs redis-server")
    secret = secrets.token_hex(24)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        redis_port, port_a, port_b = free_port(), free_port(), free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            procs.append(start_node("a", port_a, redis_port, secret, tmp))
            procs.append(start_node("b", port_b, redis_port, secret, tmp))
            ports = {"direct": port_a, "piped": port_b}
            every = asyncio.run(measure(ports, args.rounds, args.pings))
        finally:
            for proc in [*procs, redis]:
                proc.terminate()
            for proc in [*procs, redis]:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
    direct, piped = (statistics.median(every[w]) for w in ("direct", "piped"))
    p90 = {w: round(statistics.quantiles(every[w], n=10)[-1], 3) for w in every}
    print(
        json.dumps(
            {
                "pings": {w: len(v) for w, v in every.items()},
                "ping_rtt_ms_median": {"direct": round(direct, 3), "piped": round(piped, 3)},
                "ping_rtt_ms_p90": p90,
                "pipe_adds_ms": round(piped - direct, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
