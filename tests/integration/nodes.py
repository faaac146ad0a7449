"""Two `confsfu serve` nodes, each in a network namespace of its own (joined to this host by a
veth pair each, and to each other by a third), one deployment through a redis-server on this
host: the namespaces (made once a session, conftest.py's `nodes_net`), a node's start and stop
(test_nodes.py, test_node_media.py). Needs root, iproute2 and Debian's redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.redis_resp import Redis
from tests.browser.netns import Namespace, namespace, run
from tests.integration.test_relay import health as relay_health
from tests.integration.test_workers import SECRET

PORT = 8080  # each node in its own namespace: the same port for both
LEASE_S = 3.0


@dataclass(frozen=True)
class Net:
    a: Namespace  # node A's namespace: host_ip (this host's end, Redis), inner_ip (node A)
    b: Namespace
    link_a: str  # node A's address on the veth between the two namespaces
    link_b: str


@contextmanager
def two_namespaces() -> Iterator[Net]:
    """Node A's and node B's namespaces and the veth between them; all deleted after, also
    when what ran in between failed. No browser runs there: no wait for address changes."""
    tag = f"{os.getpid() % 10000}"
    with (
        namespace("nodesa", "10.0.61", if_prefix="nodesa", settle_s=0) as a,
        namespace("nodesb", "10.0.62", if_prefix="nodesb", settle_s=0) as b,
    ):
        ends = (f"nodesx{tag}", f"nodesy{tag}")
        link = f"10.{200 + os.getpid() % 50}.63"
        try:
            run("ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1])
            for end, ns, host in ((ends[0], a, 1), (ends[1], b, 2)):
                run("ip", "link", "set", end, "netns", ns.name)
                run(*ns.exec_prefix(), "ip", "addr", "add", f"{link}.{host}/30", "dev", end)
                run(*ns.exec_prefix(), "ip", "link", "set", end, "up")
            yield Net(a, b, f"{link}.1", f"{link}.2")
        finally:
            for end in ends:  # gone with its namespace; here in case the namespace stayed
                subprocess.run(["ip", "link", "del", end], capture_output=True)


async def start_node(
    ns: Namespace,
    node: str,
    address: str,
    redis_port: int,
    tmp_path: Path,
    extra: dict[str, Any] | None = None,
) -> asyncio.subprocess.Process:
    """`confsfu serve` as node `node` in `ns` (a session of its own: killed as a whole);
    `extra` settings on top of the common ones (`rooms` instead of theirs)."""
    config = {
        **(extra or {}),
        "token_secret": SECRET,
        "rooms": (extra or {}).get("rooms", [{"name": "east"}, {"name": "west"}]),
        "ice": {"candidates": "host"},
        "report_dir": str(tmp_path / f"reports-{node}"),
        "reconnect_grace_s": 60,
        "redis_url": f"redis://{ns.host_ip}:{redis_port}/0",
        "node_id": node,
        "node_address": f"{address}:{PORT}",
        "node_lease_s": LEASE_S,
    }
    path = tmp_path / f"{node}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    serve = [sys.executable, "-m", "confsfu.cli", "serve", "--config", str(path)]
    with (tmp_path / f"{node}.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *ns.exec_prefix(),
            *serve,
            *("--host", "0.0.0.0", "--port", str(PORT), "--log-format", "json"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 240)
    assert b"listening on" in line, (tmp_path / f"{node}.log").read_text()[-3000:]
    return proc


async def stop_node(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (the node stops its worker), then SIGKILL to its whole session if it hangs."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def close_all(
    client: Redis, peers: list[LoopbackPeer], *nodes: asyncio.subprocess.Process
) -> None:
    """A nodes test's end: its Redis client, its peers (no goodbye: a node may be gone), its
    nodes in turn."""
    await client.close()
    for peer in peers:
        await peer.close(goodbye=False)
    for node in nodes:
        await stop_node(node)


async def health(ip: str) -> dict[str, Any]:
    """The node's /healthz."""
    return await relay_health(PORT, ip)
