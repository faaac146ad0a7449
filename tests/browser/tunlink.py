"""A link emulator in user space, for kernels without netem: two TUN devices (one moved into a
test's network namespace, one left on the host) and a process forwarding IP packets between them.
What reaches the namespace (the downlink) goes through the simulator's tbf model
(`confsfu.bandwidth.linksim.Link`: a token bucket, a drop-tail queue of rate x 150 ms plus the
burst, random loss before it, a fixed delay after it); what leaves it (the uplink) gets the delay
and, if asked, the loss. The rate, delay and loss change at run time (`TunLink.shape`), as `tc`
replacing a qdisc does: the queue is dropped, the bucket starts full.

The forwarding runs in a process of its own (`python -m tests.browser.tunlink`, started by
`tun_link`), so a busy test process (the server, Playwright) adds no jitter to it; it asks for a
real-time priority where it may. `EmulatedLink` is its sans-IO core: time in, packets out.
Control is one line each way on the child's stdin and stdout: `shape KBIT|- DELAY_MS LOSS_PCT`
answers `ok`, `stats` answers a JSON object; end of input ends it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import confsfu
from confsfu.bandwidth.linksim import Kind, Link, LinkConfig, Packet, Phase

ROOT = Path(__file__).resolve().parents[2]

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
ETHERNET_BYTES = 14  # what tbf on a veth counts on top of the IP packet
MAX_HELD = 20_000  # packets queued or in the delay, per way; more are dropped (`overflow`)
READ_BATCH = 64  # packets read from one device before the other gets its turn
MAX_PACKET = 65_535
LATE_BOUNDS_US = (100, 250, 500, 1000, 2000, 5000)  # lateness histogram: under each, then over


class Way(Enum):
    DOWN = "down"  # host -> namespace: rate, delay, loss
    UP = "up"  # namespace -> host: delay (and loss with `uplink_loss`)


@dataclass(slots=True)
class IpPacket(Packet):
    data: bytes = b""


@dataclass
class WayStats:
    received: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    lost: int = 0  # random loss
    dropped: int = 0  # tail drops and queues dropped by a reshape
    overflow: int = 0  # over MAX_HELD
    write_errors: int = 0
    late_max_us: int = 0  # how long after its due time a packet was handed on, at most
    late: list[int] = field(default_factory=lambda: [0] * (len(LATE_BOUNDS_US) + 1))

    def record_late(self, late_us: int) -> None:
        self.late_max_us = max(self.late_max_us, late_us)
        self.late[sum(late_us >= b for b in LATE_BOUNDS_US)] += 1


class EmulatedLink:
    """Both ways of the link, in microseconds from the caller's origin (starting unshaped)."""

    def __init__(
        self,
        draw_down: Callable[[], float],
        draw_up: Callable[[], float],
        uplink_loss: bool = False,
    ) -> None:
        config = LinkConfig(overhead_bytes=ETHERNET_BYTES)
        self.links = {
            Way.DOWN: Link([Phase(1, 1)], config, draw_down),
            Way.UP: Link([Phase(1, 1)], config, draw_up),
        }
        for link in self.links.values():
            link.reshape(0, None)
        self.uplink_loss = uplink_loss
        self.stats = {way: WayStats() for way in Way}
        self._seq = 0

    def shape(self, now_us: int, kbit_s: int | None, delay_ms: int, loss_pct: float) -> None:
        if delay_ms < 0 or not 0 <= loss_pct <= 100:
            raise ValueError(f"delay {delay_ms} ms, loss {loss_pct} %: out of range")
        loss = loss_pct / 100
        self.links[Way.DOWN].reshape(now_us, kbit_s, delay_ms, loss)
        self.links[Way.UP].reshape(now_us, None, delay_ms, loss if self.uplink_loss else 0.0)

    def send(self, now_us: int, way: Way, data: bytes) -> bool:
        """Whether the packet was taken (else lost, dropped or over the bound)."""
        link, stats = self.links[way], self.stats[way]
        stats.received += 1
        if link.held >= MAX_HELD:
            stats.overflow += 1
            return False
        self._seq += 1
        return link.send(now_us, IpPacket(self._seq, len(data), Kind.VIDEO, now_us, data=data))

    def due(self, now_us: int) -> list[tuple[Way, bytes]]:
        """What arrives by `now_us`, each way in order."""
        out: list[tuple[Way, bytes]] = []
        for way, link in self.links.items():
            stats = self.stats[way]
            for arrival_us, packet in link.deliver(now_us):
                assert isinstance(packet, IpPacket)
                stats.record_late(now_us - arrival_us)
                stats.delivered += 1
                stats.delivered_bytes += len(packet.data)
                out.append((way, packet.data))
        return out

    def next_deadline_us(self) -> int | None:
        times = [t for link in self.links.values() if (t := link.next_arrival_us()) is not None]
        return min(times, default=None)

    def command(self, now_us: int, line: str) -> str:
        """One control line's answer; a bad line is answered, never raised."""
        words = line.split()
        try:
            if words[:1] == ["shape"] and len(words) == 4:
                kbit_s = None if words[1] == "-" else int(words[1])
                self.shape(now_us, kbit_s, int(words[2]), float(words[3]))
                return "ok"
            if words == ["stats"]:
                for way, link in self.links.items():
                    self.stats[way].lost, self.stats[way].dropped = link.lost, link.dropped
                return json.dumps({way.value: asdict(s) for way, s in self.stats.items()})
        except ValueError as e:
            return f"error {e}"
        return f"error unknown command {line[:80]!r}"


def open_tun(name: str) -> int:
    """A TUN device `name` (IP packets, no header), gone when the descriptor closes."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def serve(
    link: EmulatedLink, host_fd: int, inner_fd: int, control: int, answer: Callable[[str], None]
) -> None:
    """Forwards until `control` ends: packets read from the host's device go down to the
    namespace's, and back; each written when the core says it arrives."""
    origin = time.monotonic_ns()

    def now_us() -> int:
        return (time.monotonic_ns() - origin) // 1000

    ways = {host_fd: Way.DOWN, inner_fd: Way.UP}
    out = {Way.DOWN: inner_fd, Way.UP: host_fd}
    pending = b""
    while True:
        deadline = link.next_deadline_us()
        timeout = None if deadline is None else max(deadline - now_us(), 0) / 1e6
        ready, _, _ = select.select([host_fd, inner_fd, control], [], [], timeout)
        for fd in ready:
            if fd == control:
                chunk = os.read(control, 4096)
                if not chunk:
                    return
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()[-4096:]
                for line in lines:
                    answer(link.command(now_us(), line.decode(errors="replace")))
                continue
            for _ in range(READ_BATCH):
                try:
                    data = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                link.send(now_us(), ways[fd], data)
        for way, data in link.due(now_us()):
            try:
                os.write(out[way], data)
            except OSError:
                link.stats[way].write_errors += 1


def _prioritise() -> None:
    """A real-time priority where allowed (the process mostly sleeps), else a better nice."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        with suppress(OSError):
            os.nice(-10)


def main() -> None:
    parser = argparse.ArgumentParser(description="forward IP packets between two TUN devices")
    parser.add_argument("host_if")
    parser.add_argument("inner_if")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--uplink-loss", action="store_true")
    args = parser.parse_args()
    try:
        host_fd, inner_fd = open_tun(args.host_if), open_tun(args.inner_if)
    except OSError as e:
        print(f"error {e}", flush=True)
        sys.exit(1)
    _prioritise()
    draws = random.Random(f"{args.seed}-down").random, random.Random(f"{args.seed}-up").random
    link = EmulatedLink(*draws, uplink_loss=args.uplink_loss)

    def answer(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    answer("ready")
    serve(link, host_fd, inner_fd, sys.stdin.fileno(), answer)


class TunLink:
    """The test's handle on a running emulator (a `netns.Shaper`)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def _ask(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline().strip()
        if not reply:
            raise RuntimeError(f"the link emulator exited ({self.process.poll()})")
        if reply.startswith("error"):
            raise ValueError(reply)
        return reply

    def shape(self, kbit_s: int | None, delay_ms: int = 0, loss_pct: float = 0.0) -> None:
        self._ask(f"shape {'-' if kbit_s is None else kbit_s} {delay_ms} {loss_pct}")

    def stats(self) -> dict[str, dict[str, int | list[int]]]:
        stats: dict[str, dict[str, int | list[int]]] = json.loads(self._ask("stats"))
        return stats


@contextmanager
def tun_link(
    host_if: str, inner_if: str, seed: int = 1, uplink_loss: bool = False
) -> Iterator[TunLink]:
    """The emulator running, its two devices created in this namespace (move `inner_if` into
    the test's and give both addresses); both go when it ends. Device names starting "tun" are
    tunnels to Chromium, which then believes it has no network: avoid them for browsers."""
    src = Path(confsfu.__file__).resolve().parents[1]  # the confsfu this process runs
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(src), env.get("PYTHONPATH")) if p
    )
    command = [
        sys.executable,
        "-m",
        "tests.browser.tunlink",
        host_if,
        inner_if,
        "--seed",
        str(seed),
    ]
    if uplink_loss:
        command.append("--uplink-loss")
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"the link emulator did not start: {ready or process.wait(5)}")
        yield TunLink(process)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # its end of input: it closes the devices and exits
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    main()
