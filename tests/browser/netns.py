"""Network namespaces of a test's own, each joined to this host by a veth pair (needs root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Namespace:
    name: str
    host_if: str
    host_ip: str
    inner_ip: str

    def exec_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextmanager
def namespace(prefix: str, subnet: str) -> Iterator[Namespace]:
    """`subnet` is the first three octets of a /30 (`10.213.77`): host .1, namespace .2. Its
    second octet is replaced by one of this process's own (200-249), so that two test runs on
    one machine do not route each other's namespaces (as names, the subnet carries the pid)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("this test needs root and iproute2 (ip): run it as CI does")
    tag = f"{os.getpid() % 10000}"
    first, _, third = subnet.split(".")
    subnet = f"{first}.{200 + os.getpid() % 50}.{third}"
    ns = Namespace(f"{prefix}{tag}", f"{prefix[:3]}h{tag}", f"{subnet}.1", f"{subnet}.2")
    inner_if = f"{prefix[:3]}i{tag}"
    run("ip", "netns", "add", ns.name)
    try:
        run("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", inner_if)
        run("ip", "link", "set", inner_if, "netns", ns.name)
        run("ip", "addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        run("ip", "link", "set", ns.host_if, "up")
        run(*ns.exec_prefix(), "ip", "addr", "add", f"{ns.inner_ip}/30", "dev", inner_if)
        run(*ns.exec_prefix(), "ip", "link", "set", inner_if, "up")
        run(*ns.exec_prefix(), "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
