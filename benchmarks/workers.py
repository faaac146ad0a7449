"""`confsfu serve --workers 2` against `--workers 1` with the same two rooms: server CPU per
forwarded packet (from the OS, front and workers together) and the front's added latency per
signalling message, alternated runs.

    .venv/bin/python benchmarks/workers.py --runs 2 --subscribers 20 --seconds 20

Each run starts `confsfu serve --workers N` on loopback with rooms r0 and r1, runs two
`confsfu bench fanout --url ... --room rK` side by side (one publisher to `--subscribers` each),
and reads the server processes' CPU time (psutil: user + system of the process and its workers)
and `packets_out` (/healthz) before and after (and over `--idle-seconds` with nobody in).
Then, the bench gone, it times `--pings` ping/pong round trips of one joined connection (the
message path, through the front or not).
Prints one JSON line per run and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def cpu_s(pid: int) -> tuple[float, float]:
    """User + system seconds of the server process (the front, or the one process) and of its
    (live) workers."""
    root = psutil.Process(pid)
    spent = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent.append(times.user + times.system)
    return spent[0], sum(spent[1:])


async def ping_rtts(port: int, room: str, count: int) -> list[float]:
    """Round trips (ms) of `count` pings on a connection joined to `room` as a guest."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws,
    ):
        await ws.receive_json(timeout=30)  # hello
        await ws.send_json({"type": "join", "room": room, "name": "timer"})
        while (await ws.receive_json(timeout=30))["type"] != "joined":
            pass
        rtts = []
        for _ in range(count):
            start = time.perf_counter()
            await ws.send_json({"type": "ping"})
            while (await ws.receive_json(timeout=30))["type"] != "pong":
                pass
            rtts.append(1000 * (time.perf_counter() - start))
            await asyncio.sleep(0.06)  # under the rate limit
        await ws.send_json({"type": "leave"})
        return rtts


def one_run(workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port, secret = free_port(), secrets.token_hex(24)
    rooms = [f"r{i}" for i in range(2)]
    config = {
        "host": "127.0.0.1",
        "token_secret": secret,
        "rooms": [{"name": r, "open": True, "max_participants": 200} for r in rooms],
        "ice": {"candidates": "loopback"},
        "report_dir": str(tmp / "reports"),
        "log_level": "WARNING",
        "messages_per_s": 200.0,
        "message_burst": 400,
    }
    path = tmp / f"serve{workers}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    serve = [sys.executable, "-m", "confsfu.cli", "serve", "--config", str(path)]
    server = subprocess.Popen(
        [*serve, "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                health(port)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.5)
        idle0 = cpu_s(server.pid)
        time.sleep(args.idle_seconds)  # what the deployment costs with nobody in it
        idle1 = cpu_s(server.pid)
        load0 = os.getloadavg()[0]
        cpu0, out0 = cpu_s(server.pid), health(port)["counters"].get("packets_out", 0)
        benches = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "confsfu.cli", "bench", "fanout"),
                    *("--url", f"ws://127.0.0.1:{port}/ws", "--token-secret", secret),
                    *("--room", room, "--duration", str(args.seconds), "--quiet"),
                    *("--set", f"subscribers={args.subscribers}"),
                    *("--out", str(tmp / f"bench-{workers}-{room}")),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            for room in rooms
        ]
        codes = [b.wait(timeout=args.seconds + 600) for b in benches]
        cpu1, body = cpu_s(server.pid), health(port)
        out1 = body["counters"].get("packets_out", 0)
        rtts = asyncio.run(ping_rtts(port, rooms[0], args.pings))
        packets = out1 - out0
        front_s, workers_s = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        total_s = front_s + workers_s
        return {
            "workers": workers,
            "bench_exit_codes": codes,
            "homes": body.get("homes"),
            "packets_out": packets,
            "server_cpu_s": round(total_s, 2),
            "front_cpu_s": round(front_s, 2),  # workers=1: the one process
            "workers_cpu_s": round(workers_s, 2),
            "idle_cpu_pct": round(100 * (sum(idle1) - sum(idle0)) / args.idle_seconds, 2),
            "cpu_us_per_packet_out": round(1e6 * total_s / packets, 2) if packets else None,
            "ping_rtt_ms_median": round(statistics.median(rtts), 3),
            "ping_rtt_ms_p90": round(statistics.quantiles(rtts, n=10)[-1], 3),
            "load_1min_before": round(load0, 1),
            "load_1min_after": round(os.getloadavg()[0], 1),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternated")
    parser.add_argument("--subscribers", type=int, default=20, help="per room")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="confsfu-workers-bench-") as tmp:
        for i in range(args.runs):
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                result = one_run(workers, args, Path(tmp))
                results[workers].append(result)
                print(json.dumps(result), flush=True)

    def median(workers: int, key: str) -> float:
        runs = [r for r in results[workers] if r["packets_out"]]  # not those that never joined
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else float("nan")

    keys = ("cpu_us_per_packet_out", "packets_out", "front_cpu_s", "idle_cpu_pct")
    for key in (*keys, "ping_rtt_ms_median"):
        one, two = median(1, key), median(2, key)
        ratio = f"{two / one:.3f}" if one else "n/a"
        print(f"{key}: workers=1 {one:g}, workers=2 {two:g}, ratio 2/1 = {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
