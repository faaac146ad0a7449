"""Measuring a namespace's link from the host with UDP: a small server inside the namespace
echoes pings and counts a paced stream's arrivals; the host pings it (round trips) and sends the
stream (the rate that came through). Used by tests/integration/test_tunlink.py and
benchmarks/tun_link.py."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.browser.netns import Namespace

PORT = 9099
HEADERS_BYTES = 28 + 14  # IPv4 and UDP, and the Ethernet header a veth's tbf counts

# Inside the namespace: "p" + anything is echoed; "s" + a stream's tag + a sequence number +
# padding is counted (arrival time and size, the first 100,000); "q" + a tag + a sequence number
# is answered with what came of that stream from that number on.
SERVER = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("listening", flush=True)
arrivals = []
while True:
    data, peer = s.recvfrom(65535)
    if data[:1] == b"p":
        s.sendto(data, peer)
    elif data[:1] == b"s" and len(arrivals) < 100_000:
        arrivals.append((data[1:5], struct.unpack("!I", data[5:9])[0], time.monotonic()))
    elif data[:1] == b"q":
        since = struct.unpack("!I", data[5:9])[0]
        got = [a for a in arrivals if a[0] == data[1:5] and a[1] >= since]
        answer = {"packets": len(got), "seconds": got[-1][2] - got[0][2] if got else 0.0}
        s.sendto(data[:9] + json.dumps(answer).encode(), peer)
"""


REALTIME = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))\n"


@contextmanager
def udp_server(ns: Namespace, realtime: bool = False) -> Iterator[None]:
    """The server in the namespace (`realtime`: at a real-time priority, so that the machine's
    other load does not delay its answers)."""
    script = REALTIME + SERVER if realtime else SERVER
    server = subprocess.Popen(
        [*ns.exec_prefix(), sys.executable, "-c", script, str(PORT)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "listening":
            raise RuntimeError("the UDP server in the namespace did not start")
        yield
    finally:
        server.kill()
        server.wait()


def ping(ns: Namespace, count: int, interval_s: float = 0.02, wait_s: float = 2.0) -> list[float]:
    """Round trips in seconds of the pings that came back (a lost one is left out)."""
    out: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for n in range(count):
            sent = time.monotonic()
            sock.sendto(b"p" + struct.pack("!I", n) + bytes(59), (ns.inner_ip, PORT))
            deadline = sent + wait_s
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data = sock.recv(2048)
                except TimeoutError:
                    break
                if data[1:5] == struct.pack("!I", n):
                    out.append(time.monotonic() - sent)
                    break
            time.sleep(interval_s)
    return out


@dataclass(frozen=True)
class Stream:
    sent: int
    received: int
    kbit_s: float  # what arrived after the first second, per second, headers as tbf counts them


def stream(ns: Namespace, kbit_s: int, seconds: float, size: int = 1158) -> Stream:
    """Sends `size`-byte datagrams at `kbit_s` (wire bytes) for `seconds`; what arrived after the
    first second (the bucket's burst passed) over the time it took."""
    wire = size + HEADERS_BYTES
    gap_s = wire * 8 / (kbit_s * 1000)
    start = time.monotonic()
    n = 0
    since: int | None = None
    tag = os.urandom(4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while (elapsed := time.monotonic() - start) < seconds:
            while n * gap_s <= elapsed:
                head = b"s" + tag + struct.pack("!I", n)
                sock.sendto(head + bytes(size - len(head)), (ns.inner_ip, PORT))
                n += 1
            if since is None and elapsed >= 1.0:
                since = n
            time.sleep(0.002)
        time.sleep(0.5)  # what is queued arrives
        first = since if since is not None else 0
        answer = _query(sock, ns, tag, first)
    received = answer["packets"]
    rate = received * wire * 8 / 1000 / answer["seconds"] if answer["seconds"] > 0 else 0.0
    return Stream(n - first, received, rate)


def _query(sock: socket.socket, ns: Namespace, tag: bytes, since: int) -> dict[str, float]:
    head = b"q" + tag + struct.pack("!I", since)
    for _ in range(20):  # the query or its answer may be lost too
        sock.sendto(head, (ns.inner_ip, PORT))
        sock.settimeout(1.0)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if data[:9] == head:
            answer: dict[str, float] = json.loads(data[9:])
            return answer
    raise RuntimeError("no answer from the UDP server in the namespace")
