"""Runs a scenario: starts or finds the server, spreads participants over workers, samples."""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import yaml

from confsfu.bench.deployment import (
    ServerProcess,
    find_processes,
    health,
    health_url,
    merged,
    snapshot,
)
from confsfu.bench.linkwatch import LinkPlan
from confsfu.bench.scenario import Scenario
from confsfu.bench.spread import Spread, spread_peers
from confsfu.bench.worker import WorkerPlan, run_worker

JOIN_GRACE_S = 30.0  # beyond join_spacing_s per participant, before the window starts anyway
# The join budget counts from a worker's first progress (its media made, joining begun), or
# from this long after the workers were started (a loaded machine imports and encodes slowly).
STARTUP_S = 120.0


# The workers' CPU priority (nice, and SCHED_IDLE where Linux has it): lower than the server's,
# so that on one machine the load generator does not keep the server from its sockets, as no
# dedicated server would be.
WORKER_NICE = 10


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """How to run a scenario: against a server the benchmark starts, or those at `urls`."""

    scenario: Scenario
    urls: tuple[str, ...] = ()  # ws(s)://host:port/ws each; none: start a loopback server
    token_secret: str | None = None
    tokens: tuple[str, ...] = ()  # from --token-file: chair tokens are given to the chair
    # With `urls`: server processes on this machine to read CPU from (with their children)
    server_pids: tuple[int, ...] = ()
    server_workers: int = 1  # the server the benchmark starts: `serve --workers N`
    server_spill: int = 0  # and its worker_max_connections (0: a room stays on one worker)
    spread: Spread = "participants"  # how participants go over `urls` (spread.py)
    out_dir: Path | None = None
    progress: bool = True
    worker_nice: int = WORKER_NICE
    idle_workers: bool = True  # SCHED_IDLE: the server never waits behind a worker


@dataclass(slots=True)
class _Server:
    urls: list[str]
    process: subprocess.Popen[bytes] | None = None
    pids: tuple[int, ...] = ()  # server processes on this machine (with their children)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    secret: str | None = None

    @property
    def health_urls(self) -> list[str]:
        return [health_url(u) for u in self.urls]

    def healths(self) -> list[dict[str, Any]]:
        return [health(u) for u in self.health_urls]


@dataclass(slots=True)
class Sample:
    """One second of the run."""

    t_s: float
    server_cpu_pct: float | None
    server_rss_bytes: int | None
    packets_in_per_s: float
    packets_out_per_s: float
    bench_cpu_pct: float
    joined: int
    received_bps: dict[str, float] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(scenario: Scenario, duration_s: float, workers: int, spill: int = 0) -> _Server:
    tmp = tempfile.TemporaryDirectory(prefix="confsfu-bench-")
    port, secret = _free_port(), secrets.token_hex(24)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "token_secret": secret,
        "workers": workers,
        "worker_max_connections": spill,
        "rooms": [
            {
                "name": room,
                "open": True,
                "max_participants": scenario.participants + 10,
                "watch_link": True,
                "max_listeners": min(scenario.listeners + 10, 5000),
                "scheduled_minutes": max(1, int(duration_s / 60) + 10),
            }
            for room in scenario.room_names
        ],
        "ice": {"candidates": "loopback"},
        "slots": {"audio": scenario.audio_slots, "video": scenario.video_slots},
        "report_dir": str(Path(tmp.name) / "reports"),
        "log_level": "WARNING",
        "messages_per_s": 200.0,
    }
    path = Path(tmp.name) / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSFU_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "confsfu.cli", "serve", "--config", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    server = _Server(
        urls=[f"ws://127.0.0.1:{port}/ws"],
        process=process,
        pids=(process.pid,),
        tmp=tmp,
        secret=secret,
    )
    deadline = time.monotonic() + 60 + (60 * workers if workers > 1 else 0)  # slow imports
    while True:
        try:
            server.healths()
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop_server(server)
                raise RuntimeError("the benchmark's server did not start") from None
            time.sleep(0.1)


def _stop_server(server: _Server) -> None:
    if server.process is not None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)
    if server.tmp is not None:
        server.tmp.cleanup()


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run_benchmark(options: BenchOptions) -> dict[str, Any]:
    """Run the scenario to the end and return the result (see report.py for what it holds)."""
    scenario = options.scenario
    started_wall = time.time()
    server = (
        _Server(urls=list(options.urls), pids=options.server_pids, secret=options.token_secret)
        if options.urls
        else _start_server(
            scenario, scenario.window_s, options.server_workers, options.server_spill
        )
    )
    try:
        return _run(options, server, started_wall)
    finally:
        _stop_server(server)


def _run(options: BenchOptions, server: _Server, started_wall: float) -> dict[str, Any]:
    scenario = options.scenario
    plans = spread_peers(scenario, server.secret, options.tokens, server.urls, options.spread)
    workers = max(1, min(scenario.workers, len(plans)))
    join_budget_s = JOIN_GRACE_S + scenario.join_spacing_s * len(plans) * 4
    max_duration_s = join_budget_s + scenario.window_s + 30
    worker_plans = [
        WorkerPlan(
            worker=w,
            url=server.urls[0],  # each peer has its own (spread.py)
            room=scenario.room,
            peers=tuple(plans[w::workers]),
            layers=tuple((v.width, v.height, v.bitrate_bps) for v in scenario.layers),
            simulcast=scenario.simulcast,
            talkers=scenario.talkers,
            publishers=scenario.camera_publishers,
            talk_rotate_s=scenario.talk_rotate_s,
            epoch_s=started_wall,
            presenter_name="Presenter" if scenario.presenter else None,
            screen=(
                (scenario.screen.width, scenario.screen.height, scenario.screen.bitrate_bps)
                if scenario.screen is not None
                else None
            ),
            pass_floor_s=scenario.pass_floor_s,
            floor_turns=tuple(dict.fromkeys(p.name for p in plans if p.role != "chair")),
            max_duration_s=max_duration_s,
            join_spacing_s=scenario.join_spacing_s * workers,
            light_listeners=scenario.light_listeners,
            link=LinkPlan(
                schedule=tuple((p.kbit_s, p.seconds) for p in scenario.link_phases),
                delay_ms=scenario.link_delay_ms,
                loss=scenario.link_loss,
                queue_ms=scenario.link_queue_ms,
                estimator=scenario.link_estimator,
                seed=scenario.link_seed,
                top_width=scenario.layers[-1].width,
                top_spatial=len(scenario.layers) - 1 if scenario.simulcast else 0,
            ),
            nice=options.worker_nice,
            idle=options.idle_workers,
        )
        for w in range(workers)
    ]
    # The chair's worker also needs the chair's publisher index for the talk rotation.
    ctx = multiprocessing.get_context("spawn")
    results: queue.Queue[Any] = ctx.Queue()  # type: ignore[assignment]
    stop = ctx.Event()
    bodies = server.healths()
    base = merged(bodies)
    servers = find_processes(server.urls, bodies, server.pids)
    rss0 = _rss(servers)
    procs = [
        ctx.Process(target=run_worker, args=(p, results, stop), daemon=True) for p in worker_plans
    ]
    for p in procs:
        p.start()
    me = psutil.Process()
    worker_ps = [psutil.Process(p.pid) for p in procs if p.pid is not None]
    progress: dict[int, dict[str, Any]] = {}
    finals: dict[int, dict[str, Any]] = {}
    samples: list[Sample] = []
    t0 = time.monotonic()
    joining_from = t0 + STARTUP_S
    last = {
        "t": t0,
        "server": _server_cpu(servers) or 0.0,
        "bench": _bench_cpu(me, worker_ps),
        "in": float(base["counters"].get("packets_in", 0)),
        "out": float(base["counters"].get("packets_out", 0)),
    }
    last_octets: dict[str, int] = {}
    window: dict[str, Any] = {}
    layer_seconds: dict[str, int] = {}
    worker_cpu0 = [_safe_cpu(p) for p in worker_ps]
    try:
        while True:
            time.sleep(max(0.0, 1.0 - (time.monotonic() - last["t"])))
            _drain(results, progress, finals)
            now = time.monotonic()
            bodies = server.healths()
            counters = merged(bodies)
            dt = now - last["t"]
            server_cpu = _server_cpu(servers) or 0.0
            bench_cpu = _bench_cpu(me, worker_ps)
            octets = {k: v for pr in progress.values() for k, v in pr["octets"].items()}
            joined = sum(pr["joined"] for pr in progress.values())
            failed = sum(pr["failed"] for pr in progress.values())
            c = counters["counters"]
            sample = Sample(
                t_s=now - t0,
                server_cpu_pct=100 * (server_cpu - last["server"]) / dt if servers else None,
                server_rss_bytes=_rss(servers),
                packets_in_per_s=(c.get("packets_in", 0) - last["in"]) / dt,
                packets_out_per_s=(c.get("packets_out", 0) - last["out"]) / dt,
                bench_cpu_pct=100 * (bench_cpu - last["bench"]) / dt,
                joined=joined,
                received_bps={k: 8 * (v - last_octets.get(k, 0)) / dt for k, v in octets.items()},
            )
            samples.append(sample)
            last.update(t=now, server=server_cpu, bench=bench_cpu)
            last.update({"in": c.get("packets_in", 0), "out": c.get("packets_out", 0)})
            last_octets = octets
            if progress and joining_from > now:
                joining_from = now
            all_in = joined + failed >= len(plans) or now - joining_from > join_budget_s
            if all_in and not window:
                window = _snapshot(now, server.urls, bodies, servers, me, worker_ps)
                window["joined"] = joined
                window["received_packets"] = sum(pr["packets"] for pr in progress.values())
            phase = "joining" if not window else "measuring"
            if window:
                for pr in progress.values():
                    for key, count in pr["layers"].items():
                        layer_seconds[key] = layer_seconds.get(key, 0) + count
            if options.progress:
                _print_progress(sample, phase, len(plans), failed, window, now, scenario)
            if window and now - window["t"] >= scenario.window_s:
                break
            if not any(p.is_alive() for p in procs):
                break
        end = _snapshot(time.monotonic(), server.urls, server.healths(), servers, me, worker_ps)
        end["received_packets"] = sum(pr["packets"] for pr in progress.values())
        end["rss"] = _rss(servers)
        worker_cpu = [_safe_cpu(p) - c0 for p, c0 in zip(worker_ps, worker_cpu0, strict=True)]
    finally:
        stop.set()
        deadline = time.monotonic() + 30
        while len(finals) < len(procs) and time.monotonic() < deadline:
            _drain(results, progress, finals, timeout=0.5)
            if not any(p.is_alive() for p in procs) and results.empty():
                break
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(5)
        if options.progress:
            print(file=sys.stderr)
    final_health = merged(server.healths())
    from confsfu.bench.report import build_result

    return build_result(
        scenario=scenario,
        urls=server.urls,
        own_server=server.process is not None,
        base=base,
        window=window or end,
        end=end,
        final_health=final_health,
        rss0=rss0,
        samples=samples,
        peers=[peer for w in sorted(finals) for peer in finals[w]["peers"]],
        worker_cpu_s=worker_cpu,
        layer_seconds=layer_seconds,
        planned=len(plans),
        worker_nice=[finals[w].get("nice") for w in sorted(finals)],
        worker_idle=[bool(finals[w].get("idle")) for w in sorted(finals)],
        unreported=sum(
            1
            for plan in worker_plans
            if plan.worker not in finals
            for peer in plan.peers
            if peer.role != "listener"
        ),
    )


def _safe_cpu(process: psutil.Process) -> float:
    try:
        return _cpu_s(process)
    except psutil.Error:
        return 0.0


def _bench_cpu(me: psutil.Process, workers: list[psutil.Process]) -> float:
    return _cpu_s(me) + sum(_safe_cpu(p) for p in workers)


def _server_cpu(servers: list[ServerProcess]) -> float | None:
    """CPU seconds of every server process measured (None: none is on this machine)."""
    return sum(p.cpu_s() for p in servers) if servers else None


def _rss(servers: list[ServerProcess]) -> int | None:
    return sum(p.rss() for p in servers) if servers else None


def _snapshot(
    now: float,
    urls: list[str],
    bodies: list[dict[str, Any]],
    servers: list[ServerProcess],
    me: psutil.Process,
    workers: list[psutil.Process],
) -> dict[str, Any]:
    counters = merged(bodies)
    return {
        "t": now,
        "counters": dict(counters["counters"]),
        "drops": dict(counters["drops"]),
        "server_cpu_s": _server_cpu(servers),
        "processes": snapshot(servers, urls, bodies),  # each's CPU, wait and packets out
        "url_counters": [dict(b.get("counters", {})) for b in bodies],
        "bench_cpu_s": _bench_cpu(me, workers),
        "participants": counters.get("participants"),
        "loop_lag": counters.get("loop_lag"),  # None from a server without it
    }


def _drain(
    results: queue.Queue[Any],
    progress: dict[int, dict[str, Any]],
    finals: dict[int, dict[str, Any]],
    timeout: float = 0.0,
) -> None:
    while True:
        try:
            item = results.get(timeout=timeout) if timeout else results.get_nowait()
        except queue.Empty:
            return
        timeout = 0.0
        (finals if item["type"] == "result" else progress)[item["worker"]] = item


def _print_progress(
    sample: Sample,
    phase: str,
    planned: int,
    failed: int,
    window: dict[str, Any],
    now: float,
    scenario: Scenario,
) -> None:
    left = f" {max(0.0, scenario.window_s - (now - window['t'])):.0f}s left" if window else ""
    cpu = f"{sample.server_cpu_pct:.0f}%" if sample.server_cpu_pct is not None else "n/a"
    recv = sum(sample.received_bps.values()) / 1e6
    line = (
        f"\r[{sample.t_s:6.1f}s {phase}{left}] joined {sample.joined}/{planned}"
        f"{f' failed {failed}' if failed else ''}  in {sample.packets_in_per_s:.0f} pkt/s"
        f"  out {sample.packets_out_per_s:.0f} pkt/s  server CPU {cpu}"
        f"  bench CPU {sample.bench_cpu_pct:.0f}%  received {recv:.1f} Mbit/s   "
    )
    sys.stderr.write(line)
    sys.stderr.flush()


def run(options: BenchOptions) -> dict[str, Any]:
    """run_benchmark, then the summary, JSON and plots written to the output directory."""
    from confsfu.bench.report import default_out_dir, summary, write_outputs

    result = run_benchmark(options)
    out = options.out_dir or default_out_dir(options.scenario.name)
    write_outputs(result, out)
    print(summary(result))
    print(f"results: {out}")
    return result
