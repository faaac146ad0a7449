"""How long one publish offer holds a running server's event loop, for the largest offers the SDP
limits let through (settings `sdp.*`) and a refused 500-m-line one.

Starts a server in this process, joins one participant over a WebSocket, sends each offer
`--repeats` times, and prints per offer shape the longest the loop ran late (a 1 ms probe: the
loop hold to within a millisecond; the server's own 10 ms loop-lag counter underestimates by up to
its period) and the round trip until the answer or error arrived.

python benchmarks/sdp_offer_hold.py [--repeats 5]

Each offer replaces the last publish connection; in this process (no server/gc_policy.py) a
full garbage collection now and then lands in one offer (30-55 ms, about one in ten). With
`gc.disable()` first, the largest holds seen were 5.2 ms.
"""

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import aiohttp
from aiohttp import web

from confsfu.loadgen.offers import publish_offer
from confsfu.server.aiortc_setup import configure_aiortc
from confsfu.server.app import create_app
from confsfu.server.loop_lag import LagProbe, LoopLag
from confsfu.settings import RoomSettings, Settings

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def shapes(settings: Settings) -> dict[str, str]:
    limits = settings.sdp.limits()
    out = {f"full, {n} m-lines": publish_offer(n, limits) for n in range(1, limits.sections + 1)}
    few_codecs = dataclasses.replace(limits, codecs_per_section=2)
    out[f"{limits.sections} m-lines, 2 codecs each"] = publish_offer(limits.sections, few_codecs)
    out["chromium simulcast fixture"] = (FIXTURES / "chromium_offer_simulcast.sdp").read_text()
    out["500 m-lines (refused)"] = publish_offer(500)
    return out


async def receive_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    while True:
        message: dict[str, object] = json.loads((await ws.receive(timeout=30)).data)
        if message["type"] in ("publish_answer", "error"):
            return message


async def run(repeats: int) -> None:
    configure_aiortc("loopback")
    settings = Settings(
        host="127.0.0.1",
        port=0,
        token_secret="benchmark-secret-0123456789abcdef0123",
        rooms=[RoomSettings(name="demo", open=True)],
        ice={"candidates": "loopback"},
    )
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]
    lag = LoopLag()
    probe = LagProbe(lag, every_ms=1)
    probe.start()
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws", max_msg_size=0)
            await ws.receive()  # hello
            await ws.send_str(json.dumps({"type": "join", "room": "demo", "name": "Bench"}))
            while json.loads((await ws.receive()).data)["type"] != "subscribe_offer":
                pass
            print(f"{'offer':34} {'chars':>7} {'lines':>5} {'hold ms':>8} {'reply ms':>9}  reply")
            for name, sdp in shapes(settings).items():
                worst_hold, worst_reply, reply, holds = 0.0, 0.0, {}, []
                for _ in range(repeats):
                    await asyncio.sleep(0.2)
                    lag.max_ms = 0.0
                    start = time.perf_counter()
                    await ws.send_str(json.dumps({"type": "publish_offer", "sdp": sdp}))
                    reply = await receive_reply(ws)
                    worst_reply = max(worst_reply, (time.perf_counter() - start) * 1000)
                    await asyncio.sleep(0.05)
                    worst_hold = max(worst_hold, lag.max_ms)
                    holds.append(round(lag.max_ms, 1))
                what = reply.get("code") or reply["type"]
                print(
                    f"{name:34} {len(sdp):7} {sdp.count(chr(10)):5} {worst_hold:8.1f}"
                    f" {worst_reply:9.1f}  {what} {holds}"
                )
            await ws.close()
    finally:
        probe.stop()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.repeats))


if __name__ == "__main__":
    main()
