"""A server's resident memory across meetings held one after another (issue 19, item 7).

Starts `confsfu serve` in a subprocess on 127.0.0.1 (loopback ICE), then holds N meetings of M
loopback participants in turn: they join one after the other, send audio and a small video for
a while, and all leave. Prints the server's RSS before the first meeting and, for each
meeting, with everyone in and `--after` seconds after the last one left: a server that releases
what participants held returns to the same figure after every meeting. The first meeting leaves
it above the starting one: code and caches loaded on first use (cryptography's library alone is
3.5 MB). The server runs on the C library's malloc (setting `python_allocator`); with
PYTHONMALLOC=pymalloc in the environment, arenas pinned by a few survivors keep far more
(about 75 MB after a first meeting of 46).

python benchmarks/meetings_memory.py [--participants 10] [--meetings 4] [--hold 5] [--after 5]
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

try:
    import confsfu  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confsfu.loadgen.media import opus_frames, vp8_frames
from confsfu.loadgen.meetings import ServerProcess, hold_meeting
from confsfu.server.aiortc_setup import configure_aiortc

MB = 1024 * 1024


async def run(participants: int, meetings: int, hold_s: float, after_s: float) -> None:
    configure_aiortc("loopback")
    audio, video = opus_frames(), vp8_frames(320, 180, bitrate_bps=150_000)
    with tempfile.TemporaryDirectory() as reports:
        # Each meeting ends a second after its room empties (the default waits 30 min), so that
        # what the server keeps of it is its report on disk, not the room.
        server = ServerProcess(Path(reports), extra_env={"CONFSFU_EMPTY_MEETING_END_S": "1"})
        try:
            await server.started()
            await asyncio.sleep(1.0)
            start = server.rss_bytes()
            in_use_start = await server.heap_in_use_bytes()
            print(
                f"server RSS before the meetings: {start / MB:.0f} MB"
                + _in_use(in_use_start, in_use_start),
                flush=True,
            )
            for k in range(meetings):
                held = asyncio.create_task(
                    hold_meeting(server.ws_url, participants, audio, video, hold_s=hold_s)
                )
                peak = server.rss_bytes()
                while not held.done():  # its highest reading
                    await asyncio.wait([held], timeout=0.5)
                    peak = max(peak, server.rss_bytes())
                await held
                await asyncio.sleep(after_s)
                left = server.rss_bytes()
                in_use = await server.heap_in_use_bytes()
                print(
                    f"meeting {k + 1} ({participants} participants): {peak / MB:.0f} MB with"
                    f" everyone in, {left / MB:.0f} MB {after_s:.0f} s after everyone left"
                    f" ({(left - start) / MB:+.1f} MB since before the meetings)"
                    + _in_use(in_use, in_use_start),
                    flush=True,
                )
        finally:
            server.stop()


def _in_use(now: int | None, start: int | None) -> str:
    """What the server has allocated (not what the allocator keeps for reuse), when it says."""
    if now is None or start is None:
        return ""
    return f"; allocated {now / MB:.1f} MB ({(now - start) / MB:+.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=10, choices=range(2, 101), metavar="M")
    parser.add_argument("--meetings", type=int, default=4, choices=range(1, 51), metavar="N")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds everyone is in")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the last left")
    args = parser.parse_args()
    asyncio.run(run(args.participants, args.meetings, args.hold, args.after))


if __name__ == "__main__":
    main()
