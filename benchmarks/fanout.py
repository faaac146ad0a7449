"""One publisher to N loopback subscribers: an alias of `confsfu bench fanout`.

    .venv/bin/python benchmarks/fanout.py --subscribers 10 --seconds 10

is `confsfu bench fanout --set subscribers=10 --duration 10` with a single (non-simulcast) VP8
layer of `--bitrate`; see README.md "Benchmarks".
"""

from __future__ import annotations

import argparse
import sys

from confsfu.bench.__main__ import main as bench_main


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bitrate", type=int, default=1_000_000)
    args, rest = parser.parse_known_args()
    layer = f"[{{width: 1280, height: 720, bitrate_bps: {args.bitrate}}}]"
    return bench_main(
        [
            "fanout",
            "--set",
            f"subscribers={args.subscribers}",
            "--set",
            "simulcast=false",
            "--set",
            f"layers={layer}",
            "--duration",
            str(min(args.seconds, 600.0)),
            *rest,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
