"""One publisher to N loopback subscribers: server CPU per forwarded packet.

Starts `confsfu serve` as its own process (loopback ICE only), joins N subscribers and one
publisher (pre-encoded VP8 ~1 Mbit/s + Opus) from this process, and reads the server's CPU time
from the OS and its packet counters from /healthz over a steady window.

    .venv/bin/python benchmarks/fanout.py --subscribers 10 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import aiohttp
import psutil

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.rtc_adapter import configure_aiortc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def counters(port: int) -> dict[str, int]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        body = await response.json()
        result: dict[str, int] = body["counters"]
        return result


async def run(subscribers: int, seconds: float, bitrate_bps: int) -> None:
    configure_aiortc("loopback")
    port = free_port()
    env = dict(
        os.environ,
        CONFSFU_ICE__CANDIDATES="loopback",
        CONFSFU_LOG_LEVEL=os.environ.get("BENCH_SERVER_LOG", "WARNING"),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "confsfu.cli", "serve", "--port", str(port)], env=env
    )
    peers: list[LoopbackPeer] = []
    try:
        proc = psutil.Process(server.pid)
        url = f"ws://127.0.0.1:{port}/ws"
        for _ in range(100):
            try:
                await counters(port)
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        video = vp8_frames(1280, 720, bitrate_bps=bitrate_bps)
        audio = opus_frames()
        for i in range(subscribers):
            peer = LoopbackPeer(url, name=f"viewer-{i}", remb_bps=20_000_000)
            await peer.join(publish=False)
            peers.append(peer)
        publisher = LoopbackPeer(url, name="presenter")
        await publisher.join()
        peers.append(publisher)
        publisher.start_media(audio, video, duration_s=seconds + 5)
        await asyncio.sleep(2.0)  # warm-up: ICE, DTLS, first keyframe
        c0, t0, w0 = await counters(port), proc.cpu_times(), time.perf_counter()
        bench0 = psutil.Process().cpu_times()
        await asyncio.sleep(seconds)
        c1, t1, w1 = await counters(port), proc.cpu_times(), time.perf_counter()
        bench1 = psutil.Process().cpu_times()
        cpu_s = (t1.user + t1.system) - (t0.user + t0.system)
        bench_cpu_s = (bench1.user + bench1.system) - (bench0.user + bench0.system)
        out = c1.get("packets_out", 0) - c0.get("packets_out", 0)
        inn = c1.get("packets_in", 0) - c0.get("packets_in", 0)
        received = sum(s.packets for p in peers[:-1] for s in p.received.values())
        wall = w1 - w0
        print(f"subscribers           {subscribers}")
        print(f"window                {wall:.1f} s")
        print(f"packets in / out      {inn} / {out}  ({out / wall:.0f} out per s)")
        print(f"server CPU            {cpu_s:.2f} s  ({100 * cpu_s / wall:.1f}% of a core)")
        print(f"server CPU per packet {1e6 * cpu_s / max(out, 1):.1f} us forwarded")
        print(
            f"benchmark CPU         {bench_cpu_s:.2f} s ({100 * bench_cpu_s / wall:.1f}% of a core)"
        )
        print(f"received by subscribers (whole run) {received}")
    finally:
        for peer in peers:
            await peer.close()
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bitrate", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, min(args.seconds, 600.0), args.bitrate))


if __name__ == "__main__":
    main()
