"""Issue 20's adaptation figures: a Chromium and a Firefox subscriber, each in a network namespace
of its own behind a link whose rate follows a schedule (3 Mbit/s 20 s, 300 kbit/s 30 s, 1 Mbit/s
20 s, 3 Mbit/s 30 s), watching a Chromium presenter's 1280x720 simulcast on the stage; runs
alternate between transport-cc and REMB, each estimator with every browser in turn, and a direct
Chromium-to-Chromium call over the same schedule is the reference (a direct call has no Firefox
side here). Per phase: time to go down after a drop, time back to 1280x720 after a rise, the
longest stage freeze, audio lost and the share of the link used. Needs root, iproute2 (ip, tc),
Chromium and firefox-esr (as CI installs).

The link is `tc tbf` on a veth pair (`--link tbf`), with netem before it for delay and loss, or
the user-space TUN link (`--link tun`, tests/browser/tunlink.py: the same bucket and queue, the
delay both ways so the round trip gains twice it, the loss on the downlink). `--link auto` (the
default) takes tbf, and the TUN link when delay or loss is asked of a kernel without netem.

Run from the repository: sudo .venv/bin/python benchmarks/weak_link.py [--rounds 2]
    [--delay-ms 80 --loss-pct 2] [--link auto|tbf|tun] [--short] [--browsers chromium,firefox]
    [--log FILE]
"""

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.browser.weak_link

from playwright.async_api import Browser, async_playwright
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path
from tests.browser.firefox import Firefox, launch_firefox
from tests.browser.netns import Namespace, has_netem, namespace
from tests.browser.tunlink import TunLink
from tests.browser.weak_link import (
    FULL,
    SHORT,
    Figures,
    chromium_in,
    describe,
    direct_call,
    shape,
    through_server,
)

BROWSERS = ("chromium", "firefox")


async def main(
    rounds: int,
    delay_ms: int,
    loss_pct: float,
    short: bool,
    browsers: list[str],
    link: str,
    estimators: list[str] = ["auto", "remb"],  # noqa: B006 (never mutated)
    direct: bool = True,
    ns_prefix: str = "",
) -> None:
    schedule = SHORT if short else FULL
    results: list[Figures] = []
    if link == "auto":
        link = "tun" if (delay_ms or loss_pct) and not has_netem("cfbl") else "tbf"
    veth_or_tun = "tun" if link == "tun" else "veth"
    print(f"link: {link}; load average {load_average()}", flush=True)
    with ExitStack() as namespaces, tempfile.TemporaryDirectory() as tmp:
        # Chromium's namespace serves the direct call too; Firefox gets one of its own (the
        # interfaces are named by the first three letters: they differ).
        chromium_ns = namespace(
            f"{ns_prefix}cfbl", "10.213.81", veth_or_tun, seed=1,
            if_prefix=f"{ns_prefix[:5]}c" if ns_prefix else None,
        )  # fmt: skip
        ns = namespaces.enter_context(chromium_ns)
        if (delay_ms or loss_pct) and link == "tbf":
            netem_or_exit(ns)
        inside: dict[str, tuple[Browser | Firefox, Namespace]] = {}
        async with async_playwright() as p, AsyncExitStack() as launched:
            chromium = await launched.enter_async_context(chromium_in(ns, Path(tmp)))
            inside["chromium"] = (chromium, ns)
            if "firefox" in browsers:
                ff = namespace(
                    f"{ns_prefix}fxwl", "10.213.82", veth_or_tun, seed=2,
                    if_prefix=f"{ns_prefix[:5]}f" if ns_prefix else None,
                )  # fmt: skip
                ff_ns = namespaces.enter_context(ff)
                profile = Path(tmp) / "firefox-profile"
                inside["firefox"] = (
                    await launched.enter_async_context(launch_firefox(ff_ns, profile)),
                    ff_ns,
                )
            outside = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            try:
                for _ in range(rounds):
                    for estimator in estimators:
                        for name in browsers:
                            viewer, viewer_ns = inside[name]
                            try:
                                figures = await through_server(
                                    outside, viewer, viewer_ns, schedule,
                                    estimator=estimator, delay_ms=delay_ms, loss_pct=loss_pct,
                                )  # fmt: skip
                            except AssertionError as e:  # one run that never began: the others
                                figures = Figures(f"{name} ({estimator}) never began: {e}")
                            figures.load = load_average()
                            results.append(figures)
                            print(describe([figures]), flush=True)
                    if not direct:
                        continue
                    figures = await direct_call(
                        outside, chromium, ns, schedule, delay_ms=delay_ms, loss_pct=loss_pct
                    )
                    figures.load = load_average()
                    results.append(figures)
                    print(describe([figures]), flush=True)
            finally:
                await outside.close()
        for name, (_, viewer_ns) in inside.items():
            if isinstance(viewer_ns.shaper, TunLink):  # what the emulator saw and how late it was
                print(f"TUN link to {name}: {json.dumps(viewer_ns.shaper.stats())}", flush=True)
    print(f"\nschedule {[(p.kbit_s, p.seconds) for p in schedule]}, link {link}, delay "
          f"{delay_ms} ms, loss {loss_pct} %:\n{describe(results)}")  # fmt: skip


def load_average() -> str:
    """1, 5 and 15 minutes: other work on the machine (browsers of other runs) shows in figures."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def netem_or_exit(ns: Namespace) -> None:
    """Delay and loss need netem, which not every kernel has: say so before anything starts."""
    try:
        shape(ns, 1000, delay_ms=1, loss_pct=0.1)
    except subprocess.CalledProcessError as e:
        sys.exit(f"no netem on this kernel, so no delay or loss with tbf (--link tun has them): "
                 f"{e.stderr.decode().strip()}")  # fmt: skip
    shape(ns, None)


def browser_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BROWSERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"browsers are among {', '.join(BROWSERS)}: {text!r}")
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--delay-ms", type=int, default=0,
        help="one-way delay (netem: on the downlink; the TUN link: both ways)",
    )  # fmt: skip
    parser.add_argument(
        "--loss-pct", type=float, default=0.0, help="random loss on the downlink, in percent"
    )
    parser.add_argument(
        "--link", choices=("auto", "tbf", "tun"), default="auto",
        help="tc tbf (and netem), or the user-space TUN link (auto: tun for delay or loss "
        "without netem)",
    )  # fmt: skip
    parser.add_argument("--short", action="store_true", help="the browser test's schedule")
    parser.add_argument(
        "--browsers", type=browser_list, default=list(BROWSERS),
        help="the subscribers, in turn for each estimator (default chromium,firefox)",
    )  # fmt: skip
    parser.add_argument(
        "--estimators", type=lambda t: [e.strip() for e in t.split(",") if e.strip()],
        default=["auto", "remb"], help="the server's estimators in turn (default auto,remb)",
    )  # fmt: skip
    parser.add_argument(
        "--no-direct", action="store_true", help="skip the direct Chromium-to-Chromium call"
    )
    parser.add_argument(
        "--ns-prefix", default="", help="prefix for the network namespaces' and interfaces' names"
    )
    parser.add_argument(
        "--log", type=Path,
        help="write the server's layer decisions, drain holds and keyframe requests there, "
        "with the link's phases (debug level)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.log is not None:
        handler = logging.FileHandler(args.log, mode="w")
        handler.setFormatter(logging.Formatter("%(relativeCreated)9.0f %(name)s %(message)s"))
        for name in ("confsfu.server.media_slots", "confsfu.server.media_feedback",
                     "tests.browser.weak_link"):  # fmt: skip
            logger = logging.getLogger(name)
            logger.setLevel(logging.DEBUG)
            logger.addHandler(handler)
    run = main(
        args.rounds, args.delay_ms, args.loss_pct, args.short, args.browsers, args.link,
        args.estimators, not args.no_direct, args.ns_prefix,
    )  # fmt: skip
    asyncio.run(run)
