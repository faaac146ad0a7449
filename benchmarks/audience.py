"""The largest audience a machine holds for a meeting (issue 23): `confsfu bench` with the
meeting's participants and N light listeners, on one server process and on `--workers 2`
(listeners spread over the workers), runs alternated, one line per run.

    .venv/bin/python benchmarks/audience.py --listeners 0,150,300 --participants 12 --runs 1

Each run is `confsfu bench mayors --server-workers W --set listeners=N --duration D
--no-idle-workers` (the bench starts its own server, the room with a watch link and room for
N listeners). A run **holds** its audience when every listener joined and kept its connection,
the participants lost nothing unrecovered and their forwarding delay p99 stayed under
`--p99-ms`. Light listeners count the sealed SRTP without decrypting it (README, "An
audience"): the server's work per listener is a page's, the load generator's is less. On a
machine shared with other work the figures are indicative only: the load average is printed
with each run, and the server's time waiting for a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def one_run(workers: int, listeners: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [
        *(sys.executable, "-m", "confsfu.cli", "bench", args.scenario),
        *("--server-workers", str(workers), "--set", f"listeners={listeners}"),
        *("--duration", str(args.seconds), "--no-idle-workers", "--quiet", "--out", str(out)),
    ]
    if args.participants:
        command += ["--participants", str(args.participants)]
    load = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"workers": workers, "listeners": listeners, "error": done.stderr[-400:]}
    r = json.loads((out / "result.json").read_text())
    server, delay, audience = r["server"], r["forwarding_delay_ms"], r.get("listeners") or {}
    lag = server.get("loop_lag") or {}
    connected = [
        p.get("listeners") or 0
        for p in (r.get("server_processes") or {}).get("processes", [])
        if p["role"] != "front"
    ]
    row = {
        "workers": workers,
        "listeners": listeners,
        "load_before": round(load, 1),
        "joined": audience.get("joined", 0),
        # per server process, as its /healthz said at the window's end (read while the
        # load generator's peers may already be leaving: indicative of the spread)
        "connected_at_end": connected,
        "listener_loss_pct": audience.get("loss_pct"),
        "participants_joined": r["participants"]["joined"],
        "participants_unrecovered": r["subscribers"]["unrecovered"],
        "delay_p50_ms": delay.get("p50"),
        "delay_p99_ms": delay.get("p99"),
        "packets_out_per_s": server["packets_out_per_s"],
        "server_cpu_pct_of_core": server["cpu_pct_of_core"],
        "server_waiting_pct": server.get("waiting_for_cpu_pct"),
        "loop_late_10ms": lag.get("late_10ms_or_more"),
        "server_rss_mib": round(server["rss_bytes"] / 2**20),
    }
    row["holds"] = (
        row["joined"] == listeners
        and row["participants_unrecovered"] == 0
        and (row["delay_p99_ms"] or 0) <= args.p99_ms
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="mayors")
    parser.add_argument("--participants", type=int, default=0, help="0: the scenario's")
    parser.add_argument("--listeners", default="0,150,300", help="comma-separated audiences")
    parser.add_argument("--workers", default="1,2", help="server workers, alternated")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--p99-ms", type=float, default=50.0)
    args = parser.parse_args()
    audiences = [int(n) for n in args.listeners.split(",")]
    workers = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="confsfu-audience-") as tmp:
        for run in range(args.runs):
            for n in audiences:
                for w in workers if run % 2 == 0 else workers[::-1]:
                    out = Path(tmp) / f"r{run}-w{w}-l{n}"
                    start = time.monotonic()
                    row = one_run(w, n, args, out)
                    row["run_s"] = round(time.monotonic() - start)
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
