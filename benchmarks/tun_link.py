"""What the TUN link (tests/browser/tunlink.py) adds of its own, against a veth pair: UDP round
trips to a namespace with no delay and no rate limit, alternated veth, tun, veth, tun (median,
90th and 99th percentile, and the medians' difference), with both ends at a normal priority (as
browsers are) and at a real-time one (what the link itself adds, the machine's other load left
out); then the rate delivered at each of the weak-link schedule's rates with twice that offered,
and the emulator's own count of how late it handed packets on. Needs root and iproute2.

Run from the repository: sudo .venv/bin/python benchmarks/tun_link.py [--pings 500] [--rounds 2]
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.browser.*

from tests.browser.linkprobe import ping, stream, udp_server
from tests.browser.netns import namespace
from tests.browser.tunlink import LATE_BOUNDS_US, TunLink


def percentiles_ms(rtts: list[float]) -> tuple[float, float, float]:
    ordered = sorted(rtts)

    def at(q: float) -> float:
        return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    return at(0.5), at(0.9), at(0.99)


def main(pings: int, rounds: int) -> None:
    print(f"load average before: {os.getloadavg()}")
    for realtime in (False, True):
        priority = "real-time" if realtime else "normal"
        if realtime:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
        medians: dict[str, list[float]] = {"veth": [], "tun": []}
        for _ in range(rounds):
            for link in ("veth", "tun"):
                with namespace("tunlink", "10.213.92", link) as ns, udp_server(ns, realtime):
                    rtts = ping(ns, pings, interval_s=0.01)
                    p50, p90, p99 = percentiles_ms(rtts)
                    medians[link].append(p50)
                    print(
                        f"{link}, ends at {priority} priority: {len(rtts)}/{pings} back, round "
                        f"trip median {p50:.3f} ms, p90 {p90:.3f} ms, p99 {p99:.3f} ms; load "
                        f"{os.getloadavg()[0]:.1f}"
                    )
        added = statistics.median(medians["tun"]) - statistics.median(medians["veth"])
        print(f"the TUN link adds {added:.3f} ms to the median round trip ({priority} priority)")
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with namespace("tunlink", "10.213.92", "tun") as ns, udp_server(ns):
        assert isinstance(ns.shaper, TunLink)
        for kbit_s in (300, 1000, 3000):
            ns.shaper.shape(kbit_s)
            got = stream(ns, 2 * kbit_s, 6.0)
            print(
                f"{kbit_s} kbit/s set, {2 * kbit_s} offered: {got.kbit_s:.0f} kbit/s delivered "
                f"({100 * got.kbit_s / kbit_s:.1f} %), {got.received}/{got.sent} packets"
            )
        ns.shaper.shape(None)
        stats = ns.shaper.stats()
        for way, s in stats.items():
            bounds = [f"<{b} us" for b in LATE_BOUNDS_US] + [f">={LATE_BOUNDS_US[-1]} us"]
            histogram = ", ".join(f"{b} {n}" for b, n in zip(bounds, s["late"], strict=True))  # type: ignore[arg-type]
            print(
                f"{way}: {s['delivered']} handed on, late at most {s['late_max_us']} us; "
                f"{histogram}"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.pings, args.rounds)
