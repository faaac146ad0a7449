"""Meetings one after another against a server process: what its memory does across them.

A `ServerProcess` is `confsfu serve` in a subprocess on 127.0.0.1 (loopback ICE, reports in a
directory of the caller's), whose resident memory is read from /proc; `hold_meeting` has
loopback participants join it, send audio and video a while, and all leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp

from confsfu.loadgen.media import EncodedFrame
from confsfu.loadgen.peer import LoopbackPeer

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)/")


class ServerProcess:
    """`confsfu serve` on 127.0.0.1 at a free port, in a subprocess; stop() ends it."""

    def __init__(self, report_dir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        src = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
            "CONFSFU_ICE__CANDIDATES": "loopback",
            "CONFSFU_REPORT_DIR": str(report_dir),
            **(extra_env or {}),
        }
        command = [sys.executable, "-m", "confsfu.cli", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.port = 0

    async def started(self) -> None:
        """Wait (at most START_TIMEOUT_S) for the server to say where it listens."""
        stdout = self.process.stdout
        assert stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), START_TIMEOUT_S)
        found = _LISTENING.search(line)
        if found is None:
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(found.group(1))

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def heap_in_use_bytes(self) -> int | None:
        """What the server says it has allocated (its /healthz), None if it cannot tell."""
        url = f"http://127.0.0.1:{self.port}/healthz?heap=1"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            value = (await response.json()).get("heap_in_use_bytes")
        return int(value) if value is not None else None

    def rss_bytes(self) -> int:
        """The server process's resident memory now (VmRSS)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found is None:
            raise RuntimeError("no VmRSS in /proc/PID/status")
        return int(found.group(1)) * 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


async def hold_meeting(
    url: str,
    participants: int,
    audio: list[EncodedFrame],
    video: list[EncodedFrame],
    *,
    hold_s: float,
    prefix: str = "City",
) -> None:
    """`participants` join one after the other and send media; after `hold_s` all leave."""
    peers: list[LoopbackPeer] = []
    try:
        for i in range(participants):
            peer = LoopbackPeer(url, name=f"{prefix} {i:02d}")
            peers.append(peer)
            await peer.join()
            peer.start_media(audio, video, duration_s=hold_s + 60.0)
        await asyncio.sleep(hold_s)
    finally:
        for peer in peers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.close(), 10.0)
