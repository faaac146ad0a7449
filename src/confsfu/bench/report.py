"""The benchmark's result: figures from the raw run, a summary table, JSON and PNG plots."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil  # type: ignore[import-untyped]

from confsfu.bench.adaptation import adaptation_lines, adaptation_result
from confsfu.bench.charts import bar_chart, line_chart, write_png
from confsfu.bench.spread_report import per_process, per_url, spread_lines
from confsfu.bench.worker import DELAY_BIN_MS

if TYPE_CHECKING:
    from confsfu.bench.runner import Sample
    from confsfu.bench.scenario import Scenario

BOTTLENECK_PCT = 85.0  # a worker process busier than this is the limit, not the server
WAITING_PCT = 5.0  # a server waiting for a CPU longer than this shares its machine too much


def default_out_dir(scenario: str) -> Path:
    return Path("bench-results") / f"{scenario}-{time.strftime('%Y%m%d-%H%M%S')}"


def _percentile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bin_, count in sorted(histogram.items()):
        seen += count
        if seen >= rank:
            return round((bin_ + 0.5) * DELAY_BIN_MS, 2)
    return None


def _merged(peers: list[dict[str, Any]], key: str) -> dict[int, int]:
    """The peers' histograms `key` (bin -> count; bins as JSON made them strings) added up."""
    histogram: dict[int, int] = {}
    for p in peers:
        for bin_, n in p.get(key, {}).items():
            histogram[int(bin_)] = histogram.get(int(bin_), 0) + n
    return histogram


def _delta(end: dict[str, int], start: dict[str, int]) -> dict[str, int]:
    return {k: v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}


def _loop_lag(start: dict[str, Any] | None, end: dict[str, Any] | None) -> dict[str, Any] | None:
    """The server's event-loop lateness over the window, from two /healthz snapshots."""
    if not start or not end:
        return None
    bins = {int(k): n - start["bins"].get(k, 0) for k, n in end["bins"].items()}
    edges = sorted(bins)
    total = sum(bins.values())
    p99_below = None
    seen = 0
    for i, edge in enumerate(edges):
        seen += bins[edge]
        if total and seen >= 0.99 * total:
            p99_below = edges[i + 1] if i + 1 < len(edges) else None
            break
    return {
        "samples": total,
        "p99_below_ms": p99_below,
        "late_10ms_or_more": sum(n for edge, n in bins.items() if edge >= 10),
        "late_ms_total": round(end["late_ms_total"] - start["late_ms_total"], 1),
        "worst_since_start_ms": end["max_ms"],
        "how": f"a {end['every_ms']} ms timer's lateness: time the server read no socket",
    }


def build_result(
    *,
    scenario: Scenario,
    urls: list[str],
    own_server: bool,
    base: dict[str, Any],
    window: dict[str, Any],
    end: dict[str, Any],
    final_health: dict[str, Any],
    rss0: int | None,
    samples: list[Sample],
    peers: list[dict[str, Any]],
    worker_cpu_s: list[float],
    layer_seconds: dict[str, int],
    planned: int,
    worker_nice: list[int | None] | None = None,
    worker_idle: list[bool] | None = None,
    unreported: int = 0,
) -> dict[str, Any]:
    """Everything the JSON file holds; the summary and plots are made from it. Listeners are
    reported apart (`listeners`): every other figure is the participants'."""
    audience = [p for p in peers if p.get("listener")]
    peers = [p for p in peers if not p.get("listener")]
    planned -= scenario.listeners * scenario.rooms
    window_s = max(end["t"] - window["t"], 1e-9)
    processes = per_process(window.get("processes", []), end.get("processes", []), window_s)
    counts = _delta(end["counters"], window["counters"])
    packets_in, packets_out = counts.get("packets_in", 0), counts.get("packets_out", 0)
    server_cpu_s = (
        end["server_cpu_s"] - window["server_cpu_s"] if end["server_cpu_s"] is not None else None
    )
    bench_cpu_s = end["bench_cpu_s"] - window["bench_cpu_s"]
    run_s = samples[-1].t_s if samples else window_s
    worker_pct = [100 * c / max(run_s, 1e-9) for c in worker_cpu_s]
    cores = psutil.cpu_count() or 1
    busy_pct = 100 * (bench_cpu_s + (server_cpu_s or 0.0)) / window_s
    bottleneck = [
        f"worker {i} used {p:.0f}% of a core"
        for i, p in enumerate(worker_pct)
        if p > BOTTLENECK_PCT
    ]
    if busy_pct > BOTTLENECK_PCT * cores:
        bottleneck.append(f"the machine's {cores} cores were {busy_pct / cores:.0f}% busy")
    waiting_pct = processes["waiting_for_cpu_pct_max"]  # the process that waited most
    if waiting_pct is not None and waiting_pct > WAITING_PCT:
        bottleneck.append(
            f"the server waited for a CPU {waiting_pct:.0f}% of the time: the delays include it"
        )
    joined = [p for p in peers if p["join_ms"] is not None]
    join_ms = sorted(p["join_ms"] for p in joined)
    histogram, read = _merged(peers, "delays"), _merged(peers, "read_delays")
    upstream, downstream = _merged(peers, "upstream"), _merged(peers, "downstream")
    whole = _delta(final_health["counters"], base["counters"])
    drops = _delta(final_health["drops"], base["drops"])
    received = sum(p["packets"] for p in peers)
    expected = sum(p["expected"] for p in peers)
    unrecovered = sum(p["unrecovered"] for p in peers)
    rss_end = end.get("rss")
    layers = _layer_shares(layer_seconds)
    return {
        "scenario": scenario.model_dump(mode="json"),
        "url": urls[0],
        "urls": urls,
        "own_server": own_server,
        "participants": {
            "planned": planned,
            "joined": len(joined),
            "failed": [{"name": p["name"], "error": p["error"]} for p in peers if p["error"]],
            "server_reported": end.get("participants"),
            # planned, but their load generator worker sent no result (starved or killed)
            "unreported": unreported,
        },
        "window_s": round(window_s, 2),
        "server": {
            "packets_in_per_s": round(packets_in / window_s, 1),
            "packets_out_per_s": round(packets_out / window_s, 1),
            "bytes_out_per_s": round(counts.get("bytes_out", 0) / window_s, 1),
            "cpu_s": None if server_cpu_s is None else round(server_cpu_s, 3),
            "cpu_pct_of_core": None
            if server_cpu_s is None
            else round(100 * server_cpu_s / window_s, 1),
            "waiting_for_cpu_pct": waiting_pct,
            "cpu_us_per_packet_out": None
            if server_cpu_s is None or not packets_out
            else round(1e6 * server_cpu_s / packets_out, 2),
            "rss_bytes": rss_end,
            "rss_per_participant_bytes": None
            if rss_end is None
            else rss_end // max(len(joined), 1),
            "rss_growth_per_participant_bytes": None
            if rss_end is None or rss0 is None
            else (rss_end - rss0) // max(len(joined), 1),
            "counters_whole_run": whole,
            "drops_whole_run": drops,
            "loop_lag": _loop_lag(window.get("loop_lag"), end.get("loop_lag")),
        },
        "subscribers": {
            "received_packets": received,
            "expected_packets": expected,
            "sequence_gaps": sum(p["gaps"] for p in peers),
            "recovered_by_rtx": sum(p["recovered"] - p.get("late", 0) for p in peers),
            "filled_late": sum(p.get("late", 0) for p in peers),
            "unrecovered": unrecovered,
            "loss_pct": round(100 * unrecovered / expected, 3) if expected else 0.0,
            "forwarded_not_received": whole.get("packets_out", 0)
            + whole.get("rtx_out", 0)
            + whole.get("padding_packets_out", 0)
            - received
            - sum(p["packets"] for p in audience),  # the server's counters hold the listeners'
            # How many subscribers saw each kind of video on their stage during the run.
            "stage_seen": dict(Counter(s for p in peers for s in p.get("stage_seen", []))),
        },
        "floor_holders_seen": max((p.get("floor_holders_seen", 0) for p in peers), default=0),
        "forwarding_delay_ms": {
            "p50": _percentile(histogram, 0.5),
            "p99": _percentile(histogram, 0.99),
            "samples": sum(histogram.values()),
            "how": "publisher send -> arrival in the subscriber's socket (the kernel's receive"
            " time), pairs in one worker process, on its monotonic clock",
            "unstamped": sum(p.get("unstamped", 0) for p in peers),  # measured at the read
            "to_worker_read": {
                "p50": _percentile(read, 0.5),
                "p99": _percentile(read, 0.99),
                "how": "publisher send -> the benchmark's worker reading it: adds its own lag",
            },
            # Video only, split where the server read the packet (its abs-send-time); the
            # server's clock is the workers' only when it runs on this machine.
            "split": {
                "send_to_server_read": {
                    "p50": _percentile(upstream, 0.5),
                    "p99": _percentile(upstream, 0.99),
                },
                "server_read_to_arrival": {
                    "p50": _percentile(downstream, 0.5),
                    "p99": _percentile(downstream, 0.99),
                },
                "samples": sum(upstream.values()),
            }
            if own_server
            else None,
        },
        "join_ms": {
            "p50": round(join_ms[len(join_ms) // 2], 1) if join_ms else None,
            "max": round(join_ms[-1], 1) if join_ms else None,
        },
        "server_processes": processes,
        "per_url": per_url(
            peers, urls, window.get("url_counters", []), end.get("url_counters", []), window_s
        ),
        "bench": {
            "cpu_s": round(bench_cpu_s, 3),
            "cpu_pct_of_core": round(100 * bench_cpu_s / window_s, 1),
            "worker_cpu_pct_of_core": [round(p, 1) for p in worker_pct],
            "cores": cores,
            "worker_nice": worker_nice or [],  # as each worker saw it at the end
            "worker_idle": worker_idle or [],  # whether each ran under SCHED_IDLE
            "bottleneck": bottleneck,
        },
        "layers": layers,
        "adaptation": adaptation_result(peers, scenario.model_dump(mode="json")),
        "listeners": _listeners(audience, scenario),
        "per_participant": [
            {k: p[k] for k in ("name", "join_ms", "packets", "octets", "gaps", "unrecovered")}
            | {"layers": p["layers"]}
            for p in peers
        ],
        "timeline": [asdict(s) for s in samples],
    }


def _listeners(audience: list[dict[str, Any]], scenario: Scenario) -> dict[str, Any]:
    """What the audience received over the whole run: each listener's packets (the stage's
    video and the room's audio), sequence gaps and what stayed missing."""
    joined = [p for p in audience if p["join_ms"] is not None]
    each = sorted(p["packets"] for p in joined)
    expected = sum(p["expected"] for p in joined)
    unrecovered = sum(p["unrecovered"] for p in joined)
    by_kind: Counter[str] = Counter()
    for p in joined:
        by_kind.update(p.get("packets_by_kind", {}))
    return {
        "planned": scenario.listeners * scenario.rooms,
        "joined": len(joined),
        "failed": sum(1 for p in audience if p["error"]),
        "errors": sorted({p["error"] for p in audience if p["error"]})[:5],
        "light": scenario.light_listeners,
        "packets_each": {"min": each[0], "median": each[len(each) // 2]} if each else None,
        "packets_by_kind": dict(by_kind),
        "sequence_gaps": sum(p["gaps"] for p in joined),
        "unrecovered": unrecovered,
        "loss_pct": round(100 * unrecovered / expected, 3) if expected else 0.0,
        "stage_seen_by": sum(1 for p in joined if p.get("stage_seen")),
    }


def _listeners_text(listeners: dict[str, Any] | None) -> str:
    if not listeners or not listeners["planned"]:
        return "none"
    each = listeners["packets_each"] or {"min": 0, "median": 0}
    kinds = listeners["packets_by_kind"]
    return (
        f"{listeners['joined']}/{listeners['planned']} joined, {listeners['failed']} failed"
        f" ({'light: sealed SRTP counted' if listeners['light'] else 'decrypting'});"
        f" packets each min {each['min']:,} / median {each['median']:,}"
        f" ({kinds.get('video', 0):,} video, {kinds.get('audio', 0):,} audio in all);"
        f" stage seen by {listeners['stage_seen_by']}; loss {listeners['loss_pct']}%"
        f" ({listeners['sequence_gaps']} gaps, {listeners['unrecovered']} unrecovered)"
    )


def _layer_shares(layer_seconds: dict[str, int]) -> dict[str, dict[str, float]]:
    """purpose -> layer -> share of slot-seconds spent on it."""
    out: dict[str, dict[str, float]] = {}
    for key, n in layer_seconds.items():
        purpose, _, layer = key.partition(":")
        out.setdefault(purpose, {})[layer] = float(n)
    for layers in out.values():
        total = sum(layers.values()) or 1.0
        for layer in layers:
            layers[layer] = round(layers[layer] / total, 3)
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def summary(result: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    s, sub, d, j, b = (
        result["server"],
        result["subscribers"],
        result["forwarding_delay_ms"],
        result["join_ms"],
        result["bench"],
    )
    p = result["participants"]
    layers = "; ".join(
        f"{purpose} " + ", ".join(f"{k}:{v:.0%}" for k, v in sorted(shares.items()))
        for purpose, shares in sorted(result["layers"].items())
    )
    rows = [
        (
            "scenario",
            f"{result['scenario']['name']} ({', '.join(result.get('urls') or [result['url']])})",
        ),
        (
            "participants",
            f"{p['joined']}/{p['planned']} joined, {len(p['failed'])} failed"
            + (
                f", {p['unreported']} never reported (their load generator worker sent no"
                " result: the figures leave them out)"
                if p.get("unreported")
                else ""
            ),
        ),
        ("window", _fmt(result["window_s"], " s")),
        ("packets/s in / out", f"{_fmt(s['packets_in_per_s'])} / {_fmt(s['packets_out_per_s'])}"),
        ("server CPU", f"{_fmt(s['cpu_pct_of_core'], '% of a core')}"),
        ("server waiting for a CPU", _fmt(s.get("waiting_for_cpu_pct"), "% of the time")),
        ("server CPU per packet out", _fmt(s["cpu_us_per_packet_out"], " us")),
        ("server RSS", _fmt(None if s["rss_bytes"] is None else s["rss_bytes"] / 2**20, " MiB")),
        (
            "memory per participant",
            f"{_fmt(_mib(s['rss_per_participant_bytes']), ' MiB')} "
            f"(growth {_fmt(_mib(s['rss_growth_per_participant_bytes']), ' MiB')})",
        ),
        (
            "subscriber loss",
            f"{_fmt(sub['loss_pct'], '%')} unrecovered ({sub['sequence_gaps']} gaps, "
            f"{sub['recovered_by_rtx']} by RTX, {sub.get('filled_late', 0)} late: repaired "
            "upstream)",
        ),
        ("server drops", ", ".join(f"{k} {v}" for k, v in s["drops_whole_run"].items()) or "none"),
        ("forwarded, not received", _fmt(sub["forwarded_not_received"])),
        ("stage seen by", _stage_text(sub.get("stage_seen"))),
        ("floor holders seen", _fmt(result.get("floor_holders_seen"))),
        ("forwarding delay p50 / p99", _delay_text(d)),
        ("  video: send to server read", _split_text(d, "send_to_server_read")),
        ("  video: server read to arrival", _split_text(d, "server_read_to_arrival")),
        ("  to the benchmark's read", _read_text(d)),
        ("server event loop late", _lag_text(s.get("loop_lag"))),
        ("join time p50 / max", f"{_fmt(j['p50'])} / {_fmt(j['max'])} ms"),
        ("layers (slot-seconds)", layers or "n/a"),
        ("listeners", _listeners_text(result.get("listeners"))),
        (
            "benchmark CPU",
            f"{_fmt(b['cpu_pct_of_core'], '% of a core')} over {len(b['worker_cpu_pct_of_core'])}"
            f" workers {b['worker_cpu_pct_of_core']} on {b['cores']} cores"
            f" (nice {', '.join(str(n) for n in sorted(set(b.get('worker_nice', []))))}"
            f"{', SCHED_IDLE' if b.get('worker_idle') and all(b['worker_idle']) else ''})",
        ),
        ("bottleneck", "; ".join(b["bottleneck"]) or "not the benchmark"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines + spread_lines(result) + adaptation_lines(result.get("adaptation")))


def _split_text(delay: dict[str, Any], part: str) -> str:
    split = delay.get("split")
    if not split or not split["samples"]:
        return "n/a (the server's clock is not this machine's)" if split is None else "n/a"
    return f"{_fmt(split[part]['p50'])} / {_fmt(split[part]['p99'])} ms"


def _stage_text(sources: dict[str, int] | None) -> str:
    if not sources:
        return "nobody (no one on the stage)"
    return ", ".join(f"{n} subscribers: {source}" for source, n in sorted(sources.items()))


def _delay_text(delay: dict[str, Any]) -> str:
    text = f"{_fmt(delay['p50'])} / {_fmt(delay['p99'])} ms (to the subscriber's socket)"
    unstamped = delay.get("unstamped", 0)
    if delay["samples"] and unstamped >= delay["samples"] / 100:
        text += f", {100 * unstamped / delay['samples']:.0f}% timed at the read instead"
    return text


def _read_text(delay: dict[str, Any]) -> str:
    read = delay.get("to_worker_read")
    if not read:
        return "n/a"
    return f"{_fmt(read['p50'])} / {_fmt(read['p99'])} ms (adds the load generator's own lag)"


def _lag_text(lag: dict[str, Any] | None) -> str:
    if not lag or not lag["samples"]:
        return "n/a"
    p99 = lag["p99_below_ms"]
    return (
        f"p99 {'under ' + str(p99) if p99 is not None else 'over 500'} ms, "
        f"{_times(lag['late_10ms_or_more'])} by 10 ms or more "
        f"({_fmt(lag['late_ms_total'], ' ms')} in all), worst {_fmt(lag['worst_since_start_ms'])}"
        " ms since start"
    )


def _times(n: int) -> str:
    return f"{n} time" if n == 1 else f"{n} times"


def _mib(value: int | None) -> float | None:
    return None if value is None else value / 2**20


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """result.json, summary.txt and the PNG plots in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    (out / "summary.txt").write_text(summary(result) + "\n")
    timeline = result["timeline"]
    xs = [t["t_s"] for t in timeline]
    cpu = {
        "server CPU %": [t["server_cpu_pct"] or 0.0 for t in timeline],
        "bench CPU %": [t["bench_cpu_pct"] for t in timeline],
    }
    write_png(out / "cpu.png", line_chart("CPU, percent of one core", "%", xs, cpu))
    packets = {
        "in pkt/s": [t["packets_in_per_s"] for t in timeline],
        "out pkt/s": [t["packets_out_per_s"] for t in timeline],
    }
    write_png(out / "packets.png", line_chart("Server packets per second", "pkt/s", xs, packets))
    names = sorted({n for t in timeline for n in t["received_bps"]})
    bitrate = {n: [t["received_bps"].get(n, 0.0) / 1000 for t in timeline] for n in names}
    write_png(
        out / "bitrate.png", line_chart("Received bitrate per subscriber", "kbit/s", xs, bitrate)
    )
    layers: dict[str, dict[str, float]] = result["layers"]
    write_png(
        out / "layers.png",
        bar_chart("Layers forwarded, share of slot-seconds", "", layers),
    )
