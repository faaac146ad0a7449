"""Network namespaces of a test's own, each joined to this host by a veth pair, or by two TUN
devices and a link emulator between them (`link="tun"`: tests/browser/tunlink.py; needs root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import pytest

from tests.browser.tunlink import tun_link


class Shaper(Protocol):
    """What shapes the link into a namespace when `tc` does not (the TUN link's emulator)."""

    def shape(self, kbit_s: int | None, delay_ms: int = 0, loss_pct: float = 0.0) -> None: ...


@dataclass(frozen=True)
class Namespace:
    name: str
    host_if: str
    host_ip: str
    inner_ip: str
    shaper: Shaper | None = field(default=None, compare=False)  # None: `tc` on host_if

    def exec_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)


SETTLE_S = 2.5  # Chromium's delay before an address change reaches its sockets, and a margin


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _no_ipv6(interface: str, prefix: tuple[str, ...] = ()) -> None:
    """Switch IPv6 off on `interface` (in the namespace `prefix` enters), where there is IPv6."""
    setting = f"/proc/sys/net/ipv6/conf/{interface}/disable_ipv6"
    subprocess.run([*prefix, "sh", "-c", f"[ ! -e {setting} ] || echo 1 > {setting}"],
                   capture_output=True)  # fmt: skip


@contextmanager
def namespace(
    prefix: str,
    subnet: str,
    link: str = "veth",
    seed: int = 1,
    if_prefix: str | None = None,
    settle_s: float = SETTLE_S,
) -> Iterator[Namespace]:
    """`subnet` is the first three octets of a /30 (`10.213.77`): host .1, namespace .2. Its
    second octet is replaced by one of this process's own (200-249), so that two test runs on
    one machine do not route each other's namespaces (as names, the subnet carries the pid).
    `link` is `veth` (shaped by `tc`) or `tun` (the emulator, seeded by `seed`, shapes it).
    Interfaces are named by `if_prefix` (at most 6 characters; default the first three of
    `prefix`). `settle_s`: the wait for browsers already running (none: 0)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("this test needs root and iproute2 (ip): run it as CI does")
    if link not in ("veth", "tun"):
        raise ValueError(f"a namespace's link is veth or tun, not {link!r}")
    tag = f"{os.getpid() % 10000}"
    first, _, third = subnet.split(".")
    subnet = f"{first}.{200 + os.getpid() % 50}.{third}"
    short = prefix[:3] if if_prefix is None else if_prefix[:6]
    ns = Namespace(f"{prefix}{tag}", f"{short}h{tag}", f"{subnet}.1", f"{subnet}.2")
    inner_if = f"{short}i{tag}"
    run("ip", "netns", "add", ns.name)
    try:
        with ExitStack() as emulator:
            if link == "tun":
                shaper = emulator.enter_context(tun_link(ns.host_if, inner_if, seed))
                ns = replace(ns, shaper=shaper)
            else:
                run("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", inner_if)
            run("ip", "link", "set", inner_if, "netns", ns.name)
            # No IPv6 on the pair: its link-local address would appear a moment later (duplicate
            # address detection), one more network change for the browsers already running.
            _no_ipv6(ns.host_if)
            _no_ipv6(inner_if, ns.exec_prefix())
            run("ip", "addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
            run("ip", "link", "set", ns.host_if, "up")
            run(*ns.exec_prefix(), "ip", "addr", "add", f"{ns.inner_ip}/30", "dev", inner_if)
            run(*ns.exec_prefix(), "ip", "link", "set", inner_if, "up")
            run(*ns.exec_prefix(), "ip", "link", "set", "lo", "up")
            # Chromium tells its network stack of an address change up to 2 s late and then
            # fails what is in flight with ERR_NETWORK_CHANGED: a page opened right after this
            # (a CI run) lost a script and never joined. Let that pass before anything opens.
            time.sleep(settle_s)
            yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


def unshape(ns: Namespace) -> None:
    """No `tc` shaping on the link into `ns` (weak_link.shape's, if a test left one)."""
    subprocess.run(["tc", "qdisc", "del", "dev", ns.host_if, "root"], capture_output=True)


def kill_left(ns: Namespace, timeout_s: float = 10.0) -> None:
    """SIGKILL whatever still runs in `ns` (what a test started there and left, e.g. after a
    failure) and wait until it is gone, so that the next test finds the namespace empty and its
    ports free (a namespace kept for more than one test)."""
    deadline = time.monotonic() + timeout_s
    while pids := _pids(ns):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left in {ns.name}: {pids}")
        time.sleep(0.1)


def _pids(ns: Namespace) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True)
    return [int(pid) for pid in listed.stdout.split()]


def has_netem(prefix: str) -> bool:
    """Whether this kernel has netem (delay and loss for `tc`), tried in a namespace of its own."""
    name = f"{prefix}nt{os.getpid() % 10000}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode:
        return False
    try:
        probe = ["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms"]  # fmt: skip
        return subprocess.run(probe, capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
