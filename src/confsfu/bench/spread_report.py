"""The result's per-process and per-URL parts: what each server process on this machine spent
and forwarded over the window, and what the participants of each URL received."""

from __future__ import annotations

from typing import Any

from confsfu.bench.worker import DELAY_BIN_MS


def per_process(
    start: list[dict[str, Any]], end: list[dict[str, Any]], window_s: float
) -> dict[str, Any]:
    """From two deployment.snapshot()s: each process's CPU seconds, % of a core, time waiting
    for a CPU, packets out and CPU per packet out, and the totals."""
    before = {s["pid"]: s for s in start}
    rows = []
    for e in end:
        s = before.get(e["pid"])
        if s is None:
            continue
        cpu_s = e["cpu_s"] - s["cpu_s"]
        packets = (
            e["packets_out"] - s["packets_out"]
            if e["packets_out"] is not None and s["packets_out"] is not None
            else None
        )
        wait = (
            round(100 * (e["wait_s"] - s["wait_s"]) / window_s, 1)
            if e["wait_s"] is not None and s["wait_s"] is not None
            else None
        )
        rows.append(
            {
                "role": e["role"],
                "url": e["url"],
                "pid": e["pid"],
                "cpu_s": round(cpu_s, 3),
                "cpu_pct_of_core": round(100 * cpu_s / window_s, 1),
                "waiting_for_cpu_pct": wait,
                "packets_out": packets,
                "cpu_us_per_packet_out": round(1e6 * cpu_s / packets, 2) if packets else None,
                "relay_frames_out": e.get("relay_frames_out", 0) - s.get("relay_frames_out", 0),
                "rss_bytes": e["rss_bytes"],
                "rooms": e.get("rooms", []),  # at the window's end
                "listeners": e.get("listeners"),  # connected to it at the window's end
                "gone": e["gone"],  # ended in the window: its CPU is up to its end
            }
        )
    cpu_total = sum(r["cpu_s"] for r in rows)
    packets_total = sum(r["packets_out"] or 0 for r in rows)
    waits = [r["waiting_for_cpu_pct"] for r in rows if r["waiting_for_cpu_pct"] is not None]
    return {
        "processes": rows,
        "cpu_s": round(cpu_total, 3),
        "cpu_pct_of_core": round(100 * cpu_total / window_s, 1),
        "packets_out": packets_total,
        "cpu_us_per_packet_out": round(1e6 * cpu_total / packets_total, 2)
        if packets_total
        else None,
        "waiting_for_cpu_pct_max": max(waits) if waits else None,
        "relay_frames_out": sum(r["relay_frames_out"] for r in rows),
    }


def _percentile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    seen = 0
    for bin_, count in sorted(histogram.items()):
        seen += count
        if seen >= q * total and total:
            return round((bin_ + 0.5) * DELAY_BIN_MS, 2)
    return None


def per_url(
    peers: list[dict[str, Any]],
    urls: list[str],
    start: list[dict[str, Any]],
    end: list[dict[str, Any]],
    window_s: float,
) -> list[dict[str, Any]]:
    """Per URL: its participants (listeners apart), what they received, their forwarding
    delay and loss, and the server's packets in and out per second there (from its
    /healthz counters at the window's `start` and `end`)."""
    out = []
    for i, url in enumerate(urls):
        mine = [p for p in peers if p.get("url") == url and not p.get("listener")]
        heard = [p for p in peers if p.get("url") == url and p.get("listener")]
        delays: dict[int, int] = {}
        for p in mine:
            for bin_, n in p.get("delays", {}).items():
                delays[int(bin_)] = delays.get(int(bin_), 0) + n
        expected = sum(p["expected"] for p in mine)
        unrecovered = sum(p["unrecovered"] for p in mine)
        c0 = start[i] if i < len(start) else {}
        c1 = end[i] if i < len(end) else {}
        out.append(
            {
                "url": url,
                "rooms": sorted({str(p.get("room")) for p in mine + heard}),
                "participants": len(mine),
                "joined": sum(1 for p in mine if p["join_ms"] is not None),
                "listeners": len(heard),
                "received_packets": sum(p["packets"] for p in mine),
                "delay_p50_ms": _percentile(delays, 0.5),
                "delay_p99_ms": _percentile(delays, 0.99),
                "delay_samples": sum(delays.values()),
                "loss_pct": round(100 * unrecovered / expected, 3) if expected else 0.0,
                "server_packets_in_per_s": round(
                    (c1.get("packets_in", 0) - c0.get("packets_in", 0)) / window_s, 1
                ),
                "server_packets_out_per_s": round(
                    (c1.get("packets_out", 0) - c0.get("packets_out", 0)) / window_s, 1
                ),
            }
        )
    return out


def spread_lines(result: dict[str, Any]) -> list[str]:
    """The summary's tables: server processes (when any was measured) and URLs (when several)."""
    lines: list[str] = []
    procs = result.get("server_processes")
    urls = result.get("urls") or []
    several = len(urls) > 1
    if procs and procs["processes"]:
        lines += ["", "server processes (this machine; CPU from the OS, packets from /healthz):"]
        head = f"  {'process':<12} {'pid':>8} {'CPU s':>8} {'% core':>7} {'wait %':>7}"
        head += f" {'packets out':>12} {'us/pkt':>7}"
        lines.append(head + ("  url" if several else "") + "  rooms")
        for r in procs["processes"]:
            lines.append(
                f"  {r['role'] + (' (gone)' if r['gone'] else ''):<12} {r['pid']:>8}"
                f" {r['cpu_s']:>8.2f} {r['cpu_pct_of_core']:>7.1f} {_n(r['waiting_for_cpu_pct'])}"
                f" {_int(r['packets_out']):>12} {_n(r['cpu_us_per_packet_out'])}"
                + (f"  {urls.index(r['url']) + 1 if r['url'] in urls else '-'}" if several else "")
                + f"  {', '.join(r.get('rooms', [])) or '-'}"
                + (f" (+{r['listeners']} listeners)" if r.get("listeners") else "")
            )
        lines.append(
            f"  {'total':<12} {'':>8} {procs['cpu_s']:>8.2f} {procs['cpu_pct_of_core']:>7.1f}"
            f" {'':>7} {_int(procs['packets_out']):>12} {_n(procs['cpu_us_per_packet_out'])}"
        )
        if procs.get("relay_frames_out"):
            lines.append(f"  relay frames between workers: {procs['relay_frames_out']:,}")
    if several:
        lines += ["", "per URL (participants, what they received; server packets/s from /healthz):"]
        for i, u in enumerate(result.get("per_url") or [], 1):
            lines.append(
                f"  {i}. {u['url']}  rooms {', '.join(u['rooms']) or '-'}:"
                f" {u['joined']}/{u['participants']} joined"
                + (f", {u['listeners']} listeners" if u["listeners"] else "")
                + f"; received {u['received_packets']:,} packets;"
                f" delay p50/p99 {_n(u['delay_p50_ms'], 0)} / {_n(u['delay_p99_ms'], 0)} ms;"
                f" loss {u['loss_pct']}%; server in/out {u['server_packets_in_per_s']:,.0f}"
                f" / {u['server_packets_out_per_s']:,.0f} pkt/s"
            )
    return lines


def _n(value: float | None, width: int = 7) -> str:
    return f"{'n/a' if value is None else f'{value:.1f}':>{width}}"


def _int(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"
