"""`confsfu serve` in a subprocess, with the port it says it listens on."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)/")


async def start_serve(
    *args: str, env: dict[str, str], log: Path, timeout_s: float = 240
) -> tuple[asyncio.subprocess.Process, int]:
    """`confsfu serve ARGS --port 0 --log-format json`, its stderr appended to `log`: the process
    and its port, once its first line says it listens (killed if it does not)."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "confsfu.cli", "serve", *args),
            *("--port", "0", "--log-format", "json"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=out,
        )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        found = LISTENING.search(line)
        assert found, line
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc, int(found.group(1))
