"""Server CPU per packet out of one room on one worker against the same room spilled over two
(`confsfu bench --server-workers 2 --server-spill N`: the home worker takes N connections, a
relay member the rest), alternated runs, CPU from the OS (the bench's own figures).

    .venv/bin/python benchmarks/spill_cost.py mayors --runs 2 --spill 23
    .venv/bin/python benchmarks/spill_cost.py fanout --runs 2 --subscribers 40

`mayors`: the 46-city meeting (issue 23's "spilled cost per packet"). `fanout`: one publisher
to `--subscribers` receive-only subscribers, split over the two workers (the publisher and
about half on the home); it also prints the capacity ratio two workers would have if each had a
core of its own: 2 x (CPU per packet, one worker) / (CPU per packet, two workers). That ratio
is derived from CPU per packet, not measured at saturation (on a 2-core machine the load
generator needs a core too).
Prints one JSON line per run, then the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def bench(args: argparse.Namespace, two: bool, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "confsfu.cli", "bench", args.scenario,
        "--duration", str(args.duration), "--no-idle-workers", "--quiet", "--out", str(out),
        "--server-workers", "2" if two else "1",
    ]  # fmt: skip
    if args.scenario == "fanout":
        cmd += ["--set", f"subscribers={args.subscribers}"]
    if two:
        spill = args.spill if args.spill else (args.subscribers + 2) // 2
        cmd += ["--server-spill", str(spill)]
    load = os.getloadavg()[0]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads((out / "result.json").read_text())
    server = result["server_processes"]
    return {
        "workers": 2 if two else 1,
        "load_at_start": round(load, 1),
        "cpu_us_per_packet_out": server["cpu_us_per_packet_out"],
        "cpu_pct_of_core": server["cpu_pct_of_core"],
        "packets_out": server["packets_out"],
        "relay_frames": server.get("relay_frames_out"),
        "waiting_for_cpu_pct_max": server.get("waiting_for_cpu_pct_max"),
        "processes": [
            (p["role"], p["cpu_pct_of_core"], p["packets_out"], p["cpu_us_per_packet_out"])
            for p in server["processes"]
        ],
        "joined": result["participants"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["mayors", "fanout"])
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternated")
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--spill", type=int, default=0, help="home's connections (0: half)")
    parser.add_argument("--subscribers", type=int, default=40, help="fanout: subscribers")
    args = parser.parse_args()
    if args.scenario == "mayors" and not args.spill:
        args.spill = 23
    per: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="spill-cost-") as tmp:
        for run in range(args.runs):
            for two in (False, True) if run % 2 == 0 else (True, False):
                line = bench(args, two, Path(tmp) / f"{run}-{int(two)}")
                print(json.dumps(line), flush=True)
                if line["cpu_us_per_packet_out"]:
                    per[line["workers"]].append(line["cpu_us_per_packet_out"])
    if per[1] and per[2]:
        one, two_ = statistics.median(per[1]), statistics.median(per[2])
        print(f"CPU per packet out, median: one worker {one:.1f} us, two {two_:.1f} us")
        print(f"spilled / one: {two_ / one:.2f}x")
        if args.scenario == "fanout":
            print(f"derived capacity, two workers / one: {2 * one / two_:.2f}x (not saturation)")


if __name__ == "__main__":
    main()
