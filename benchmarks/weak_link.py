"""Issue 20's adaptation figures: a Chromium subscriber in a network namespace behind a link whose
rate follows a schedule (3 Mbit/s 20 s, 300 kbit/s 30 s, 1 Mbit/s 20 s, 3 Mbit/s 30 s), watching
a Chromium presenter's 1280x720 simulcast on the stage; runs alternate between transport-cc and
REMB, and a direct Chromium-to-Chromium call over the same schedule is the reference. Per phase:
time to go down after a drop, time back to 1280x720 after a rise, the longest stage freeze, audio
lost and the share of the link used. Needs root, iproute2 (ip, tc) and Chromium (as CI installs).

Run from the repository: sudo .venv/bin/python benchmarks/weak_link.py [--rounds 2]
    [--delay-ms 80 --loss-pct 2] [--short]
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.browser.weak_link

from playwright.async_api import async_playwright
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path
from tests.browser.netns import namespace
from tests.browser.weak_link import (
    FULL,
    SHORT,
    Figures,
    chromium_in,
    describe,
    direct_call,
    through_server,
)


async def main(rounds: int, delay_ms: int, loss_pct: float, short: bool) -> None:
    schedule = SHORT if short else FULL
    results: list[Figures] = []
    with namespace("cfbl", "10.213.81") as ns, tempfile.TemporaryDirectory() as tmp:
        async with async_playwright() as p, chromium_in(ns, Path(tmp)) as inside:
            outside = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            try:
                for _ in range(rounds):
                    for estimator in ("auto", "remb"):
                        figures = await through_server(
                            outside, inside, ns, schedule,
                            estimator=estimator, delay_ms=delay_ms, loss_pct=loss_pct,
                        )  # fmt: skip
                        results.append(figures)
                        print(describe([figures]), flush=True)
                    figures = await direct_call(
                        outside, inside, ns, schedule, delay_ms=delay_ms, loss_pct=loss_pct
                    )
                    results.append(figures)
                    print(describe([figures]), flush=True)
            finally:
                await outside.close()
    print(f"\nschedule {[(p.kbit_s, p.seconds) for p in schedule]}, delay {delay_ms} ms, "
          f"loss {loss_pct} %:\n{describe(results)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--short", action="store_true", help="the browser test's schedule")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.delay_ms, args.loss_pct, args.short))
