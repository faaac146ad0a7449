"""The servers a run goes to: each URL's /healthz, their sum, and the server processes on this
machine (one process, or a front and its workers) with what each spent and forwarded."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]

from confsfu.bench.spread import is_loopback


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=15) as response:  # a loaded machine is slow
        body: dict[str, Any] = json.loads(response.read())
        return body


def health_url(ws_url: str) -> str:
    base = ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return base.rsplit("/ws", 1)[0] + "/healthz"


def merged(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """Several servers' /healthz as one: counters, drops and participants added, the loop
    lateness merged (bins added, the worst maximum)."""
    if len(bodies) == 1:
        return bodies[0]
    out: dict[str, Any] = {"counters": {}, "drops": {}}
    for key in ("counters", "drops"):
        for body in bodies:
            for name, value in body.get(key, {}).items():
                out[key][name] = out[key].get(name, 0) + int(value)
    for key in ("participants", "listeners"):
        values = [b[key] for b in bodies if b.get(key) is not None]
        out[key] = sum(values) if values else None
    lags = [b["loop_lag"] for b in bodies if b.get("loop_lag")]
    out["loop_lag"] = None
    if lags:
        bins: dict[str, int] = {}
        for lag in lags:
            for edge, n in lag["bins"].items():
                bins[edge] = bins.get(edge, 0) + n
        out["loop_lag"] = {
            "every_ms": lags[0]["every_ms"],
            "bins": bins,
            "max_ms": max(lag["max_ms"] for lag in lags),
            "late_ms_total": round(sum(lag["late_ms_total"] for lag in lags), 1),
        }
    return out


def _named_pids(body: dict[str, Any]) -> dict[int, tuple[str, int | None]]:
    """pid -> (role, worker index) as a /healthz names them: one process ("server"), or a
    front and its workers."""
    named: dict[int, tuple[str, int | None]] = {}
    if isinstance(body.get("front_pid"), int):
        named[body["front_pid"]] = ("front", None)
        for worker in body.get("workers") or ():
            if isinstance(worker.get("pid"), int):
                named[worker["pid"]] = (f"worker {worker.get('index')}", worker.get("index"))
    elif isinstance(body.get("pid"), int):
        named[body["pid"]] = ("server", None)
    return named


@dataclass(slots=True)
class ServerProcess:
    """One server process on this machine: a single server, a front or one of its workers."""

    role: str  # "server", "front", "worker 0", ... or "pid N" (a child no /healthz names)
    url: str | None  # the URL whose /healthz names it
    worker: int | None  # its index among the front's workers
    process: psutil.Process
    last_cpu_s: float = 0.0  # the last reading (kept once the process is gone)
    gone: bool = False

    def cpu_s(self) -> float:
        try:
            times = self.process.cpu_times()
            self.last_cpu_s = float(times.user + times.system)
        except psutil.Error:
            self.gone = True
        return self.last_cpu_s

    def wait_s(self) -> float | None:
        """Seconds its main thread (the event loop) was ready to run but waited for a CPU,
        from Linux's schedstat; None where there is none."""
        try:
            with open(f"/proc/{self.process.pid}/schedstat") as f:
                return int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def rss(self) -> int:
        try:
            return int(self.process.memory_info().rss)
        except psutil.Error:
            return 0


def find_processes(
    urls: list[str], bodies: list[dict[str, Any]], root_pids: tuple[int, ...]
) -> list[ServerProcess]:
    """The server processes to measure: each of `root_pids` (--server-pid, or the server the
    benchmark started) and its children, and the processes a loopback URL's /healthz names
    (pid, front_pid, its workers' pids) if they run confsfu. Each is named by the /healthz
    that lists it."""
    names: dict[int, tuple[str, str, int | None]] = {}  # pid -> url, role, worker index
    for url, body in zip(urls, bodies, strict=True):
        for pid, (role, index) in _named_pids(body).items():
            names[pid] = (url, role, index)
    found: dict[int, psutil.Process] = {}
    for pid in root_pids:
        try:
            root = psutil.Process(pid)
            found[pid] = root
            found.update((child.pid, child) for child in root.children(recursive=True))
        except psutil.Error:
            continue
    for pid, (url, _role, _index) in names.items():
        if pid in found or not is_loopback(url):
            continue
        try:
            process = psutil.Process(pid)
            if any("confsfu" in part for part in process.cmdline()):
                found[pid] = process
        except psutil.Error:
            continue
    out = []
    for pid, process in found.items():
        url, role, index = names.get(pid, ("", f"pid {pid}", None))
        out.append(ServerProcess(role=role, url=url or None, worker=index, process=process))
    out.sort(key=lambda p: (urls.index(p.url) if p.url in urls else len(urls), _order(p)))
    for p in out:
        p.cpu_s()
    return out


def _order(p: ServerProcess) -> tuple[int, int]:
    rank = {"server": 0, "front": 1}.get(p.role, 2 if p.worker is not None else 3)
    return rank, p.worker if p.worker is not None else p.process.pid


def packets_out(p: ServerProcess, urls: list[str], bodies: list[dict[str, Any]]) -> int | None:
    """What `p` forwarded so far, from its URL's /healthz: a single server's counters, or its
    worker's own (the front forwards no media: 0); None when the /healthz does not say."""
    if p.url not in urls:
        return None
    body = bodies[urls.index(p.url)]
    if p.role == "front":
        return 0
    if p.role == "server":
        return int(body.get("counters", {}).get("packets_out", 0))
    for worker in body.get("workers") or ():
        if worker.get("index") == p.worker and worker.get("pid") == p.process.pid:
            counters = (worker.get("health") or {}).get("counters")
            return None if counters is None else int(counters.get("packets_out", 0))
    return None  # restarted: another process holds that worker's place now


def relay_frames_out(p: ServerProcess, urls: list[str], bodies: list[dict[str, Any]]) -> int:
    """Relay frames `p` sent to other workers so far (0 for a front, a single server, or a
    worker whose rooms span no other worker)."""
    if p.url not in urls or p.worker is None:
        return 0
    body = bodies[urls.index(p.url)]
    for worker in body.get("workers") or ():
        if worker.get("index") == p.worker and worker.get("pid") == p.process.pid:
            relay = (worker.get("health") or {}).get("relay") or {}
            return int((relay.get("counts") or {}).get("relay_frames_out", 0))
    return 0


def rooms_of(p: ServerProcess, urls: list[str], bodies: list[dict[str, Any]]) -> list[str]:
    """The rooms `p` holds, as its URL's /healthz says (a front holds none itself; a worker
    holds the rooms it is home to and those it shares as a relay member)."""
    if p.url not in urls:
        return []
    body = bodies[urls.index(p.url)]
    if p.role == "server":
        return [str(r) for r in body.get("room_names") or ()]
    for worker in body.get("workers") or ():
        if worker.get("index") == p.worker and worker.get("pid") == p.process.pid:
            # The worker's own list has the rooms it shares as a relay member too.
            held = (worker.get("health") or {}).get("room_names") or worker.get("rooms") or ()
            return sorted(str(r) for r in held)
    return []


def listeners_of(p: ServerProcess, urls: list[str], bodies: list[dict[str, Any]]) -> int | None:
    """The listeners connected to `p` now, as its URL's /healthz says (a worker's own count:
    a room's audience spreads over its workers)."""
    if p.url not in urls:
        return None
    body = bodies[urls.index(p.url)]
    if p.role == "server":
        return int(body.get("listeners") or 0)
    for worker in body.get("workers") or ():
        if worker.get("index") == p.worker and worker.get("pid") == p.process.pid:
            return int((worker.get("health") or {}).get("listeners") or 0)
    return None


def snapshot(
    processes: list[ServerProcess], urls: list[str], bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every process's CPU, wait, RSS and packets out now (see spread_report.per_process)."""
    return [
        {
            "role": p.role,
            "url": p.url,
            "pid": p.process.pid,
            "cpu_s": p.cpu_s(),
            "wait_s": p.wait_s(),
            "rss_bytes": p.rss(),
            "packets_out": packets_out(p, urls, bodies),
            "relay_frames_out": relay_frames_out(p, urls, bodies),
            "rooms": rooms_of(p, urls, bodies),
            "listeners": listeners_of(p, urls, bodies),
            "gone": p.gone,
        }
        for p in processes
    ]
