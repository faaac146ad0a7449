"""Issue 20's adaptation figures from the virtual-time link simulator (no browser, no netns):
the server's own estimator, probe controller and allocator behind a simulated `tc tbf` link
following the schedule 3 Mbit/s 20 s, 300 kbit/s 30 s, 1 Mbit/s 20 s, 3 Mbit/s 30 s; once clean,
once with 80 ms delay and 2 % random loss. Deterministic for a seed.

Run from the repository: .venv/bin/python benchmarks/weak_link_sim.py [--seed 1] [--seeds 8]
    [--trace] [--layers 150,500,1700] [--no-drain] [--clean] [--feedback-ms 50]
    [--set up_margin=0.1 ...]
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confsfu.bandwidth.budget import SEND_SIDE_FRAME_RATE_HEADROOM
from confsfu.bandwidth.hysteresis import AllocatorConfig
from confsfu.bandwidth.linksim import LinkConfig, ReceiverConfig
from confsfu.bandwidth.weaksim import FULL, MediaModel, PhaseFigures, simulate


def main(
    seed: int,
    seeds: int,
    trace: bool,
    media: MediaModel,
    drain: bool,
    clean_only: bool = False,
    allocator: AllocatorConfig | None = None,
    receiver: ReceiverConfig | None = None,
    frame_rate_headroom: float = SEND_SIDE_FRAME_RATE_HEADROOM,
) -> None:
    """Each seed's figures, then per phase the median over the seeds."""
    links = [("clean", LinkConfig()), ("80 ms delay, 2 % loss", LinkConfig(delay_ms=80, loss=0.02))]
    for label, link in links[:1] if clean_only else links:
        runs = []
        for s in range(seed, seed + seeds):
            started = time.perf_counter()
            result = simulate(
                FULL, random.Random(s).random, link=link, media=media, drain=drain,
                allocator=allocator, receiver=receiver, frame_rate_headroom=frame_rate_headroom,
            )  # fmt: skip
            runs.append(result.phases)
            took = time.perf_counter() - started
            print(f"{label}, seed {s} ({took:.1f} s to simulate):")
            for line in result.lines():
                print(f"  {line}")
            if trace:
                print("  estimate every second (kbit/s, stage layer):")
                print(
                    "  "
                    + " ".join(
                        f"{e // 1000}/{sp}" for t, e, sp in result.estimates if t % 1000 == 0
                    )
                )
                print("  decisions: " + ", ".join(f"{t / 1000:.2f} {d}" for t, d in result.decided))

        if seeds > 1:
            print(f"{label}, median over seeds {seed}..{seed + seeds - 1}:")
            for i, phase in enumerate(FULL):
                print(f"  {summary([run[i] for run in runs], phase.kbit_s)}")


def _median(values: list[float | None]) -> str:
    known = sorted(v for v in values if v is not None)
    missing = len(values) - len(known)
    text = "-" if not known else f"{statistics.median(known):.1f}"
    return text + (f" ({missing} never)" if missing else "")


def summary(phases: list[PhaseFigures], kbit_s: int) -> str:
    return (
        f"{kbit_s:>5} kbit/s: down {_median([p.down_s for p in phases])} s, "
        f"up {_median([p.up_s for p in phases])} s, "
        f"freeze {_median([p.longest_freeze_s for p in phases])} s "
        f"(worst {max(p.longest_freeze_s for p in phases):.1f}), "
        f"audio lost {_median([p.audio_loss_pct for p in phases])} %, "
        f"link used {_median([p.link_use_pct for p in phases])} %, "
        f"over link {_median([p.over_link_s for p in phases])} s, "
        f"decisions {_median([p.decisions for p in phases])}, "
        f"switches {_median([p.switches for p in phases])}, "
        f"holds {_median([p.holds for p in phases])}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument(
        "--layers",
        default="150,500,1700",
        help="the stage's three simulcast layers in kbit/s (Chromium's fake camera on a busy "
        "machine sent about 60,200,600 in the browser benchmark)",
    )
    parser.add_argument(
        "--no-drain",
        action="store_true",
        help="no video hold while the link's queue drains after a sharp fall (bandwidth/drain)",
    )
    parser.add_argument(
        "--temporal-shares", default="0.4,0.6,1.0",
        help="each temporal layer's cumulative share of its layer's rate (the browser runs' "
        "Chromium publisher: about 0.3,0.55,1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--frame-rate-headroom", type=float, default=SEND_SIDE_FRAME_RATE_HEADROOM,
        help="the share of the estimate left free for a frame-rate step within a resolution",
    )  # fmt: skip
    parser.add_argument("--clean", action="store_true", help="the clean link only")
    parser.add_argument(
        "--feedback-ms", type=int, default=ReceiverConfig().feedback_ms,
        help="the receiver's transport-cc feedback interval (Chromium's 50-250 ms, Firefox's "
        "about 50 ms in the browser runs)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="an AllocatorConfig field (up_margin, upgrade_hold_ms, trial_ms, ...)",
    )  # fmt: skip
    args = parser.parse_args()
    low, mid, top = (int(k) * 1000 for k in args.layers.split(","))
    t0, t1, t2 = (float(k) for k in args.temporal_shares.split(","))
    overrides = {k: float(v) if "." in v else int(v) for k, v in (a.split("=") for a in args.set)}
    main(
        args.seed, args.seeds, args.trace,
        MediaModel(layer_bps=(low, mid, top), temporal_shares=(t0, t1, t2)),
        not args.no_drain, args.clean, AllocatorConfig(**overrides),  # type: ignore[arg-type]
        ReceiverConfig(feedback_ms=args.feedback_ms), args.frame_rate_headroom,
    )  # fmt: skip
