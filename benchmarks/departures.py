"""How long a departure stalls a running server's event loop (its `/healthz` loop lag).

Joins N loopback participants (audio + a small video) to a server, lets them settle, then has
them leave one at a time and prints, for the few seconds after each departure, how often the
server's loop ran 10 ms or more late and the worst lateness seen so far. A thaw of the frozen
garbage is followed by a full collection, a stall of hundreds of ms: server/gc_policy.py thaws
only once no room is live (or after many closes), so departures from a live room should not.

Start a server first (`confsfu serve`: the demo room on 127.0.0.1:8080), then run:
python benchmarks/departures.py [--url ws://127.0.0.1:8080/ws] [--participants 30]
    [--departures 4]
"""

import argparse
import asyncio
import json
import sys
import urllib.request
from pathlib import Path

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.peer import LoopbackPeer
from confsfu.server.aiortc_setup import configure_aiortc

SETTLE_S = 8.0
AFTER_S = 3.0
MEDIA_S = 300.0  # the participants' media stops by itself after this long


def loop_lag(health_url: str) -> dict[str, object]:
    with urllib.request.urlopen(health_url, timeout=5) as response:
        lag: dict[str, object] = json.load(response)["loop_lag"]
        return lag


async def run(url: str, participants: int, departures: int) -> None:
    health_url = url.rsplit("/ws", 1)[0].replace("ws", "http", 1) + "/healthz"
    configure_aiortc("loopback")
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=150_000)
    peers: list[LoopbackPeer] = []
    left = 0
    try:
        for i in range(participants):
            peer = LoopbackPeer(url, name=f"City {i:02d}")
            peers.append(peer)
            await peer.join()
            peer.start_media(audio, video, duration_s=MEDIA_S)
        await asyncio.sleep(SETTLE_S)
        for k in range(min(departures, participants)):
            before = loop_lag(health_url)
            await peers[k].close()
            left += 1
            await asyncio.sleep(AFTER_S)
            after = loop_lag(health_url)
            bins_before, bins_after = before["bins"], after["bins"]
            assert isinstance(bins_before, dict) and isinstance(bins_after, dict)
            late = {
                f">={edge} ms": n - bins_before.get(edge, 0)
                for edge, n in bins_after.items()
                if int(edge) >= 10 and n - bins_before.get(edge, 0)
            }
            print(
                f"departure {k + 1}: in the {AFTER_S:.0f} s after, late {late or 'never'} by"
                f" 10 ms or more; worst since the server started {after['max_ms']} ms"
            )
    finally:
        for peer in peers[left:]:
            await peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--participants", type=int, default=30, choices=range(2, 101), metavar="N")
    parser.add_argument("--departures", type=int, default=4, choices=range(1, 101), metavar="K")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.participants, args.departures))


if __name__ == "__main__":
    main()
